"""Table changelogs sent as record batches (plumbing).

Faust sends every table write as a message of its own: a future message, a
trip through the producer's buffer and aiokafka's send, a future per record,
and on acknowledgement a RocksDB write of the changelog's offset. With a
large fleet a batch of readings writes thousands of values, and that
machinery, not RocksDB or the broker, becomes most of a worker's time.

A batch's writes reach the app's :class:`ChangelogSender` when its
transaction commits (:mod:`humidity.plumbing.transaction`), per table
partition; a write outside a transaction is submitted at once
(:func:`write_now`). The sender sends them as aiokafka record batches: one
future per submission, which the commits wait for like any other output,
and one write of the persisted offset per acknowledged record batch. One
sender per app sends strictly in order per changelog partition, so a key's
later value is never overtaken by an earlier one (a restore keeps the last
value of a key).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import deque

from aiokafka.structs import TopicPartition

log = logging.getLogger(__name__)

def exact_size(value: bytes) -> bytes:
    """A copy of ``value`` that holds only its own bytes: orjson's bytes keep
    its whole write buffer (4 KiB) however short they are, and what waits to
    be sent (and acknowledged) would hold that buffer all the while."""
    return bytes(memoryview(value))


def write_now(table, partition: int, key: bytes, value: bytes | None) -> None:
    """``table[key] = value`` (``None``: a deletion) in ``partition``, outside
    a batch's transaction: its changelog record, submitted at once."""
    sender_of(table.app).submit(table, partition, [(key, None if value is None else exact_size(value))])


_senders: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def sender_of(app) -> ChangelogSender:
    sender = _senders.get(app)
    if sender is None:
        sender = _senders[app] = ChangelogSender(app)
    return sender


class _Submitted:
    __slots__ = ("table", "tp", "rows", "future")

    def __init__(self, table, tp: TopicPartition, rows: list, future: asyncio.Future) -> None:
        self.table, self.tp, self.rows, self.future = table, tp, rows, future


class ChangelogSender:
    """Sends submitted changelog records as record batches, in submission
    order per changelog partition."""

    def __init__(self, app) -> None:
        self.app = app
        self.queue: deque[_Submitted] = deque()
        self.queued_rows = 0  # records submitted and not yet handed to aiokafka
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self.unacknowledged = 0  # submissions the broker has not acknowledged yet
        self.failed = False  # a submission was never acknowledged
        self._gaps: dict = {}  # changelog partition -> what its store includes, when a gap was logged

    @property
    def all_acknowledged(self) -> bool:
        """Whether every record submitted so far reached the changelog."""
        return not self.unacknowledged and not self.failed

    def _acknowledged(self, future: asyncio.Future) -> None:
        self.unacknowledged -= 1
        if future.cancelled() or future.exception() is not None:
            self.failed = True

    def submit(self, table, partition: int, rows: list) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.unacknowledged += 1
        future.add_done_callback(self._acknowledged)
        tp = TopicPartition(table.changelog_topic.get_topic_name(), partition)
        self.queue.append(_Submitted(table, tp, rows, future))
        self.queued_rows += len(rows)
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run())
        self._wake.set()
        return future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.queue:
                # Everything queued now, per changelog partition, in order.
                by_tp: dict[TopicPartition, list[_Submitted]] = {}
                while self.queue:
                    item = self.queue.popleft()
                    by_tp.setdefault(item.tp, []).append(item)
                await asyncio.gather(*(self._send(tp, items) for tp, items in by_tp.items()))

    async def _send(self, tp: TopicPartition, items: list[_Submitted]) -> None:
        """One changelog partition's submissions as record batches, in order."""
        producer = self.app.producer
        batches: list[tuple[object, int]] = []  # (builder, records in it)
        spans: list[tuple[int, int]] = []  # per item: the first and last batch holding its records
        try:
            limit = producer.max_request_size
            builder, count = producer.create_batch(), 0
            for item in items:
                first = len(batches)
                for key, value in item.rows:
                    size = len(key) + len(value or b"")
                    if size > limit:
                        producer.too_large(tp.topic, size)
                    if builder.append(timestamp=None, key=key, value=value) is None:
                        batches.append((builder, count))
                        builder, count = producer.create_batch(), 0
                        builder.append(timestamp=None, key=key, value=value)
                    count += 1
                spans.append((first, len(batches)))
            batches.append((builder, count))
            deliveries = []
            for builder, count in batches:
                delivery = await producer.send_batch(builder, tp.topic, tp.partition)
                delivery.add_done_callback(self._persisted_offset(items[0].table, tp, count))
                deliveries.append(delivery)
        except Exception as exc:  # noqa: BLE001 - every waiting submission learns it was not sent
            for item in items:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        finally:
            self.queued_rows -= sum(len(item.rows) for item in items)
        for item, (first, last) in zip(items, spans, strict=True):
            _complete_with(item.future, deliveries[first:last + 1])

    def _persisted_offset(self, table, tp: TopicPartition, count: int):
        """Record the batch's last offset as what the table's RocksDB includes
        (where a restore of this partition starts), as Faust does per record;
        but only where the batch follows what the store already includes. A
        record of another writer between the two (the partition's new owner,
        while this worker slept through losing it) is not in this store, and
        a restore into it must start before that record."""

        def done(delivery: asyncio.Future) -> None:
            if delivery.cancelled() or delivery.exception() is not None:
                return
            first = delivery.result().offset
            try:
                includes = table.data.persisted_offset(tp)
                if includes is not None and first != includes + 1:
                    if first > includes + 1 and self._gaps.get(tp) != includes:
                        self._gaps[tp] = includes
                        log.info("%s[%d]: records of another writer before offset %d; "
                                 "a restore here starts at %d", tp.topic, tp.partition, first, includes + 1)
                    return
                table.data.set_persisted_offset(tp, first + count - 1)
            except Exception as exc:  # noqa: BLE001 - the partition moved meanwhile: its next owner restores it
                log.debug("Persisted offset of %s not recorded (%s)", tp, exc)

        return done


def _complete_with(future: asyncio.Future, deliveries: list[asyncio.Future]) -> None:
    """Complete ``future`` once every one of ``deliveries`` has; fail it with the first that fails."""
    waiting = [len(deliveries)]

    def done(delivery: asyncio.Future) -> None:
        waiting[0] -= 1
        if future.done():
            return
        if delivery.cancelled():
            future.cancel()
        elif delivery.exception() is not None:
            future.set_exception(delivery.exception())
        elif not waiting[0]:
            future.set_result(None)

    for delivery in deliveries:
        delivery.add_done_callback(done)
