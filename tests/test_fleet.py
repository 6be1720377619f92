"""A fleet through one worker (real Kafka): nothing the service sends
outgrows the message limit of its topics, the worker stays up, and the
summary counts every reading and lists every device, exactly, also through
kill -9; a message that would still be too large stops the worker with one
line, and nothing is lost."""

import re
import time

import orjson
import pytest

from humidity.core.simulation import Simulator
from tests import helpers
from tests.reference import dataset, expected_summary, matches

pytestmark = pytest.mark.kafka

#: What one worker is tested with: a hospital network's fleet. Its summary
#: (about 5 MB) is over Kafka's default 1 MB message limit.
DEVICES, LOGGERS = 40_000, 80_000


def fleet(readings_per_logger: int, seed: int, devices: int = DEVICES, loggers: int = LOGGERS):
    """Every logger reads ``readings_per_logger`` times, a minute apart, in time order."""
    sim = Simulator(loggers=loggers, devices=devices, seed=seed)
    raws = sim.backfill(hours=readings_per_logger / 60, now=time.time(), every=60.0)
    return [(raw, orjson.loads(raw)) for raw in raws]


def exact_on_the_page(worker, env, expected):
    """The worker's latest summary equals the reference (the latest only: each lists every device)."""
    def exact():
        assert worker.running(), "the worker stopped:\n" + worker.log()[-3000:]
        status, _, body = helpers.http_get(helpers.web_url(env, "/api/summary"))
        return status == 200 and matches(expected)(summary := orjson.loads(body)) and summary

    return exact


def test_40000_devices_and_80000_loggers_through_one_worker(kafka, tmp_path, workers):
    # About counting at scale: loggers that send and fall silent would all go
    # OFFLINE after 300 s (an outage has its own test in test_alarms_kafka.py).
    env = helpers.service_env(tmp_path, HUMIDITY_ALARMS_FILE=helpers.alarms_file(tmp_path, offline_timeout=3600))
    worker = workers(env)
    worker.wait_for_log(helpers.READY, timeout=120)
    records = fleet(2, seed=91)
    expected = expected_summary(records)
    assert len(expected["average_humidity_by_device"]) == DEVICES and expected["total_sensors"] == LOGGERS
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records]))
    summary = helpers.wait_until(exact_on_the_page(worker, env, expected), 900, interval=2.0,
                                 what="a summary of every reading")
    assert len(summary["sensors_by_device"]) == DEVICES
    status, _, body = helpers.http_get(helpers.web_url(env, "/api/summary/totals"))
    assert status == 200 and orjson.loads(body)["device_count"] == DEVICES
    top = orjson.loads(helpers.http_get(helpers.web_url(env, "/api/summary/devices?limit=10"))[2])
    assert [r["average"] for r in top["devices"]] == \
        [r["average"] for r in expected["average_humidity_by_device"][:10]] and top["total"] == DEVICES
    logged = worker.log()
    assert "more (all of them: GET /api/summary/devices?sort=average)" in logged
    assert len(logged) < 20_000_000, "the log lists at most 50 devices per block"


def test_many_devices_exact_through_kill_9(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    records = fleet(2, seed=95, devices=10_000, loggers=20_000)
    expected = expected_summary(records)
    first = workers(env, "first")
    first.wait_for_log(helpers.READY, timeout=120)
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records]))

    def counting():
        status, _, body = helpers.http_get(helpers.web_url(env, "/api/summary/totals"))
        return status == 200 and orjson.loads(body)["total_messages"] >= len(records) // 4

    helpers.wait_until(counting, 180, interval=0.5, what="a quarter of the readings counted")
    first.kill()  # kill -9, mid-stream
    again = workers(env, "again")  # the same data directory
    helpers.wait_for_web(env)
    helpers.wait_until(exact_on_the_page(again, env, expected), 300, interval=2.0,
                       what="a summary of every reading, each counted once")


def test_a_message_over_the_limit_stops_the_worker_with_one_line_and_loses_nothing(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    small = workers(dict(env, HUMIDITY_TEST_FAULT="max-request-size:20000"), "small", app="tests.faulty_app")
    records = dataset(6_000, loggers=3_000, devices=1_500, seed=93)  # a partition's totals pass 20 kB
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records]))
    assert small.wait(timeout=120) == 70
    log = small.log()
    assert re.search(r"Stopping the worker: a message to '[^']+' of about \d+ bytes is over the limit of 20000 "
                     r"bytes; nothing after it was sent", log), log[-3000:]
    assert "Traceback" not in log
    workers(env, "normal")  # the same data directory, the normal limit
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected_summary(records)), timeout=120)
