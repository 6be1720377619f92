"""Agents: readings in, per-partition totals out (Faust wiring, kept thin).

Each agent takes a batch of records of one partition (one event per fetched
batch, see :mod:`humidity.batching`): loads that partition's
totals, applies the pure rules of :mod:`humidity.aggregate`, writes the new
values (one changelog message per changed key, not per reading) and queues
what it sends. The batch is acknowledged only after that, so a committed
offset never runs ahead of what the tables hold.

The work on a batch does not await: a shutdown or rebalance cannot cut it in
half. An unexpected error stops the worker at once, before the batch is
acknowledged, so that nothing is committed for readings that were not counted.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterator, Optional

import orjson
from faust.streams import _current_event  # the event table writes are partitioned by

from app import app, settings
from humidity import aggregate, metrics
from humidity.batching import RESUME_AT, contiguous, producing, records_of, stop_worker
from humidity.ownership import claimed_epoch
from humidity.readings import dead_letter
from humidity.topics import alarm_readings_topic, input_topic, invalid_topic, sightings_topic
from tables import ingest_totals, sensor_totals, sensors, sightings

log = logging.getLogger(__name__)

BATCH_MAX = 5000  # events per batch
PRODUCER_BACKLOG_MAX = 5_000  # messages queued for the producer before agents wait
PRODUCER_POLL = 0.005  # seconds between looks at the producer's queue while waiting


def by_partition(events: list) -> dict[int, list]:
    groups: dict[int, list] = {}
    for event in events:
        groups.setdefault(event.message.partition, []).append(event)
    return groups


@contextmanager
def writing_for(event) -> Iterator[None]:
    """Make ``event`` current, so table reads and writes use its partition."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def load_json(raw: Optional[bytes]) -> Optional[dict]:
    return orjson.loads(raw) if raw is not None else None


def _offset(raw: Optional[bytes]) -> Optional[int]:
    return int(raw) if raw is not None else None


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


#: Sightings already known in each partition (key -> first offset), so most
#: readings need no table read.
sighting_cache = GenerationCache()
#: The epoch this worker owns each partition in (humidity.ownership), claimed
#: at its first batch of a generation: topic -> partition -> epoch.
owner_epochs = GenerationCache()


@dataclass
class Batches:
    """The batch events of one partition that follow its state, as one."""

    partition: int
    events: list
    through: int  # the last offset they cover

    def rows(self) -> list:
        return [row for event in self.events for row in records_of(event)]

    def epoch(self, stored: int) -> int:
        """This worker's epoch for the partition (claimed above ``stored``)."""
        message = self.events[-1].message
        claims = owner_epochs.for_partition(self.partition, message.generation_id)
        if message.topic not in claims:
            claims[message.topic] = claimed_epoch(stored, message.generation_id or 0)
        return claims[message.topic]


def following(events: list, recorded: int) -> tuple[Optional[Batches], Optional[int]]:
    """The events that follow a state including offsets up to ``recorded``
    (None if none do), and the offset to read again from if some do not."""
    tp = events[-1].message.tp
    usable, rewind_to = contiguous(events, recorded, app.consumer.deleted_before.get(tp))
    if not usable:
        return None, rewind_to
    through = max(recorded, records_of(usable[-1]).end)
    return Batches(events[-1].message.partition, usable, through), rewind_to


def fatal(what: str) -> None:
    stop_worker(f"unexpected error in {what}; the batch is not acknowledged")


def ingest_partition(partition: int, events: list) -> tuple[Optional[int], Optional[int]]:
    with writing_for(events[-1]):
        totals = aggregate.IngestTotals.from_json(load_json(ingest_totals.get(str(partition))))
        batches, rewind_to = following(events, totals.offset)
        if batches is None:
            return None, rewind_to
        known = sighting_cache.for_partition(partition, events[-1].message.generation_id)

        def sighting_offset(key: str) -> Optional[int]:
            offset = known.get(key)
            if offset is None:
                offset = _offset(sightings.get(key))
                if offset is not None:
                    known[key] = offset
            return offset

        before = (totals.valid, totals.invalid)
        totals.epoch = batches.epoch(totals.epoch)
        outcome = aggregate.ingest(totals, [(offset, value) for offset, _key, value in batches.rows()],
                                   sighting_offset, through=batches.through)
        for key, offset in outcome.new_sightings.items():
            sightings[key] = str(offset).encode()
            known[key] = offset
        ingest_totals[str(partition)] = orjson.dumps(totals.to_json())
    for guid, device in outcome.forwards:
        sightings_topic.send_soon(key=guid.encode(), value=device.encode())
    forward_for_alarms(outcome.readings)
    metrics.readings_processed.labels(result="valid").inc(totals.valid - before[0])
    metrics.readings_processed.labels(result="invalid").inc(totals.invalid - before[1])
    if outcome.dead_letters:
        now = datetime.now(timezone.utc)
        for offset, reason, raw in outcome.dead_letters:
            record = dead_letter(reason, raw, topic=settings.input_topic, partition=partition,
                                 offset=offset, now=now)
            invalid_topic.send_soon(value=orjson.dumps(record))
    return batches.through, rewind_to


def alarm_partition_of(guid: str) -> int:
    return zlib.crc32(guid.encode("utf-8", "surrogatepass")) % settings.partitions


def forward_for_alarms(readings: list) -> None:
    """One bundle per alarm partition: a logger's readings all meet there."""
    bundles: dict[int, list] = {}
    for r in readings:
        bundles.setdefault(alarm_partition_of(r.guid), []).append(
            [r.guid, r.device, r.event_time.timestamp(), r.humidity])
    for partition, rows in bundles.items():
        alarm_readings_topic.send_soon(key=b"r", value=orjson.dumps({"r": rows}), partition=partition)


def count_partition(partition: int, events: list) -> tuple[Optional[int], Optional[int]]:
    with writing_for(events[-1]):
        totals = aggregate.SensorTotals.from_json(load_json(sensor_totals.get(str(partition))))
        batches, rewind_to = following(events, totals.offset)
        if batches is None:
            return None, rewind_to
        totals.epoch = batches.epoch(totals.epoch)
        outcome = aggregate.count_sensors(
            totals,
            [(offset, key.decode("utf-8", "replace"), value.decode("utf-8", "replace"))
             for offset, key, value in batches.rows() if key is not None and value is not None],
            lambda guid: load_json(sensors.get(guid)),
            through=batches.through, epoch=totals.epoch,
        )
        for guid, entry in outcome.entries.items():
            sensors[guid] = orjson.dumps(entry)
        sensor_totals[str(partition)] = orjson.dumps(totals.to_json())
    return batches.through, rewind_to


async def producer_caught_up() -> None:
    """Wait while more than PRODUCER_BACKLOG_MAX messages are still to be sent.

    Table writes and ``send_soon`` only queue messages (changelogs, forwards,
    bundles); Faust's producer buffer has no bound, and at full speed with a
    large fleet (a first pass over 100,000 sensors writes several messages per
    sensor) the agents queue faster than it sends: the queue, not the data,
    then held most of a gigabyte. Each agent checks between batches, so memory
    stays bounded and the pipeline runs at the producer's pace instead.
    """
    buffer = app.producer.buffer
    while buffer.size > PRODUCER_BACKLOG_MAX:
        await asyncio.sleep(PRODUCER_POLL)  # the producer task drains it meanwhile


async def per_batch(stream, handle, within: Optional[float] = None) -> None:
    """The loop of every agent: one event per fetched record batch of a
    partition (:mod:`humidity.batching`), or the batches of ``within``
    seconds, handled per partition by ``handle(partition, events)``, which
    returns (the last offset now in the state or None, the offset to read
    again from or None). The handled offsets become committable once all
    that ``handle`` produced is acknowledged by the broker."""
    consumer = app.consumer
    groups = stream.take_events(BATCH_MAX, within=within) if within else _singly(stream.events())
    async for events in groups:
        for partition, group in by_partition(events).items():
            tp, generation = group[-1].message.tp, group[-1].message.generation_id
            with producing() as produced:
                try:
                    through, rewind_to = handle(partition, group)
                except Exception:  # noqa: BLE001
                    fatal(handle.__name__)
            if through is not None:
                consumer.progress.handled(tp, through, produced)
            if rewind_to is not None:
                await consumer.rewind(tp, rewind_to, generation)
        await producer_caught_up()


async def _singly(events):
    async for event in events:
        yield [event]


def resume_at(table) -> Callable[[int], int]:
    """The offset a partition's state resumes at: what its totals include, + 1."""
    def resume_at(partition: int) -> int:
        doc = load_json(table.get(str(partition)))
        return (int(doc["offset"]) if doc else -1) + 1
    return resume_at


RESUME_AT[settings.input_topic] = resume_at(ingest_totals)
RESUME_AT[settings.sightings_topic] = resume_at(sensor_totals)


@app.agent(input_topic)
async def ingest(stream):
    """Parse readings, count them per partition, forward first sightings and readings for alarms."""
    await per_batch(stream, ingest_partition)


@app.agent(sightings_topic)
async def count_sensors(stream):
    """Count distinct sensors per device and overall, per guid partition."""
    await per_batch(stream, count_partition)
