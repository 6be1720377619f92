"""Is this worker healthy? (pure; the /health view supplies the facts)."""

from __future__ import annotations

from datetime import datetime


def summary_age_seconds(summary: dict, now: datetime) -> float:
    """Seconds since a summary was published (NaN if it carries no valid time)."""
    try:
        return max(0.0, (now - datetime.fromisoformat(summary["time"])).total_seconds())
    except (KeyError, TypeError, ValueError):
        return float("nan")


def health(now: datetime, summary_time: str | None, interval: float, consuming: bool,
           stalls: list[str] | None = None) -> tuple[bool, dict]:
    """Healthy while the worker consumes, none of the partitions it consumes
    is stalled (``stalls``: their descriptions, :mod:`humidity.core.stalls`)
    and a summary came within two intervals."""
    limit = 2 * interval
    body: dict = {"consuming": consuming, "summary_time": summary_time, "max_age_seconds": limit}
    reasons = []
    if not consuming:
        reasons.append("the Kafka consumer is not running")
    reasons += stalls or []
    if summary_time is None:
        reasons.append("no summary has been published yet")
        age = None
    else:
        age = summary_age_seconds({"time": summary_time}, now)
        if not age <= limit:  # NaN (no valid time) is unhealthy too
            reasons.append(f"the last summary is {age:.1f} s old (limit {limit:.1f} s)")
    body["summary_age_seconds"] = None if age is None else round(age, 3)
    body["status"] = "ok" if not reasons else "unhealthy"
    if reasons:
        body["reasons"] = reasons
    return not reasons, body
