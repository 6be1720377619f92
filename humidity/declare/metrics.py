"""The Prometheus metrics a worker exports at /metrics, declared once
(declarations): Faust's own (its Prometheus monitor, unless
HUMIDITY_FAUST_METRICS=off) and the service's, in one registry per app.
Counters are per worker; gauges describe the latest summary this worker has
seen (the same on every worker)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from faust.sensors.monitor import Monitor
from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily

from humidity.application import HumidityApp
from humidity.core.alarms import KINDS
from humidity.core.health import StallWatch, summary_age_seconds


class TableCountingMonitor(PrometheusMonitor):
    """Faust's Prometheus monitor, with each table's counters looked up once.

    Faust calls the monitor on every table read and write; with a large
    fleet a batch reads and writes thousands of values, and looking the
    labelled counter up by its labels each time costs several times the
    counting itself (README "Performance")."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._table_counters: dict = {}  # (table name, operation) -> its counter

    def _count(self, table, operation: str) -> None:
        counter = self._table_counters.get((table.name, operation))
        if counter is None:
            counter = self._table_counters[(table.name, operation)] = self._metrics.table_operations.labels(
                table=f"table.{table.name}", operation=operation)
        counter.inc()

    # Monitor's, not super()'s: PrometheusMonitor's would look the counter up again.
    def on_table_get(self, table, key) -> None:
        Monitor.on_table_get(self, table, key)
        self._count(table, self.KEYS_RETRIEVED)

    def on_table_set(self, table, key, value) -> None:
        Monitor.on_table_set(self, table, key, value)
        self._count(table, self.KEYS_UPDATED)

    def on_table_del(self, table, key) -> None:
        Monitor.on_table_del(self, table, key)
        self._count(table, self.KEYS_DELETED)


class Metrics:
    def __init__(self, app: HumidityApp) -> None:
        self.registry = CollectorRegistry()
        if app.settings.faust_metrics:
            # Faust's per-event metrics cost throughput (README "Performance").
            app.monitor = TableCountingMonitor(metrics=FaustMetrics.create(self.registry, "faust"))
        self.readings_processed = Counter(
            "humidity_readings_processed_total", "Readings counted by this worker, by result.", ["result"],
            registry=self.registry)
        self.history_readings = Counter(
            "humidity_history_readings_total", "Readings this worker added to the history windows.",
            registry=self.registry)
        self.history_too_old = Counter(
            "humidity_history_too_old_total",
            "Readings older than every history retention: counted, not stored in the history.",
            registry=self.registry)
        self.summaries_published = Counter(
            "humidity_summaries_published_total", "Summaries this worker published (as leader).",
            registry=self.registry)
        self.notifications = Counter(
            "humidity_notifications_total", "Notification attempts this worker made, by channel (webhook, email, "
            "escalation-webhook, escalation-email) and outcome (delivered, failed).", ["channel", "outcome"],
            registry=self.registry)
        self.active_alarms = Gauge(
            "humidity_active_alarms", "Active alarms in the latest summary, by kind.", ["kind"],
            registry=self.registry)
        self.last_summary_age = Gauge(
            "humidity_last_summary_age_seconds",
            "Seconds since the latest summary this worker has seen was published.", registry=self.registry)

        self.partition_lag = Gauge(
            "humidity_partition_lag", "Readings waiting in an input partition this worker owns (end offset minus "
            "the group's committed offset).", ["topic", "partition"], registry=self.registry)
        self.partition_stalled = Gauge(
            "humidity_partition_stalled", "1 if an input partition this worker owns has had readings waiting and no "
            "progress for HUMIDITY_STALL_SECONDS.", ["topic", "partition"], registry=self.registry)
        self._partitions_shown: set[int] = set()
        self.registry.register(_ChangelogReads(app))

    def observe_partitions(self, topic: str, watch: StallWatch, now: float) -> None:
        """The owned partitions' lag and stall flags; partitions no longer owned are dropped."""
        stalled = watch.stalled(now)
        for gone in self._partitions_shown - set(watch.partitions):
            self.partition_lag.remove(topic, str(gone))
            self.partition_stalled.remove(topic, str(gone))
        self._partitions_shown = set(watch.partitions)
        for partition, progress in watch.partitions.items():
            self.partition_lag.labels(topic=topic, partition=str(partition)).set(progress.lag)
            self.partition_stalled.labels(topic=topic, partition=str(partition)).set(int(partition in stalled))

    def observe_summary(self, summary: dict) -> None:
        counts = dict.fromkeys(KINDS, 0)
        if "active_alarms_by_kind" in summary:
            counts.update(summary["active_alarms_by_kind"])
        else:  # a summary of an earlier version lists every active alarm
            for alarm in summary.get("active_alarms", []):
                counts[alarm["kind"]] = counts.get(alarm["kind"], 0) + 1
        for kind, n in counts.items():
            self.active_alarms.labels(kind=kind).set(n)

    def read_age_from(self, latest: Callable[[], dict | None]) -> None:
        """The age gauge reads the latest summary (``latest()``) when scraped."""

        def age() -> float:
            summary = latest()
            return float("nan") if summary is None else summary_age_seconds(summary, datetime.now(UTC))

        self.last_summary_age.set_function(age)


class _ChangelogReads:
    """``humidity_changelog_records_read_total``: what each table's restores
    (and standbys) have read, from the tables' own counts when scraped."""

    def __init__(self, app: HumidityApp) -> None:
        self.app = app

    def collect(self):
        family = CounterMetricFamily(
            "humidity_changelog_records_read", "Table changelog records this worker has read to restore its "
            "tables (a restore, or a standby copy), by table.", labels=["table"])
        for table in self.app.tables.values():
            family.add_metric([table.name], getattr(table, "changelog_records_read", 0))
        yield family
