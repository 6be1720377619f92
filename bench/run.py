"""`make bench`: throughput, latency and memory of the service, side by side.

Against the local real Kafka, in one run:
  (a) plain aiokafka + orjson, the same four aggregates in dicts: the Python limit
  (b) a bare Faust agent that only iterates the topic: Faust's ceiling
  (c) the full app, one worker, until its published summary shows all N
  (d) the full app, two workers
  (e) Quix Streams with its own RocksDB state (bench/.venv-quix)
  (c10k) (c) with 10,000 devices, on the compiled and on the interpreted core,
       and (e) and (k) on the same readings;
  (c1m) (c) on one long drain (--big, 1,000,000),
       with its CPU cores and the longest pause in counting (the worker's counter,
       sampled every 0.1 s) and of the published summary
  (k) Kafka Streams with RocksDB state and changelogs (bench/kstreams, Java 17,
       built by Maven), cold on N readings and warm on --big, with its CPU cores
  (c0) with --baseline REF: (c) for the app as committed at git REF, to show
       a change's cost before/after in the same run
then the summary latency under a steady 3,334 msg/s, the worker's peak RSS
after 100,000 distinct sensors, and after 1,000,000 (--restore-sensors), with
how long a worker with an empty data directory takes to publish the
reference summary again. Prints a table with ratios and writes
bench/results/latest.json. The machine is shared and noisy: each throughput
figure is the median of --repeat runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from humidity import core
from humidity.core.settings import Settings
from humidity.core.simulation import Simulator
from tests.helpers import alarms_file
from tests.reference import expected_summary, matches

BIN = Path(sys.executable).parent
QUIX_PYTHON = ROOT / "bench" / ".venv-quix" / "bin" / "python"
PARTITIONS = 4
BENCH_INTERVAL = 0.25  # seconds between summaries while measuring throughput
FLEET = 10_000  # devices of the fleet-scale workload (c10k), two loggers each


def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


# --- Kafka helpers -----------------------------------------------------------

async def create_topic(bootstrap: str, name: str, partitions: int = PARTITIONS) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


def messages(n: int, loggers: int = 2000, devices: int = 50, seed: int = 1) -> list[bytes]:
    sim = Simulator(loggers=loggers, devices=devices, seed=seed)
    now = time.time()
    return [sim.next_message(now) for _ in range(n)]


_preloaded: dict[tuple[int, int], list[bytes]] = {}


def preloaded(n: int, devices: int = 50) -> list[bytes]:
    """The same N readings for every contender (2,000 loggers on 50 devices,
    or two loggers per device for more devices)."""
    if (n, devices) not in _preloaded:
        _preloaded[(n, devices)] = messages(n) if devices == 50 else messages(n, 2 * devices, devices)
    return _preloaded[(n, devices)]


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    """Write ``values`` round-robin over the partitions, in whole record
    batches (about a million a second), so that preloading costs the
    contenders next to no CPU when it overlaps their start."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=1024 * 1024, compression_type=None)
    await producer.start()
    try:
        sent = []
        for partition in range(PARTITIONS):
            batch = producer.create_batch()
            for value in values[partition::PARTITIONS]:
                if batch.append(key=None, value=value, timestamp=None) is None:
                    sent.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(key=None, value=value, timestamp=None)
            if batch.record_count():
                sent.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def wait_group_stable(bootstrap: str, group: str, members: int, timeout: float) -> None:
    """Until the consumer group is Stable with ``members`` members."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            (response,) = await admin.describe_consumer_groups([group])
            _error, _group, state, _ptype, _protocol, group_members, *_ = response.groups[0]
            if state == "Stable" and len(group_members) == members:
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"group {group} not Stable with {members} members within {timeout:.0f} s")
    finally:
        await admin.close()


class SummaryWatcher:
    """Reads a results topic from the start and hands back matching summaries."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self):
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                         enable_auto_commit=False, auto_offset_reset="earliest")
        await self.consumer.start()
        tps = [TopicPartition(self.topic, p) for p in range(PARTITIONS)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_beginning(*tps)
        return self

    async def __aexit__(self, *exc):
        await self.consumer.stop()

    async def summaries(self, timeout_ms: int = 500) -> list[dict]:
        batches = await self.consumer.getmany(timeout_ms=timeout_ms)
        return [orjson.loads(r.value) for records in batches.values() for r in records]

    async def wait_for(self, predicate, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for summary in await self.summaries():
                if predicate(summary):
                    return summary
        raise TimeoutError(f"no matching summary on {self.topic} within {timeout:.0f} s")


def stamp(summary: dict) -> float:
    return datetime.fromisoformat(summary["time"]).timestamp()


# --- processes ---------------------------------------------------------------

class Proc:
    def __init__(self, args: list[str], env: dict, log_path: Path, cwd: Path = ROOT) -> None:
        self.log_path, self.env = log_path, env
        with open(log_path, "ab") as out:
            self.proc = subprocess.Popen(args, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, pattern: str, timeout: float) -> float:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if regex.search(self.text()):
                return time.time()
            if self.proc.poll() is not None:
                raise RuntimeError(f"process exited: {self.log_path}\n{self.text()[-2000:]}")
            time.sleep(0.05)
        raise TimeoutError(f"{pattern!r} not seen in {self.log_path}")

    def peak_rss_mb(self) -> float:
        try:
            with open(f"/proc/{self.proc.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:  # the process is gone
            pass
        return float("nan")

    def stop(self, timeout: float = 30) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def wait_file(path: Path, proc: Proc, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size:
            return json.loads(path.read_text())
        if proc.proc.poll() is not None:
            raise RuntimeError(f"process exited early:\n{proc.text()[-3000:]}")
        time.sleep(0.05)
    raise TimeoutError(f"{path} not written")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid() -> int | None:
    """The local broker started by scripts/kafka.sh, if that is the one used."""
    try:
        return int((ROOT / ".kafka-data" / "kafka.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(bootstrap: str, work: Path, app_id: str, topic: str, interval: float, name: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMIDITY_") or k == core.CHOICE}
    env.update(HUMIDITY_BROKER=f"kafka://{bootstrap}", HUMIDITY_APP_ID=app_id, HUMIDITY_INPUT_TOPIC=topic,
               HUMIDITY_RESULTS_TOPIC=f"{app_id}-summaries", HUMIDITY_INVALID_TOPIC=f"{app_id}-invalid",
               HUMIDITY_PARTITIONS=str(PARTITIONS), HUMIDITY_INTERVAL=str(interval),
               HUMIDITY_DATA_DIR=str(work / f"data-{name}"), HUMIDITY_WEB_PORT=str(free_port()),
               PYTHONUNBUFFERED="1")
    return env


# --- the contenders ------------------------------------------------------------

async def run_raw(bootstrap: str, topic: str, n: int) -> float:
    """(a) plain aiokafka + orjson; the four aggregates in dicts."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", max_partition_fetch_bytes=4 * 1024 * 1024,
                                fetch_max_bytes=16 * 1024 * 1024)
    await consumer.start()
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    sensors: dict[str, set] = {}
    guids: set = set()
    seen = 0
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        first = time.time()  # fetching counts: aiokafka prefetches in the background
        while seen < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=50_000)
            for records in batches.values():
                for record in records:
                    doc = orjson.loads(record.value)
                    device = doc.get("medicalImagingdevice") or doc.get("medicalimagingdevice")
                    humidity = doc["payload"]["data"]["humidity"]
                    sums[device] = sums.get(device, 0.0) + humidity
                    counts[device] = counts.get(device, 0) + 1
                    sensors.setdefault(device, set()).add(doc["guid"])
                    guids.add(doc["guid"])
                    seen += 1
        last = time.time()
    finally:
        await consumer.stop()
    sorted(((d, sums[d] / counts[d]) for d in sums), key=lambda x: -x[1])
    return n / (last - first)


def run_faust_bare(bootstrap: str, topic: str, n: int, work: Path) -> float:
    """(b) a Faust agent that only iterates."""
    result = work / f"bare-{uuid.uuid4().hex[:6]}.json"
    env = dict(os.environ, BENCH_BROKER=f"kafka://{bootstrap}", BENCH_APP_ID=f"bench-bare-{uuid.uuid4().hex[:6]}",
               BENCH_TOPIC=topic, BENCH_N=str(n), BENCH_RESULT=str(result), BENCH_DATA_DIR=str(work / "bare-data"),
               BENCH_PARTITIONS=str(PARTITIONS), BENCH_WEB_PORT=str(free_port()), PYTHONPATH=str(ROOT))
    proc = Proc([str(BIN / "faust"), "-A", "bench.faust_bare", "worker", "-l", "warn"], env,
                work / "faust-bare.log")
    try:
        out = wait_file(result, proc, timeout=600)
    finally:
        proc.stop()
    return n / (out["last"] - out["first"])


def drain_rate(points: list[tuple[float, int]], n: int, start: float) -> float:
    """Readings per second, end to end: from when the n readings were written
    (``start``; the workers are already running, their group Stable) to the
    first summary that counts them all (``points``: publication time, readings
    counted). Since summaries are cuts (every figure complete for the same
    readings), this includes the second hop (sensors) and up to a round and a
    summary interval of publication lag; the first summaries of a drain may
    count nothing yet while the cut waits for the sensors, so a rate between
    the first summary counting any reading and the last would overstate it."""
    done = next(t for t, m in points if m >= n)
    return n / (done - start)


#: CPU used while the app drained, in cores: {"app1": [{"workers": .., "broker": ..}, ..], ..}
cpu_use: dict[str, list[dict]] = {}


def stood_still(points: list[tuple[float, int]], n: int, longer_than: float = 0.0) -> list[tuple[float, float]]:
    """When the count stood still while readings waited, (from, to), longer
    than ``longer_than`` seconds: between two points (time, readings counted)
    that counted more, from the first that counted any until the one that
    counted all ``n``."""
    moved = [t for (t, m), (_, before) in zip(points[1:], points, strict=False) if m > before and before < n]
    return [(a, b) for a, b in zip(moved, moved[1:], strict=False) if b - a > longer_than]


def longest_pause(points: list[tuple[float, int]], n: int) -> float:
    """The longest time the count stood still while readings waited (stood_still)."""
    return max((b - a for a, b in stood_still(points, n)), default=0.0)


def per_core_ratio(med: dict, cores: dict, a: str, b: str) -> float | None:
    """Throughput per CPU core of contender ``a`` over ``b``'s."""
    if not (med.get(a) and med.get(b) and cores.get(a) and cores.get(b)):
        return None
    return round((med[a] / cores[a]) / (med[b] / cores[b]), 3)


#: label -> the longest pause of each drain (longest_pause): of the summaries,
#: and (counting_pauses, drains run with ``sample_counting``) of the workers' counters
pauses: dict[str, list[float]] = {}
counting_pauses: dict[str, list[float]] = {}


class CountingSampler:
    """Samples the workers' counters every ``every`` seconds in a thread
    (points: time of the answer, readings counted), so that a pause in
    counting can be told from the summary's own steps: a summary moves only
    when a round is complete everywhere (docs/performance.md), the counters
    move with every batch. A worker whose event loop stands still answers
    late, which shows as a pause too."""

    def __init__(self, procs: list[Proc], every: float = 0.1) -> None:
        self.procs, self.every, self.points = procs, every, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:  # valid and invalid readings the ingest agents have counted
                counted = sum(metric(p, "humidity_readings_processed_total") for p in self.procs)
            except OSError:
                pass  # no answer in time: no point
            else:
                self.points.append((time.time(), counted))
            self._stop.wait(self.every)

    def __enter__(self) -> CountingSampler:
        if self.procs:
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)


async def run_app(bootstrap: str, n: int, work: Path, workers: int, extra_env=None, label: str = "",
                  code: Path = ROOT, devices: int = 50, sample_counting: bool = False,
                  interval: float = BENCH_INTERVAL) -> float:
    """(c)/(d) the full app. The workers start on an empty fresh topic; once
    their group is Stable (no rebalance left to happen mid-drain) and they
    publish, the N readings are written (in ~0.2 s) and drained, until a
    summary counts them all. The rate is taken from the summaries (drain_rate)."""
    values = preloaded(n, devices)  # generated before the clock starts
    app_id = f"bench-app-{uuid.uuid4().hex[:6]}"
    topic = f"{app_id}-in"
    await create_topic(bootstrap, topic)
    procs = []
    try:
        for i in range(workers):
            env = app_env(bootstrap, work, app_id, topic, interval=interval, name=f"{app_id}-{i}")
            env.update(extra_env or {}, PYTHONPATH=str(code))
            procs.append(Proc([str(BIN / "faust"), "-A", "app", "worker", "-l", "info"], env,
                              work / f"{app_id}-{i}.log", cwd=code))
        for p in procs:
            p.wait_log(r"\[\^Worker\]: Ready", 180)
        await wait_group_stable(bootstrap, app_id, workers, 180)
        points: list[tuple[float, int]] = []

        def counted(summary: dict) -> bool:
            points.append((stamp(summary), summary["total_messages"] + summary["invalid_messages"]))
            return points[-1][1] >= n

        with_history = (code / "humidity" / "core" / "history.py").exists()
        async with SummaryWatcher(bootstrap, f"{app_id}-summaries") as watcher:
            await watcher.wait_for(lambda s: True, 120)  # publishing: assigned and recovered
            pids = [p.proc.pid for p in procs]
            broker = broker_pid()
            cpu0 = [cpu_seconds(pid) for pid in pids], broker and cpu_seconds(broker)
            with CountingSampler(procs if sample_counting else []) as sampler:
                started = time.time()
                await produce(bootstrap, topic, values)
                await watcher.wait_for(counted, 900)
            pauses.setdefault(label, []).append(round(longest_pause(points, n), 2))
            if sample_counting:
                counting_pauses.setdefault(label, []).append(round(longest_pause(sampler.points, n), 2))
                log(f"bench: {label}: counting stood still (s after the start: for s) "
                    + ", ".join(f"{a - started:.2f}: {b - a:.2f}" for a, b in stood_still(sampler.points, n, 0.5)))
            if with_history:  # and until every reading is in the history too
                await wait_history(procs, n, 900)
                history_done.setdefault(label, []).append(n / (time.time() - started))
            wall = time.time() - started
            cpu1 = [cpu_seconds(pid) for pid in pids], broker and cpu_seconds(broker)
        cpu_use.setdefault(label, []).append({
            "workers": round((sum(cpu1[0]) - sum(cpu0[0])) / wall, 2),
            "broker": round((cpu1[1] - cpu0[1]) / wall, 2) if broker else None})
        if os.environ.get("BENCH_DEBUG"):
            log([(round(t - started, 2), m) for t, m in points], cpu_use[label][-1])
        return drain_rate(points, n, started)
    finally:
        rss = [r for r in (p.peak_rss_mb() for p in procs) if not math.isnan(r)]
        if rss:
            peak_rss.setdefault(label, []).append(round(max(rss), 1))
        for p in procs:
            p.stop()


#: label -> the peak RSS in MB of the largest worker of each run
peak_rss: dict[str, list[float]] = {}
#: label -> readings per second until the history had counted every reading
history_done: dict[str, list[float]] = {}


def metric(proc: Proc, name: str) -> float:
    """A counter from a worker's /metrics, summed over its labels (0 before
    it is first set)."""
    url = f"http://127.0.0.1:{proc.env['HUMIDITY_WEB_PORT']}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return sum(float(v) for v in re.findall(rf"^{name}(?:\{{[^}}]*\}})? (\S+)$", text, re.M))


async def wait_history(procs: list[Proc], n: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while sum(metric(p, "humidity_history_readings_total") for p in procs) < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the history did not count {n} readings within {timeout:.0f} s")
        await asyncio.sleep(0.1)


async def one_worker(bootstrap: str, work: Path, kind: str, interval: float, **settings: str) -> tuple[str, dict, Proc]:
    """One worker of the app on a fresh input topic, ready to read it:
    (app id, its environment, its process; the caller stops it)."""
    app_id = f"bench-{kind}-{uuid.uuid4().hex[:6]}"
    await create_topic(bootstrap, f"{app_id}-in")
    env = app_env(bootstrap, work, app_id, f"{app_id}-in", interval=interval, name=app_id) | settings
    proc = Proc([str(BIN / "faust"), "-A", "app", "worker", "-l", "info"], env, work / f"{app_id}.log")
    try:
        proc.wait_log(r"\[\^Worker\]: Ready", 180)
    except BaseException:
        proc.stop()
        raise
    return app_id, env, proc


async def run_history_queries(bootstrap: str, work: Path, hours: float, queries: int) -> dict:
    """Query latency of the history API: one worker whose history holds
    ``hours`` of readings from 2,000 loggers on 50 devices (a reading per
    logger every 10 minutes), asked in turn for a device's last 24 hours by
    the minute (up to 1,440 points), a logger's, and the device list."""
    app_id, env, proc = await one_worker(bootstrap, work, "hist", interval=3.0)
    topic = env["HUMIDITY_INPUT_TOPIC"]
    try:
        sim = Simulator(loggers=2000, devices=50, seed=5)
        now = time.time()
        values = list(sim.backfill(hours, now, every=600.0))
        await produce(bootstrap, topic, values)
        await wait_history([proc], len(values), 900)
        base = f"http://127.0.0.1:{env['HUMIDITY_WEB_PORT']}"
        span = urllib.parse.urlencode({"from": iso(now - 86400), "to": iso(now + 60), "step": 60})
        paths = {"device_24h_by_minute": [f"/api/devices/{urllib.parse.quote(d, safe='')}/history?{span}"
                                          for d in sim.devices],
                 "logger_24h_by_minute": [f"/api/loggers/{urllib.parse.quote(g, safe='')}/history?{span}"
                                          for g in sim.guids[:50]],
                 "device_list": ["/api/devices"]}
        timings: dict[str, list[float]] = {k: [] for k in paths}
        points = 0
        for i in range(queries):
            for kind, choices in paths.items():
                t = time.perf_counter()
                with urllib.request.urlopen(base + choices[i % len(choices)], timeout=10) as response:
                    body = response.read()
                timings[kind].append(time.perf_counter() - t)
                if kind == "device_24h_by_minute":
                    points = max(points, len(orjson.loads(body)["points"]))
        result = {"readings": len(values), "device_points": points}
        for kind, ms in timings.items():
            ms.sort()
            result[kind] = {"p50_ms": round(1000 * statistics.median(ms), 1),
                            "p99_ms": round(1000 * ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))], 1)}
        return result
    finally:
        proc.stop()


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def run_quix(bootstrap: str, topic: str, n: int, work: Path) -> float | None:
    """(e) Quix Streams, in its own virtual environment."""
    if not QUIX_PYTHON.exists():
        log("quix: bench/.venv-quix missing (make bench creates it); skipped")
        return None
    result = work / f"quix-{uuid.uuid4().hex[:6]}.json"
    proc = Proc([str(QUIX_PYTHON), str(ROOT / "bench" / "quix_app.py"), bootstrap, topic, str(n), str(result),
                 str(work / f"quix-state-{uuid.uuid4().hex[:6]}")], dict(os.environ), work / "quix.log")
    try:
        out = wait_file(result, proc, timeout=900)
    finally:
        proc.stop()
    return n / (out["last"] - out["first"])


KSTREAMS = ROOT / "bench" / "kstreams" / "target"


def run_kstreams(bootstrap: str, topic: str, n: int, work: Path) -> tuple[float, float] | None:
    """(k) the Kafka Streams peer (bench/kstreams, built by `make bench`): (msg/s, its CPU cores)."""
    jar = KSTREAMS / "humidity-kstreams-1.jar"
    if not jar.exists():
        log("kstreams: bench/kstreams/target missing (make bench builds it); skipped")
        return None
    result = work / f"kstreams-{uuid.uuid4().hex[:6]}.json"
    proc = Proc(["java", "-cp", f"{jar}:{KSTREAMS / 'lib'}/*", "bench.HumidityStreams", bootstrap, topic, str(n),
                 str(result), str(work / f"kstreams-state-{uuid.uuid4().hex[:6]}")], dict(os.environ),
                work / "kstreams.log")
    try:
        out = wait_file(result, proc, timeout=900)
    finally:
        proc.stop()
    return n / (out["last"] - out["first"]), round(out["cpu_cores"], 2)


async def run_latency(bootstrap: str, work: Path, rate: float, seconds: float) -> tuple[float, float, int]:
    """Summary latency under steady load: for each summary, the age of the
    newest reading it includes (the M-th reading sent, for M readings counted)."""
    app_id, env, proc = await one_worker(bootstrap, work, "lat", interval=3.0)
    topic = env["HUMIDITY_INPUT_TOPIC"]
    sent_at: list[float] = []
    ages: list[float] = []
    try:
        sim = Simulator(seed=3)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await producer.start()
        async with SummaryWatcher(bootstrap, f"{app_id}-summaries") as watcher:
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                due = int((time.monotonic() - started) * rate) - len(sent_at)
                for _ in range(max(0, due)):
                    await producer.send(topic, sim.next_message(time.time()))
                    sent_at.append(time.time())
                for summary in await watcher.summaries(timeout_ms=1):
                    m = summary["total_messages"]
                    if 0 < m <= len(sent_at):
                        ages.append(stamp(summary) - sent_at[m - 1])
                await asyncio.sleep(0.01)
        await producer.stop()
    finally:
        proc.stop()
    ages.sort()
    return statistics.median(ages), ages[min(len(ages) - 1, int(round(0.99 * (len(ages) - 1))))], len(ages)


def one_reading_per_sensor(sensors: int, devices: int = 500, seed: int = 9) -> tuple[Simulator, list[dict]]:
    """A reading from each of ``sensors`` distinct dataloggers (the simulator's)."""
    sim = Simulator(loggers=sensors, devices=devices, seed=seed)
    docs = []
    now = time.time()
    for i, guid in enumerate(sim.guids):
        doc = sim.next_reading(now)
        doc["guid"] = guid
        doc["medicalImagingdevice"] = sim.device_of[i]
        doc.pop("medicalimagingdevice", None)
        docs.append(doc)
    return sim, docs


async def run_rss(bootstrap: str, work: Path, sensors: int) -> float:
    app_id, env, proc = await one_worker(bootstrap, work, "rss", interval=1.0)
    topic = env["HUMIDITY_INPUT_TOPIC"]
    try:
        sim, docs = one_reading_per_sensor(sensors)
        values = [orjson.dumps(doc) for doc in docs]  # every sensor at least once, then more readings
        now = time.time()
        values += [sim.next_message(now) for _ in range(sensors)]
        await produce(bootstrap, topic, values)
        async with SummaryWatcher(bootstrap, f"{app_id}-summaries") as watcher:
            await watcher.wait_for(lambda s: s["total_sensors"] >= sensors and s["total_messages"] >= len(values), 900)
        return proc.peak_rss_mb()
    finally:
        proc.stop()


async def run_restore(bootstrap: str, work: Path, sensors: int) -> tuple[float | None, float | None]:
    """One worker counts ``sensors`` distinct sensors (one reading each):
    its peak RSS once a summary equals the reference; then it stops, and a
    worker with an empty data directory starts: seconds from its start until
    it publishes a summary equal to the reference (state rebuilt from the
    changelogs)."""
    # One reading per sensor and then silence would raise OFFLINE for every
    # logger midway; an outage of the whole fleet is its own test, not this figure.
    app_id, env, proc = await one_worker(bootstrap, work, "restore", interval=1.0,
                                         HUMIDITY_ALARMS_FILE=alarms_file(work, 86400))
    _sim, docs = one_reading_per_sensor(sensors)
    expected = expected_summary([(None, doc) for doc in docs])
    equal = matches(expected)
    try:
        started = time.time()
        await produce(bootstrap, env["HUMIDITY_INPUT_TOPIC"], [orjson.dumps(doc) for doc in docs])
        del docs
        async with SummaryWatcher(bootstrap, f"{app_id}-summaries") as watcher:
            await watcher.wait_for(equal, 3600)
        rss = proc.peak_rss_mb()
        log(f"bench: {sensors:,} sensors counted in {time.time() - started:.0f} s, peak RSS {rss:,.0f} MB")
    finally:
        proc.stop()
    env = dict(env, HUMIDITY_DATA_DIR=str(work / f"data-{app_id}-empty"), HUMIDITY_WEB_PORT=str(free_port()))
    started = time.time()
    restored = Proc([str(BIN / "faust"), "-A", "app", "worker", "-l", "info"], env, work / f"{app_id}-restored.log")
    try:
        async with SummaryWatcher(bootstrap, f"{app_id}-summaries") as watcher:
            summary = await watcher.wait_for(lambda s: stamp(s) > started and equal(s), 3600)
        seconds = stamp(summary) - started
        log(f"bench: a worker with an empty data directory published the reference summary after {seconds:.1f} s")
        return rss, seconds
    finally:
        restored.stop()


def checkout(ref: str, work: Path) -> Path:
    """The project's files as committed at ``ref``, for the baseline contender."""
    target = work / f"baseline-{re.sub(r'[^A-Za-z0-9._-]', '_', ref)}"
    target.mkdir()
    archive = subprocess.run(["git", "archive", ref], cwd=ROOT, check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    if (target / "scripts" / "compile_core.py").exists():  # as `make` builds it
        subprocess.run([sys.executable, "scripts/compile_core.py"], cwd=target, check=True)
    return target


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = ""
    try:
        mem = next(line.split(":", 1)[1].strip() for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    except (OSError, StopIteration):
        pass
    kafka = sorted(p.name for p in (ROOT / "kafka" / "lib").glob("kafka_2.13-*.jar"))
    return {"cpus": os.cpu_count(), "cpu_model": cpu, "memory": mem, "python": platform.python_version(),
            "platform": platform.platform(), "kafka": kafka[0].removeprefix("kafka_2.13-").removesuffix(".jar")
            if kafka else "?", "note": "shared 2-core machine; throughput figures are medians"}


async def large_fleet(bootstrap: str, devices: int, output: Path) -> int:
    """(c) once at ``devices`` devices: msg/s, cores, peak RSS, and the cost per
    reading against (c10k) of the run in ``output``."""
    n = devices * 2 * 2
    work = Path(tempfile.mkdtemp(prefix="humidity-bench-"))
    log(f"bench: {devices:,} devices, {2 * devices:,} loggers, {n:,} readings")
    # at the service's own interval: a summary lists every device, and one
    # every BENCH_INTERVAL at this size would measure the summaries, not the flow
    interval = Settings().interval
    rate = await run_app(bootstrap, n, work, workers=1, label="large", devices=devices, interval=interval)
    result = json.loads(output.read_text()) if output.exists() else {}
    cores = cpu_use["large"][-1]["workers"]
    fleet = {"interval_s": interval, "devices": devices, "loggers": 2 * devices, "readings": n,
             "msgs_per_s": rate, "cpu_cores": cores,
             "peak_rss_mb": peak_rss["large"][-1], "history_complete_msgs_per_s": history_done["large"][-1],
             "when": datetime.now(UTC).isoformat(timespec="seconds")}
    c10k = result.get("app_1_worker_10k_devices_msgs_per_s")
    c10k_cores = result.get("app_1_worker_10k_devices_cpu_cores")
    if c10k and c10k_cores:  # CPU seconds per reading, here over (c10k)'s
        fleet["cost_per_reading_over_c10k"] = round((cores / rate) / (c10k_cores / c10k), 3)
    result["large_fleet"] = fleet
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(fleet, indent=2))
    shutil.rmtree(work, ignore_errors=True)
    return 0


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap", default=f"127.0.0.1:{os.environ.get('KAFKA_PORT', '9092')}")
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per throughput figure (median)")
    parser.add_argument("--latency-seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=3334.0)
    parser.add_argument("--sensors", type=int, default=100_000)
    parser.add_argument("--restore-sensors", type=int, default=1_000_000,
                        help="distinct sensors of the memory and empty-data-directory restore run")
    parser.add_argument("--big", type=int, default=1_000_000, help="readings of the one long drain (app1_1m)")
    parser.add_argument("--history-queries", type=int, default=200, help="history API queries of each kind")
    parser.add_argument("--skip", default="",
                        help="comma-separated: raw,bare,app1,app1_10k,app1_10k_interpreted,app1_lean,app2,quix,"
                             "kstreams,app1_1m,"
                             "latency,rss,restore,history")
    parser.add_argument("--baseline", default=None, metavar="REF",
                        help="also run (c) for the app at this git ref (before/after in one run)")
    parser.add_argument("--large-fleet", type=int, default=0, metavar="DEVICES",
                        help="instead of the rest: (c) once with DEVICES devices (two loggers each, two "
                             "readings per logger), added to --output as large_fleet")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "latest.json"))
    args = parser.parse_args()
    if args.large_fleet:
        return await large_fleet(args.bootstrap, args.large_fleet, Path(args.output))
    skip = set(filter(None, args.skip.split(",")))
    n = args.messages
    work = Path(tempfile.mkdtemp(prefix="humidity-bench-"))
    log(f"bench: {n} messages, {args.repeat} run(s) each, work dir {work}")
    topic = f"bench-in-{uuid.uuid4().hex[:8]}"
    await create_topic(args.bootstrap, topic)
    t = time.monotonic()
    await produce(args.bootstrap, topic, preloaded(n))
    log(f"bench: preloaded {n} readings into {topic} in {time.monotonic() - t:.1f} s")
    fleet_topic = f"bench-fleet-{uuid.uuid4().hex[:8]}"  # the peers' copy of the (c10k) readings
    if not {"quix", "kstreams"} <= skip:
        await create_topic(args.bootstrap, fleet_topic)
        await produce(args.bootstrap, fleet_topic, preloaded(n, FLEET))

    runs: dict[str, list[float]] = {k: [] for k in ("raw", "bare", "app1", "app1_10k", "app1_lean", "app2", "quix",
                                                    "kstreams", "app1_base", "app1_1m", "kstreams_1m", "quix_10k",
                                                    "kstreams_10k", "app1_10k_interpreted")}
    kstreams_cores: dict[str, list[float]] = {"kstreams": [], "kstreams_1m": [], "kstreams_10k": []}
    baseline = checkout(args.baseline, work) if args.baseline else None
    for round_ in range(args.repeat):
        # interleaved, so that a noisy neighbour hits every contender alike
        if "raw" not in skip:
            runs["raw"].append(await run_raw(args.bootstrap, topic, n))
        if "bare" not in skip:
            runs["bare"].append(run_faust_bare(args.bootstrap, topic, n, work))
        if "app1" not in skip:
            runs["app1"].append(await run_app(args.bootstrap, n, work, workers=1, label="app1"))
        if baseline is not None:
            runs["app1_base"].append(await run_app(args.bootstrap, n, work, workers=1, label="app1_base",
                                                   code=baseline))
        if "app1_lean" not in skip:  # the same without Faust's per-event Prometheus monitor
            runs["app1_lean"].append(await run_app(args.bootstrap, n, work, workers=1, label="app1_lean",
                                                   extra_env={"HUMIDITY_FAUST_METRICS": "off"}))
        if "app2" not in skip:
            runs["app2"].append(await run_app(args.bootstrap, n, work, workers=2, label="app2"))
        if "quix" not in skip:
            value = run_quix(args.bootstrap, topic, n, work)
            if value is not None:
                runs["quix"].append(value)
        if "kstreams" not in skip and (value := run_kstreams(args.bootstrap, topic, n, work)) is not None:
            runs["kstreams"].append(value[0])
            kstreams_cores["kstreams"].append(value[1])
        if "quix" not in skip and (value := run_quix(args.bootstrap, fleet_topic, n, work)) is not None:
            runs["quix_10k"].append(value)
        if "kstreams" not in skip and (value := run_kstreams(args.bootstrap, fleet_topic, n, work)) is not None:
            runs["kstreams_10k"].append(value[0])
            kstreams_cores["kstreams_10k"].append(value[1])
        # last in the round: no contender compared with (c) runs while the broker
        # may still be busy with its large changelogs
        if "app1_10k" not in skip:
            runs["app1_10k"].append(await run_app(args.bootstrap, n, work, workers=1, label="app1_10k",
                                                  devices=FLEET))
        if "app1_10k_interpreted" not in skip:  # what compiling the core gains at fleet scale
            runs["app1_10k_interpreted"].append(await run_app(args.bootstrap, n, work, workers=1,
                                                              label="app1_10k_interpreted", devices=FLEET,
                                                              extra_env={core.CHOICE: "interpreted"}))
        log(f"bench: round {round_ + 1}: " + ", ".join(f"{k}={v[-1]:,.0f}" for k, v in runs.items() if v))

    if "app1_1m" not in skip:  # one long drain: sustained speed, pauses, cores
        runs["app1_1m"].append(await run_app(args.bootstrap, args.big, work, workers=1, label="app1_1m",
                                             sample_counting=True))
        log(f"bench: {args.big:,} readings, 1 worker: {runs['app1_1m'][-1]:,.0f} msg/s, longest pause "
            f"{counting_pauses['app1_1m'][-1]} s in counting, {pauses['app1_1m'][-1]} s of the summary, "
            f"{cpu_use['app1_1m'][-1]}")
    if "kstreams" not in skip:  # the JVM warm: one long drain
        big_topic = f"bench-big-{uuid.uuid4().hex[:8]}"
        await create_topic(args.bootstrap, big_topic)
        await produce(args.bootstrap, big_topic, preloaded(args.big))
        if (value := run_kstreams(args.bootstrap, big_topic, args.big, work)) is not None:
            runs["kstreams_1m"].append(value[0])
            kstreams_cores["kstreams_1m"].append(value[1])
    med = {k: (statistics.median(v) if v else None) for k, v in runs.items()}
    cores = {k: statistics.median(u["workers"] for u in v) for k, v in cpu_use.items() if v}
    cores.update({k: statistics.median(v) for k, v in kstreams_cores.items() if v})
    latency = (None, None, 0)
    if "latency" not in skip:
        latency = await run_latency(args.bootstrap, work, args.rate, args.latency_seconds)
    rss = None if "rss" in skip else await run_rss(args.bootstrap, work, args.sensors)
    rss_big, restore = (None, None) if "restore" in skip else await run_restore(args.bootstrap, work,
                                                                               args.restore_sensors)
    queries = None if "history" in skip else await run_history_queries(args.bootstrap, work, 24.0,
                                                                      args.history_queries)
    med_history = {k: statistics.median(v) for k, v in history_done.items()}

    def ratio(a, b):
        return round(med[a] / med[b], 3) if med.get(a) and med.get(b) else None

    result = {
        "messages": n,
        "raw_aiokafka_msgs_per_s": med["raw"],
        "faust_bare_msgs_per_s": med["bare"],
        "app_1_worker_msgs_per_s": med["app1"],
        "app_1_worker_10k_devices_msgs_per_s": med["app1_10k"],
        "app_1_worker_10k_devices_cpu_cores": cores.get("app1_10k"),
        "app_1_worker_10k_devices_interpreted_msgs_per_s": med["app1_10k_interpreted"],
        "quix_streams_10k_devices_msgs_per_s": med["quix_10k"],
        "kafka_streams_10k_devices_msgs_per_s": med["kstreams_10k"],
        "kafka_streams_10k_devices_cpu_cores": cores.get("kstreams_10k"),
        "core": "compiled" if core.COMPILED else "interpreted",
        "app_1_worker_1m_msgs_per_s": med["app1_1m"],
        "app_1_worker_1m_longest_pause_s": counting_pauses.get("app1_1m", [None])[-1],
        "app_1_worker_1m_longest_summary_pause_s": pauses.get("app1_1m", [None])[-1],
        "app_1_worker_1m_cpu_cores": cores.get("app1_1m"),
        "longest_pause_s": pauses,
        "longest_counting_pause_s": counting_pauses,
        "summary_interval_s": BENCH_INTERVAL,
        "app_2_workers_msgs_per_s": med["app2"],
        "app_1_worker_without_faust_metrics_msgs_per_s": med["app1_lean"],
        "quix_streams_msgs_per_s": med["quix"],
        "kafka_streams_msgs_per_s": {"cold": med["kstreams"], "warm": med["kstreams_1m"],
                                     "cpu_cores": {"cold": cores.get("kstreams"), "warm": cores.get("kstreams_1m")},
                                     "readings": {"cold": n, "warm": args.big}},
        "baseline": {"ref": args.baseline, "app_1_worker_msgs_per_s": med["app1_base"]} if baseline else None,
        "latency_p50_s": latency[0],
        "latency_p99_s": latency[1],
        "latency_summaries": latency[2],
        "rss_mb_100k_sensors": rss,
        "rss_mb_1m_sensors": rss_big,
        "restore_seconds_1m_sensors": restore,
        "restore_sensors": args.restore_sensors,
        "app_1_worker_history_complete_msgs_per_s": med_history.get("app1"),
        "app_1_worker_10k_devices_history_complete_msgs_per_s": med_history.get("app1_10k"),
        "history_queries": queries,
        "runs": runs,
        "history_complete_runs": history_done,
        "peak_rss_mb_while_draining": peak_rss,
        "cpu_cores_used_while_draining": cpu_use,
        "ratios": {"c_over_b": ratio("app1", "bare"), "d_over_c": ratio("app2", "app1"),
                   "c_over_a": ratio("app1", "raw"),
                   "c_lean_over_b": ratio("app1_lean", "bare"), "c_over_e": ratio("app1", "quix"),
                   "c_over_c0": ratio("app1", "app1_base"),
                   "c10k_over_c": ratio("app1_10k", "app1"), "c1m_over_c": ratio("app1_1m", "app1"),
                   "c10k_over_e10k": ratio("app1_10k", "quix_10k"),
                   "c10k_over_c10k_interpreted": ratio("app1_10k", "app1_10k_interpreted"),
                   "c10k_per_core_over_k10k_per_core": per_core_ratio(med, cores, "app1_10k", "kstreams_10k"),
                   "d_per_core_over_c_per_core": per_core_ratio(med, cores, "app2", "app1"),
                   "c1m_per_core_over_k_warm_per_core": per_core_ratio(med, cores, "app1_1m", "kstreams_1m"),
                   "c_history_over_c0": (round(med_history["app1"] / med["app1_base"], 3)
                                         if med_history.get("app1") and med.get("app1_base") else None)},
        "machine": machine(),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    output = Path(args.output)
    if output.exists():  # the one large-fleet run (--large-fleet) stays until it is run again
        result["large_fleet"] = json.loads(output.read_text()).get("large_fleet")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")

    def fmt(v, unit=""):
        return "-" if v is None else (f"{v:,.0f}{unit}" if isinstance(v, float) and v > 100 else f"{v:.3g}{unit}")

    rows = [
        ("(a) aiokafka + orjson, dicts", fmt(med["raw"], " msg/s")),
        ("(b) bare Faust agent", fmt(med["bare"], " msg/s")),
        ("(c) full app, 1 worker", fmt(med["app1"], " msg/s") + f", {fmt(cores.get('app1'))} cores"),
        ("(c10k) (c) with 10,000 devices (20,000 loggers)", fmt(med["app1_10k"], " msg/s")
         + f", {fmt(cores.get('app1_10k'))} cores"),
        ("(c10k) on the interpreted core", fmt(med["app1_10k_interpreted"], " msg/s")),
        (f"(c1m) (c) draining {args.big:,} readings", fmt(med["app1_1m"], " msg/s")
         + f", {fmt(cores.get('app1_1m'))} cores, longest pause in counting "
         + fmt(result["app_1_worker_1m_longest_pause_s"], " s") + ", of the summary "
         + fmt(result["app_1_worker_1m_longest_summary_pause_s"], " s")),
        ("(c') (c) with HUMIDITY_FAUST_METRICS=off", fmt(med["app1_lean"], " msg/s")),
        ("(d) full app, 2 workers", fmt(med["app2"], " msg/s") + f", {fmt(cores.get('app2'))} cores"),
        ("(e) Quix Streams", fmt(med["quix"], " msg/s")),
        ("(e10k) Quix Streams, 10,000 devices", fmt(med["quix_10k"], " msg/s")),
        (f"(k) Kafka Streams, cold ({n:,})", fmt(med["kstreams"], " msg/s") + f", {fmt(cores.get('kstreams'))} cores"),
        ("(k10k) Kafka Streams, 10,000 devices", fmt(med["kstreams_10k"], " msg/s")
         + f", {fmt(cores.get('kstreams_10k'))} cores"),
        (f"(k1m) Kafka Streams, warm ({args.big:,})", fmt(med["kstreams_1m"], " msg/s")
         + f", {fmt(cores.get('kstreams_1m'))} cores"),
        ("(c) until the history counted every reading", fmt(med_history.get("app1"), " msg/s")),
        ("(c10k) until the history counted every reading", fmt(med_history.get("app1_10k"), " msg/s")),
        *([(f"(c0) full app, 1 worker, at {args.baseline}", fmt(med["app1_base"], " msg/s")),
           ("(c)/(c0)", fmt(result["ratios"]["c_over_c0"])),
           ("(c, history complete)/(c0)   history target >= 0.8", fmt(result["ratios"]["c_history_over_c0"]))]
          if baseline else []),
        ("(c)/(b)   target >= 0.8", fmt(result["ratios"]["c_over_b"])),
        ("(d)/(c)   target >= 1.5", fmt(result["ratios"]["d_over_c"])),
        ("(c')/(b)", fmt(result["ratios"]["c_lean_over_b"])),
        ("(c)/(a)", fmt(result["ratios"]["c_over_a"])),
        ("(c)/(e)   target >= 1.5", fmt(result["ratios"]["c_over_e"])),
        ("(c10k)/(c)", fmt(result["ratios"]["c10k_over_c"])),
        ("(c10k)/(c10k, interpreted core)", fmt(result["ratios"]["c10k_over_c10k_interpreted"])),
        ("(c10k)/(e10k)   target >= 1.5", fmt(result["ratios"]["c10k_over_e10k"])),
        ("(c10k) per core / (k10k) per core   target >= 1", fmt(result["ratios"]["c10k_per_core_over_k10k_per_core"])),
        ("(c10k, history complete)/(c10k)   target >= 0.9",
         fmt(round(med_history["app1_10k"] / med["app1_10k"], 3)
             if med_history.get("app1_10k") and med.get("app1_10k") else None)),
        ("(c1m)/(c)   target >= 0.9 (and >= 0.85 cores, no pause in counting > 1 interval)",
         fmt(result["ratios"]["c1m_over_c"])),
        ("(d) per core / (c) per core   target >= 0.85", fmt(result["ratios"]["d_per_core_over_c_per_core"])),
        ("(c1m) per core / (k1m) per core   target >= 1", fmt(result["ratios"]["c1m_per_core_over_k_warm_per_core"])),
        (f"latency p50 at {args.rate:,.0f} msg/s", fmt(latency[0], " s")),
        ("latency p99   target <= 3.5 s", fmt(latency[1], " s")),
        (f"peak RSS, {args.sensors:,} sensors   target <= 400 MB", fmt(rss, " MB")),
        (f"peak RSS, {args.restore_sensors:,} sensors   target <= 600 MB", fmt(rss_big, " MB")),
        (f"empty data directory to the reference summary, {args.restore_sensors:,} sensors   target <= 60 s",
         fmt(restore, " s")),
        *([(f"history query p50 / p99, {kind}", f"{q['p50_ms']} / {q['p99_ms']} ms")
           for kind, q in queries.items() if isinstance(q, dict)] if queries else []),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"\nhumidity benchmark: {n:,} readings, medians of {args.repeat} run(s), "
          f"{result['machine']['cpus']} CPUs, Kafka {result['machine']['kafka']}")
    for name, value in rows:
        print(f"  {name.ljust(width)}  {value}")
    print(f"\nwritten to {args.output}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
