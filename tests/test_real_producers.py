"""Input as real producers write it, end to end against real Kafka and the
reference: compressed batches of every codec Kafka has, keyed and unkeyed
messages, null values and tombstones, identical messages sent twice, and one
logger's readings spread over every input partition."""

import itertools

import orjson
import pytest

from tests import helpers
from tests.reference import assert_matches, dataset, expected_summary, matches
from tests.test_alarms_kafka import alarm_env, events_of, reading
from tests.test_notify_kafka import back_inside, breach

pytestmark = pytest.mark.kafka

READY = helpers.READY
PARTITIONS = 4
CODECS = ("gzip", "snappy", "lz4", "zstd")


async def produce_as(topic: str, records: list, compression: str, keyed: bool) -> None:
    """``records`` from one producer compressing its batches, keyed by guid (a malformed one by its
    first bytes) or not keyed at all."""
    producer = helpers.input_producer(compression_type=compression, linger_ms=20, max_batch_size=262144)
    await producer.start()
    try:
        for raw, doc in records:
            key = (doc["guid"].encode() if doc else raw[:8] or b"-") if keyed else None
            await producer.send(topic, value=raw, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def nulls(topic: str) -> None:
    """Tombstones (a key, no value) and empty values, as a compacting or careless upstream sends."""
    producer = helpers.input_producer()
    await producer.start()
    try:
        for partition in range(PARTITIONS):
            await producer.send(topic, value=None, key=b"retired-logger", partition=partition)
            await producer.send(topic, value=b"", partition=partition)
        await producer.flush()
    finally:
        await producer.stop()


def test_compressed_keyed_unkeyed_null_and_duplicated_input_is_exact(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    topic = env["HUMIDITY_INPUT_TOPIC"]
    worker = workers(env)
    worker.wait_for_log(READY, timeout=120)
    records = dataset(8_000, seed=60)
    size = len(records) // 8
    for chunk in range(8):  # each codec, keyed and unkeyed
        part = records[chunk * size:(chunk + 1) * size]
        helpers.run(produce_as(topic, part, CODECS[chunk % 4], keyed=chunk % 2 == 0))
    again = records[:500]  # identical messages sent a second time: readings twice, as the job this replaces
    helpers.run(produce_as(topic, again, "gzip", keyed=False))
    helpers.run(nulls(topic))
    expected = expected_summary(records + again + [(b"", None)] * (2 * PARTITIONS))
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=120)
    assert_matches(summary, expected)
    letters = [orjson.loads(r.value) for r in helpers.run(helpers.read_topic(env["HUMIDITY_INVALID_TOPIC"]))]
    assert len(letters) == expected["invalid_messages"]
    empty = [d for d in letters if d["original_base64"] == ""]  # the dataset's own empty messages too
    assert len(empty) >= 2 * PARTITIONS and {d["reason"] for d in empty} == {"empty message"}
    assert worker.running()


def test_one_loggers_readings_over_every_input_partition_raise_once_and_clear_once(kafka, tmp_path, workers):
    env = alarm_env(tmp_path)
    worker = workers(env, "alarms")
    worker.wait_for_log(READY, timeout=120)
    rows = breach("everywhere", seconds=150) + back_inside("everywhere") + \
        [("everywhere-low", "SPECT 6", t, 25) for t in range(0, 120, 10)] + \
        [("everywhere-low", "SPECT 6", t, 33) for t in range(130, 160, 10)]

    async def spread() -> None:  # each reading to the next partition: they reach the alarms out of order
        producer = helpers.input_producer()
        await producer.start()
        try:
            for row, partition in zip(rows, itertools.cycle(range(PARTITIONS)), strict=False):
                _key, value = reading(*row)
                await producer.send(env["HUMIDITY_INPUT_TOPIC"], value=value, partition=partition)
            await producer.flush()
        finally:
            await producer.stop()

    helpers.run(spread())
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], lambda s: s["total_messages"] == len(rows), timeout=90)
    helpers.wait_until(lambda: events_of(env, "everywhere") == [("HIGH", "raised"), ("HIGH", "cleared")], 60,
                       what=f"one raise and one clear (have {events_of(env, 'everywhere')})")
    helpers.wait_until(lambda: events_of(env, "everywhere-low") == [("LOW", "raised"), ("LOW", "cleared")], 60,
                       what=f"one LOW raise and clear (have {events_of(env, 'everywhere-low')})")
