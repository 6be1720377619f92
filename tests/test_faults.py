"""Nothing lost, nothing counted twice: kill -9, broker restarts, workers
leaving and joining, hostile input at volume, an unreachable broker.

Each test compares the final published summary with a reference computed
independently from the generated input (tests/reference.py)."""

import base64
import os
import random
import subprocess
import time
from collections import Counter
from datetime import datetime

import orjson
import pytest

from tests import helpers
from tests.reference import assert_matches, dataset, expected_summary, matches

pytestmark = pytest.mark.kafka

READY = helpers.READY
#: A worker's log line at start when the worker before it on its data directory did not stop cleanly.
DISCARDED = "discarded: the last worker on this directory did not stop cleanly"


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def test_kill_9_three_times_during_a_100k_stream_is_exact(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    records = dataset(100_000, seed=31)
    expected = expected_summary(records)
    rng = random.Random(int(os.environ.get("HUMIDITY_TEST_SEED", "5")))
    worker = workers(env, "victim")
    worker.wait_for_log(READY, timeout=120)
    feeder = helpers.Feeder(env["HUMIDITY_INPUT_TOPIC"], {None: records}, chunks=20, pause=0.5)
    feeder.start()
    for round_ in range(3):
        time.sleep(rng.uniform(1.0, 4.0))
        worker.kill()  # SIGKILL: no shutdown, no final commit
        worker = workers(env, f"restart{round_}")
        worker.wait_for_log(READY, timeout=120)
        # what the killed worker left in RocksDB may not be in the changelogs
        assert DISCARDED in worker.log()
    feeder.finish()
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=300)
    assert_matches(summary, expected)


def test_broker_restart_mid_stream_the_worker_reconnects_and_is_exact(kafka, tmp_path, workers, monkeypatch):
    with helpers.OwnBroker(tmp_path / "own-kafka") as broker:
        broker.used_by(monkeypatch)
        broker_restart_mid_stream(helpers.service_env(tmp_path), broker, workers)


def broker_restart_mid_stream(env, broker, workers):
    records = dataset(40_000, seed=41)
    expected = expected_summary(records)
    worker = workers(env)
    worker.wait_for_log(READY, timeout=120)
    half = len(records) // 2
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records[:half]]))
    time.sleep(1.0)  # mid-stream: the worker is busy with the first half
    broker.script("down")
    time.sleep(3.0)
    broker.script("up")
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records[half:]]))
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=240)
    assert_matches(summary, expected)
    assert worker.running(), "the worker must survive the broker restart"
    noisy = [line for line in worker.log().splitlines() if "[ERROR]" in line or "[WARNING]" in line]
    assert len(noisy) < 60, "an outage should read as a few lines per retry period:\n" + "\n".join(noisy[:80])
    assert "Traceback" not in worker.log()
    worker.stop()  # while its broker runs


def test_a_worker_killed_and_restarted_among_two_is_exact(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    records = dataset(60_000, seed=43)
    expected = expected_summary(records)
    first, second, env2 = helpers.two_ready_workers(workers, env, tmp_path, ("steady", "leaver"))
    feeder = helpers.Feeder(env["HUMIDITY_INPUT_TOPIC"], {None: records}, chunks=12, pause=1.0)
    feeder.start()
    time.sleep(3.0)
    second.kill()
    time.sleep(4.0)
    again = workers(env2, "rejoined")
    again.wait_for_log(READY, timeout=120)
    feeder.finish()
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=300)
    assert_matches(summary, expected)
    assert first.running() and again.running()


def hostile_messages(count: int, seed: int = 9) -> list[bytes]:
    """Malformed messages of every kind the field produces, and some worse."""
    rng = random.Random(seed)
    good = {"guid": "0-ZZZ1-001A", "medicalImagingdevice": "MRI 1", "eventTime": "2024-01-01T00:00:00Z",
            "payload": {"format": "urn:example:sensor:humidity", "data": {"humidity": 50.0}}}

    def with_humidity(text: str) -> bytes:
        return orjson.dumps(good).replace(b"50.0", text.encode())

    def without(path):
        doc = orjson.loads(orjson.dumps(good))
        target = doc
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]
        return orjson.dumps(doc)

    makers = [
        lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))),
        lambda: b'{"guid": "' + b"\xc3\x28" * 5 + b'"}',
        lambda: b"[" * 10_000 + b"]" * 10_000,
        lambda: b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        lambda: with_humidity("1e400"), lambda: with_humidity("-1e400"), lambda: with_humidity("1e-400x"),
        lambda: with_humidity("123456789012345678901234567890"), lambda: with_humidity("NaN"),
        lambda: with_humidity("-0.5"), lambda: with_humidity("100.0001"), lambda: with_humidity('"55"'),
        lambda: with_humidity("true"), lambda: with_humidity("null"), lambda: with_humidity("[50]"),
        lambda: without(("guid",)), lambda: without(("payload", "data")), lambda: without(("eventTime",)),
        lambda: orjson.dumps({**good, "guid": 7}), lambda: orjson.dumps({**good, "eventTime": "soon"}),
        lambda: orjson.dumps([good]), lambda: b"", lambda: b"null", lambda: b'"x"', lambda: b"{",
    ]
    out = [makers[i % len(makers)]() for i in range(count - 5)]
    out += [b'{"guid": "' + b"A" * 1_000_000 + b'"}' for _ in range(3)]  # ~1 MB values
    out += [b"\xff" * 900_000, orjson.dumps({**good, "medicalImagingdevice": "x" * 900_000})]
    return out


def test_hostile_input_at_volume(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    valid = [r for r in dataset(60_000, invalid_ratio=0.0, seed=47)][:50_000]
    bad = hostile_messages(10_000)
    rng = random.Random(3)
    mixed = [(raw, doc) for raw, doc in valid] + [(raw, None) for raw in bad]
    rng.shuffle(mixed)
    expected = expected_summary(mixed)
    assert expected["invalid_messages"] == 10_000
    worker = workers(env)
    worker.wait_for_log(READY, timeout=120)
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in mixed]))
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=300)
    assert_matches(summary, expected)

    letters = [orjson.loads(r.value) for r in helpers.run(helpers.read_topic(env["HUMIDITY_INVALID_TOPIC"], 60))]
    assert len(letters) == 10_000
    assert all(letter["reason"] for letter in letters)
    sent, kept = Counter(bad), Counter()
    for letter in letters:  # each malformed message once, its bytes as sent (a huge one cut short)
        original = base64.b64decode(letter["original_base64"])
        if letter.get("original_truncated"):
            match = next((raw for raw in sent if len(raw) == letter["original_size"] and len(original) < len(raw)
                          and raw.startswith(original)), None)
        else:
            match = original if original in sent else None
        assert match is not None, (letter["reason"], original[:80])
        kept[match] += 1
    assert kept == sent
    assert peak_rss_mb(worker.proc.pid) < 700, "the worker's memory must stay bounded"
    assert worker.running()


def test_unreachable_broker_one_line_per_retry_then_carries_on(kafka, tmp_path, workers):
    # stays free while the worker retries: no other test process picks from
    # this one's ports, and no outgoing connection takes one (helpers.free_port)
    port = helpers.free_port_pair()
    env = helpers.service_env(tmp_path, HUMIDITY_BROKER=f"kafka://127.0.0.1:{port}")
    worker = workers(env, "patient")

    def retries():
        return [line for line in worker.log().splitlines() if "not reachable" in line]

    helpers.wait_until(lambda: len(retries()) >= 3, 60, what="three retries")
    stamps = [datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f") for line in retries()]
    gaps = [(later - earlier).total_seconds() for earlier, later in zip(stamps, stamps[1:], strict=False)]
    assert all(gap >= 4.0 for gap in gaps), ("one line per retry, every 5 s", retries())
    log = worker.log()
    assert "Traceback" not in log
    assert worker.running()

    broker_env = dict(os.environ, KAFKA_PORT=str(port), KAFKA_DATA_DIR=str(tmp_path / "late-kafka"))
    try:
        helpers.kafka_script(broker_env, "up")
        worker.wait_for_log(READY, timeout=120)
        records = dataset(2_000, seed=5)
        helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records],
                                    bootstrap_servers=f"127.0.0.1:{port}"))
        helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected_summary(records)), timeout=120,
                                 bootstrap_servers=f"127.0.0.1:{port}")
    finally:
        worker.stop(timeout=30)
        subprocess.run([str(helpers.ROOT / "scripts" / "kafka.sh"), "down"], env=broker_env, timeout=120)
