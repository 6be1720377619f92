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
import time
import weakref
import zlib
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator, Optional

import orjson
from faust.streams import _current_event  # the event table writes are partitioned by

from app import alarm_config, app, settings
from humidity import aggregate, alarms, metrics
from humidity.readings import dead_letter
from humidity.topics import alarm_readings_topic, alerts_topic, input_topic, invalid_topic, sightings_topic
from tables import (
    alarm_states, alarm_totals, ingest_totals, partition_items, sensor_totals, sensors, sightings,
)

log = logging.getLogger(__name__)

BATCH_MAX = 5000  # events per batch
BATCH_WITHIN = 0.25  # seconds to wait for a batch to fill
ALARM_BATCH_WITHIN = 1.0  # alarms are judged on event time spans of a minute or more


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


class SightingCache:
    """Sightings already known in each partition, so most readings need no
    table read. Valid for one consumer generation only: within a generation a
    partition does not change hands, and the cache is dropped at the next."""

    def __init__(self) -> None:
        self.generation = None
        self.known: dict[int, dict[str, int]] = {}

    def for_partition(self, partition: int, generation) -> dict[str, int]:
        if generation != self.generation:
            self.generation = generation
            self.known = {}
        return self.known.setdefault(partition, {})


sighting_cache = SightingCache()


def _fatal(what: str) -> None:
    log.critical("Stopping the worker: unexpected error in %s; the batch is not acknowledged", what,
                 exc_info=True)
    logging.shutdown()
    os._exit(70)


def ingest_partition(partition: int, events: list) -> None:
    known = sighting_cache.for_partition(partition, events[-1].message.generation_id)

    def sighting_offset(key: str) -> Optional[int]:
        offset = known.get(key)
        if offset is None:
            offset = _offset(sightings.get(key))
            if offset is not None:
                known[key] = offset
        return offset

    with writing_for(events[-1]):
        totals = aggregate.IngestTotals.from_json(_json(ingest_totals.get(str(partition))))
        before = (totals.valid, totals.invalid)
        outcome = aggregate.ingest(totals, [(e.message.offset, e.value) for e in events], sighting_offset)
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


def alarm_key(alarm: dict) -> str:
    return orjson.dumps([alarm["kind"], alarm["device"], alarm["guid"]]).decode()


class AlarmIndex:
    """When each logger of a partition was last heard from (wall clock), and
    whether it is known to be OFFLINE; rebuilt from RocksDB per generation."""

    def __init__(self) -> None:
        self.generation = None
        self.partitions: dict[int, dict[str, list]] = {}

    def for_partition(self, partition: int, generation) -> dict[str, list]:
        if generation != self.generation:
            self.generation, self.partitions = generation, {}
        index = self.partitions.get(partition)
        if index is None:
            index = self.partitions[partition] = {}
            for key, value in partition_items(alarm_states, partition):
                state = orjson.loads(value)
                index[key.decode()] = [state["seen_wall"] or 0.0, alarms.OFFLINE in state["active"]]
        return index


alarm_index = AlarmIndex()
RECENT_EVENTS = 500  # per partition: re-sent after a crash that may have cut their delivery


def alarm_partition(partition: int, events: list) -> None:
    wall = time.time()
    index = alarm_index.for_partition(partition, events[-1].message.generation_id)
    loaded: dict[str, alarms.LoggerState] = {}
    out: list[dict] = []
    with writing_for(events[-1]):
        totals = _json(alarm_totals.get(str(partition))) or {"offset": -1, "active": {}, "recent": []}

        def state_of(key: str, device: str, guid: str) -> alarms.LoggerState:
            if key not in loaded:
                doc = _json(alarm_states.get(key))
                loaded[key] = alarms.LoggerState.from_json(doc) if doc else alarms.LoggerState(device, guid)
            return loaded[key]

        for event in events:
            offset = event.message.offset
            if offset <= totals["offset"]:  # redelivered: repeat what it sent
                out += [e for o, e in totals["recent"] if o == offset]
                continue
            doc = orjson.loads(event.value)
            produced: list[dict] = []
            if "tick" in doc:
                for key, (seen, offline) in index.items():
                    if not offline and wall - seen > alarm_config.offline_timeout:
                        state = state_of(key, "", "")
                        produced += alarms.check_offline(state, alarm_config, wall)
                        index[key][1] = True
            else:
                per_logger: dict[tuple[str, str], list] = {}
                for guid, device, t, value in doc["r"]:
                    per_logger.setdefault((device, guid), []).append((t, value))
                for (device, guid), rows in per_logger.items():
                    key = aggregate.sighting_key(device, guid)
                    state = state_of(key, device, guid)
                    produced += alarms.apply_readings(state, alarm_config, rows, wall)
                    index[key] = [state.seen_wall, alarms.OFFLINE in state.active]
            totals["recent"] += [[offset, e] for e in produced]
            totals["offset"] = offset
            out += produced
        for key, state in loaded.items():
            alarm_states[key] = orjson.dumps(state.to_json())
            # the partition's active alarms follow its loggers' states
            for kind in alarms.KINDS:
                akey = orjson.dumps([kind, state.device, state.guid]).decode()
                if kind in state.active:
                    totals["active"][akey] = state.active[kind]
                else:
                    totals["active"].pop(akey, None)
        totals["recent"] = totals["recent"][-RECENT_EVENTS:]
        alarm_totals[str(partition)] = orjson.dumps(totals)
    for alarm in out:
        alerts_topic.send_soon(key=alarm["guid"].encode(), value=orjson.dumps(alarm))


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


@app.agent(alarm_readings_topic)
async def evaluate_alarms(stream):
    """Apply the alarm rules per datalogger; raise and clear alarms."""
    # Longer batches than the counting agents: a logger's state is written
    # once per batch, so more readings share each write.
    async for events in stream.take_events(BATCH_MAX, within=ALARM_BATCH_WITHIN):
        try:
            for partition, group in by_partition(events).items():
                alarm_partition(partition, group)
        except Exception:  # noqa: BLE001
            _fatal("evaluate_alarms")


@app.timer(max(1.0, min(5.0, alarm_config.offline_timeout / 4)))
async def offline_ticks() -> None:
    """A tick into each owned alarm partition drives its OFFLINE check (the
    agent, not this timer, may write the tables)."""
    if app.rebalancing or not app.tables.recovery.completed.is_set():
        return
    for tp in app.assignor.assigned_actives():
        if tp.topic == settings.alarm_readings_topic:
            alarm_readings_topic.send_soon(key=b"t", value=orjson.dumps({"tick": time.time()}),
                                           partition=tp.partition)


@app.agent(sightings_topic)
async def count_sensors(stream):
    """Count distinct sensors per device and overall, per guid partition."""
    async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN):
        try:
            for partition, group in by_partition(events).items():
                count_partition(partition, group)
        except Exception:  # noqa: BLE001
            _fatal("count_sensors")
