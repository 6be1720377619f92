"""Agents: readings in, per-partition totals out (Faust wiring, kept thin).

Each agent takes a batch of events, and per partition: loads that partition's
totals, applies the pure rules of :mod:`humidity.aggregate`, writes the new
values (one changelog message per changed key, not per reading) and queues
what it sends. The batch is acknowledged only after that, so a committed
offset never runs ahead of what the tables hold.

The work on a batch does not await: a shutdown or rebalance cannot cut it in
half. An unexpected error stops the worker at once, before the batch is
acknowledged, so that nothing is committed for readings that were not counted.
"""

from __future__ import annotations

import logging
import os
import weakref
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator, Optional

import orjson
from faust.streams import _current_event  # the event table writes are partitioned by

from app import app, settings
from humidity import aggregate
from humidity.readings import dead_letter
from humidity.topics import input_topic, invalid_topic, sightings_topic
from tables import ingest_totals, sensor_totals, sensors, sightings

log = logging.getLogger(__name__)

BATCH_MAX = 5000  # events per batch
BATCH_WITHIN = 0.25  # seconds to wait for a batch to fill


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


def _json(raw: Optional[bytes]) -> Optional[dict]:
    return orjson.loads(raw) if raw is not None else None


def _offset(raw: Optional[bytes]) -> Optional[int]:
    return int(raw) if raw is not None else None


def _fatal(what: str) -> None:
    log.critical("Stopping the worker: unexpected error in %s; the batch is not acknowledged", what,
                 exc_info=True)
    logging.shutdown()
    os._exit(70)


def ingest_partition(partition: int, events: list) -> None:
    with writing_for(events[-1]):
        totals = aggregate.IngestTotals.from_json(_json(ingest_totals.get(str(partition))))
        outcome = aggregate.ingest(
            totals,
            [(e.message.offset, e.value) for e in events],
            lambda key: _offset(sightings.get(key)),
        )
        for key, offset in outcome.new_sightings.items():
            sightings[key] = str(offset).encode()
        ingest_totals[str(partition)] = orjson.dumps(totals.to_json())
    for guid, device in outcome.forwards:
        sightings_topic.send_soon(key=guid.encode(), value=device.encode())
    if outcome.dead_letters:
        now = datetime.now(timezone.utc)
        for offset, reason, raw in outcome.dead_letters:
            record = dead_letter(reason, raw, topic=settings.input_topic, partition=partition,
                                 offset=offset, now=now)
            invalid_topic.send_soon(value=orjson.dumps(record))


def count_partition(partition: int, events: list) -> None:
    with writing_for(events[-1]):
        totals = aggregate.SensorTotals.from_json(_json(sensor_totals.get(str(partition))))
        outcome = aggregate.count_sensors(
            totals,
            [(e.message.offset, e.key.decode("utf-8", "replace"), e.value.decode("utf-8", "replace"))
             for e in events if e.key is not None and e.value is not None],
            lambda guid: _json(sensors.get(guid)),
        )
        for guid, entry in outcome.entries.items():
            sensors[guid] = orjson.dumps(entry)
        sensor_totals[str(partition)] = orjson.dumps(totals.to_json())


@app.agent(input_topic)
async def ingest(stream):
    """Parse readings, count them per partition, forward first sightings."""
    async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
        try:
            for partition, group in by_partition(events).items():
                ingest_partition(partition, group)
        except Exception:  # noqa: BLE001
            _fatal("ingest")


@app.agent(sightings_topic)
async def count_sensors(stream):
    """Count distinct sensors per device and overall, per guid partition."""
    async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
        try:
            for partition, group in by_partition(events).items():
                count_partition(partition, group)
        except Exception:  # noqa: BLE001
            _fatal("count_sensors")
