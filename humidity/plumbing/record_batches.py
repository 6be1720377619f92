"""Record batches: one Faust event per fetched batch of one partition (plumbing).

The topics declared with :func:`batched_topic` reach their agents as
:class:`RecordBatch` values of ``(offset, key, value)`` rows that cover
every offset from ``start`` to ``end`` (offsets in between that hold no row
hold no record the topic can deliver: transaction markers, aborted or
compacted records), and a batch counts only where it continues the state
(:func:`contiguous`)."""

from __future__ import annotations

import dataclasses
import weakref

from aiokafka.structs import ConsumerRecord

from humidity.plumbing import internals

#: Batches (up to 1 MiB each) a worker buffers per batched topic.
BATCHES_BUFFERED = 8


@dataclasses.dataclass
class Batched:
    """The topics an app reads in record batches, and for each the offset a
    partition's state resumes at (its recorded offset + 1), registered by the
    flow that owns the state."""

    topics: set = dataclasses.field(default_factory=set)
    resume_at: dict = dataclasses.field(default_factory=dict)  # topic -> function(partition) -> offset
    #: Changelogs of tables that take them in record batches when restored
    #: (:func:`changelog_batches`): Faust's recovery otherwise pays its whole
    #: per-message machinery for every record.
    changelogs: set = dataclasses.field(default_factory=set)


_registries: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def batched(app) -> Batched:
    """The app's :class:`Batched` registry."""
    registry = _registries.get(app)
    if registry is None:
        registry = _registries[app] = Batched()
    return registry


def batched_topic(app, name: str, **options):
    """``app.topic(name, **options)``, read in record batches by its agent,
    with at most :data:`BATCHES_BUFFERED` batches waiting in its buffer."""
    batched(app).topics.add(name)
    topic = app.topic(name, **options)
    # Set here: Faust's app.topic() takes a maxsize and does not pass it on,
    # and without it a topic buffers stream_buffer_maxsize (4,096) batches.
    topic.maxsize = BATCHES_BUFFERED
    return topic


class RecordBatch(list):
    """``[(offset, key, value), ...]`` of one partition, in offset order,
    covering every offset from ``start`` to ``end``."""

    start: int
    end: int

    @classmethod
    def of(cls, rows, start: int, end: int) -> RecordBatch:
        batch = cls(rows)
        batch.start, batch.end = start, end
        return batch


def records_of(event) -> RecordBatch:
    """The rows of a batch event; an ordinary one-record event (as under
    ``test_context()``) is a batch of one."""
    value = event.value
    if isinstance(value, RecordBatch):
        return value
    offset = event.message.offset
    return RecordBatch.of([(offset, event.message.key, value)], offset, offset)


def changelog_batches(events):
    """``(tp, [(offset, key, value), ...])`` per changelog event a table
    restores: a batch event's rows, any other event as a row of its own
    (its raw key and value, as Faust's stores apply them)."""
    for event in events:
        message = event.message
        if isinstance(event.value, RecordBatch):
            yield message.tp, event.value
        else:
            yield message.tp, [(message.offset, message.key, message.value)]


def batch_record(tp, records: list, start: int, end: int) -> ConsumerRecord:
    """One record standing for ``records`` of partition ``tp`` (as the
    fetcher's record batches hold them: :func:`hand_out_as_read`), which
    cover the offsets ``start`` to ``end``."""
    rows = RecordBatch.of([(r.offset, r.key, r.value) for r in records], start, end)
    size = sum(len(value) for _offset, _key, value in rows if value is not None)
    offset, timestamp, timestamp_type = ((records[-1].offset, records[-1].timestamp, records[-1].timestamp_type)
                                         if records else (end, 0, 0))
    return ConsumerRecord(tp.topic, tp.partition, offset, timestamp, timestamp_type, None, rows, None, -1, size, ())


def hand_out_as_read(fetcher, topics: set) -> None:
    """Let the fetched records of ``topics`` be handed out as the record
    batch reader yields them: aiokafka otherwise makes a ConsumerRecord of
    every record, in the consumer thread and under the interpreter lock the
    agents need, only for :func:`batch_record` to take three fields of it."""
    internals.hand_out_raw_records(fetcher, topics, _as_read)


def _as_read(_tp, record):
    return record


def contiguous(events: list, recorded: int, deleted_before: int | None = None) -> tuple[list, int | None]:
    """Split a partition's batch events into those that follow a state which
    includes every offset up to ``recorded``, and the offset to re-read from
    when one does not (the rest are not counted).

    ``deleted_before``: the partition's first offset still in Kafka when the
    state's next offset was deleted by retention (nothing else to read)."""
    expected = recorded + 1
    if deleted_before is not None:
        expected = max(expected, deleted_before)
    usable = []
    for event in events:
        batch = records_of(event)
        if batch.start > expected:
            return usable, expected
        usable.append(event)
        expected = max(expected, batch.end + 1)
    return usable, None
