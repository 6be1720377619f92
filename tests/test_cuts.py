"""Every published summary is one cut of the input (issue 14), against real
Kafka: readings go to known partitions, so the test knows each message's
offset, and each summary is checked against an independent reference over
exactly the messages at or below its ``as_of``; its ``interval`` against the
messages between the previous summary's cut and its own."""

import math
import time
from collections import defaultdict

import pytest

from tests import helpers
from tests.reference import dataset, expected_summary

pytestmark = pytest.mark.kafka

PARTITIONS = 4


def split(records):
    """The records of each partition, in offset order (round-robin)."""
    return {p: records[p::PARTITIONS] for p in range(PARTITIONS)}


def included(by_partition, as_of):
    return [record for p, records in by_partition.items() for record in records[:int(as_of[str(p)]) + 1]]


def assert_close(got, want, what):
    assert [row["device"] for row in got] == [row["device"] for row in want], what
    for g, w in zip(got, want, strict=True):
        assert math.isclose(g["average"], w["average"], rel_tol=1e-9), (what, g, w)
        if "count" in w:
            assert g["count"] == w["count"], (what, g, w)


def interval_reference(by_partition, before, after):
    """What the readings between two cuts add: counts, and the average per device of just them."""
    between = [record for p, records in by_partition.items()
               for record in records[int(before[str(p)]) + 1:int(after[str(p)]) + 1]]
    humidity = defaultdict(list)
    for _raw, doc in between:
        if doc is not None:
            humidity[doc.get("medicalImagingdevice", doc.get("medicalimagingdevice"))].append(
                doc["payload"]["data"]["humidity"])
    rows = [{"device": d, "average": math.fsum(v) / len(v), "count": len(v)} for d, v in humidity.items()]
    rows.sort(key=lambda r: (-r["average"], r["device"]))
    return rows, sum(doc is None for _raw, doc in between)


def check_every_summary(summaries, by_partition):
    previous = None
    cuts = []
    for summary in summaries:
        as_of = summary["as_of"]
        expected = expected_summary(included(by_partition, as_of))
        for field in ("total_messages", "invalid_messages", "sensors_by_device", "total_sensors"):
            assert summary[field] == expected[field], (field, as_of)
        assert_close(summary["average_humidity_by_device"], expected["average_humidity_by_device"], as_of)
        interval = summary["interval"]
        if previous is not None:
            for p in as_of:
                assert as_of[p] >= previous["as_of"][p], "a cut never goes back"
            for field in ("total_messages", "invalid_messages", "total_sensors"):
                assert summary[field] >= previous[field], f"{field} never goes back"
            rows, invalid = interval_reference(by_partition, previous["as_of"], as_of)
            assert interval["since"] == previous["time"]
            assert interval["messages"] == summary["total_messages"] - previous["total_messages"]
            assert interval["invalid_messages"] == invalid
            assert interval["new_sensors"] == summary["total_sensors"] - previous["total_sensors"]
            assert_close(interval["average_humidity_by_device"], rows, ("interval", as_of))
        cuts.append(tuple(sorted(as_of.items())))
        previous = summary
    return cuts


def run_through(kafka, tmp_path, workers, stop):
    env = helpers.service_env(tmp_path)
    by_partition = split(dataset(24_000, seed=91))
    first, second, env2 = helpers.two_ready_workers(workers, env, tmp_path)
    feeder = helpers.Feeder(env["HUMIDITY_INPUT_TOPIC"], by_partition, chunks=40, pause=0.5)
    feeder.start()
    time.sleep(4.0)
    stop(second)
    again = workers(env2, "again")
    again.wait_for_log(helpers.READY, timeout=120)
    feeder.finish()
    everything = [record for records in by_partition.values() for record in records]
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"],
                             lambda s: s["total_messages"] + s["invalid_messages"] == len(everything), timeout=180)
    summaries = helpers.summaries(env["HUMIDITY_RESULTS_TOPIC"])
    cuts = check_every_summary(summaries, by_partition)
    ends = {str(p): len(records) - 1 for p, records in by_partition.items()}
    assert cuts[-1] == tuple(sorted(ends.items()))
    moving = [cut for cut in dict.fromkeys(cuts) if cut != cuts[-1]]
    assert len(moving) >= 4, f"only {len(moving)} distinct cuts while the stream flowed"


def test_every_summary_is_one_cut_while_a_worker_restarts(kafka, tmp_path, workers):
    run_through(kafka, tmp_path, workers, lambda worker: worker.stop(timeout=60))


def test_every_summary_is_one_cut_through_kill_9(kafka, tmp_path, workers):
    run_through(kafka, tmp_path, workers, lambda worker: worker.kill())
