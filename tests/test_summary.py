"""Merging partition totals into the published summary (no broker)."""

from datetime import UTC, datetime

import orjson

from humidity.core.aggregate import DeviceSum, IngestTotals, SensorTotals
from humidity.core.summary import PartialsBook, build_summary, render_text

NOW = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def ingest_totals(offset, devices, invalid=0):
    return IngestTotals(offset=offset, valid=sum(len(v) for v in devices.values()), invalid=invalid,
                        devices={d: DeviceSum(list(v), len(v)) for d, v in devices.items()})


def test_summary_shape_and_orders():
    s = build_summary(
        [ingest_totals(3, {"MRI 12": [70.0, 71.0], "CT 3": [40.0]}, invalid=2),
         ingest_totals(1, {"CT 3": [42.0], "SPECT 7": [70.5]})],
        [SensorTotals(4, 2, {"MRI 12": 1, "CT 3": 1}), SensorTotals(2, 1, {"SPECT 7": 1, "CT 3": 1})],
        NOW, 3.0)
    assert s == {
        "time": "2024-05-06T07:08:09.123456Z",
        "interval_seconds": 3.0,
        "average_humidity_by_device": [
            {"device": "MRI 12", "average": 70.5}, {"device": "SPECT 7", "average": 70.5},
            {"device": "CT 3", "average": 41.0}],
        "total_messages": 5,
        "sensors_by_device": [{"device": "CT 3", "sensors": 2}, {"device": "MRI 12", "sensors": 1},
                              {"device": "SPECT 7", "sensors": 1}],
        "total_sensors": 3,
        "invalid_messages": 2,
        "active_alarms": [],
    }


def test_book_needs_every_partition_and_keeps_the_newest():
    book = PartialsBook(partitions=2)
    assert book.missing() == ["ingest/0", "ingest/1", "sensors/0", "sensors/1", "alarms/0", "alarms/1"]
    book.update("ingest/0", ingest_totals(5, {"MRI 1": [50.0]}).to_json())
    book.update("ingest/0", ingest_totals(2, {"MRI 1": [10.0]}).to_json())  # stale: ignored
    book.update("ingest/1", IngestTotals().to_json())
    book.update("sensors/0", SensorTotals(0, 1, {"MRI 1": 1}).to_json())
    book.update("ingest/7", IngestTotals().to_json())  # partition beyond the count: ignored
    assert book.missing() == ["sensors/1", "alarms/0", "alarms/1"]
    book.update("sensors/1", SensorTotals().to_json())
    old = {"time": "2024-01-01T00:00:00.000000Z", "since": "2024-01-01T00:00:00.000000Z", "device": "MRI 1",
           "guid": "g", "kind": "HIGH", "state": "raised", "value": 63, "limit": 60}
    new = dict(old, since="2024-01-02T00:00:00.000000Z", time="2024-01-02T00:00:00.000000Z", guid="h")
    book.update("alarms/0", {"offset": 3, "active": [old]})
    book.update("alarms/1", {"offset": 1, "active": [new]})
    book.update("alarms/1", {"offset": 0, "active": []})  # stale: ignored
    assert book.missing() == []
    s = book.summary(NOW, 3.0)
    assert s["average_humidity_by_device"] == [{"device": "MRI 1", "average": 50.0}]
    assert s["total_sensors"] == 1
    assert s["active_alarms"] == [new, old]  # newest first


def test_text_form_has_four_titled_blocks_and_escapes_names():
    s = build_summary([ingest_totals(0, {"MRI\n1": [50.0]})], [SensorTotals(0, 1, {"MRI\n1": 1})], NOW, 3.0)
    text = render_text(s)
    for title in ("Average humidity by device", "Total messages processed", "Number of sensors by device",
                  "Total number of sensors"):
        assert title in text
    assert "'MRI\\n1'" in text
    orjson.dumps(s)


def test_text_form_lists_at_most_twenty_active_alarms():
    from humidity.core.summary import LOGGED_ALARMS_MAX

    s = build_summary([ingest_totals(0, {"MRI 1": [50.0]})], [SensorTotals(0, 1, {"MRI 1": 1})], NOW, 3.0)
    s["active_alarms"] = [{"kind": "OFFLINE", "device": "MRI 1", "guid": f"g{i}", "value": 50.0, "limit": 300.0,
                           "since": "2024-01-01T00:00:00.000000Z"} for i in range(2000)]
    lines = render_text(s).splitlines()
    assert "Active alarms (2000, newest first)" in lines[1]
    assert sum(line.startswith("OFFLINE") for line in lines) == LOGGED_ALARMS_MAX == 20
    assert "... and 1980 more (all of them: GET /api/alarms)" in lines


def test_one_line_form_for_deployments():
    from humidity.core.summary import render_line

    s = build_summary([ingest_totals(0, {"MRI 1": [50.0]}, invalid=3)], [SensorTotals(0, 1, {"MRI 1": 1})], NOW, 3.0)
    line = render_line(s)
    assert "\n" not in line
    assert line == "time=2024-05-06T07:08:09.123456Z messages=1 invalid=3 sensors=1 devices=1 active_alarms=0"
