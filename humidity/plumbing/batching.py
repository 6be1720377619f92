"""Record batches, and where each partition resumes (plumbing).

Faust makes every Kafka record a Message, an Event, a trip through a channel
queue and one step of a stream; for the high-volume topics, declared with
:func:`batched_topic`, this consumer hands Faust each fetched batch of one
partition as a single message instead. Its value is a :class:`RecordBatch`
of ``(offset, key, value)`` rows that covers every offset from ``start`` to
``end``: offsets in between that hold no row hold no record the topic can
deliver (transaction markers, aborted or compacted records).

For these topics the tables, not Faust's in-memory bookkeeping, decide where
a partition resumes. Faust's queues are cleared when flow resumes after a
rebalance, its read offset is cleared at revoke and its flush gives up after
0.1 s; with one event per batch each of these could skip or mis-commit
thousands of readings. So:

* every state value records the offset it includes; a batch that does not
  start where the state ends (:func:`contiguous`) is not counted: the
  partition is sought back (:meth:`BatchingConsumer.rewind`) and re-read;
* after each assignment a partition is positioned at the lower of its
  committed offset and its state's offset + 1 (:attr:`Batched.resume_at`);
* an offset is committed only when every message the batches up to it
  produced (changelogs, forwards, dead letters) is acknowledged by the broker
  (:mod:`humidity.plumbing.progress`, fed by the batches' transactions, :mod:`humidity.plumbing.transaction`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka.errors import ConsumerStoppedError
from faust.transport.drivers import aiokafka as aiokafka_driver
from mode import Service

from humidity.plumbing import internals
from humidity.plumbing.assignment import settled
from humidity.plumbing.exit import stop_worker
from humidity.plumbing.producer import Producer
from humidity.plumbing.progress import NotDelivered, Progress
from humidity.plumbing.record_batches import batch_record, batched, hand_out_as_read

log = logging.getLogger(__name__)

#: Seconds to wait for a partition's outputs to be acknowledged before its
#: final commit at a revoke or a shutdown.
SETTLE_TIMEOUT = 5.0
#: Seconds after which a rewind that has not taken effect is asked for again.
REWIND_AGAIN_AFTER = 5.0
#: Seconds a partition's state may stay behind what was fetched, with no
#: batch arriving to show it, before the partition is read again from the
#: state (a lost last batch is otherwise noticed only when more data comes).
BEHIND_FOR = 10.0
#: ... provided its agent has waited this long for a batch of the topic: an
#: agent still busy with its queue may have the partition's batch in it.
IDLE_FOR = 2.5
#: Milliseconds a fetch waits at the broker for records of caught-up
#: partitions (Faust's is 1,500). A partition left out of a fetch (its
#: records were still waiting for its agent when the fetch went out) is
#: fetched only once that fetch returns: the worker can stand idle this long
#: with readings waiting.
FETCH_MAX_WAIT_MS = 100


class BatchingConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    """Fetches as aiokafka does, and makes each batched partition's records
    one :class:`RecordBatch` that knows the offsets it covers."""

    def _create_worker_consumer(self, transport):
        consumer = super()._create_worker_consumer(transport)
        # an upstream's aborted records must never count
        internals.tune_consumer(consumer, FETCH_MAX_WAIT_MS)
        return consumer

    async def _fetch_records(self, consumer, active_partitions, timeout=None, max_records=None):
        if not self.consumer.flow_active:
            return {}
        fetcher = internals.fetcher_of(consumer)
        if fetcher is None:
            raise ConsumerStoppedError()
        subscriptions = internals.subscriptions_of(fetcher)
        deadline = time.monotonic() + (timeout or 0.0)
        with subscriptions.fetch_context():
            while True:
                if subscriptions.reassignment_in_progress:
                    await subscriptions.wait_for_assignment()
                # Nothing awaits between reading the positions and draining
                # (timeout=0), so each partition's records start at its position.
                registry = batched(self.app)
                topics = registry.topics | registry.changelogs
                starts = self._positions(subscriptions, topics)
                hand_out_as_read(fetcher, topics)
                records = await fetcher.fetched_records(active_partitions, timeout=0, max_records=max_records)
                remaining = deadline - time.monotonic()
                records = self._batched(records, starts, self._positions(subscriptions, topics), topics,
                                        registry.topics)
                if records or remaining <= 0:
                    self.consumer.fetched(records)
                    return records
                waiter = internals.fetch_waiter(fetcher)
                done, pending = await asyncio.wait([waiter], timeout=remaining)
                if not done or internals.is_closed(fetcher):
                    for fut in pending:
                        fut.cancel()
                    return {}
                waiter.result()  # raises e.g. authorization errors, as aiokafka does

    @staticmethod
    def _positions(subscriptions, topics: set) -> dict:
        assignment = subscriptions.subscription.assignment if subscriptions.subscription else None
        if assignment is None:
            return {}
        positions = {}
        for tp in assignment.tps:
            if tp.topic in topics:
                state = assignment.state_value(tp)
                if state is not None and state.has_valid_position:
                    positions[tp] = state.position
        return positions

    @staticmethod
    def _batched(records: dict, starts: dict, ends: dict, topics: set, batched_topics: set) -> dict:
        for tp, recs in records.items():
            if recs and tp.topic in topics:
                first, last = recs[0].offset, recs[-1].offset
                start = min(starts.get(tp, first), first)
                end = max(ends.get(tp, last + 1) - 1, last)
                records[tp] = [batch_record(tp, recs, start, end)]
        # A fetch of nothing but transaction markers and aborted records still
        # moves the position: an empty batch carries the state past them, so
        # that the next batch continues it and the commit reaches the end.
        for tp, end in ends.items():
            start = starts.get(tp)
            if tp.topic in batched_topics and not records.get(tp) and start is not None and end > start:
                records[tp] = [batch_record(tp, [], start, end - 1)]
        return records


class _ReadOffsets(dict):
    """Faust's read offsets, ignored for batched topics: Faust drops a message
    below the read offset and commits over what it thinks is a gap, and
    neither holds for batches, which the state checks itself."""

    def __init__(self, batched_topics: set) -> None:
        super().__init__()
        self.batched_topics = batched_topics

    def __missing__(self, tp):
        return None

    def __getitem__(self, tp):
        if tp.topic in self.batched_topics:
            return None
        return super().__getitem__(tp)


class BatchingConsumer(aiokafka_driver.Consumer):
    """Faust's aiokafka consumer, with batches for the app's batched topics and
    their offsets taken from the state and the broker's acknowledgements."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batched = batched(self.app)
        self.progress = Progress()
        internals.replace_read_offsets(self, _ReadOffsets(self.batched.topics))
        self.deleted_before: dict = {}  # tp -> first offset left by retention, see rewind()
        self._rewinds: dict = {}  # tp -> (generation, offset, when)
        self._fetched_through: dict = {}  # tp -> last offset fetched in this generation
        self._behind: dict = {}  # tp -> (the state's next offset, since when it has not moved)
        self._busy: dict = {}  # topic -> its agent's batches in hand (taken, not yet done)
        self._idle_since: dict = {}  # topic -> when its agent last finished a batch (monotonic)
        self.owner_epochs: dict = {}  # tp -> the epoch this worker owns it in (humidity.core.ownership)
        #: tp -> the offset this worker resumed it at in this generation: what
        #: the batches before it produced is acknowledged (it was committed).
        self.resumed_at: dict = {}

    def fetched(self, records: dict) -> None:
        """Called by the consumer thread with each fetch."""
        for tp, recs in records.items():
            if tp.topic in self.batched.topics:
                self._fetched_through[tp] = recs[-1].value.end

    @contextmanager
    def working(self, topic: str) -> Iterator[None]:
        """Around an agent's work on batches of ``topic`` (handling them and
        waiting for the producer): the topic's agent is busy meanwhile."""
        self._busy[topic] = self._busy.get(topic, 0) + 1
        try:
            yield
        finally:
            self._busy[topic] -= 1
            self._idle_since[topic] = time.monotonic()

    def _idle(self, topic: str, now: float) -> bool:
        return not self._busy.get(topic) and now - self._idle_since.get(topic, 0.0) >= IDLE_FOR

    def _new_consumer_thread(self):
        return BatchingConsumerThread(self, loop=self.loop, beacon=self.beacon)

    # -- commits: what the broker has acknowledged, not what Faust acked

    def _new_offset(self, tp):
        if tp.topic not in self.batched.topics:
            return super()._new_offset(tp)
        internals.forget_acks(self, tp)
        try:
            return self.progress.committable(tp)
        except NotDelivered as exc:
            stop_worker(f"a message the tables depend on was not delivered, so nothing past it is committed: {exc}")
            return None

    async def _commit_offsets(self, offsets, start_new_transaction: bool = True) -> bool:
        if any(tp.topic not in self.batched.topics for tp in offsets):
            return await super()._commit_offsets(offsets, start_new_transaction)
        # Faust flushes its producer first, and that flush returns only after
        # 0.1 s without a message sent: while the agents keep the producer
        # busy it does not return at all, and no offset is committed. These
        # offsets already wait for the broker's acknowledgements.
        committable = {tp: offset for tp, offset in offsets.items() if tp in self.assignment()}
        if not committable:
            return False
        did_commit = await internals.commit(self, committable)
        if did_commit:
            self.app.tables.on_commit(committable)
        internals.record_committed(self, committable)
        self.app.monitor.on_tp_commit(committable)
        return did_commit

    def _filter_tps_with_pending_acks(self, topics=None):
        tps = set(super()._filter_tps_with_pending_acks(topics))
        tps.update(tp for tp in self.progress.partitions()
                   if topics is None or tp in topics or tp.topic in topics)
        return iter(tps)

    async def _commit_answered(self, tps) -> None:
        """Commit what became durable of ``tps`` after waiting briefly for it."""
        tps = [tp for tp in tps if tp.topic in self.batched.topics]
        if not tps:
            return
        await self.progress.wait_answered(tps, SETTLE_TIMEOUT)
        offsets = {}
        for tp in tps:
            offset = self._new_offset(tp)
            if offset is not None:
                offsets[tp] = offset
        if offsets:
            try:
                await internals.commit(self, offsets)
            except Exception as exc:  # noqa: BLE001 - the next owner re-reads from the last commit
                log.info("Final commit of %d partition(s) not made (%s)", len(offsets), exc)

    # -- rebalances

    async def on_partitions_revoked(self, revoked) -> None:
        await super().on_partitions_revoked(revoked)  # the agents finish their batches first
        if not self.app.should_stop:
            await self._commit_answered(revoked)
        self.progress.forget(revoked)

    async def on_partitions_assigned(self, assigned, generation_id: int = 0) -> None:
        self.progress.forget(self.progress.partitions())
        for bookkeeping in (self._rewinds, self._fetched_through, self._behind, self.owner_epochs, self.resumed_at):
            bookkeeping.clear()
        await super().on_partitions_assigned(assigned, generation_id)

    @Service.task
    async def _read_lost_batches_again(self) -> None:
        """A partition whose state stays behind what was fetched, with no batch
        arriving for it while its agent waits for one, lost its last batch:
        read it again from the state. (With the agent still busy, the batch
        may be queued: reading it again then would only fetch it twice.)"""
        while not self.should_stop:
            await self.sleep(BEHIND_FOR / 4)
            if not settled(self.app):
                continue
            now = time.monotonic()
            for tp, fetched in list(self._fetched_through.items()):
                state_next = self.batched.resume_at[tp.topic](tp.partition)
                behind = self._behind.get(tp)
                if fetched < state_next:
                    self._behind.pop(tp, None)
                elif behind is None or behind[0] != state_next:
                    self._behind[tp] = (state_next, now)
                elif now - behind[1] >= BEHIND_FOR and self._idle(tp.topic, now):
                    self._behind.pop(tp, None)
                    await self.rewind(tp, state_next, self.app.consumer_generation_id,
                                      f"the state stayed behind what was fetched for {BEHIND_FOR:.0f} s")

    async def on_stop(self) -> None:
        await super().on_stop()  # the agents finish; what is durable is committed
        await self._commit_answered(self.progress.partitions())

    async def perform_seek(self) -> None:
        """Seek to the committed offsets, then back to the state's next offset
        where the committed offset is past it (a commit of a previous owner or
        version that the state does not include)."""
        await super().perform_seek()
        for tp in sorted(self.assignment()):
            resume_at = self.batched.resume_at.get(tp.topic)
            if resume_at is None:
                continue
            state_next = resume_at(tp.partition)
            position = await internals.consumer_thread(self).position(tp)
            if position is not None and position > state_next:
                log.warning("%s[%d]: committed offset %d is past what the state includes; reading again from %d",
                            tp.topic, tp.partition, position, state_next)
                await self.seek_wait({tp: state_next})
            self.resumed_at[tp] = state_next if position is None else min(position, state_next)

    async def rewind(self, tp, offset: int, generation, why: str = "a batch did not follow the state") -> None:
        """Read ``tp`` again from ``offset``: a batch did not follow its state.

        Asked once per generation and offset (batches fetched before the seek
        still arrive and are not counted either), and again if it has not
        taken effect after a while. Where retention has deleted ``offset``,
        the partition resumes at its first remaining offset, loudly."""
        now = time.monotonic()
        previous = self._rewinds.get(tp)
        if previous and previous[:2] == (generation, offset) and now - previous[2] < REWIND_AGAIN_AFTER:
            return
        self._rewinds[tp] = (generation, offset, now)
        try:
            earliest = (await self.earliest_offsets(tp)).get(tp)
            if earliest is not None and earliest > offset:
                log.warning("%s[%d]: offsets %d to %d were deleted by retention before they were counted; "
                            "counting resumes at %d", tp.topic, tp.partition, offset, earliest - 1, earliest)
                self.deleted_before[tp] = offset = earliest
            log.info("%s[%d]: %s; reading again from offset %d", tp.topic, tp.partition, why, offset)
            await self.seek_wait({tp: offset})
        except Exception as exc:  # noqa: BLE001 - revoked meanwhile: its next owner resumes from the state
            log.info("%s[%d]: not sought back to %d (%s)", tp.topic, tp.partition, offset, exc)


class Transport(aiokafka_driver.Transport):
    """Faust's aiokafka transport with the batching consumer and the producer
    that reports what it queues."""

    Consumer = BatchingConsumer
    Producer = Producer
