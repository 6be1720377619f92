"""Test helpers: the throwaway broker's address, workers as subprocesses,
and small Kafka clients. Every wait is bounded."""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

ROOT = Path(__file__).resolve().parent.parent
FAUST = str(Path(sys.executable).parent / "faust")
ARTIFACTS = ROOT / "test-artifacts"


def kafka_port() -> int | None:
    port = os.environ.get("HUMIDITY_TEST_KAFKA_PORT")
    return int(port) if port else None


def bootstrap() -> str:
    """The test broker, or the brokers of the cluster a test runs on (HUMIDITY_TEST_KAFKA_BOOTSTRAP)."""
    return os.environ.get("HUMIDITY_TEST_KAFKA_BOOTSTRAP") or f"127.0.0.1:{kafka_port()}"


def kafka_script(env: dict, command: str) -> None:
    """``scripts/kafka.sh <command>`` for the brokers ``env`` names (its KAFKA_* variables)."""
    subprocess.run([str(ROOT / "scripts" / "kafka.sh"), command], env=env, check=True, timeout=180,
                   stdout=subprocess.DEVNULL)


class OwnBroker:
    """A broker of one test's own (its port and data directory), for a test
    that stops and starts it while the others run on the shared one; the
    helpers of this module use it while :meth:`used_by` is in force."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port_pair()
        self.env = dict(os.environ, KAFKA_PORT=str(self.port), KAFKA_DATA_DIR=str(data_dir))
        self.bootstrap = f"127.0.0.1:{self.port}"

    def script(self, command: str) -> None:
        kafka_script(self.env, command)

    def __enter__(self) -> OwnBroker:
        self.script("up")
        return self

    def __exit__(self, *exc) -> None:
        self.script("down")

    def used_by(self, monkeypatch) -> None:
        monkeypatch.setenv("HUMIDITY_TEST_KAFKA_PORT", str(self.port))
        monkeypatch.delenv("HUMIDITY_TEST_KAFKA_BOOTSTRAP", raising=False)


#: Ports for the servers tests start, below the kernel's range of ephemeral
#: ports (32768 and up): a port picked there can be taken by an outgoing
#: connection of a worker or client before the server binds it.
SERVER_PORTS = range(20000, 32000)


def _my_server_ports() -> range:
    """This test process's share of SERVER_PORTS: parallel test processes
    (pytest-xdist) never pick the same port."""
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
    share = len(SERVER_PORTS) // max(count, 1)
    start = SERVER_PORTS.start + index * share
    return range(start, start + share)


def free_port() -> int:
    """A port no server listens on now, for a server a test starts."""
    ports = _my_server_ports()
    for _ in range(200):
        port = random.choice(ports)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports}")


def free_port_pair() -> int:
    """A free port whose successor is free too (a broker and its controller)."""
    return free_port_run(2)


def free_port_run(count: int) -> int:
    """The first of ``count`` consecutive free ports (a cluster's brokers and controllers)."""
    for _ in range(50):
        port = free_port()
        if port + count > _my_server_ports().stop:
            continue
        try:
            for offset in range(1, count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + offset))
            return port
        except OSError:
            continue
    raise RuntimeError(f"no {count} consecutive free ports")


class Cluster:
    """A 3-broker KRaft cluster started by ``scripts/kafka.sh`` in its own
    directory and ports; brokers are killed and brought back by pid file."""

    BROKERS = 3

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port_run(2 * self.BROKERS)
        self.env = dict(os.environ, KAFKA_BROKERS=str(self.BROKERS), KAFKA_PORT=str(self.port),
                        KAFKA_DATA_DIR=str(data_dir))
        self.data_dir = data_dir
        self.bootstrap = ",".join(f"127.0.0.1:{self.port + n}" for n in range(self.BROKERS))

    def script(self, command: str) -> None:
        kafka_script(self.env, command)

    def up(self) -> Cluster:
        """Start every broker that is not running; wait until all answer."""
        self.script("up")
        return self

    def down(self) -> None:
        self.script("down")

    def kill(self, node: int) -> None:
        """kill -9 broker ``node`` (its node id)."""
        pid = int((self.data_dir / f"broker-{node}.pid").read_text())
        os.kill(pid, signal.SIGKILL)

    def discard(self) -> None:
        """kill -9 every broker and wait until each has gone: the cluster's
        data goes with the test's directory, so a controlled shutdown (up
        to a minute once the quorum is lost) buys nothing."""
        for pid_file in self.data_dir.glob("broker-*.pid"):
            pid = int(pid_file.read_text())
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            wait_until(lambda pid=pid: not Path(f"/proc/{pid}").exists() or _zombie(pid), 30,
                       what=f"broker pid {pid} gone")
            pid_file.unlink()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(predicate: Callable[[], object], timeout: float, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def alarms_file(tmp_path: Path, offline_timeout: int) -> str:
    """The shipped alarms file with another OFFLINE timeout (seconds), written under ``tmp_path``."""
    shipped = (ROOT / "humidity" / "core" / "alarms.toml").read_text()
    assert "offline_timeout_seconds = 300" in shipped, "the shipped alarms file changed: adjust alarms_file()"
    config = tmp_path / "alarms.toml"
    config.write_text(shipped.replace("offline_timeout_seconds = 300", f"offline_timeout_seconds = {offline_timeout}"))
    return str(config)


def service_env(tmp_path: Path, **overrides: str) -> dict:
    """Environment for one isolated service instance on the test broker."""
    app_id = unique("test")
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUMIDITY_") or k.startswith("HUMIDITY_TEST_")}
    env.update(
        HUMIDITY_BROKER=f"kafka://{bootstrap()}",
        HUMIDITY_APP_ID=app_id,
        HUMIDITY_INPUT_TOPIC=f"{app_id}-in",
        HUMIDITY_RESULTS_TOPIC=f"{app_id}-summaries",
        HUMIDITY_INVALID_TOPIC=f"{app_id}-invalid",
        HUMIDITY_ALERTS_TOPIC=f"{app_id}-alerts",
        HUMIDITY_AUDIT_TOPIC=f"{app_id}-audit",
        HUMIDITY_PARTITIONS="4",
        HUMIDITY_INTERVAL="1.0",
        HUMIDITY_DATA_DIR=str(tmp_path / "data"),
        HUMIDITY_WEB_PORT=str(free_port()),
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


READY = r"\[\^Worker\]: Ready"  # Faust logs it once the worker consumes


def two_ready_workers(start, env: dict, tmp_path: Path, names=("w1", "w2")):
    """Start two workers of one service with the ``workers`` fixture and wait
    until both are ready; returns them and the second one's environment."""
    env2 = another_worker(env, tmp_path)
    first, second = start(env, names[0]), start(env2, names[1])
    first.wait_for_log(READY, timeout=120)
    second.wait_for_log(READY, timeout=120)
    return first, second, env2


def another_worker(env: dict, tmp_path: Path, name: str = "data2") -> dict:
    """The environment of one more worker of the same service: same app and
    topics, its own data directory and web port."""
    return dict(env, HUMIDITY_DATA_DIR=str(tmp_path / name), HUMIDITY_WEB_PORT=str(free_port()))


#: A worker's log line for each summary it publishes.
PUBLISHED = "Summary published"
#: Longer than the workers' session timeout (10 s): the group throws a worker paused this long out.
PAUSE = 12.0


def leader_among(*candidates):
    """The worker that publishes the summaries now: the next one to log two
    publishes in a row while the others log none (a leadership that moves
    meanwhile starts the count again)."""
    seen = [[w.log().count(PUBLISHED) for w in candidates]]

    def settled():
        now = [w.log().count(PUBLISHED) for w in candidates]
        grown = [n - b for n, b in zip(now, seen[0], strict=True)]
        if sum(1 for g in grown if g) > 1:
            seen[0] = now
            return None
        return next((w for w, g in zip(candidates, grown, strict=True) if g >= 2), None)

    return wait_until(settled, 90, what="a worker publishing summaries")


def assert_never_back(summaries: list[dict]) -> None:
    """From one published summary to the next, ``as_of`` and every count only grow."""
    for before, after in zip(summaries, summaries[1:], strict=False):
        for p, offset in before["as_of"].items():
            assert after["as_of"][p] >= offset, ("as_of went back", before["as_of"], after["as_of"])
        for field in ("total_messages", "invalid_messages", "total_sensors"):
            assert after[field] >= before[field], (f"{field} went back", before[field], after[field])


class Worker:
    """One ``faust -A app worker`` subprocess, stopped by pid."""

    def __init__(self, env: dict, log_path: Path, args: Iterable[str] = ("worker", "-l", "info"),
                 app: str = "app", cwd: Path = ROOT) -> None:
        self.env = env
        self.app = app
        self.cwd = cwd
        self.log_path = log_path
        self.args = list(args)
        self.proc: subprocess.Popen | None = None

    def start(self) -> Worker:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [FAUST, "-A", self.app, *self.args], cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        return self

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float = 60.0) -> re.Match:
        regex = re.compile(pattern)

        def found():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"worker exited ({self.proc.returncode}); log tail:\n{self.log()[-3000:]}")
            return regex.search(self.log())

        return wait_until(found, timeout, what=f"log line {pattern!r}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pause(self) -> None:
        """SIGSTOP: frozen, as by a VM snapshot or a long GC; it wakes up with :meth:`resume`."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 60.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout`` (a paused one is woken first)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def wait(self, timeout: float) -> int:
        """The exit code once the process has ended by itself (AssertionError after ``timeout``)."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{self.log_path.name} still runs after {timeout:.0f} s") from None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def run(coro):
    """Run a coroutine to completion, also from code that has a loop running
    (Playwright's sync API does): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@asynccontextmanager
async def admin():
    """An admin client of the test broker (or cluster), closed afterwards."""
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap())
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def create_topic(name: str, partitions: int, config: dict | None = None) -> None:
    """Create a topic and wait (up to 30 s) until every partition has a leader: a
    consumer that joins before the metadata shows it is assigned nothing ("Ignoring missing topic")."""
    async with admin() as client:
        await client.create_topics([NewTopic(name, partitions, 1, topic_configs=config or {})])
        deadline = time.monotonic() + 30
        while True:
            (described,) = await client.describe_topics([name])
            if described["partitions"] and all(p["leader"] >= 0 for p in described["partitions"]):
                return
            if time.monotonic() >= deadline:
                raise AssertionError(f"topic {name!r} has no leader for every partition after 30 s")
            await asyncio.sleep(0.1)


def input_producer(bootstrap_servers: str | None = None, **options) -> AIOKafkaProducer:
    """The producer of every test input. Idempotent: a batch retried after a
    broker failed is not written twice, so a test's input is exactly what it sent."""
    return AIOKafkaProducer(bootstrap_servers=bootstrap_servers or bootstrap(), acks="all",
                            enable_idempotence=True, **options)


async def produce(topic: str, values: Iterable[bytes], key: bytes | None = None,
                  bootstrap_servers: str | None = None, partition: int | None = None) -> int:
    producer = input_producer(bootstrap_servers, linger_ms=5, max_batch_size=262144, max_request_size=2_000_000)
    await producer.start()
    count = 0
    try:
        futures = []
        for value in values:
            futures.append(await producer.send(topic, value=value, key=key, partition=partition))
            count += 1
        await producer.flush()
        for fut in futures:
            await fut
    finally:
        await producer.stop()
    return count


async def read_topic(topic: str, timeout: float = 5.0, bootstrap_servers: str | None = None) -> list:
    """Every committed record currently in ``topic`` (all partitions), from
    the start, as a consumer of the service's output reads them."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers or bootstrap(), group_id=None,
                                isolation_level="read_committed",
                                enable_auto_commit=False, fetch_max_bytes=4_000_000,
                                max_partition_fetch_bytes=4_000_000)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if parts is None:
            await consumer._client.force_metadata_update()
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records = []
        deadline = time.monotonic() + timeout
        async def behind() -> bool:
            for tp in tps:
                if await consumer.position(tp) < ends[tp]:
                    return True
            return False

        while await behind():
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end within {timeout} s")
            batch = await consumer.getmany(timeout_ms=500)
            for recs in batch.values():
                records.extend(recs)
        return records
    finally:
        await consumer.stop()


def published_summaries(topic: str) -> list[dict]:
    """The summaries on the results topic in the order they were published."""
    records = run(read_topic(topic))
    return [orjson.loads(r.value) for r in sorted(records, key=lambda r: (r.partition, r.offset))
            if r.key == b"summary"]


def summaries(topic: str, bootstrap_servers: str | None = None) -> list[dict]:
    records = run(read_topic(topic, bootstrap_servers=bootstrap_servers))
    return sorted((orjson.loads(r.value) for r in records), key=lambda s: s["time"])


def wait_for_summary(topic: str, predicate: Callable[[dict], bool], timeout: float,
                     bootstrap_servers: str | None = None) -> dict:
    last: list = [None]

    def check():
        try:
            found = summaries(topic, bootstrap_servers)
        except Exception:  # noqa: BLE001 - e.g. the broker is restarting: try again
            return None
        if found:
            last[0] = found[-1]
            if predicate(found[-1]):
                return found[-1]
        return None

    try:
        return wait_until(check, timeout, interval=1.0, what=f"a summary on {topic}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last summary: {last[0]}") from None


def parse_time(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()


async def group_members(group: str) -> dict:
    """member id -> [(topic, partition), ...] of a consumer group's assignment."""
    from aiokafka.protocol.group import MemberAssignment

    async with admin() as client:
        described = await client.describe_consumer_groups([group])
    members = {}
    for response in described:
        for grp in response.groups:
            for member in grp[5] if len(grp) > 5 else grp[-1]:
                member_id, assignment_bytes = member[0], member[-1]
                parts = []
                if assignment_bytes:
                    try:
                        assignment = MemberAssignment.decode(assignment_bytes)
                        for topic, partitions in assignment.assignment:
                            parts += [(topic, p) for p in partitions]
                    except Exception:  # noqa: BLE001
                        parts.append(("?", -1))
                members[member_id] = parts
    return members


async def committed_offsets(group: str, topic: str, partitions: int = 4) -> dict[int, int | None]:
    """partition -> the group's committed offset (None if none)."""
    async with admin() as client:
        committed = await client.list_consumer_group_offsets(group)
    found = {tp.partition: meta.offset for tp, meta in committed.items() if tp.topic == topic}
    return {p: found.get(p) for p in range(partitions)}


async def end_offsets(topic: str, partitions: int = 4) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(), group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


async def lag(group: str, topic: str, partitions: int = 4) -> dict[int, int]:
    """partition -> end offset minus the group's committed offset (all of it if none)."""
    committed = await committed_offsets(group, topic, partitions)
    ends = await end_offsets(topic, partitions)
    return {p: ends[p] - (committed[p] or 0) for p in range(partitions)}


def wait_for_no_lag(group: str, topics: Iterable[str], timeout: float = 60.0) -> None:
    """Wait until the group's committed offsets reach the end every partition
    of ``topics`` has now: its whole length for a topic nobody writes to any
    more (the input once fed), and at least that far for the internal topics
    that round end marks keep growing a few messages a second."""
    topics = list(topics)
    ends = {topic: run(end_offsets(topic)) for topic in topics}
    behind: dict = {}

    def caught_up():
        for topic in topics:
            committed = run(committed_offsets(group, topic))
            behind[topic] = {p: end - (committed[p] or 0) for p, end in ends[topic].items()
                             if (committed[p] or 0) < end}
        return not any(behind.values())

    try:
        wait_until(caught_up, timeout, interval=0.5, what="committed offsets at the end of every partition")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; behind the end by: {behind}") from None


def http_get(url: str, timeout: float = 10.0):
    """(status, headers, body) of a GET, also for error statuses."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def web_url(env: dict, path: str = "/") -> str:
    return f"http://127.0.0.1:{env['HUMIDITY_WEB_PORT']}{path}"


def wait_for_web(env: dict, timeout: float = 90.0) -> None:
    def answers():
        try:
            return http_get(web_url(env, "/static/dashboard.css"), timeout=2)[0] == 200
        except OSError:
            return False

    wait_until(answers, timeout, what="the worker's web server")


async def produce_pairs(topic: str, pairs, bootstrap_servers: str | None = None) -> None:
    """Produce (key, value) pairs in order (one key: one partition, in order)."""
    producer = input_producer(bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        for key, value in pairs:
            await producer.send(topic, value=value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def produce_to_partition(topic: str, partition: int, key: bytes | None, value: bytes | None) -> None:
    producer = input_producer()
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key, partition=partition)
    finally:
        await producer.stop()


def alerts(topic: str) -> list[dict]:
    return [orjson.loads(r.value) for r in run(read_topic(topic))]


class Feeder(threading.Thread):
    """Each partition gets its records in order, a chunk at a time."""

    def __init__(self, topic, by_partition, chunks, pause):
        super().__init__(daemon=True)
        self.topic, self.by_partition, self.chunks, self.pause = topic, by_partition, chunks, pause
        self.error = None

    def run(self):
        try:
            for chunk in range(self.chunks):
                for p, records in self.by_partition.items():
                    size = -(-len(records) // self.chunks)
                    part = records[chunk * size:(chunk + 1) * size]
                    if part:
                        run(produce(self.topic, [raw for raw, _ in part], partition=p))
                time.sleep(self.pause)
        except Exception as exc:  # noqa: BLE001 - reported by finish()
            self.error = exc

    def finish(self):
        self.join(300)
        assert not self.is_alive() and self.error is None, f"feeding failed: {self.error!r}"


class SteadyFeeder(threading.Thread):
    """Sends ``records`` at ``per_second``, a slice every :attr:`STEP`
    seconds on a fixed schedule, with one producer, until all are sent or
    :meth:`finish` is called."""

    STEP = 0.25

    def __init__(self, topic: str, records: list[bytes], per_second: float) -> None:
        super().__init__(daemon=True)
        self.topic, self.records, self.per_second = topic, records, per_second
        self.sent, self.error, self.stopping = 0, None, threading.Event()

    def run(self) -> None:
        try:
            run(self._feed())
        except Exception as exc:  # noqa: BLE001 - reported by finish()
            self.error = exc

    async def _feed(self) -> None:
        producer = input_producer(linger_ms=5, max_batch_size=262144)
        await producer.start()
        try:
            start, step = time.monotonic(), 0
            while self.sent < len(self.records) and not self.stopping.is_set():
                step += 1
                due = min(len(self.records), round(step * self.STEP * self.per_second))
                for value in self.records[self.sent:due]:
                    await producer.send(self.topic, value=value)
                self.sent = due
                await asyncio.sleep(max(0.0, start + step * self.STEP - time.monotonic()))
            await producer.flush()
        finally:
            await producer.stop()

    def finish(self, timeout: float = 300) -> None:
        self.stopping.set()
        self.join(timeout)
        assert not self.is_alive() and self.error is None, f"feeding failed: {self.error!r}"
