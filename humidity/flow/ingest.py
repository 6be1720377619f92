"""Readings in: per-partition totals, dead letters, first sightings and
bundles for the alarms, by round (a flow).

Agent ``ingest`` gets one record batch of an input partition at a time
(:mod:`humidity.plumbing.stream`): it loads the partition's totals, applies
the pure rules of :mod:`humidity.core.aggregate` to the records that
continue them, writes the new totals (the entries of the devices the batch
touched, then the header with the offset) and new sightings, and queues
what it sends: dead letters, and per batch one bundle per sightings
partition (the first sightings whose guid lives there) and per alarm
partition (the valid readings of its loggers), each tagged with the
partition's current round, and per history partition (the valid readings
of its devices).

Rounds (:mod:`humidity.core.rounds`): when the clock passes the end of a
partition's round, before its next batch or on a timer if no batch comes,
the round is closed: the totals at that moment go to the partials topic as
the partition's figures for the round (every device at the first close of
a generation and every BASE_EVERY rounds, otherwise those that changed since
the previous close: :class:`humidity.core.partials.Sharer`), and an end mark
to every sightings and alarm partition.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from humidity.application import HumidityApp
from humidity.core import aggregate, formats, messages
from humidity.core.alarms import alarm_partition_of
from humidity.core.partials import INGEST, Sharer, partial_key
from humidity.core.readings import dead_letter
from humidity.core.rounds import first_round, round_length, round_of
from humidity.declare.metrics import Metrics
from humidity.declare.topics import Topics
from humidity.plumbing.assignment import owned_partitions
from humidity.plumbing.kafka_admin import key_partition
from humidity.plumbing.record_batches import batched
from humidity.plumbing.stream import GenerationCache, PartitionWork, load_json, per_batch, resume_from, resumed_at
from humidity.plumbing.tables import partition_get, partition_range
from tables import Tables

#: Device names whose history partition is remembered, at most.
DEVICE_PARTITIONS_MAX = 100_000
#: Sightings remembered per partition, at most (the table has them all;
#: memory stays bounded however many sensors).
KNOWN_SIGHTINGS_MAX = 100_000


@dataclass
class InputPartition:
    """What this worker keeps in memory of an input partition it owns, for one generation."""

    totals: aggregate.IngestTotals
    #: The offset through which the partition's forwards are queued (an end mark claims no more).
    sent: int
    #: The round its batches are tagged with now (None until the first batch or idle close).
    open_round: int | None = None
    #: Devices whose figures changed since the last partial.
    changed: set[str] = field(default_factory=set)
    sharer: Sharer = field(default_factory=Sharer)


class IngestFlow:
    def __init__(self, app: HumidityApp, topics: Topics, tables: Tables, metrics: Metrics) -> None:
        self.app, self.settings, self.topics, self.tables, self.metrics = app, app.settings, topics, tables, metrics
        self.round_length = round_length(self.settings.interval)
        #: Sightings already known in each partition (key -> first offset),
        #: so most readings need no table read.
        self.known_sightings = GenerationCache()
        #: device name -> its history partition (Kafka's key hash is slow in Python).
        self.device_partitions: dict[str, int] = {}
        #: Each owned partition's :class:`InputPartition`. While it owns a
        #: partition this worker is the only writer of its totals, so they are
        #: parsed once per generation, not per batch and round (they list every device).
        self.input_partitions = GenerationCache(self._load)
        batched(app).resume_at[topics.input.get_topic_name()] = resume_from(tables.ingest_totals)
        self.agent = app.agent(topics.input, name="ingest")(self.run)
        app.timer(self.round_length / 2)(self.close_idle_rounds)

    async def run(self, stream) -> None:
        """Parse readings, count them per partition, forward first sightings and readings for alarms."""
        await per_batch(stream, self.ingest_partition)

    def ingest_partition(self, work: PartitionWork) -> None:
        tables = self.tables
        with work.current():
            held = self.input_partitions.for_partition(work.partition, work.generation)
            totals = held.totals
            rows = work.follow(totals.offset)
            if rows is None:
                return
            current_round = self._round_for(work.partition, held)
            known = self.known_sightings.for_partition(work.partition, work.generation)

            def sighting_offset(key: str) -> int | None:
                offset = known.get(key)
                if offset is None:
                    raw = partition_get(tables.sightings, work.partition, key)
                    if raw is not None:
                        offset = known[key] = aggregate.sighting_offset(raw)
                return offset

            before = (totals.valid, totals.invalid)
            totals.epoch = work.epoch(totals.epoch)
            totals.last_round = current_round
            outcome = aggregate.ingest(totals, [(offset, value) for offset, _key, value in rows],
                                       sighting_offset, through=work.through)
            if len(known) + len(outcome.new_sightings) > KNOWN_SIGHTINGS_MAX:
                known.clear()
            for key, offset in outcome.new_sightings.items():
                tables.sightings[key] = aggregate.sighting_value(offset)
                known[key] = offset
            for key, value in aggregate.stored_records(work.partition, totals):
                tables.ingest_totals[key] = value
            held.changed.update(totals.unsaved)
            # queued before any end mark that follows; a batch re-read below the
            # state's offset repeats its forwards only, not those past it
            held.sent = max(held.sent, work.read_through)
            totals.unsaved.clear()
        source = {"p": work.partition, "round": current_round, "o": totals.offset}
        self.forward_sightings(source, outcome.forwards)
        rows = [[r.guid, r.device, r.event_time.timestamp(), r.humidity, offset] for offset, r in outcome.readings]
        self.forward_for_alarms(source, rows)
        self.forward_for_history(work.partition, totals.offset, rows)
        self.metrics.readings_processed.labels(result="valid").inc(totals.valid - before[0])
        self.metrics.readings_processed.labels(result="invalid").inc(totals.invalid - before[1])
        if outcome.dead_letters:
            now = datetime.now(UTC)
            for offset, reason, raw in outcome.dead_letters:
                record = dead_letter(reason, raw, topic=self.settings.input_topic, partition=work.partition,
                                     offset=offset, now=now)
                self.topics.invalid.send_soon(value=orjson.dumps(record))

    def forward_sightings(self, source: dict, forwards: list[tuple[str, str]]) -> None:
        """One bundle per sightings partition: each sensor is counted on the
        partition its guid hashes to, as Kafka would place it as a key."""
        bundles: dict[int, list] = {}
        for guid, device in forwards:
            partition = key_partition(guid.encode("utf-8", "surrogatepass"), self.settings.partitions)
            bundles.setdefault(partition, []).append([guid, device])
        for partition, sightings in bundles.items():
            self.topics.sightings.send_soon(key=messages.SIGHTINGS, value=messages.sightings_bundle(source, sightings),
                                            partition=partition)

    def forward_for_alarms(self, source: dict, rows: list[list]) -> None:
        """One bundle per alarm partition: a logger's readings all meet there."""
        bundles: dict[int, list] = {}
        for row in rows:
            bundles.setdefault(alarm_partition_of(row[0], self.settings.partitions), []).append(row[:4])
        for partition, part in bundles.items():
            self.topics.alarm_readings.send_soon(key=messages.READINGS, value=messages.readings_bundle(source, part),
                                                 partition=partition)

    def forward_for_history(self, partition: int, offset: int, rows: list[list]) -> None:
        """One bundle per history partition: a device's readings all meet
        there, each with its input offset (the history tells a reading sent
        again, after a replay of this partition, by its input offset)."""
        bundles: dict[int, list] = {}
        for row in rows:
            target = self.device_partitions.get(row[1])
            if target is None:
                if len(self.device_partitions) >= DEVICE_PARTITIONS_MAX:
                    self.device_partitions.clear()
                target = self.device_partitions[row[1]] = key_partition(
                    row[1].encode("utf-8", "surrogatepass"), self.settings.partitions)
            bundles.setdefault(target, []).append(row)
        for target, part in bundles.items():
            self.topics.history_readings.send_soon(
                key=messages.READINGS, value=messages.history_bundle(partition, offset, part), partition=target)

    # -- rounds

    def _load(self, partition: int) -> InputPartition:
        """An input partition as this worker takes it over: its stored totals,
        and the offset through which its forwards are known to be sent."""
        table = self.tables.ingest_totals
        entries = aggregate.device_entries(
            partition, partition_range(table, partition, aggregate.device_entry_prefix(partition)))
        totals = aggregate.IngestTotals.from_stored(load_json(table.get(str(partition))), entries)
        resumed = resumed_at(self.app, self.settings.input_topic, partition)
        return InputPartition(totals, totals.offset if resumed is None else min(totals.offset, resumed - 1))

    def _round_for(self, partition: int, held: InputPartition) -> int:
        """The round a batch of ``partition`` belongs to, closing the one before if it ended."""
        now = time.time()
        if held.open_round is None:
            held.open_round = first_round(now, self.round_length, held.totals.last_round)
        clock = round_of(now, self.round_length)
        if clock > held.open_round:
            self._close(partition, held.open_round, held)
            held.open_round = clock
        return held.open_round

    def _close(self, partition: int, closing: int, held: InputPartition) -> None:
        """The partition's figures as of round ``closing``, and its end on
        every second-hop partition. The end claims only the offsets whose
        forwards are in the log before it: a new owner's first batches may
        repeat forwards that its predecessor's crash lost."""
        totals = held.totals
        end = messages.end_mark(partition, closing, min(totals.offset, held.sent))
        for target in range(self.settings.partitions):
            self.topics.sightings.send_soon(key=messages.END, value=end, partition=target)
            self.topics.alarm_readings.send_soon(key=messages.END, value=end, partition=target)
        devices = totals.devices

        def figures(names) -> dict:
            return {d: [devices[d].partials, devices[d].count] for d in names}

        share = {**totals.header_json(), "round": closing, "devices": figures(held.changed)}
        for doc in held.sharer.docs([(closing, share)], lambda: figures(devices)):
            self.topics.partials.send_soon(key=partial_key(INGEST, partition).encode(), value=formats.dumps(doc))
        held.changed.clear()

    async def close_idle_rounds(self) -> None:
        """Close the rounds of owned partitions that had no batch since they ended."""
        generation = self.app.consumer_generation_id
        for partition in owned_partitions(self.app, self.topics.input.get_topic_name()):
            self._round_for(partition, self.input_partitions.for_partition(partition, generation))
