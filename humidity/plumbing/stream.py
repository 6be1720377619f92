"""The loop every agent runs, and what a handler needs from it (plumbing).

An agent hands :func:`per_batch` its stream and a handler. The loop gives the
handler one :class:`PartitionWork` at a time: the record-batch events of one
partition (:mod:`humidity.plumbing.batching`). The handler loads the
partition's state, asks :meth:`PartitionWork.follow` which records continue
it, applies the pure rules and writes the new state, inside
:meth:`PartitionWork.current` (Faust partitions table writes by the current
event). The loop then records what the handler produced, so that the offsets
become committable once the broker has acknowledged it, seeks the partition
back if a batch did not continue the state, and waits while the producer is
behind.

The work on a batch does not await: a shutdown or rebalance cannot cut it in
half. A handler that bounds its work per call (:meth:`PartitionWork.stop_after`)
leaves its state complete through the offset it stopped after, and the loop
hands it the same events again after letting the rest of the worker run.
An unexpected error stops the worker at once, before the batch is
acknowledged, so that nothing is committed for readings that were not counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any

from faust.types import TP

from humidity.core import formats
from humidity.core.ownership import claimed_epoch
from humidity.plumbing import changelogs, internals
from humidity.plumbing.exit import stop_worker
from humidity.plumbing.record_batches import contiguous, records_of
from humidity.plumbing.transaction import transaction

#: Batch events taken together when an agent asks for more than one at a time.
EVENTS_MAX = 5000
#: Messages queued for the producer before the agents wait.
PRODUCER_BACKLOG_MAX = 5_000
#: Seconds between looks at the producer's queue while waiting.
PRODUCER_POLL = 0.005


def load_json(raw: bytes | None) -> Any:
    """A table value, decoded (None stays None); one of a newer format
    raises :class:`humidity.core.formats.NewerFormat`."""
    return formats.loads(raw, "a table")


class GenerationCache:
    """Per-partition state kept in memory for one consumer generation only:
    within a generation a partition does not change hands; at the next one
    everything is dropped and rebuilt on first use with ``build(partition)``."""

    def __init__(self, build: Callable[[int], dict] = lambda partition: {}) -> None:
        self.build = build
        self.generation = None
        self.partitions: dict[int, dict] = {}

    def for_partition(self, partition: int, generation) -> dict:
        if generation != self.generation:
            self.generation, self.partitions = generation, {}
        cached = self.partitions.get(partition)
        if cached is None:
            cached = self.partitions[partition] = self.build(partition)
        return cached

    def built(self, partition: int, generation) -> bool:
        return generation == self.generation and partition in self.partitions

    def put(self, partition: int, generation: int, state: dict) -> None:
        """Keep ``state``, built elsewhere, for ``generation`` (unless a later one has begun)."""
        if generation != self.generation:
            if self.generation is not None and generation < self.generation:
                return
            self.generation, self.partitions = generation, {}
        self.partitions[partition] = state


class PartitionWork:
    """The batch events of one partition that a handler works on."""

    def __init__(self, events: list, consumer) -> None:
        self.events = events
        message = events[-1].message
        self.partition: int = message.partition
        self.tp = message.tp
        self.generation = message.generation_id
        self._consumer = consumer
        self.through: int | None = None  # the last offset now in the state
        self.read_through: int | None = None  # the last offset these events cover
        self.rewind_to: int | None = None  # where to read again from
        self.more = False  # the handler stopped part way (stop_after)

    def current(self) -> AbstractContextManager[None]:
        """Make the last event current, so table reads and writes use its partition."""
        return internals.current_event(self.events[-1])

    def follow(self, recorded: int) -> list | None:
        """The ``(offset, key, value)`` rows of the events that continue a state
        which includes every offset up to ``recorded``, or None if none does.
        Sets :attr:`through`, and :attr:`rewind_to` if some events do not."""
        usable, self.rewind_to = contiguous(self.events, recorded, self._consumer.deleted_before.get(self.tp))
        if not usable:
            return None
        self.read_through = records_of(usable[-1]).end
        self.through = max(recorded, self.read_through)
        return [row for event in usable for row in records_of(event)]

    def stop_after(self, offset: int) -> None:
        """The handler took the rows up to ``offset`` only (it bounds its work
        per call, so that the event loop is not held for seconds): the state
        goes through ``offset``, and the loop hands it the same events again,
        after letting the rest of the worker run."""
        self.through = offset
        self.more = True

    def epoch(self, stored: int) -> int:
        """This worker's epoch for the partition, claimed above ``stored`` at
        its first batch since the partition was assigned."""
        claims = self._consumer.owner_epochs
        if self.tp not in claims:
            claims[self.tp] = claimed_epoch(stored, self.generation or 0)
        return claims[self.tp]


def by_partition(events: list) -> dict[int, list]:
    groups: dict[int, list] = {}
    for event in events:
        groups.setdefault(event.message.partition, []).append(event)
    return groups


async def producer_caught_up(producer, changelog) -> None:
    """Wait while more than PRODUCER_BACKLOG_MAX messages, or table
    changelog records, are still to be sent.

    ``send_soon`` only queues messages (forwards, bundles) in Faust's
    producer buffer, and table writes queue their changelog records in the
    changelog sender (:mod:`humidity.plumbing.changelogs`); neither has a
    bound, and at full speed with a large fleet (a first pass over many new
    sensors writes several values per sensor) the agents queue faster than
    they are sent: the queues, not the data, then hold most of the memory.
    Each agent checks between batches, so memory stays bounded and the
    pipeline runs at the producer's pace.
    """
    buffer = producer.buffer
    while buffer.size > PRODUCER_BACKLOG_MAX or changelog.queued_rows > PRODUCER_BACKLOG_MAX:
        await asyncio.sleep(PRODUCER_POLL)  # the producer task drains it meanwhile


async def per_batch(stream, handle: Callable[[PartitionWork], None], within: float | None = None,
                    backpressure: bool = True, events_max: int = EVENTS_MAX,
                    prepare: Callable[[PartitionWork], Awaitable[None]] | None = None) -> None:
    """The loop of every agent: one event per fetched record batch of a
    partition, or the batches of ``within`` seconds (at most ``events_max``
    of them: each can hold a MiB), handled per partition.
    ``backpressure``: wait between batches while the producer is behind
    (:func:`producer_caught_up`). ``prepare``: awaited before a partition's
    batches are handled (to read what the handler needs in steps)."""
    consumer, producer, changelog = stream.app.consumer, stream.app.producer, changelogs.sender_of(stream.app)
    groups = stream.take_events(events_max, within=within) if within else _singly(stream.events())
    async for events in groups:
        if not events:
            continue
        with consumer.working(events[0].message.topic):
            for group in by_partition(events).values():
                if prepare is not None:
                    await prepare(PartitionWork(group, consumer))
                while True:
                    work = PartitionWork(group, consumer)
                    with transaction() as produced:
                        try:
                            handle(work)
                        except formats.NewerFormat as exc:  # the operator must act: one line
                            stop_worker(f"{exc}; the batch is not acknowledged", traceback=False)
                        except Exception:  # noqa: BLE001 - anything: the batch must not be acknowledged
                            stop_worker(f"unexpected error in {handle.__name__}; the batch is not acknowledged")
                    if work.through is not None:
                        consumer.progress.handled(work.tp, work.through, produced)
                    if not work.more:
                        break
                    await producer_caught_up(producer, changelog)
                    await asyncio.sleep(0)  # the rest of the worker runs before the next part
                if work.rewind_to is not None:
                    await consumer.rewind(work.tp, work.rewind_to, work.generation)
                await asyncio.sleep(0)  # the rest of the worker runs before the next partition
            if backpressure:
                await producer_caught_up(producer, changelog)


async def _singly(events):
    async for event in events:
        yield [event]


def resumed_at(app, topic: str, partition: int) -> int | None:
    """The offset this worker resumed a partition of ``topic`` at in the
    current generation: what the batches before it produced is acknowledged
    (None: not known)."""
    return app.consumer.resumed_at.get(TP(topic, partition))


def resume_from(table) -> Callable[[int], int]:
    """The offset a partition's state resumes at: one past the offset its
    totals (a JSON value with ``offset`` under the partition's number) include."""

    def resume_at(partition: int) -> int:
        doc = load_json(table.get(str(partition)))
        return (int(doc["offset"]) if doc else -1) + 1

    return resume_at
