"""A fleet through one worker (real Kafka): nothing the service sends
outgrows the message limit of its topics, the worker stays up, and the
summary counts every reading and lists every device; a message that would
still be too large stops the worker with one line, and nothing is lost."""

import re
import time

import orjson
import pytest

from humidity.core.simulation import Simulator
from tests import helpers
from tests.reference import dataset, expected_summary, matches

pytestmark = pytest.mark.kafka

#: What one worker is tested with: its summaries (about 2 MB) and totals pass
#: Kafka's default 1 MB message limit. 40,000 devices do not finish yet
#: (README, "Fleet size").
DEVICES, LOGGERS = 10_000, 20_000


def fleet(readings_per_logger: int, seed: int):
    """Every logger reads ``readings_per_logger`` times, a minute apart, in time order."""
    sim = Simulator(loggers=LOGGERS, devices=DEVICES, seed=seed)
    raws = sim.backfill(hours=readings_per_logger / 60, now=time.time(), every=60.0)
    return [(raw, orjson.loads(raw)) for raw in raws]


def test_10000_devices_and_20000_loggers_through_one_worker(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    worker = workers(env)
    worker.wait_for_log(helpers.READY, timeout=120)
    records = fleet(2, seed=91)
    expected = expected_summary(records)
    assert len(expected["average_humidity_by_device"]) == DEVICES and expected["total_sensors"] == LOGGERS
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records]))

    def exact():  # the latest summary only: each lists every device
        assert worker.running(), "the worker stopped:\n" + worker.log()[-3000:]
        status, _, body = helpers.http_get(helpers.web_url(env, "/api/summary"))
        return status == 200 and matches(expected)(summary := orjson.loads(body)) and summary

    summary = helpers.wait_until(exact, 300, interval=1.0, what="a summary of every reading")
    assert len(summary["sensors_by_device"]) == DEVICES


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
