"""`make soak`: exactly once through rounds of workers joining, leaving and
being killed, against a throwaway real Kafka (not part of `make test`).

Each round is a fresh service instance (its own app id and topics):
200,000 readings are fed in chunks while two workers count them; meanwhile a
third worker joins and leaves (SIGTERM) twice, and the second worker is
killed with SIGKILL and restarted, on odd rounds with a fresh data directory
so that it restores its partitions from the changelogs. The round passes when
the final summary equals an independent reference (tests/reference.py) and
the group's committed offsets equal the end offsets of every partition of the
input, sightings and alarm-readings topics.

    python -m tests.soak --rounds 20        (what `SOAK_ROUNDS=20 make soak` runs)
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests import helpers
from tests.reference import dataset, expected_summary, matches

READINGS = 200_000


def feed(env: dict, records: list, chunks: int, pause: float, errors: list) -> None:
    try:
        size = -(-len(records) // chunks)
        for start in range(0, len(records), size):
            helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records[start:start + size]]))
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
        feeder.join(300)
        assert not feeder.is_alive() and not errors, f"feeding failed: {errors}"
        helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=300)
        app_id = env["HUMIDITY_APP_ID"]
        helpers.wait_for_no_lag(app_id, [env["HUMIDITY_INPUT_TOPIC"], f"{app_id}-sensor-sightings",
                                         f"{app_id}-alarm-readings"], timeout=90)
    finally:
        for worker in started:
            worker.stop(timeout=30)
    return (f"round {number}: ok in {time.monotonic() - began:.0f} s: {READINGS:,} readings exact "
            f"({expected['total_messages']:,} valid, {expected['invalid_messages']:,} invalid, "
            f"{expected['total_sensors']:,} sensors), committed offsets at the end; {', '.join(events)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    if helpers.kafka_port() is None:
        print("soak: needs the throwaway broker; run `make soak`", file=sys.stderr)
        return 2
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    rng = random.Random(seed)
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
