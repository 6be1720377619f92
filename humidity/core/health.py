"""Is this worker healthy? (pure; the /health view supplies the facts)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


def summary_age_seconds(summary: dict, now: datetime) -> float:
    """Seconds since a summary was published (NaN if it carries no valid time)."""
    try:
        return max(0.0, (now - datetime.fromisoformat(summary["time"])).total_seconds())
    except (KeyError, TypeError, ValueError):
        return float("nan")


@dataclass
class PartitionProgress:
    """An owned input partition: its end offset, the group's committed offset
    (the next one to read), and since when it has waited: the last time its
    committed offset moved, it was caught up, or it became this worker's."""

    end: int
    committed: int
    since: float

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


@dataclass
class StallWatch:
    """Which owned input partitions have not progressed for ``limit`` seconds
    although readings wait in them: a consumer that silently stopped.
    Progress is the committed offset moving, so a worker that fetches but
    never finishes a batch counts as stalled too."""

    limit: float
    partitions: dict[int, PartitionProgress] = field(default_factory=dict)

    def observe(self, offsets: dict[int, tuple[int, int]], now: float) -> None:
        """The owned partitions now, each ``(end offset, committed offset)``;
        the committed offset is -1 when the group has none."""
        for partition in set(self.partitions) - set(offsets):
            del self.partitions[partition]
        for partition, (end, committed) in offsets.items():
            known = self.partitions.get(partition)
            if known is None or committed > known.committed or known.lag == 0:
                self.partitions[partition] = PartitionProgress(end, committed, now)
            else:
                known.end = end

    def stalled(self, now: float) -> dict[int, PartitionProgress]:
        return {p: progress for p, progress in sorted(self.partitions.items())
                if progress.lag > 0 and now - progress.since >= self.limit}

    def describe(self, now: float) -> list[str]:
        return [f"input partition {p} has {progress.lag} reading(s) waiting and no progress for "
                f"{now - progress.since:.0f} s (limit {self.limit:.0f} s)" for p, progress in self.stalled(now).items()]


def health(now: datetime, summary_time: str | None, interval: float, consuming: bool,
           stalls: list[str] | None = None) -> tuple[bool, dict]:
    """Healthy while the worker consumes, none of its input partitions is
    stalled (``stalls``: their descriptions) and a summary came within two
    intervals."""
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


def leadership_changes(topic: str, before: dict[int, int], after: dict[int, int],
                       brokers_before: set[int], brokers_after: set[int]) -> list[str]:
    """Log lines for what changed in the cluster between two looks: brokers
    gone or back, and partitions of ``topic`` whose leader moved (-1: none)."""
    lines = [f"Kafka: broker {b} is no longer in the cluster" for b in sorted(brokers_before - brokers_after)]
    lines += [f"Kafka: broker {b} is in the cluster again" for b in sorted(brokers_after - brokers_before)
              if brokers_before]
    moves: dict[tuple[int, int], list[int]] = {}
    for partition, leader in sorted(after.items()):
        if partition in before and before[partition] != leader:
            moves.setdefault((before[partition], leader), []).append(partition)
    for (old, new), partitions in moves.items():
        where = f"{topic} partition{'s' if len(partitions) > 1 else ''} {', '.join(map(str, partitions))}"
        lines.append(f"Kafka: the leader of {where} moved from broker {old} to "
                     + ("none (not available)" if new < 0 else f"broker {new}"))
    return lines
