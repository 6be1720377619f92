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
from humidity.core.behind import Behind
from humidity.core.health import summary_age_seconds
from humidity.core.stalls import StallWatch


class TableCountingMonitor(PrometheusMonitor):
    """Faust's Prometheus monitor, with the table counters read when scraped.

    Faust calls the monitor on every table read and write; with a large
    fleet a batch reads and writes thousands of values, and a labelled
    Prometheus counter per call costs several times the counting. Faust's
    Monitor counts them per table anyway (for its web views), so
    ``faust_table_operations_total`` is read from those counts."""

    def __init__(self, *, metrics: FaustMetrics, registry: CollectorRegistry, **kwargs) -> None:
        super().__init__(metrics=metrics, **kwargs)
        registry.unregister(metrics.table_operations)
        registry.register(_TableOperations(self, metrics.table_operations.describe()[0]))

    # Monitor's, not PrometheusMonitor's: those count each call in a labelled counter.
    on_table_get = Monitor.on_table_get
    on_table_set = Monitor.on_table_set
    on_table_del = Monitor.on_table_del


class _TableOperations:
    """Faust's table counter family, from the counts its Monitor keeps per table."""

    #: PrometheusMonitor's operation labels, which are also the names of TableState's counts.
    OPERATIONS = (PrometheusMonitor.KEYS_RETRIEVED, PrometheusMonitor.KEYS_UPDATED, PrometheusMonitor.KEYS_DELETED)

    def __init__(self, monitor: Monitor, described) -> None:
        self.monitor, self.described = monitor, described  # described: Faust's counter's name and help

    def collect(self):
        family = CounterMetricFamily(self.described.name, self.described.documentation,
                                     labels=["table", "operation"])
        for name, state in list(self.monitor.tables.items()):
            for operation in self.OPERATIONS:
                family.add_metric([f"table.{name}", operation], getattr(state, operation))
        yield family


class Metrics:
    def __init__(self, app: HumidityApp) -> None:
        self.registry = CollectorRegistry()
        if app.settings.faust_metrics:
            # Faust's per-event metrics cost throughput (docs/performance.md).
            app.monitor = TableCountingMonitor(metrics=FaustMetrics.create(self.registry, "faust"),
                                               registry=self.registry)
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
            "escalation-webhook, escalation-email) and outcome (delivered, failed; held: a maintenance silence covers "
            "the alarm).", ["channel", "outcome"],
            registry=self.registry)
        self.limits_reloads = Counter(
            "humidity_limits_reload_total", "Times this worker read a changed alarms file, by outcome (applied: "
            "its limits are in force; refused: invalid, the limits before it stay).", ["outcome"],
            registry=self.registry)
        self.active_alarms = Gauge(
            "humidity_active_alarms", "Active alarms in the latest summary, by kind.", ["kind"],
            registry=self.registry)
        self.last_summary_age = Gauge(
            "humidity_last_summary_age_seconds",
            "Seconds since the latest summary this worker has seen was published.", registry=self.registry)

        self.partition_lag = Gauge(
            "humidity_partition_lag", "Records waiting in a partition this worker consumes (end offset minus the "
            "group's committed offset, or its reader's position; of several readers, the most).",
            ["topic", "partition"], registry=self.registry)
        self.partition_stalled = Gauge(
            "humidity_partition_stalled", "1 if a partition this worker consumes has had records waiting and no "
            "progress for HUMIDITY_STALL_SECONDS.", ["topic", "partition"], registry=self.registry)
        self._partitions_shown: set[tuple[str, int]] = set()
        self.cut_behind_seconds = Gauge(
            "humidity_cut_behind_seconds", "How long the input has held readings that the newest published "
            "summary (its as_of) leaves out; 0 when it includes everything that has arrived.",
            registry=self.registry)
        self.cut_behind_readings = Gauge(
            "humidity_cut_behind_readings", "Messages on the input that the newest published summary leaves "
            "out: the input's end offsets minus its as_of, summed.", registry=self.registry)
        self.registry.register(_ChangelogReads(app))

    def observe_partitions(self, watch: StallWatch, now: float) -> None:
        """The lag and stall flag of every partition consumed; those no longer consumed are dropped."""
        shown = watch.by_partition(now)
        for topic, partition in self._partitions_shown - set(shown):
            self.partition_lag.remove(topic, str(partition))
            self.partition_stalled.remove(topic, str(partition))
        self._partitions_shown = set(shown)
        for (topic, partition), (lag, stalled) in shown.items():
            self.partition_lag.labels(topic=topic, partition=str(partition)).set(lag)
            self.partition_stalled.labels(topic=topic, partition=str(partition)).set(int(stalled))

    def read_cut_behind_from(self, behind: Callable[[], Behind]) -> None:
        """The cut-behind gauges read ``behind()`` when scraped."""
        self.cut_behind_seconds.set_function(lambda: behind().seconds)
        self.cut_behind_readings.set_function(lambda: behind().readings)

    def observe_summary(self, summary: dict) -> None:
        counts = dict.fromkeys(KINDS, 0)
        counts.update(summary.get("active_alarms_by_kind", {}))
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
