"""The whole pipeline against the real local Kafka: exact summaries with one
and two workers, across a restart, and the partition-count check."""

import re

import orjson
import pytest

from tests import helpers
from tests.reference import assert_matches, dataset, expected_summary, matches
from tests.test_history_kafka import assert_windows

pytestmark = pytest.mark.kafka

READY = helpers.READY


def feed(env, records):
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records]))


def history_readings(records) -> list[tuple]:
    """(guid, device, event time, humidity) of the valid readings, as the reference reads them."""
    return [(doc["guid"], doc.get("medicalImagingdevice", doc.get("medicalimagingdevice")),
             helpers.parse_time(doc["eventTime"]), doc["payload"]["data"]["humidity"])
            for _raw, doc in records if doc is not None]


def assert_history(env, records) -> None:
    """Every device's minute and hour windows equal the reference's (names of every kind in the path)."""
    readings = history_readings(records)
    start = min(r[2] for r in readings) // 3600 * 3600
    end = max(r[2] for r in readings) + 3600
    for device in sorted({r[1] for r in readings}):
        helpers.wait_until(lambda device=device: windows_equal(env, "devices", device, readings, 1, start, end), 60,
                           what=f"the history of {device!r}")


def windows_equal(env, kind, name, readings, index, start, end) -> bool:
    try:
        assert_windows(env, kind, name, readings, index, start, end)
    except AssertionError:
        return False
    return True


def all_counted(n):
    return lambda s: s["total_messages"] + s["invalid_messages"] >= n


def test_one_worker_publishes_the_exact_summary_and_dead_letters(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    records = dataset(10_000)
    expected = expected_summary(records)
    assert 50 <= expected["invalid_messages"] <= 200 and expected["total_sensors"] > 1900

    worker = workers(env)
    worker.wait_for_log(READY, timeout=120)
    feed(env, records)
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=120)
    assert_matches(summary, expected)
    assert summary["interval_seconds"] == 1.0
    assert summary["time"].endswith("Z")

    dead = helpers.run(helpers.read_topic(env["HUMIDITY_INVALID_TOPIC"]))
    letters = [orjson.loads(r.value) for r in dead]
    assert len(letters) == expected["invalid_messages"]
    assert len({(d["partition"], d["offset"]) for d in letters}) == len(letters)
    invalid_originals = sorted(raw for raw, doc in records if doc is None)
    import base64
    assert sorted(base64.b64decode(d["original_base64"]) for d in letters) == invalid_originals
    assert all(d["reason"] and d["topic"] == env["HUMIDITY_INPUT_TOPIC"] for d in letters)
    assert "Total number of sensors" in worker.log()  # the human form in the log
    assert_history(env, records)  # the readings' event times are now: live history windows


def test_loggers_that_move_often_are_counted_once_each_with_half_the_stream_written_before_the_start(
        kafka, tmp_path, workers):
    """One reading in 13 from a logger just moved to another device: the
    worker's first batches hold many first sightings of a guid on two devices."""
    env = helpers.service_env(tmp_path)
    records = dataset(6_000, loggers=900, devices=37, move_rate=1 / 13, seed=43)
    expected = expected_summary(records)
    assert sum(row["sensors"] for row in expected["sensors_by_device"]) > expected["total_sensors"] + 100
    helpers.run(helpers.create_topic(env["HUMIDITY_INPUT_TOPIC"], int(env["HUMIDITY_PARTITIONS"])))
    feed(env, records[:3_000])
    worker = workers(env)
    worker.wait_for_log(READY, timeout=120)
    feed(env, records[3_000:])
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], all_counted(len(records)), timeout=120)
    assert_matches(summary, expected)


def test_two_workers_publish_one_global_summary_per_interval(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    records = dataset(10_000, seed=11)
    expected = expected_summary(records)

    first, second, env2 = helpers.two_ready_workers(workers, env, tmp_path)
    feed(env, records)
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=150)
    assert_matches(summary, expected)

    members = helpers.run(helpers.group_members(env["HUMIDITY_APP_ID"]))
    assert len(members) == 2, members
    assert all(any(t == env["HUMIDITY_INPUT_TOPIC"] for t, _ in parts) for parts in members.values()), \
        "both workers should own input partitions"

    # every worker serves the same global summary, as published: asked first,
    # so that the topic read afterwards holds whatever they served
    served = [helpers.http_get(helpers.web_url(worker_env, "/api/summary")) for worker_env in (env, env2)]
    published = {r.value for r in helpers.run(helpers.read_topic(env["HUMIDITY_RESULTS_TOPIC"]))}
    for status, _, body in served:
        assert status == 200 and body in published
        assert matches(expected)(orjson.loads(body))

    def published_since():
        return [s for s in helpers.summaries(env["HUMIDITY_RESULTS_TOPIC"]) if s["time"] > summary["time"]]

    recent = helpers.wait_until(lambda: len(found := published_since()) >= 4 and found, 60,
                                what="four more summaries, one per interval")
    stamps = [helpers.parse_time(s["time"]) for s in recent]
    gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    assert min(gaps) >= 0.5, f"two summaries within half an interval: {gaps}"
    assert all(s["total_messages"] == expected["total_messages"] for s in recent)


def first_half_then_stop(env, records, workers, name: str) -> int:
    """One worker counts the first half of ``records`` and stops (SIGTERM);
    returns where the second half starts."""
    half = len(records) // 2
    worker = workers(env, name)
    worker.wait_for_log(READY, timeout=120)
    feed(env, records[:half])
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], all_counted(half), timeout=120)
    assert worker.stop(timeout=60) == 0
    return half


def test_restart_continues_from_previous_totals(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    records = dataset(10_000, seed=23)
    half = first_half_then_stop(env, records, workers, "before")

    feed(env, records[half:])  # arrives while no worker runs
    again = workers(env, "after")
    again.wait_for_log(READY, timeout=120)
    expected = expected_summary(records)
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=120)
    assert_matches(summary, expected)
    totals = [s["total_messages"] + s["invalid_messages"] for s in helpers.summaries(env["HUMIDITY_RESULTS_TOPIC"])]
    assert totals == sorted(totals), "totals never go back after a restart"
    assert "Local tables in" not in again.log(), "a clean stop's tables are used as they are"


def changelog_records_read(env) -> dict[str, float]:
    """Per table, the changelog records this worker has read (at /metrics)."""
    status, _headers, body = helpers.http_get(helpers.web_url(env, "/metrics"))
    assert status == 200
    read = {}
    for line in body.decode().splitlines():
        match = re.match(r'humidity_changelog_records_read_total\{table="([^"]+)"\} (\S+)$', line)
        if match:
            read[match[1]] = float(match[2])
    return read


def test_a_worker_restores_from_the_changelogs_then_never_reads_back_what_it_writes(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    records = dataset(10_000, seed=29)
    half = first_half_then_stop(env, records, workers, "first")

    env = helpers.another_worker(env, tmp_path, "empty")
    again = workers(env, "again")  # an empty data directory: the state comes from the changelogs
    again.wait_for_log(READY, timeout=120)
    helpers.wait_for_web(env)
    restored = changelog_records_read(env)
    assert sum(restored.values()) > 0, "the restore read the changelogs"
    feed(env, records[half:])
    expected = expected_summary(records)
    assert_matches(helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=120), expected)
    # every table was written since; its own records are not fetched back (the worker is their only writer)
    assert changelog_records_read(env) == restored


def test_partition_count_mismatch_stops_the_worker_with_one_line(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    helpers.run(helpers.create_topic(env["HUMIDITY_INPUT_TOPIC"], 3))
    worker = workers(env, "mismatch")
    helpers.wait_until(lambda: not worker.running(), timeout=90, what="the worker to exit")
    assert worker.proc.returncode == 78
    log = worker.log()
    lines = [line for line in log.splitlines() if "partitions but" in line]
    assert len(lines) == 1 and "ERROR" in lines[0], lines
    assert lines[0].strip().endswith(
        f"humidity: topic '{env['HUMIDITY_INPUT_TOPIC']}' has 3 partitions but HUMIDITY_PARTITIONS=4; "
        f"set HUMIDITY_PARTITIONS=3 to use it, or delete and recreate the topic")
    assert "Traceback" not in log and "PartitionsMismatch" not in log
