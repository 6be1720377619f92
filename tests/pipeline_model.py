"""A model of the counting path without a broker: input partitions whose
owners ingest, forward sightings and close rounds; sightings partitions whose
owners count; the publisher's book and summary. Every step calls the pure
rules the flows call (``ingest``, ``count_sensors``, ``Sharer``,
``PartialsBook``, ``build_summary``) in the order the flows do; what Kafka
and the tables do between them (logs, per-producer order, changelogs that a
crash cuts short, redelivery from a committed offset) is modelled here.

A test drives it step by step and checks each summary against
``tests/reference.py`` at the summary's ``as_of``.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from humidity.core import aggregate
from humidity.core.partials import ALARMS, INGEST, SENSORS, PartialsBook, Sharer, partial_key
from humidity.core.sensor_counts import SensorTotals, count_sensors
from humidity.core.summary import Previous, SummaryMemo, build_summary
from tests.reference import Reference

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def sightings_partition(guid: str, partitions: int) -> int:
    """Any function of the guid does for the model (the flow uses Kafka's key hash)."""
    return zlib.crc32(guid.encode("utf-8", "surrogatepass")) % partitions


@dataclass
class InputOwner:
    """The owner of one input partition, and what its tables hold durably."""

    totals: aggregate.IngestTotals
    open: int  # the round its batches are tagged with
    generation: int
    resume: int  # the next input offset it reads
    sent: int = -1  # the offset through which its forwards are sent (or were, as far as committed)
    sharer: Sharer = field(default_factory=Sharer)
    changed: set[str] = field(default_factory=set)
    known: dict[str, int] = field(default_factory=dict)


@dataclass
class SightingsOwner:
    totals: SensorTotals
    next: int  # the next sightings offset it reads
    sharer: Sharer = field(default_factory=Sharer)


@dataclass
class Store:
    """A partition's durable state: the records of its last batch and of the one before."""

    records: dict = field(default_factory=dict)
    before: dict = field(default_factory=dict)  # as it was before the last batch
    batch_start: int = 0  # the first offset of the last batch


class Pipeline:
    def __init__(self, streams: list[list[tuple[bytes, dict | None]]]) -> None:
        self.partitions = len(streams)
        self.inputs = streams  # per input partition: (raw, reading doc or None)
        self.logs: list[list[dict]] = [[] for _ in range(self.partitions)]  # the sightings topic
        #: Per (input partition, generation of its owner), per sightings
        #: partition: what that producer sent and the topic has not appended
        #: yet (one producer keeps its order; two producers interleave).
        self.pipes: dict[tuple[int, int], list[list[tuple[int, dict]]]] = {}
        self.ingest_stores = [Store() for _ in range(self.partitions)]
        self.sightings_tables: list[dict[str, int]] = [{} for _ in range(self.partitions)]
        self.sensor_stores = [Store() for _ in range(self.partitions)]
        self.sensor_entries = [Store() for _ in range(self.partitions)]  # guid -> entry
        self.epochs = [0] * (2 * self.partitions)
        self.owners = [self._own_input(p, 0, 0) for p in range(self.partitions)]
        self.counters = [self._own_sightings(q, 0) for q in range(self.partitions)]
        self.book = PartialsBook(self.partitions)
        self.previous: Previous | None = None
        self.memo = SummaryMemo()
        self.summaries: list[dict] = []

    # -- owners

    def _own_input(self, p: int, resume: int, open_round: int) -> InputOwner:
        """A new owner: it resumes at ``resume`` or past its state's offset,
        whichever is lower, in round ``open_round`` or past its state's last."""
        store = self.ingest_stores[p].records
        entries = aggregate.device_entries(p, sorted((k, v) for k, v in store.items() if isinstance(k, bytes)))
        totals = aggregate.IngestTotals.from_stored(_loaded(store.get(str(p))), entries)
        self.epochs[p] += 1
        totals.epoch = self.epochs[p]
        resume = min(resume, totals.offset + 1)
        return InputOwner(totals, max(open_round, totals.last_round + 1), self.epochs[p], resume, resume - 1)

    def _own_sightings(self, q: int, resume: int) -> SightingsOwner:
        store = self.sensor_stores[q].records
        entries = aggregate.device_entries(q, sorted((k, v) for k, v in store.items() if isinstance(k, bytes)))
        totals = SensorTotals.from_stored(_loaded(store.get(str(q))), entries, self.partitions)
        self.epochs[self.partitions + q] += 1
        totals.epoch = self.epochs[self.partitions + q]
        return SightingsOwner(totals, min(resume, totals.offset + 1))

    # -- the first hop

    def ingest(self, p: int, count: int) -> None:
        """The owner of input partition ``p`` takes its next ``count`` messages as one batch."""
        owner = self.owners[p]
        start = owner.resume
        batch = [(o, self.inputs[p][o][0]) for o in range(start, min(start + count, len(self.inputs[p])))]
        if not batch:
            return
        owner.resume = batch[-1][0] + 1
        table = self.sightings_tables[p]

        def sighting_offset(key: str) -> int | None:
            return owner.known.get(key, table.get(key))

        totals = owner.totals
        totals.last_round = owner.open
        outcome = aggregate.ingest(totals, batch, sighting_offset)
        table.update(outcome.new_sightings)
        owner.known.update(outcome.new_sightings)
        store = self.ingest_stores[p]
        _begin(store, start)
        store.records.update(aggregate.stored_records(p, totals))
        owner.sent = max(owner.sent, batch[-1][0])
        owner.changed |= totals.unsaved
        totals.unsaved.clear()
        source = {"p": p, "round": owner.open, "o": totals.offset}
        bundles: dict[int, list] = {}
        for guid, device in outcome.forwards:
            bundles.setdefault(sightings_partition(guid, self.partitions), []).append([guid, device])
        for q, sightings in bundles.items():
            self._send(p, q, start, {**source, "s": sightings})

    def close_round(self, p: int, skip: int = 0) -> None:
        """The clock passes the end of ``p``'s round: its figures go to the
        book, its end mark to every sightings partition."""
        owner = self.owners[p]
        totals = owner.totals
        for q in range(self.partitions):
            self._send(p, q, None, {"p": p, "end": owner.open, "o": min(totals.offset, owner.sent)})
        devices = totals.devices

        def figures(names) -> dict:
            return {d: [devices[d].partials, devices[d].count] for d in names}

        share = {**totals.header_json(), "round": owner.open, "devices": figures(owner.changed)}
        for doc in owner.sharer.docs([(owner.open, share)], lambda: figures(devices)):
            self.book.update(partial_key(INGEST, p), orjson.loads(orjson.dumps(doc)))
        self.book.update(partial_key(ALARMS, p), {"round": owner.open, "offset": totals.offset, "active": []})
        owner.changed.clear()
        owner.open += 1 + skip

    def _send(self, p: int, q: int, batch_start: int | None, message: dict) -> None:
        pipes = self.pipes.setdefault((p, self.owners[p].generation), [[] for _ in range(self.partitions)])
        pipes[q].append((batch_start, message))

    def deliver(self, q: int, choice: int) -> bool:
        """Append the next message of one producer's pipe to sightings partition ``q``."""
        ready = [pipes[q] for pipes in self.pipes.values() if pipes[q]]
        if not ready:
            return False
        self.logs[q].append(ready[choice % len(ready)].pop(0)[1])
        return True

    def move_input(self, p: int, back: int, rounds_ahead: int, lose_outputs: bool) -> None:
        """Input partition ``p`` changes owner, which re-reads from the
        committed offset: ``back`` before the old owner's position, and never
        past a batch whose output the topic does not have yet (a commit waits
        for it). With ``lose_outputs`` the old owner died with that output;
        otherwise it was paused and sends it later, interleaved with the new
        owner's."""
        old = self.owners[p]
        key = (p, old.generation)
        pipes = self.pipes.pop(key, []) if lose_outputs else self.pipes.get(key, [])
        starts = [start for pipe in pipes for start, _ in pipe if start is not None]
        resume = min([old.resume - back, *starts])
        self.owners[p] = self._own_input(p, max(0, resume), old.open + rounds_ahead)

    # -- the second hop

    def count(self, q: int, count: int) -> None:
        """The owner of sightings partition ``q`` counts its next ``count`` messages as one batch."""
        counter = self.counters[q]
        start = counter.next
        messages = [(o, self.logs[q][o]) for o in range(start, min(start + count, len(self.logs[q])))]
        if not messages:
            return
        counter.next = messages[-1][0] + 1
        entries = self.sensor_entries[q]
        outcome = count_sensors(counter.totals, messages, lambda g: _loaded(entries.records.get(g)),
                                          epoch=counter.totals.epoch)
        _begin(entries, start)
        entries.records.update({g: orjson.dumps(e) for g, e in outcome.entries.items()})
        store = self.sensor_stores[q]
        _begin(store, start)
        store.records.update(aggregate.stored_records(q, counter.totals))
        counter.totals.unsaved.clear()
        if outcome.closed:
            totals = counter.totals
            shares = [(tagged, {"round": tagged, "offset": totals.offset, "epoch": totals.epoch, **c.to_json()})
                      for tagged, c in outcome.closed]
            for doc in counter.sharer.docs(shares, lambda: dict(totals.counts.devices)):
                self.book.update(partial_key(SENSORS, q), orjson.loads(orjson.dumps(doc)))

    def move_sightings(self, q: int, back: int, lose: str) -> None:
        """Sightings partition ``q`` changes owner; ``lose``: what a crash
        cut from the changelogs of its last batch ("", "totals", "entries"
        or "both"). A batch that lost anything was not committed."""
        resume = self.counters[q].next - back
        for name, store in (("totals", self.sensor_stores[q]), ("entries", self.sensor_entries[q])):
            if lose in (name, "both"):
                store.records = dict(store.before)
        if lose:
            resume = min(resume, self.sensor_stores[q].batch_start)
        self.counters[q] = self._own_sightings(q, max(0, resume))

    # -- the publisher

    def publish(self) -> dict | None:
        cut = self.book.newest_cut(self.previous.as_of if self.previous else None)
        if cut is None:
            return None
        summary, self.previous = build_summary(cut, NOW, 3.0, self.previous, self.memo)
        self.book.forget_before(cut.round)
        self.summaries.append(summary)
        return summary

    def expected(self, as_of: dict[str, int]) -> dict:
        """The reference summary of every message at or below ``as_of``."""
        reference = Reference()
        for p, stream in enumerate(self.inputs):
            for _raw, doc in stream[:as_of[str(p)] + 1]:
                reference.add(doc)
        return reference.summary()

    def drain(self) -> None:
        """Run every owner to the end of its input, and every round to a close."""
        for _ in range(3):
            target = max(owner.open for owner in self.owners)  # the clocks agree again
            for p in range(self.partitions):
                self.ingest(p, len(self.inputs[p]))
                while self.owners[p].open <= target:
                    self.close_round(p)
            for q in range(self.partitions):
                while self.deliver(q, 0):
                    pass
                self.count(q, len(self.logs[q]))


def _begin(store: Store, start: int) -> None:
    store.before, store.batch_start = dict(store.records), start


def _loaded(raw):
    return None if raw is None else orjson.loads(raw) if isinstance(raw, bytes) else raw
