"""Table changelogs sent as record batches (humidity.plumbing.changelogs),
against a stand-in producer whose deliveries the test completes."""

from __future__ import annotations

import asyncio
import tracemalloc
from types import SimpleNamespace

import orjson

from humidity.plumbing import changelogs
from humidity.plumbing.transaction import UNWRITTEN, BatchTransaction


class App:
    """A stand-in app: what the sender uses of it is its producer."""

    def __init__(self, producer) -> None:
        self.producer = producer


class Builder:
    def __init__(self, capacity: int) -> None:
        self.capacity, self.records = capacity, []

    def append(self, *, timestamp, key, value):
        if len(self.records) >= self.capacity:
            return None
        self.records.append((key, value))
        return object()


class FakeProducer:
    """Batches of at most ``capacity`` records; each send_batch's delivery is
    completed by the test (``deliver``)."""

    max_request_size = 1000

    def __init__(self, capacity: int = 3) -> None:
        self.capacity = capacity
        self.sent: list[tuple[str, int, list, asyncio.Future]] = []
        self.too_large_calls: list[tuple[str, int]] = []

    def create_batch(self) -> Builder:
        return Builder(self.capacity)

    async def send_batch(self, batch, topic, partition):
        delivery = asyncio.get_running_loop().create_future()
        self.sent.append((topic, partition, batch.records, delivery))
        return delivery

    def too_large(self, topic, size):
        self.too_large_calls.append((topic, size))
        raise RuntimeError("stopped")

    def deliver(self, index: int, base_offset: int = 0, error: Exception | None = None) -> None:
        delivery = self.sent[index][3]
        if error is not None:
            delivery.set_exception(error)
        else:
            delivery.set_result(SimpleNamespace(offset=base_offset))


class Store:
    def __init__(self) -> None:
        self.persisted: dict = {}

    def set_persisted_offset(self, tp, offset):
        self.persisted[tp] = offset

    def persisted_offset(self, tp):
        return self.persisted.get(tp)


class Table:
    def __init__(self, app, name: str = "t") -> None:
        self.app, self.name, self.data = app, name, Store()
        self.changelog_topic = SimpleNamespace(get_topic_name=lambda: f"{name}-changelog")
        self.written: list[tuple[int, list]] = []  # the write batches into RocksDB

    def write_rows(self, partition, rows):
        self.written.append((partition, rows))


async def settle():
    for _ in range(20):
        await asyncio.sleep(0)


async def test_records_go_out_in_order_per_partition_and_complete_when_acknowledged():
    app = App(FakeProducer(capacity=3))
    t = Table(app)
    batch = BatchTransaction()
    for i in range(5):
        batch.write(t, 0, f"k{i}".encode(), b"v")
    batch.write(t, 1, b"other", b"v")
    first = batch.commit()
    second = _one_write(t, 0, b"k0", b"newer").commit()
    await settle()
    sent = [(p, records) for _topic, p, records, _d in app.producer.sent]
    # partition 0 keeps the order it was written in, across submissions
    assert [records for p, records in sent if p == 0] == [
        [(b"k0", b"v"), (b"k1", b"v"), (b"k2", b"v")], [(b"k3", b"v"), (b"k4", b"v"), (b"k0", b"newer")]]
    assert [records for p, records in sent if p == 1] == [[(b"other", b"v")]]
    assert not any(f.done() for f in first + second)
    next_offset = {0: 0, 1: 0}
    for index, (_topic, partition, records, _d) in enumerate(app.producer.sent):
        app.producer.deliver(index, base_offset=next_offset[partition])
        next_offset[partition] += len(records)
    await settle()
    assert all(f.done() and f.exception() is None for f in first + second)
    # the persisted offset is the last record of the partition's last batch
    assert t.data.persisted[changelogs.TopicPartition("t-changelog", 0)] == 5
    assert t.data.persisted[changelogs.TopicPartition("t-changelog", 1)] == 0


async def test_the_persisted_offset_stops_before_records_of_another_writer():
    """A worker that slept through losing a partition writes after its new
    owner: its store does not hold the records between, so a restore into it
    must start before them, however much it writes after."""
    app = App(FakeProducer(capacity=2))
    t = Table(app)
    tp = changelogs.TopicPartition("t-changelog", 0)
    t.data.set_persisted_offset(tp, 9)  # restored through offset 9
    futures = []

    async def acknowledged_at(base_offset: int, key: bytes) -> None:
        futures.extend(_one_write(t, 0, key, b"v").commit())
        await settle()
        app.producer.deliver(len(app.producer.sent) - 1, base_offset=base_offset)
        await settle()

    await acknowledged_at(10, b"a")  # follows what the store includes
    assert t.data.persisted[tp] == 10
    await acknowledged_at(14, b"b")  # offsets 11 to 13: another writer's
    await acknowledged_at(15, b"c")
    assert all(f.done() and f.exception() is None for f in futures)
    assert t.data.persisted[tp] == 10


async def test_a_blocks_writes_reach_rocksdb_and_the_changelog_once_each_with_the_last_value_of_a_key():
    app = App(FakeProducer(capacity=10))
    t = Table(app)
    batch = BatchTransaction()
    batch.write(t, 0, b"a", b"1")
    batch.write(t, 0, b"b", b"1")
    batch.write(t, 0, b"a", b"2")
    batch.write(t, 0, b"b", None)
    batch.write(t, 3, b"c", b"1")
    assert t.written == []  # nothing reaches RocksDB before the transaction commits ...
    assert batch.written(t, 0, b"a") == b"2"  # ... but the batch reads its own writes
    assert batch.written(t, 0, b"b") is None
    assert batch.written(t, 0, b"c") is UNWRITTEN
    batch.commit()
    assert t.written == [(0, [(b"a", b"2"), (b"b", None)]), (3, [(b"c", b"1")])]
    assert batch.written(t, 0, b"a") is UNWRITTEN  # committed: nothing pending any more
    await settle()
    assert sorted((p, records) for _t, p, records, _d in app.producer.sent) == [
        (0, [(b"a", b"2"), (b"b", None)]), (3, [(b"c", b"1")])]


def _one_write(t, partition, key, value):
    batch = BatchTransaction()
    batch.write(t, partition, key, value)
    return batch


async def test_a_submission_fails_when_any_batch_holding_its_records_fails():
    app = App(FakeProducer(capacity=2))
    t = Table(app)
    batch = BatchTransaction()
    for i in range(4):  # two batches
        batch.write(t, 0, f"k{i}".encode(), b"v")
    (future,) = batch.commit()
    await settle()
    assert len(app.producer.sent) == 2
    app.producer.deliver(1, base_offset=2)  # the later batch is acknowledged ...
    app.producer.deliver(0, error=RuntimeError("not leader"))  # ... the earlier one failed
    await settle()
    assert future.done() and isinstance(future.exception(), RuntimeError)
    assert app.producer.sent[0][3].exception() is not None


async def test_a_record_over_the_size_limit_stops_before_anything_of_its_partition_is_sent():
    app = App(FakeProducer())
    t = Table(app)
    batch = BatchTransaction()
    batch.write(t, 0, b"small", b"v")
    batch.write(t, 0, b"big", b"x" * 2000)
    (future,) = batch.commit()
    await settle()
    assert app.producer.too_large_calls == [("t-changelog", 2003)]
    assert app.producer.sent == []
    assert future.done() and future.exception() is not None
    assert changelogs.sender_of(app).queued_rows == 0


async def test_a_write_outside_a_batch_is_sent_at_once():
    app = App(FakeProducer())
    t = Table(app)
    changelogs.write_now(t, 2, b"k", None)  # a deletion
    await settle()
    assert [(p, records) for _t, p, records, _d in app.producer.sent] == [(2, [(b"k", None)])]


async def test_queued_values_hold_only_their_own_size():
    # orjson's bytes keep their whole write buffer however short they are:
    # thousands of them waiting to be sent would hold megabytes for nothing.
    app = App(FakeProducer())
    t = Table(app)
    batch = BatchTransaction()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(1000):
            batch.write(t, 0, b"k%d" % i, orjson.dumps({"n": i}))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    batch.commit()
    assert held < 1000 * 200, f"{held} bytes held by 1,000 queued values of about 10 bytes"
