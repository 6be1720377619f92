"""Exactly once through rebalances (issue 12): each mechanism on its own,
against real Kafka, with a fault injected where Faust's bookkeeping would
have lost or mis-committed readings (tests/faulty_app.py)."""

import re
import threading
import time

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests import helpers
from tests.reference import assert_matches, dataset, expected_summary, matches

pytestmark = pytest.mark.kafka

READY = helpers.READY


def internal_topics(env):
    app_id = env["HUMIDITY_APP_ID"]
    return [env["HUMIDITY_INPUT_TOPIC"], f"{app_id}-sensor-sightings", f"{app_id}-alarm-readings"]


def produce_in_chunks(env, records, chunks, partition=None, pause=0.3):
    size = -(-len(records) // chunks)
    for start in range(0, len(records), size):
        helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records[start:start + size]],
                                    partition=partition))
        time.sleep(pause)


def faulty(env, fault):
    return dict(env, HUMIDITY_TEST_FAULT=fault)


def test_a_batch_lost_after_it_was_fetched_is_read_again_not_skipped(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    middle, last = dataset(9_000, seed=61), dataset(3_000, seed=67)
    # partition 1 loses a batch in the middle of its stream, partition 2 its last one
    worker = workers(faulty(env, "drop-batch:1:4500,2:2999"), "dropping", app="tests.faulty_app")
    worker.wait_for_log(READY, timeout=120)
    produce_in_chunks(env, middle, chunks=6, partition=1)
    produce_in_chunks(env, last, chunks=2, partition=2)
    expected = expected_summary(middle + last)
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=120)
    assert_matches(summary, expected)
    log = worker.log()
    dropped = dict(re.findall(r"FAULT: dropped batch (\d+)-\d+ of partition (\d)", log))
    dropped = {int(p): int(start) for start, p in dropped.items()}
    assert set(dropped) == {1, 2}
    assert f"[1]: a batch did not follow the state; reading again from offset {dropped[1]}" in log
    assert f"[2]: the state stayed behind what was fetched for 10 s; reading again from offset {dropped[2]}" in log
    helpers.wait_for_no_lag(env["HUMIDITY_APP_ID"], internal_topics(env), timeout=30)


def latest_totals_offsets(env) -> dict[int, int]:
    """partition -> the offset in the newest ingest totals header the broker holds."""
    topic = f"{env['HUMIDITY_APP_ID']}-ingest-totals-changelog"

    async def read():
        consumer = AIOKafkaConsumer(bootstrap_servers=helpers.bootstrap(), group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(4)]
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            found = {}
            for tp in tps:
                if ends[tp] == 0:
                    found[tp.partition] = -1
                    continue
                # the newest header (device entries, keys "<p>/<device>", come before it)
                consumer.seek(tp, max(0, ends[tp] - 500))
                records = []
                while not records or records[-1].offset < ends[tp] - 1:
                    batch = (await consumer.getmany(tp, timeout_ms=5000)).get(tp, [])
                    if not batch:
                        break
                    records += batch
                headers = [r for r in records if b"/" not in r.key]
                found[tp.partition] = orjson.loads(headers[-1].value)["offset"] if headers else None
            return found
        finally:
            await consumer.stop()

    return helpers.run(read())


def counted_offsets(env) -> dict[int, int]:
    """partition -> the input offset through which the worker has counted it,
    as its newest ingest partial says (sent at each round's end)."""
    newest: dict[int, int] = {}
    for record in helpers.run(helpers.read_topic(f"{env['HUMIDITY_APP_ID']}-partials")):
        kind, _, partition = record.key.decode().partition("/")
        if kind == "ingest" and record.value:
            newest[int(partition)] = max(newest.get(int(partition), -1), orjson.loads(record.value)["offset"])
    return newest


def test_a_commit_never_passes_a_changelog_write_the_broker_has_not_acknowledged(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    group, topic = env["HUMIDITY_APP_ID"], env["HUMIDITY_INPUT_TOPIC"]
    records = dataset(40_000, seed=62)
    worker = workers(faulty(env, "slow-changelog:4"), "slow", app="tests.faulty_app")
    worker.wait_for_log(READY, timeout=120)
    feeder = threading.Thread(target=produce_in_chunks, args=(env, records, 16), kwargs={"pause": 0.5}, daemon=True)
    feeder.start()
    samples = held_back = 0
    deadline = time.monotonic() + 60  # a loaded machine takes fewer samples a second
    while time.monotonic() < deadline and (samples < 20 or not held_back):
        committed = helpers.run(helpers.committed_offsets(group, topic))  # read first: the changelog only grows
        durable = latest_totals_offsets(env)
        counted = counted_offsets(env)  # shared as rounds close, without waiting for the changelog
        for p, offset in committed.items():
            if offset is not None and durable[p] is not None:
                samples += 1
                assert offset <= durable[p] + 1, (
                    f"partition {p}: committed {offset} while the broker holds totals only up to {durable[p]}")
                held_back += counted.get(p, -1) > durable[p]  # counted past what is durable: the commit waits
        time.sleep(0.3)
    feeder.join(60)
    assert samples >= 20, "commits must have happened meanwhile"
    assert held_back > 0, "no commit was seen waiting for the slow changelog"
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected_summary(records)), timeout=120)
    assert_matches(summary, expected_summary(records))
    helpers.wait_for_no_lag(group, internal_topics(env), timeout=60)


def test_committed_offsets_reach_the_end_after_workers_join_and_leave_mid_batch(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    records = dataset(150_000, seed=63)
    first = workers(faulty(env, "forget-read-offsets"), "first", app="tests.faulty_app")
    first.wait_for_log(READY, timeout=120)
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records]))
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], lambda s: s["total_messages"] > 5_000, timeout=120)
    for round_ in range(2):  # a join and a leave while batches are in flight, twice
        joiner = workers(helpers.another_worker(env, tmp_path, f"joiner{round_}"), f"joiner{round_}")
        joiner.wait_for_log(READY, timeout=120)
        assert joiner.stop(timeout=60) == 0
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected_summary(records)), timeout=240)
    assert_matches(summary, expected_summary(records))
    helpers.wait_for_no_lag(env["HUMIDITY_APP_ID"], internal_topics(env), timeout=60)
    assert first.running()


def test_kill_9_while_changelogs_are_in_flight_then_an_empty_data_directory_is_exact(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    records = dataset(60_000, seed=64)
    slow = workers(faulty(env, "slow-changelog:3"), "slow", app="tests.faulty_app")
    slow.wait_for_log(READY, timeout=120)
    feeder = threading.Thread(target=produce_in_chunks, args=(env, records, 12), kwargs={"pause": 0.5}, daemon=True)
    feeder.start()
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], lambda s: s["total_messages"] > 10_000, timeout=120)
    time.sleep(2.0)  # a commit or two has happened; totals written since are still held back
    slow.kill()
    feeder.join(120)
    fresh = workers(helpers.another_worker(env, tmp_path, "empty"), "fresh")  # restores from the changelogs alone
    fresh.wait_for_log(READY, timeout=120)
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected_summary(records)), timeout=240)
    assert_matches(summary, expected_summary(records))
    helpers.wait_for_no_lag(env["HUMIDITY_APP_ID"], internal_topics(env), timeout=60)


async def commit_to_the_end(group: str, topic: str) -> None:
    """What an older version could leave behind: offsets committed past the state."""
    consumer = AIOKafkaConsumer(bootstrap_servers=helpers.bootstrap(), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(4)]
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.commit({tp: ends[tp] for tp in tps})
    finally:
        await consumer.stop()


def test_a_partition_resumes_from_its_state_when_the_commit_is_past_it(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    records = dataset(20_000, seed=65)
    half = len(records) // 2
    worker = workers(env, "before")
    worker.wait_for_log(READY, timeout=120)
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records[:half]]))
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected_summary(records[:half])), timeout=120)
    assert worker.stop(timeout=60) == 0
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records[half:]]))
    helpers.run(commit_to_the_end(env["HUMIDITY_APP_ID"], env["HUMIDITY_INPUT_TOPIC"]))
    again = workers(env, "after")
    again.wait_for_log(READY, timeout=120)
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected_summary(records)), timeout=120)
    assert_matches(summary, expected_summary(records))
    assert "is past what the state includes; reading again" in again.log()


def changelog_records(env, table: str, key: bytes) -> list:
    topic = f"{env['HUMIDITY_APP_ID']}-{table}-changelog"
    return [r for r in helpers.run(helpers.read_topic(topic)) if r.key == key]


def test_a_late_write_of_a_former_owner_does_not_win_a_restore(kafka, tmp_path, workers):
    """A worker paused past the session timeout writes its stale view after the
    new owner's; a worker restoring from the changelog must keep the newer one."""
    env = helpers.service_env(tmp_path)
    guid = "0-ZOMBIE-001"

    def readings(device, partition, count=5):
        docs = [orjson.loads(raw) for raw, doc in dataset(count, invalid_ratio=0, seed=66)]
        for doc in docs:
            doc["guid"], doc["medicalImagingdevice"] = guid, device
        raws = [orjson.dumps(doc) for doc in docs]
        helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], raws, partition=partition))
        return list(zip(raws, docs, strict=True))

    old_owner = workers(env, "old-owner")
    old_owner.wait_for_log(READY, timeout=120)
    sent = readings("MRI 1", partition=0)
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected_summary(sent)), timeout=90)
    (stale,) = changelog_records(env, "sensors", guid.encode())  # the old owner's view: MRI 1 only
    assert old_owner.stop(timeout=60) == 0

    new_owner = workers(helpers.another_worker(env, tmp_path, "new-owner"), "new-owner")
    new_owner.wait_for_log(READY, timeout=120)
    sent += readings("CT 1", partition=0)
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected_summary(sent)), timeout=90)
    newer = changelog_records(env, "sensors", guid.encode())[-1]
    assert orjson.loads(newer.value)["epoch"] > orjson.loads(stale.value)["epoch"]
    assert new_owner.stop(timeout=60) == 0
    # the former owner wakes up and its write lands last
    helpers.run(helpers.produce_to_partition(stale.topic, stale.partition, stale.key, stale.value))

    restored = workers(helpers.another_worker(env, tmp_path, "restored"), "restored")
    restored.wait_for_log(READY, timeout=120)
    sent += readings("CT 1", partition=2)  # a first sighting of (guid, CT 1) in another input partition
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected_summary(sent)), timeout=90)
    assert_matches(summary, expected_summary(sent))
    assert "older than the value they would replace were left out" in restored.log()
