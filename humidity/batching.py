"""Record batches: one Faust event per fetched batch of a partition (Faust wiring).

Faust makes every Kafka record a Message, an Event, a trip through a channel
queue and one step of a stream. On the development machine that plumbing
costs about 60 microseconds per record, six times what the app itself does
with a reading (the profile is in the README's Performance section). For the
high-volume topics, declared with :func:`batched_topic`, this consumer hands
Faust each fetched batch of one partition as a single message instead:

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
from typing import Optional

from faust.transport.drivers import aiokafka as aiokafka_driver

#: Batches (up to 1 MiB each) a worker buffers per batched topic.
BATCHES_BUFFERED = 8
#: Names of the topics read in record batches; filled by :func:`batched_topic`.
BATCHED_TOPICS: set[str] = set()


def batched_topic(app, name: str, **options):
    """``app.topic(name, **options)``, read in record batches by its agent,
    with at most :data:`BATCHES_BUFFERED` batches waiting in its buffer."""
    BATCHED_TOPICS.add(name)
    return app.topic(name, maxsize=BATCHES_BUFFERED, **options)


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
    """Faust's aiokafka consumer, handing over batches for :data:`BATCHED_TOPICS`."""

    async def _getmany(self, active_partitions, timeout: float):
        records = await super()._getmany(active_partitions, timeout)
        for tp, recs in records.items():
            if recs and tp.topic in BATCHED_TOPICS:
                last = recs[-1].offset
                if self._read_offset[tp] == 0 and last > 1:
                    # Faust adds the gap itself unless the read offset is 0.
                    await self._add_gap(tp, 1, last)
                records[tp] = [batch_record(recs)]
        return records


class Transport(aiokafka_driver.Transport):
    """Faust's aiokafka transport with a :class:`BatchingConsumer`."""

    Consumer = BatchingConsumer
