"""Faust's table counters at /metrics, without a broker: the service's monitor
counts every table read, write and delete as Faust's own monitor does."""

from __future__ import annotations

from types import SimpleNamespace

from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import CollectorRegistry

from humidity.declare.metrics import TableCountingMonitor


def table_samples(monitor_class) -> tuple[dict, dict]:
    """The table counters exported after the same operations on two tables,
    and what the monitor keeps per table for Faust's web views."""
    registry = CollectorRegistry()
    monitor = monitor_class(metrics=FaustMetrics.create(registry, "faust"))
    states, history = SimpleNamespace(name="alarm-states"), SimpleNamespace(name="history")
    for table, gets, sets, dels in ((states, 5, 3, 1), (history, 2, 7, 4)):
        for i in range(gets):
            monitor.on_table_get(table, b"k%d" % i)
        for i in range(sets):
            monitor.on_table_set(table, b"k%d" % i, b"v")
        for i in range(dels):
            monitor.on_table_del(table, b"k%d" % i)
    exported = {(s.labels["table"], s.labels["operation"]): s.value
                for metric in registry.collect() if metric.name == "faust_table_operations"
                for s in metric.samples if s.name.endswith("_total")}
    kept = {name: (state.keys_retrieved, state.keys_updated, state.keys_deleted)
            for name, state in monitor.tables.items()}
    return exported, kept


def test_table_operations_are_counted_as_faust_counts_them():
    exported, kept = table_samples(TableCountingMonitor)
    assert (exported, kept) == table_samples(PrometheusMonitor)
    assert exported[("table.history", "keys_updated")] == 7
    assert kept["alarm-states"] == (5, 3, 1)
