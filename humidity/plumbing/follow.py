"""Read whole topics on every worker, without a consumer group (plumbing).

The partials, the published summaries and the acknowledgements are small
and every worker needs all of them: a group-less consumer reads each topic's
partitions from their start (``ALL``) or from their last records (``LAST``),
for as long as the worker runs, reconnecting after broker trouble.

Every reader here reads committed records only: the summaries and the audit
chain are written in transactions (:mod:`humidity.plumbing.single_writer`),
and a fenced writer's open transaction is aborted, never to be read. Each
transaction ends with a marker that takes an offset of its own, so the last
record of a partition is not at its end offset - 1.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition

from humidity.core.settings import Settings
from humidity.core.stalls import Reader
from humidity.plumbing.kafka_admin import client_security

log = logging.getLogger(__name__)

ALL, LAST = "all", "last"
#: Offsets before a partition's end that ``LAST`` starts at: a few records
#: with the markers of their transactions (a large fleet's summary is
#: megabytes: only a few are read again at a start).
LAST_BACK = 8
#: How consumers here read transactional topics.
COMMITTED = {"isolation_level": "read_committed"}
#: Seconds before reconnecting after the broker failed the reader.
RETRY_AFTER = 5.0


class Follower:
    """Hands ``on_record(topic, key, value, headers)`` every record of the
    given topics; :attr:`caught_up` is set once it has read to where each
    partition ended when it (first) started."""

    def __init__(self, settings: Settings, topics: dict[str, str], on_record: Callable, what: str,
                 partitions: int | None = None) -> None:
        self.settings, self.topics, self.on_record, self.what = settings, topics, on_record, what
        self.partitions = partitions or settings.partitions
        self.caught_up = asyncio.Event()
        self.consumer: AIOKafkaConsumer | None = None  # while it reads

    async def reader(self) -> Reader | None:
        """What it reads and how far it has got (positions move past
        transaction markers, which no record shows), for the stall watch;
        None between connections."""
        consumer = self.consumer
        if consumer is None:
            return None
        positions = {(tp.topic, tp.partition): await consumer.position(tp) for tp in consumer.assignment()}
        return Reader(f"the {self.what} reader", tuple(sorted(positions)), positions=positions)

    async def _once(self) -> None:
        settings = self.settings
        consumer = _reader(settings)
        await consumer.start()
        try:
            tps = {topic: [TopicPartition(topic, p) for p in range(self.partitions)] for topic in self.topics}
            every = [tp for group in tps.values() for tp in group]
            consumer.assign(every)
            ends = await consumer.end_offsets(every)
            for topic, start in self.topics.items():
                if start == ALL:
                    await consumer.seek_to_beginning(*tps[topic])
                else:
                    for tp in tps[topic]:
                        consumer.seek(tp, max(0, ends[tp] - LAST_BACK))
            self.consumer = consumer  # every position set
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=10000)
                for tp, records in batches.items():
                    for record in records:
                        self.on_record(tp.topic, record.key, record.value, record.headers)
                if not self.caught_up.is_set() and await _read_to(consumer, ends):
                    self.caught_up.set()
        finally:
            self.consumer = None
            await consumer.stop()

    async def run(self) -> None:
        """Read for as long as the worker runs."""
        while True:
            try:
                await self._once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect after any broker trouble
                log.warning("Reading %s failed (%s: %s); retrying in %.0f s", self.what, type(exc).__name__, exc,
                            RETRY_AFTER)
                await asyncio.sleep(RETRY_AFTER)


def _reader(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None, enable_auto_commit=False,
                            auto_offset_reset="earliest", **COMMITTED, **client_security(settings))


async def _read_to(consumer, ends: dict) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True


async def read_range(settings: Settings, topic: str, partition: int = 0, last: int | None = None):
    """``(offset, value)`` of the committed records of one partition that are
    there now: all of them, or those of the ``last`` offsets; yielded in order."""
    consumer = _reader(settings)
    await consumer.start()
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        end = (await consumer.end_offsets([tp]))[tp]
        start = (await consumer.beginning_offsets([tp]))[tp]
        consumer.seek(tp, start if last is None else max(start, end - last))
        while await consumer.position(tp) < end:
            batches = await consumer.getmany(tp, timeout_ms=1000, max_records=10000)
            for record in batches.get(tp, []):
                if record.offset < end:
                    yield record.offset, record.value
    finally:
        await consumer.stop()


async def read_newest(settings: Settings, topic: str, key: bytes, partitions: int) -> tuple[bytes, list] | None:
    """``(value, headers)`` of the newest committed record with ``key`` in
    ``topic``, or None: read back from each partition's end, further back
    each time a stretch holds none."""
    consumer = _reader(settings)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        ends, starts = await consumer.end_offsets(tps), await consumer.beginning_offsets(tps)
        for tp in tps:
            found, high, size = None, ends[tp], LAST_BACK
            while found is None and high > starts[tp]:
                low = max(starts[tp], high - size)
                consumer.seek(tp, low)
                while await consumer.position(tp) < high:
                    batches = await consumer.getmany(tp, timeout_ms=1000, max_records=1000)
                    for record in batches.get(tp, []):
                        if record.key == key and record.offset < high:
                            found = (record.value, list(record.headers))
                high, size = low, size * 2
            if found is not None:
                return found
        return None
    finally:
        await consumer.stop()
