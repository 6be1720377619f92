"""Faust's table counters at /metrics, without a broker: the service's monitor
counts every table read, write and delete as Faust's own monitor does."""

from __future__ import annotations

from types import SimpleNamespace

from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor
from prometheus_client import CollectorRegistry

from humidity.declare.metrics import TableCountingMonitor


def faust_monitor(registry: CollectorRegistry) -> PrometheusMonitor:
    return PrometheusMonitor(metrics=FaustMetrics.create(registry, "faust"))


def service_monitor(registry: CollectorRegistry) -> TableCountingMonitor:
    return TableCountingMonitor(metrics=FaustMetrics.create(registry, "faust"), registry=registry)


def exported(registry: CollectorRegistry) -> dict:
    return {(s.labels["table"], s.labels["operation"]): s.value
            for metric in registry.collect() if metric.name == "faust_table_operations"
            for s in metric.samples if s.name.endswith("_total")}


def table_samples(make_monitor, rounds: int = 1) -> tuple[list[dict], dict]:
    """The table counters exported after each of ``rounds`` rounds of the
    same operations on two tables, and what the monitor keeps per table for
    Faust's web views."""
    registry = CollectorRegistry()
    monitor = make_monitor(registry)
    states, history = SimpleNamespace(name="alarm-states"), SimpleNamespace(name="history")
    scrapes = []
    for _ in range(rounds):
        for table, gets, sets, dels in ((states, 5, 3, 1), (history, 2, 7, 4)):
            for i in range(gets):
                monitor.on_table_get(table, b"k%d" % i)
            for i in range(sets):
                monitor.on_table_set(table, b"k%d" % i, b"v")
            for i in range(dels):
                monitor.on_table_del(table, b"k%d" % i)
        scrapes.append(exported(registry))
    kept = {name: (state.keys_retrieved, state.keys_updated, state.keys_deleted)
            for name, state in monitor.tables.items()}
    return scrapes, kept


def test_table_operations_are_counted_as_faust_counts_them():
    scrapes, kept = table_samples(service_monitor, rounds=2)
    assert (scrapes, kept) == table_samples(faust_monitor, rounds=2)
    assert [scrape[("table.history", "keys_updated")] for scrape in scrapes] == [7, 14]
    assert kept["alarm-states"] == (10, 6, 2)


def test_the_table_counters_are_exported_once_with_faust_s_name_and_help():
    registry = CollectorRegistry()
    service_monitor(registry)
    families = [m for m in registry.collect() if m.name == "faust_table_operations"]
    assert len(families) == 1
    assert families[0].type == "counter" and families[0].documentation == "Total table operations"
