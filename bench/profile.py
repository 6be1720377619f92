"""Where a worker's time goes: py-spy on one worker draining N readings.

    make profile            (or: .venv/bin/python bench/profile.py --messages 200000 --seconds 14)

Prints the inclusive share of CPU samples for the frames that matter
(Faust's fetch loop and stream plumbing, the agents, the monitor) and writes
the raw folded stacks to bench/results/profile.txt. The worker runs the core
as `make compile` built it, unless HUMIDITY_CORE=interpreted. py-spy comes from
bench/requirements.txt (bench/.venv-quix/bin/py-spy).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench

FRAMES = [
    ("_drain_messages@consumer.py", "Faust consumer: fetch loop (one message per record batch)"),
    ("on_message@conductor.py", "Faust conductor: delivery to the streams"),
    ("_bootstrap_inner@threading.py", "aiokafka consumer thread (fetching, record parsing)"),
    ("_fetch_records@batching.py", "  of which handing out record batches"),
    ("_c_aiter@streams.py", "Faust stream iteration"),
    ("ingest_partition@ingest.py", "agent ingest: tables, forwards"),
    ("ingest@aggregate.py", "  of which parsing + counting (pure)"),
    ("parse_reading@readings.py", "    of which parsing and validating (pure)"),
    ("forward_for_alarms@ingest.py", "  of which bundling readings for alarms"),
    ("alarm_partition@alarms.py", "agent evaluate_alarms"),
    ("apply_readings@alarms.py", "  of which the alarm rules (pure)"),
    ("count_partition@sensors.py", "agent count_sensors"),
    ("forward_for_history@ingest.py", "agent ingest: bundling readings for the history"),
    ("history_partition@history.py", "agent history"),
    ("apply_bundles@history.py", "  of which the windows (pure)"),
    ("sweep@history.py", "  of which removing expired windows"),
    ("__setitem__@collections.py", "table writes (RocksDB + changelog), all agents"),
    ("on_stream_event_in@prometheus.py", "Faust Prometheus monitor, stream events"),
    ("on_message_in@prometheus.py", "Faust Prometheus monitor, messages"),
    ("_handle_pending@producer.py", "Faust producer buffer (changelogs, bundles, forwards)"),
    ("_sender_routine@sender.py", "aiokafka producer: sending"),
    ("_send_produce_req@sender.py", "aiokafka producer: produce requests"),
]


def summarise(folded: Path) -> list[tuple[str, str, float]]:
    inclusive: Counter = Counter()
    total = 0
    for line in folded.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, count = line.rpartition(" ")
        n = int(count)
        total += n
        seen = set()
        for frame in stack.split(";"):
            name, _, where = frame.partition(" (")
            key = f"{name}@{where.split(':')[0].split('/')[-1]}"
            if key not in seen:
                inclusive[key] += n
                seen.add(key)
    return [(key, label, 100.0 * inclusive[key] / max(total, 1)) for key, label in FRAMES]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default=f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--seconds", type=int, default=14)
    parser.add_argument("--devices", type=int, default=50, help="as (c10k) with 10000")
    parser.add_argument("--output", default=str(bench.ROOT / "bench" / "results" / "profile.txt"))
    args = parser.parse_args()
    py_spy = bench.ROOT / "bench" / ".venv-quix" / "bin" / "py-spy"
    work = Path(tempfile.mkdtemp(prefix="humidity-profile-"))
    topic = f"profile-{uuid.uuid4().hex[:6]}"
    await bench.create_topic(args.bootstrap, topic)
    await bench.produce(args.bootstrap, topic, bench.preloaded(args.messages, args.devices))
    app_id = f"profile-{uuid.uuid4().hex[:6]}"
    env = bench.app_env(args.bootstrap, work, app_id, topic, bench.BENCH_INTERVAL, "p")
    env.update({k: v for k, v in os.environ.items() if k.startswith("HUMIDITY_FAUST")})
    worker = bench.Proc([str(bench.BIN / "faust"), "-A", "app", "worker", "-l", "info"], env, work / "worker.log")
    try:
        start = worker.wait_log(r"\[\^Worker\]: Ready", 180)
        spy = subprocess.Popen([str(py_spy), "record", "-p", str(worker.proc.pid), "-o", args.output, "-f", "raw",
                                "-d", str(args.seconds), "-r", "200"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        async with bench.SummaryWatcher(args.bootstrap, f"{app_id}-summaries") as watcher:
            summary = await watcher.wait_for(lambda s: s["total_messages"] >= args.messages, 900)
        spy.wait(60)
    finally:
        worker.stop()
    rate = args.messages / (bench.stamp(summary) - start)
    print(f"one worker drained {args.messages:,} readings at {rate:,.0f} msg/s")
    if bench.core.COMPILED:  # py-spy sees no frame inside an extension module
        print("the core is compiled: its functions count in their callers' shares "
              "(HUMIDITY_CORE=interpreted make profile shows them)")
    print("share of the worker's CPU samples (inclusive):")
    for _key, label, share in summarise(Path(args.output)):
        print(f"  {share:5.1f} %  {label}")
    print(f"folded stacks: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
