"""Readings bundled per logger in: alarms raised and cleared (a flow).

Agent ``evaluate_alarms`` applies the pure rules of :mod:`humidity.core.alarms`
to the bundles that ``ingest`` sends per alarm partition, keeps each
datalogger's state in RocksDB and sends the events to the alerts topic and
the audit trail's intake; an event a maintenance silence covers carries its
mark, and an alarm whose silence ended is notified again. A timer drops
ticks into each owned partition for the OFFLINE check and the silences'
ends, because only the agent, with a current event, may write the tables.
When every input partition has ended a round here, the active alarms go to
the partials topic as of it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson

from humidity.application import HumidityApp
from humidity.core import aggregate, alarms, audit, formats, messages
from humidity.core.alarm_partition import AlarmPartition, active_of, offline_of
from humidity.core.maintenance import Silence
from humidity.core.partials import ALARMS, partial_key
from humidity.core.pauses import PauseWatch
from humidity.core.silence import SilenceIndex
from humidity.declare.topics import Topics
from humidity.flow.limits import AlarmLimits
from humidity.plumbing.assignment import owned_partitions
from humidity.plumbing.record_batches import batched
from humidity.plumbing.stream import (
    GenerationCache,
    PartitionWork,
    load_json,
    per_batch,
    resume_from,
)
from humidity.plumbing.tables import PartitionMoved, partition_get, partition_item_steps, partition_items
from tables import Tables

#: Seconds of bundles handled together: a logger's state is written once per
#: batch, and alarms judge spans of a minute or more.
ALARM_BATCH_WITHIN = 1.0
#: Logger states read between pauses while a partition's index is built:
#: with a large fleet a partition holds hundreds of thousands.
INDEX_STEP = 1_000


class AlarmsFlow:
    def __init__(self, app: HumidityApp, limits: AlarmLimits, topics: Topics, tables: Tables,
                 silences: Callable[[], list[Silence]]) -> None:
        self.app, self.limits, self.topics, self.tables = app, limits, topics, tables
        #: The maintenance silences this worker knows (humidity.flow.silences).
        self.silences = silences
        #: Seconds between OFFLINE checks, and the time slots of the silence index.
        self.tick_seconds = max(1.0, min(5.0, limits.config.offline_timeout / 4))
        #: Per partition, read from its loggers' states once per generation:
        #: ``silence``, the loggers not known to be OFFLINE by when they were
        #: last heard (the OFFLINE ones come back with a reading), and
        #: ``active`` and ``offline``, the partition's active alarms
        #: (AlarmPartition.active, AlarmPartition.offline).
        self.index = GenerationCache(self._read_index)
        #: No OFFLINE judgement just after this worker was frozen (humidity.core.pauses).
        self.pauses = PauseWatch(app.conf.broker_session_timeout)
        batched(app).resume_at[topics.alarm_readings.get_topic_name()] = resume_from(tables.alarm_totals)
        self.agent = app.agent(topics.alarm_readings, name="evaluate_alarms")(self.run)
        app.timer(self.tick_seconds)(self.offline_ticks)

    async def run(self, stream) -> None:
        """Apply the alarm rules per datalogger; raise and clear alarms."""
        await per_batch(stream, self.alarm_partition, within=ALARM_BATCH_WITHIN, prepare=self._index_in_steps)

    def _read_index(self, partition: int) -> dict:
        silence, active = SilenceIndex(self.tick_seconds), {}
        self._file_states(partition_items(self.tables.alarm_states, partition), silence, active)
        return {"silence": silence, "active": active, "offline": offline_of(active)}

    async def _index_in_steps(self, work: PartitionWork) -> None:
        """Read the index before the partition's first batch of a generation
        in steps of INDEX_STEP, the event loop free in between; if the
        partition moves meanwhile, the handler reads it in one piece."""
        if self.index.built(work.partition, work.generation):
            return
        topic = self.topics.alarm_readings.get_topic_name()
        silence, active = SilenceIndex(self.tick_seconds), {}
        try:
            async for rows in partition_item_steps(self.tables.alarm_states, work.partition, INDEX_STEP,
                                                   lambda p: p in owned_partitions(self.app, topic)):
                self._file_states(rows, silence, active)
        except PartitionMoved:
            return
        self.index.put(work.partition, work.generation,
                       {"silence": silence, "active": active, "offline": offline_of(active)})

    @staticmethod
    def _file_states(rows, silence: SilenceIndex, active: dict) -> None:
        """File loggers' stored states (key, JSON) in the index: ``silence``
        and the partition's ``active`` alarms (AlarmPartition.active)."""
        states = []
        for key, value in rows:
            if alarms.is_whereabouts_key(key):
                continue
            state = orjson.loads(value)
            if alarms.may_go_offline(state["seen_wall"], state["active"], state.get("current")):
                silence.file(key.decode(), state["seen_wall"])
            if state["active"]:
                states.append(state)
        active.update(active_of(states))

    def alarm_partition(self, work: PartitionWork) -> None:
        wall, running, config = time.time(), time.monotonic(), self.limits.config  # one file's limits a batch
        self.pauses.note(running)
        woke_recently = self.pauses.woke_recently(running)
        states = self.tables.alarm_states
        loaded: dict[str, alarms.LoggerState] = {}
        changed: set[str] = set()  # the loggers to store: read by a bundle, or gone silent
        unfiled: set[str] = set()  # loaded and not in the silence index
        with work.current():
            index = self.index.for_partition(work.partition, work.generation)
            silence: SilenceIndex = index["silence"]
            bookkeeping = AlarmPartition.from_json(
                load_json(self.tables.alarm_totals.get(str(work.partition))), self.app.settings.partitions,
                active=index["active"], offline=index["offline"], silences=self.silences())
            rows = work.follow(bookkeeping.offset)
            if rows is None:
                return

            def state_of(key: str, device: str = "", guid: str = "") -> alarms.LoggerState:
                if key not in loaded:
                    doc = load_json(partition_get(states, work.partition, key))
                    loaded[key] = alarms.LoggerState.from_json(doc) if doc else alarms.LoggerState(device, guid)
                    if not doc or not alarms.may_go_offline(doc["seen_wall"], doc["active"], doc.get("current")):
                        unfiled.add(key)
                return loaded[key]

            def bundled(device: str, guid: str) -> alarms.LoggerState:
                key = aggregate.sighting_key(device, guid)
                changed.add(key)
                return state_of(key, device, guid)

            def silent() -> list[alarms.LoggerState]:
                if woke_recently:
                    return []  # the states may be stale: their new owner judges them
                gone = []
                for key in silence.due(wall, config.offline_timeout):
                    unfiled.add(key)  # taken out: filed again below unless it goes OFFLINE
                    state = state_of(key)
                    if alarms.is_silent(state, config, wall):
                        changed.add(key)
                        gone.append(state)
                return gone

            whereabouts = alarms.Whereabouts(lambda guid: self._stored_device(work.partition, guid))
            out: list[dict] = []
            for offset, _key, value in rows:
                message = formats.loads(value, "the alarm-readings topic")
                out += bookkeeping.apply(offset, message, bundled, silent, config, wall, whereabouts)
            epoch = work.epoch(bookkeeping.epoch)
            bookkeeping.finish_batch(work.through, [loaded[key] for key in changed], epoch)
            for key in changed:
                states[key] = formats.dumps(loaded[key].to_json())
            for guid, device in whereabouts.moved.items():
                states[alarms.whereabouts_key(guid)] = formats.dumps({"device": device, "epoch": epoch})
            for key in unfiled:
                state = loaded[key]
                if alarms.may_go_offline(state.seen_wall, state.active, state.current):
                    silence.file(key, state.seen_wall)
            self.tables.alarm_totals[str(work.partition)] = formats.dumps(bookkeeping.to_json())
        self._announce(work.partition, out, bookkeeping)

    def _announce(self, partition: int, events: list[dict], bookkeeping: AlarmPartition) -> None:
        """The events to the alerts and the audit trail; the active alarms as
        of a round closed now to the partials."""
        for alarm in map(alarms.identified, events):
            self.topics.alerts.send_soon(key=alarm["guid"].encode(), value=orjson.dumps(alarm))
            self.topics.audit_intake.send_soon(key=alarm["alarm_id"].encode(), partition=0,
                                               value=formats.dumps(audit.from_alarm_event(alarm)))
        if bookkeeping.closed_now is not None:
            # the active alarms once every reading of the round is applied: at least what the cut counts
            self.topics.partials.send_soon(key=partial_key(ALARMS, partition).encode(), value=formats.dumps(
                {"round": bookkeeping.closed_now, "offset": bookkeeping.offset,
                 **alarms.shared_alarms(bookkeeping.active.values())}))

    def _stored_device(self, partition: int, guid: str) -> str | None:
        """The device a logger last reported for, as stored."""
        doc = load_json(partition_get(self.tables.alarm_states, partition, alarms.whereabouts_key(guid)))
        return None if doc is None else doc["device"]

    async def offline_ticks(self) -> None:
        """A tick into each owned alarm partition drives its OFFLINE check."""
        self.pauses.note(time.monotonic())
        for partition in owned_partitions(self.app, self.topics.alarm_readings.get_topic_name()):
            self.topics.alarm_readings.send_soon(key=messages.TICK, value=messages.tick(time.time()),
                                                 partition=partition)
