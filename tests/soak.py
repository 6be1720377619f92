"""`make soak`: exactly once through rounds of workers joining, leaving and
being killed, against a throwaway real Kafka (not part of `make test`).

Each round is a fresh service instance (its own app id and topics):
200,000 readings (tests/reference.py's dataset: moved loggers, unusual
device names) are fed in chunks, as upstream producers write them in turn
(plainly, compressed with each codec, or in a committed transaction after an
aborted one), while two workers count them; meanwhile a
third worker joins and leaves (SIGTERM) twice, and the second worker is
killed with SIGKILL and restarted, on odd rounds with a fresh data directory
so that it restores its partitions from the changelogs; then the leader is
paused (SIGSTOP) for longer than the session timeout and woken up. The round
passes when the final summary equals an independent reference
(tests/reference.py), the summaries on the results topic never go back in
``as_of`` or any count, and the group's committed offsets equal the end
offsets of every partition of the input, sightings and alarm-readings topics.

    python -m tests.soak --rounds 20        (what `SOAK_ROUNDS=20 make soak` runs)

On a cluster (`KAFKA_BROKERS=3 make soak`, SOAK_MINUTES long, 6 by default):
a continuous simulated stream at the seed's load (3,334 readings a second
from 2,000 dataloggers) while two workers count it, and every 30 s one of, in
turn: a third worker joins, a worker is killed with SIGKILL and restarted, the
third worker leaves (SIGTERM), the leader is paused (SIGSTOP) past the
session timeout, a broker is killed with SIGKILL and restarted. It passes
when the final summary equals the reference over what the feeder had
acknowledged, the summaries never go back, the committed offsets reach the end, and no worker's
/health reported a stalled partition; it prints the number of each event and
the longest time an input partition had readings waiting and no committed
progress (read from the broker once a second).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from humidity.core.simulation import Simulator
from tests import helpers
from tests.reference import Reference, dataset, expected_summary, matches
from tests.test_real_producers import CODECS, produce_as
from tests.test_transactions import in_transaction, never_committed, transactional_producer

READINGS = 200_000


async def as_upstream(topic: str, chunk: list, number: int, upstream: str) -> None:
    """A chunk as one of the producers upstream writes it, in turn: plainly;
    compressed (each codec in turn), keyed by guid; or in a transaction that
    commits, after one of readings that never count that aborts."""
    kind = number % 3
    if kind == 0:
        await helpers.produce(topic, [raw for raw, _ in chunk])
    elif kind == 1:
        await produce_as(topic, chunk, CODECS[number // 3 % len(CODECS)], keyed=True)
    else:
        producer = await transactional_producer(upstream)
        try:
            await in_transaction(producer, topic, never_committed(len(chunk) // 10 + 1, seed=number), commit=False)
            await in_transaction(producer, topic, [raw for raw, _ in chunk], commit=True)
        finally:
            await producer.stop()


def feed(env: dict, records: list, chunks: int, pause: float, errors: list) -> None:
    try:
        size = -(-len(records) // chunks)
        upstream = f"{env['HUMIDITY_APP_ID']}-upstream"
        for number, start in enumerate(range(0, len(records), size)):
            helpers.run(as_upstream(env["HUMIDITY_INPUT_TOPIC"], records[start:start + size], number, upstream))
            time.sleep(pause)
    except Exception as exc:  # noqa: BLE001 - reported by the round
        errors.append(exc)


def one_round(number: int, base: Path, rng: random.Random) -> str:
    workdir = base / f"round-{number}"
    workdir.mkdir()
    started: list[helpers.Worker] = []

    def start(env: dict, name: str) -> helpers.Worker:
        worker = helpers.Worker(env, workdir / f"{name}.log").start()
        started.append(worker)
        return worker

    env = helpers.service_env(workdir)
    records = dataset(READINGS, seed=1000 + number)
    expected = expected_summary(records)
    events = []
    began = time.monotonic()
    try:
        first, second = start(env, "w1"), start(helpers.another_worker(env, workdir, "data-w2"), "w2")
        for worker in (first, second):
            worker.wait_for_log(helpers.READY, timeout=120)
        errors: list = []
        feeder = threading.Thread(target=feed, args=(env, records, 20, 0.4, errors), daemon=True)
        feeder.start()
        time.sleep(rng.uniform(0.5, 2.0))
        for join in range(2):
            third = start(helpers.another_worker(env, workdir, f"data-w3-{join}"), f"w3-{join}")
            third.wait_for_log(helpers.READY, timeout=120)
            time.sleep(rng.uniform(0.0, 2.0))
            assert third.stop(timeout=60) == 0, "the third worker did not stop cleanly"
            events.append("join+leave")
            if join == 0:
                second.kill()
                fresh = number % 2 == 1
                directory = f"data-w2-fresh{number}" if fresh else "data-w2"
                second = start(helpers.another_worker(env, workdir, directory), "w2-again")
                second.wait_for_log(helpers.READY, timeout=120)
                events.append("kill -9 + restart" + (" (empty data dir)" if fresh else ""))
        pause(helpers.leader_among(first, second))
        events.append(f"leader paused {helpers.PAUSE:.0f} s")
        feeder.join(300)
        assert not feeder.is_alive() and not errors, f"feeding failed: {errors}"
        helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=300)
        helpers.assert_never_back(helpers.published_summaries(env["HUMIDITY_RESULTS_TOPIC"]))
        app_id = env["HUMIDITY_APP_ID"]
        helpers.wait_for_no_lag(app_id, [env["HUMIDITY_INPUT_TOPIC"], f"{app_id}-sensor-sightings",
                                         f"{app_id}-alarm-readings"], timeout=90)
    finally:
        for worker in started:
            worker.stop(timeout=30)
    return (f"round {number}: ok in {time.monotonic() - began:.0f} s: {READINGS:,} readings exact "
            f"({expected['total_messages']:,} valid, {expected['invalid_messages']:,} invalid, "
            f"{expected['total_sensors']:,} sensors), committed offsets at the end, summaries never back; "
            f"{', '.join(events)}")


def pause(worker: helpers.Worker) -> None:
    """SIGSTOP for longer than the session timeout, then SIGCONT."""
    worker.pause()
    try:
        time.sleep(helpers.PAUSE)  # the fault itself
    finally:
        worker.resume()


RATE = 3334  # readings a second, the seed's load
#: Seconds a running worker's /health may go unanswered (a start, the leader's pause) before it is reported.
SILENT_LIMIT = 45.0
EVENT_EVERY = 30.0


class Stream(threading.Thread):
    """The simulator's readings at RATE a second, sent with acks=all by an
    idempotent producer; the reference counts what the broker acknowledged."""

    def __init__(self, topic: str, seed: int) -> None:
        super().__init__(daemon=True)
        self.topic, self.seed = topic, seed
        self.reference = Reference()
        self.sent = 0
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._stream())
        except BaseException as exc:  # noqa: BLE001 - reported by the soak
            self.error = exc

    async def _stream(self) -> None:
        sim = Simulator(loggers=2000, devices=50, invalid_ratio=0.01, seed=self.seed, unusual_names=True)
        producer = AIOKafkaProducer(bootstrap_servers=helpers.bootstrap(), acks="all", enable_idempotence=True,
                                    linger_ms=5)
        await producer.start()
        try:
            began = time.monotonic()
            while not self.stop.is_set():
                due = int((time.monotonic() - began) * RATE) - self.sent
                records = [sim.next_record(time.time()) for _ in range(max(0, due))]
                deliveries = [await producer.send(self.topic, value=raw) for raw, _ in records]
                for delivery, (_raw, doc) in zip(deliveries, records, strict=True):
                    await delivery  # an error here fails the soak: the reference would not know the record
                    self.reference.add(doc)
                self.sent += len(records)
                await asyncio.sleep(0.05)
        finally:
            await producer.stop()


class Watcher(threading.Thread):
    """Once a second: each input partition's committed offset (from the
    broker), the longest time one had readings waiting and no progress, and
    any stall a worker's /health reports."""

    def __init__(self, app_id: str, topic: str, workers: list) -> None:
        super().__init__(daemon=True)
        self.app_id, self.topic, self.workers = app_id, topic, workers
        self.longest = (0.0, None)  # (seconds, partition)
        self.stalls: list[str] = []
        self.silent: list[str] = []  # running workers whose /health did not answer for SILENT_LIMIT s
        self.stop = threading.Event()

    def run(self) -> None:
        last: dict[int, tuple[int | None, float]] = {}
        unanswered: dict[str, float] = {}  # worker -> since when its /health has not answered
        while not self.stop.wait(1.0):
            now = time.monotonic()
            try:
                committed = helpers.run(helpers.committed_offsets(self.app_id, self.topic))
                ends = helpers.run(helpers.end_offsets(self.topic))
            except Exception:  # noqa: BLE001 - a broker restarting: look again in a second
                continue
            for p, end in ends.items():
                offset = committed.get(p)
                previous = last.get(p)
                if previous is None or offset != previous[0] or (offset or 0) >= end:
                    last[p] = (offset, now)
                elif now - previous[1] > self.longest[0]:
                    self.longest = (now - previous[1], p)
            for worker in list(self.workers):
                if not worker.running():
                    unanswered.pop(worker.log_path.stem, None)
                    continue
                name = worker.log_path.stem
                try:
                    _, _, body = helpers.http_get(helpers.web_url(worker.env, "/health"), timeout=2)
                    reasons = orjson.loads(body).get("reasons", [])
                except Exception:  # noqa: BLE001 - starting, stopping or paused: reported if it lasts
                    since = unanswered.setdefault(name, now)
                    if now - since > SILENT_LIMIT and name not in self.silent:
                        self.silent.append(name)
                    continue
                unanswered.pop(name, None)
                self.stalls += [f"{name}: {r}" for r in reasons if r.startswith("input partition")]


def cluster_soak(minutes: float, base: Path, rng: random.Random) -> str:
    cluster = helpers.Cluster(Path(os.environ["HUMIDITY_TEST_KAFKA_DATA_DIR"]),
                              int(os.environ["HUMIDITY_TEST_KAFKA_PORT"]))
    workdir = base / "cluster"
    workdir.mkdir()
    started: list[helpers.Worker] = []

    def start(env: dict, name: str) -> helpers.Worker:
        worker = helpers.Worker(env, workdir / f"{name}.log").start()
        started.append(worker)
        worker.wait_for_log(helpers.READY, timeout=180)
        return worker

    env = helpers.service_env(workdir, HUMIDITY_REPLICATION_FACTOR=str(cluster.BROKERS))
    app_id, topic = env["HUMIDITY_APP_ID"], env["HUMIDITY_INPUT_TOPIC"]
    counts = dict.fromkeys(("third worker joins", "worker kill -9 + restart", "third worker leaves",
                            "leader paused", "broker kill -9 + restart"), 0)
    stream = Stream(topic, rng.randrange(1_000_000))
    watcher = Watcher(app_id, topic, started)
    began = time.monotonic()
    try:
        start(env, "w1")
        second = start(helpers.another_worker(env, workdir, "data-w2"), "w2")
        stream.start()
        watcher.start()
        third = None
        for number in range(int(minutes * 60 // EVENT_EVERY)):
            time.sleep(max(0.0, began + (number + 1) * EVENT_EVERY - time.monotonic()))
            assert stream.error is None, f"the stream failed: {stream.error!r}"
            kind = list(counts)[number % len(counts)]
            if kind == "third worker joins":
                third = start(helpers.another_worker(env, workdir, f"data-w3-{number}"), f"w3-{number}")
            elif kind == "worker kill -9 + restart":
                second.kill()
                second = start(helpers.another_worker(env, workdir, "data-w2"), f"w2-again-{number}")
            elif kind == "third worker leaves":
                assert third is not None and third.stop(timeout=60) == 0, "the third worker did not stop cleanly"
            elif kind == "leader paused":
                pause(helpers.leader_among(*[w for w in started if w.running()]))
            else:
                victim = rng.randrange(cluster.BROKERS)
                cluster.kill(victim)
                time.sleep(10)
                cluster.up()
            counts[kind] += 1
            print(f"soak: {time.monotonic() - began:5.0f} s  {kind}", flush=True)
        stream.stop.set()
        stream.join(60)
        assert stream.error is None, f"the stream failed: {stream.error!r}"
        expected = stream.reference.summary()
        helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=300)
        helpers.assert_never_back(helpers.published_summaries(env["HUMIDITY_RESULTS_TOPIC"]))
        helpers.wait_for_no_lag(app_id, [topic, f"{app_id}-sensor-sightings", f"{app_id}-alarm-readings"],
                                timeout=120)
    finally:
        watcher.stop.set()
        stream.stop.set()
        for worker in started:
            worker.stop(timeout=30)
    assert not watcher.stalls, "stalls reported: " + "; ".join(sorted(set(watcher.stalls)))
    assert not watcher.silent, "/health did not answer: " + ", ".join(watcher.silent)
    elapsed = (time.monotonic() - began) / 60
    seconds, partition = watcher.longest
    return "\n".join([
        f"soak (cluster of {cluster.BROKERS} brokers): ok in {elapsed:.1f} min: {stream.sent:,} readings at "
        f"{RATE:,}/s exact ({expected['total_messages']:,} valid, {expected['invalid_messages']:,} invalid, "
        f"{expected['total_sensors']:,} sensors), committed offsets at the end, summaries never back",
        "events: " + ", ".join(f"{n} x {kind}" for kind, n in counts.items()),
        f"longest time an input partition had readings waiting and no committed progress: {seconds:.1f} s"
        + (f" (partition {partition})" if partition is not None else ""),
        "stalls reported by /health: none; every worker's /health answered"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--minutes", type=float, default=6.0, help="how long the cluster soak streams")
    args = parser.parse_args()
    if helpers.kafka_port() is None:
        print("soak: needs the throwaway broker; run `make soak`", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    rng = random.Random(seed)
    if int(os.environ.get("HUMIDITY_TEST_KAFKA_BROKERS", "1")) > 1:
        # The soak's own clients retry while a broker is down; the workers' logs say what matters.
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
        print(f"soak: {args.minutes:g} min on a cluster, seed {seed}", flush=True)
        with tempfile.TemporaryDirectory(prefix="humidity-soak-") as base:
            try:
                print(cluster_soak(args.minutes, Path(base), rng), flush=True)
            except AssertionError as exc:
                print(f"soak: FAILED: {exc}\nlogs kept in {base}-failed", flush=True)
                shutil.copytree(base, f"{base}-failed")
                return 1
        return 0
    print(f"soak: {args.rounds} rounds, seed {seed}", flush=True)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="humidity-soak-") as base:
        for number in range(1, args.rounds + 1):
            try:
                print(one_round(number, Path(base), rng), flush=True)
            except AssertionError as exc:
                print(f"round {number}: FAILED: {exc}\nlogs kept in {base}-failed", flush=True)
                shutil.copytree(base, f"{base}-failed")
                return 1
    print(f"soak: {args.rounds} of {args.rounds} rounds clean in {(time.monotonic() - began) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
