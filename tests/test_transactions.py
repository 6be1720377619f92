"""Input written in Kafka transactions, as a gateway, Kafka Connect or another
stream job upstream writes it: only committed readings count, against real
Kafka and the reference."""

import asyncio
import itertools

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests import helpers
from tests.reference import assert_matches, dataset, expected_summary, matches

pytestmark = pytest.mark.kafka

PARTITIONS = 4
READY = helpers.READY
#: What aborted and open transactions carry: a room and loggers nothing else names.
NEVER = "ROOM NEVER COMMITTED"


def never_committed(count: int, seed: int) -> list[bytes]:
    """Valid readings of loggers and a device that no committed reading names, at 90 % RH."""
    raws = []
    for _raw, doc in dataset(count, invalid_ratio=0, seed=seed):
        doc.pop("medicalimagingdevice", None)
        doc["guid"], doc["medicalImagingdevice"] = f"ABORTED-{doc['guid']}", NEVER
        doc["payload"]["data"]["humidity"] = 90.0
        raws.append(orjson.dumps(doc))
    return raws


async def transactional_producer(transactional_id: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=helpers.bootstrap(), transactional_id=transactional_id,
                                enable_idempotence=True)
    await producer.start()
    return producer


async def in_transaction(producer: AIOKafkaProducer, topic: str, values: list[bytes], commit: bool) -> None:
    """``values`` spread over every partition, in one transaction committed or aborted."""
    await producer.begin_transaction()
    for value, partition in zip(values, itertools.cycle(range(PARTITIONS)), strict=False):
        await producer.send(topic, value=value, partition=partition)
    if commit:
        await producer.commit_transaction()
    else:
        await producer.abort_transaction()


async def interleaved(topic: str, committed: list, aborted: list[bytes], chunks: int, transactional_id: str) -> None:
    """Per chunk: plain messages (no transaction) from another producer, an
    aborted transaction and a committed one, each over every partition."""
    producer = await transactional_producer(transactional_id)
    try:
        size, bad = -(-len(committed) // (2 * chunks)), -(-len(aborted) // chunks)
        for chunk in range(chunks):
            plain = committed[2 * chunk * size:(2 * chunk + 1) * size]
            await helpers.produce(topic, [raw for raw, _ in plain])
            await in_transaction(producer, topic, aborted[chunk * bad:(chunk + 1) * bad], commit=False)
            mine = committed[(2 * chunk + 1) * size:(2 * chunk + 2) * size]
            await in_transaction(producer, topic, [raw for raw, _ in mine], commit=True)
    finally:
        await producer.stop()


async def aborted_only(topic: str, values: list[bytes], transactional_id: str) -> None:
    producer = await transactional_producer(transactional_id)
    try:
        await in_transaction(producer, topic, values, commit=False)
    finally:
        await producer.stop()


def assert_nothing_aborted(summary: dict) -> None:
    assert NEVER not in {row["device"] for row in summary["average_humidity_by_device"]}


def test_aborted_transactions_interleaved_with_committed_ones_count_nothing(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    topic = env["HUMIDITY_INPUT_TOPIC"]
    worker = workers(env)
    worker.wait_for_log(READY, timeout=120)
    committed = dataset(6_000, seed=48)
    helpers.run(interleaved(topic, committed, never_committed(3_000, seed=49), chunks=6,
                            transactional_id=f"{env['HUMIDITY_APP_ID']}-upstream"))
    expected = expected_summary(committed)
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=120)
    assert_matches(summary, expected)
    assert_nothing_aborted(summary)
    # Once all is counted, an aborted transaction alone: the worker's next
    # fetches hold nothing but offsets to pass over, and the commits still
    # reach the end of every partition.
    helpers.run(aborted_only(topic, never_committed(40, seed=54), f"{env['HUMIDITY_APP_ID']}-upstream"))
    helpers.wait_for_no_lag(env["HUMIDITY_APP_ID"], [topic], timeout=60)
    assert_matches(helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=30), expected)


def test_an_open_transaction_counts_nothing_until_it_commits_while_summaries_keep_coming(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    topic, results = env["HUMIDITY_INPUT_TOPIC"], env["HUMIDITY_RESULTS_TOPIC"]
    worker = workers(env)
    worker.wait_for_log(READY, timeout=120)
    before = dataset(2_000, seed=50)
    pending = [orjson.loads(raw) for raw in never_committed(400, seed=51)]
    for doc in pending:
        doc["medicalImagingdevice"] = "ROOM COMMITTED LATE"
    pending = [(orjson.dumps(doc), doc) for doc in pending]
    helpers.run(helpers.produce(topic, [raw for raw, _ in before]))
    helpers.wait_for_summary(results, matches(expected_summary(before)), timeout=120)

    async def open_then_commit() -> dict:
        producer = await transactional_producer(f"{env['HUMIDITY_APP_ID']}-upstream")
        try:
            await producer.begin_transaction()
            for (raw, _), partition in zip(pending, itertools.cycle(range(PARTITIONS)), strict=False):
                await producer.send(topic, value=raw, partition=partition)
            await producer.flush()
            opened = len(helpers.published_summaries(results))
            await asyncio.to_thread(helpers.wait_until, lambda: len(helpers.published_summaries(results)) >= opened + 3,
                                    60, what="three summaries while the transaction is open")
            meanwhile = helpers.published_summaries(results)[opened:]
            await producer.commit_transaction()
            return meanwhile
        finally:
            await producer.stop()

    meanwhile = helpers.run(open_then_commit())
    for summary in meanwhile:  # the summaries kept coming, none counting the open transaction
        assert_matches(summary, expected_summary(before))
    everything = before + pending
    summary = helpers.wait_for_summary(results, matches(expected_summary(everything)), timeout=120)
    assert_matches(summary, expected_summary(everything))


def test_kill_9_while_the_input_holds_aborted_transactions_is_exact(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    topic = env["HUMIDITY_INPUT_TOPIC"]
    worker = workers(env, "first")
    worker.wait_for_log(READY, timeout=120)
    committed, aborted = dataset(8_000, seed=52), never_committed(4_000, seed=53)
    upstream = f"{env['HUMIDITY_APP_ID']}-upstream"
    helpers.run(interleaved(topic, committed[:4_000], aborted[:2_000], chunks=4, transactional_id=upstream))
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], lambda s: s["total_messages"] > 0, timeout=120)
    worker.kill()
    helpers.run(interleaved(topic, committed[4_000:], aborted[2_000:], chunks=4, transactional_id=upstream))
    again = workers(env, "again")
    again.wait_for_log(READY, timeout=120)
    expected = expected_summary(committed)
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=120)
    assert_matches(summary, expected)
    assert_nothing_aborted(summary)
    helpers.wait_for_no_lag(env["HUMIDITY_APP_ID"], [topic], timeout=60)
