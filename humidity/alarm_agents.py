"""Alarm wiring: per-datalogger alarm state in RocksDB, events to the alerts
topic (the rules are pure, in :mod:`humidity.alarms`).

Readings arrive bundled per alarm partition from agent ``ingest``
(:func:`humidity.agents.forward_for_alarms`); a timer drops OFFLINE ticks into
each owned partition, because only the agent, with a current event, may write
the tables.
"""

from __future__ import annotations

import time
from typing import Optional

import orjson

from app import alarm_config, app, settings
from humidity import aggregate, alarms
from humidity.agents import GenerationCache, following, load_json, per_batch, resume_at, writing_for
from humidity.batching import RESUME_AT
from humidity.topics import alarm_readings_topic, alerts_topic
from tables import alarm_states, alarm_totals, partition_items

ALARM_BATCH_WITHIN = 1.0  # seconds; alarms judge spans of a minute or more


def alarm_key(kind: str, device: str, guid: str) -> str:
    """Key of an active alarm in the partition's totals."""
    return orjson.dumps([kind, device, guid]).decode()


def index_partition(partition: int) -> dict[str, list]:
    """When each logger of a partition was last heard from (wall clock), and
    whether it is known to be OFFLINE, read from its RocksDB."""
    index = {}
    for key, value in partition_items(alarm_states, partition):
        state = orjson.loads(value)
        index[key.decode()] = [state["seen_wall"] or 0.0, alarms.OFFLINE in state["active"]]
    return index


alarm_index = GenerationCache(index_partition)
RECENT_EVENTS = 500  # per partition: re-sent after a crash that may have cut their delivery


def alarm_partition(partition: int, events: list) -> tuple[Optional[int], Optional[int]]:
    wall = time.time()
    loaded: dict[str, alarms.LoggerState] = {}
    out: list[dict] = []
    with writing_for(events[-1]):
        totals = load_json(alarm_totals.get(str(partition))) or {"offset": -1, "active": {}, "recent": []}
        batches, rewind_to = following(events, totals["offset"])
        if batches is None:
            return None, rewind_to
        index = alarm_index.for_partition(partition, events[-1].message.generation_id)
        epoch = totals["epoch"] = batches.epoch(totals.get("epoch", 0))

        def state_of(key: str, device: str, guid: str) -> alarms.LoggerState:
            if key not in loaded:
                doc = load_json(alarm_states.get(key))
                loaded[key] = alarms.LoggerState.from_json(doc) if doc else alarms.LoggerState(device, guid)
            return loaded[key]

        for offset, _key, value in batches.rows():
            doc = orjson.loads(value)
            replay = offset <= totals["offset"]
            if replay:  # redelivered: repeat what it sent
                out += [e for o, e in totals["recent"] if o == offset]
            produced: list[dict] = []
            if "tick" in doc:
                if replay:
                    continue
                for key, (seen, offline) in index.items():
                    if not offline and wall - seen > alarm_config.offline_timeout:
                        state = state_of(key, "", "")
                        produced += alarms.check_offline(state, alarm_config, wall)
                        state.offset = offset
                        index[key][1] = True
            else:
                per_logger: dict[tuple[str, str], list] = {}
                for guid, device, t, humidity in doc["r"]:
                    per_logger.setdefault((device, guid), []).append((t, humidity))
                for (device, guid), rows in per_logger.items():
                    key = aggregate.sighting_key(device, guid)
                    state = state_of(key, device, guid)
                    if state.offset >= offset:
                        continue  # already applied
                    # A replayed bundle reaches a logger whose state write was
                    # lost; its events were sent already (they are in "recent").
                    events_now = alarms.apply_readings(state, alarm_config, rows, wall)
                    if not replay:
                        produced += events_now
                    state.offset = offset
                    index[key] = [state.seen_wall, alarms.OFFLINE in state.active]
            if not replay:
                totals["recent"] += [[offset, e] for e in produced]
                out += produced
        totals["offset"] = batches.through
        for key, state in loaded.items():
            state.epoch = epoch
            alarm_states[key] = orjson.dumps(state.to_json())
            # the partition's active alarms follow its loggers' states
            for kind in alarms.KINDS:
                akey = alarm_key(kind, state.device, state.guid)
                if kind in state.active:
                    totals["active"][akey] = state.active[kind]
                else:
                    totals["active"].pop(akey, None)
        totals["recent"] = totals["recent"][-RECENT_EVENTS:]
        alarm_totals[str(partition)] = orjson.dumps(totals)
    for alarm in out:
        alerts_topic.send_soon(key=alarm["guid"].encode(), value=orjson.dumps(alarm))
    return batches.through, rewind_to


RESUME_AT[settings.alarm_readings_topic] = resume_at(alarm_totals)


@app.agent(alarm_readings_topic)
async def evaluate_alarms(stream):
    """Apply the alarm rules per datalogger; raise and clear alarms."""
    # Longer batches than the counting agents: a logger's state is written
    # once per batch, so more readings share each write.
    await per_batch(stream, alarm_partition, within=ALARM_BATCH_WITHIN)


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
