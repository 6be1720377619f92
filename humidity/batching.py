"""Record batches: one Faust event per fetched batch of a partition (Faust wiring).

Faust makes every Kafka record a Message, an Event, a trip through a channel
queue and one step of a stream. On the development machine that plumbing
costs about 60 microseconds per record, six times what the app itself does
with a reading (the profile is in the README's Performance section). For the
high-volume topics, this consumer hands Faust each fetched batch of one
partition as a single message instead:

* ``value`` is a :class:`RecordBatch`: ``(offset, key, value)`` for every
  record of the batch, in offset order;
* ``offset`` is the offset of the batch's last record.

Faust then acknowledges and commits that message like any other, so the
committed offset moves past a batch only once the agent has finished the
whole batch. Faust itself records the offsets in between as a "gap" (it does
so for compacted topics) and commits over it; the one case its check misses
(the previous batch ended at offset 0, a falsy read offset) is filled here.

Agents read batches with :func:`records_of`, which also accepts an ordinary
one-record event, so an agent works the same under ``test_context()``.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Optional

from faust.transport.drivers import aiokafka as aiokafka_driver


class RecordBatch(list):
    """``[(offset, key, value), ...]`` of one partition, in offset order."""


def records_of(event) -> list[tuple[int, Optional[bytes], Optional[bytes]]]:
    value = event.value
    if isinstance(value, RecordBatch):
        return value
    return [(event.message.offset, event.message.key, value)]


def batch_record(records: list):
    """One record standing for ``records`` (all of one partition)."""
    last = records[-1]
    rows = RecordBatch((r.offset, r.key, r.value) for r in records)
    size = sum(r.serialized_value_size for r in records if r.serialized_value_size > 0)
    return dataclasses.replace(last, key=None, value=rows, serialized_key_size=-1, serialized_value_size=size)


class BatchingConsumer(aiokafka_driver.Consumer):
    """Faust's aiokafka consumer, handing over batches for ``batched_topics``."""

    batched_topics: frozenset[str] = frozenset()

    async def _getmany(self, active_partitions, timeout: float):
        records = await super()._getmany(active_partitions, timeout)
        batched = self.batched_topics
        for tp, recs in records.items():
            if recs and tp.topic in batched:
                last = recs[-1].offset
                if self._read_offset[tp] == 0 and last > 1:
                    # Faust adds the gap itself unless the read offset is 0.
                    await self._add_gap(tp, 1, last)
                records[tp] = [batch_record(recs)]
        return records


def transport_batching(topics: Iterable[str]) -> type:
    """Faust's aiokafka transport with a :class:`BatchingConsumer` for ``topics``."""
    names = frozenset(topics)

    class Consumer(BatchingConsumer):
        batched_topics = names

    class Transport(aiokafka_driver.Transport):
        pass

    Transport.Consumer = Consumer
    return Transport
