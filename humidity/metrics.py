"""Prometheus metrics at GET /metrics: Faust's own (its Prometheus monitor)
and the service's. Counters are per worker; gauges describe the latest
summary this worker has seen (the same on every worker)."""

from __future__ import annotations

from datetime import datetime, timezone

from faust.sensors.prometheus import setup_prometheus_sensors
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, generate_latest

from app import app, settings
from humidity.alarms import KINDS
from humidity.health import summary_age_seconds

if settings.faust_metrics:
    # Faust's Prometheus monitor: per-event metrics (it costs throughput, see README "Performance")
    setup_prometheus_sensors(app, pattern="/metrics", name_prefix="faust")
else:

    @app.page("/metrics")
    async def metrics_page(self, request):
        return self.bytes(generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

readings_processed = Counter(
    "humidity_readings_processed_total", "Readings counted by this worker, by result.", ["result"])
summaries_published = Counter(
    "humidity_summaries_published_total", "Summaries this worker published (as leader).")
active_alarms = Gauge(
    "humidity_active_alarms", "Active alarms in the latest summary, by kind.", ["kind"])
last_summary_age = Gauge(
    "humidity_last_summary_age_seconds", "Seconds since the latest summary this worker has seen was published.")


def observe_summary(summary: dict) -> None:
    counts = dict.fromkeys(KINDS, 0)
    for alarm in summary.get("active_alarms", []):
        counts[alarm["kind"]] = counts.get(alarm["kind"], 0) + 1
    for kind, n in counts.items():
        active_alarms.labels(kind=kind).set(n)


def read_age_from(latest) -> None:
    """The age gauge reads the latest summary when scraped."""

    def age() -> float:
        summary = latest().summary
        return float("nan") if summary is None else summary_age_seconds(summary, datetime.now(timezone.utc))

    last_summary_age.set_function(age)
