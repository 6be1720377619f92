"""Humidity alarm rules per datalogger (pure: no Faust, no I/O).

Kinds, per (device, guid):

* HIGH / LOW: readings outside the device's limits (its own section of the
  alarms file, else its type's) continuously for at least the activation
  delay of *event time*; cleared only once back inside by the hysteresis
  margin (an MRI HIGH at 60 % clears at 58 % or below). Limits read again
  apply from the next reading on: an active alarm is judged against them then.
* RATE: the trend over the sliding hour of event time (least-squares slope of
  the readings, in % RH per hour) is steeper than the device's maximum change
  per hour (only devices whose limits have one). Judged only once the hour's readings
  span at least ``rate_min_span_seconds`` (default 15 min), so a short spike
  or sensor noise does not raise it. Cleared once back at or below the limit
  minus the hysteresis.
* OFFLINE, per datalogger: no reading from it, for any device, for longer
  than the timeout of *wall-clock* time; raised on the device it last
  reported for, and cleared by its next reading, for whichever device.

HIGH/LOW/RATE judge a room's readings, so their state is kept per (device,
guid). Where a logger reports (:class:`Whereabouts`) decides which of its
pairs is watched for OFFLINE: the one it last reported for. When its
readings move to another device, the pair on the old one stops being
watched and raises nothing more.

A reading older than (or as old as) the newest one already applied for its
logger is ignored by the rules: readings that arrive out of event-time order
cannot raise or clear anything. The same makes a redelivered reading harmless.
"""

from __future__ import annotations

import hashlib
import heapq
import math
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import orjson

from humidity.core import formats
from humidity.core.alarm_limits import AlarmConfig
from humidity.core.readings import epoch_iso

HIGH, LOW, RATE, OFFLINE = "HIGH", "LOW", "RATE", "OFFLINE"
KINDS = (HIGH, LOW, RATE, OFFLINE)
HOUR = 3600.0


@dataclass
class LoggerState:
    """Alarm state of one datalogger on one device; stored as JSON."""

    device: str
    guid: str
    last_time: float | None = None  # event time of the newest reading applied
    last_value: float | None = None
    seen_wall: float | None = None  # wall clock when the newest reading arrived
    breach: dict = field(default_factory=dict)  # kind -> event time the breach began
    active: dict = field(default_factory=dict)  # kind -> alarm (the raise event)
    buckets: dict = field(default_factory=dict)  # minute start -> [n, sum x, sum v, sum xv, sum xx], x from start
    offset: int = -1  # of the last alarm-readings message applied (a replay applies only what is newer)
    #: Whether this is the device the logger last reported for (watched for
    #: OFFLINE); None in states written before loggers were followed across devices.
    current: bool | None = None
    epoch: int = 0  # of the owner that wrote it (humidity.core.ownership)

    def to_json(self) -> dict:
        return {"device": self.device, "guid": self.guid, "last_time": self.last_time,
                "last_value": self.last_value, "seen_wall": self.seen_wall, "breach": self.breach,
                "active": self.active, "buckets": self.buckets, "offset": self.offset, "current": self.current,
                "epoch": self.epoch}

    @classmethod
    def from_json(cls, doc: dict) -> LoggerState:
        return cls(**formats.body(doc))


def alarm_id(kind: str, device: str, guid: str, since: str) -> str:
    """The stable id of one alarm, from its raise to its clear: the same on
    every worker and on a replay, because its parts are."""
    digest = hashlib.sha256(orjson.dumps([kind, device, guid, since])).hexdigest()
    return digest[:20]


def identified(event: dict) -> dict:
    """``event`` with ``alarm_id`` and its own ``id`` (``<alarm_id>.<state>``),
    which events stored by an earlier version lack."""
    if "id" in event and "alarm_id" in event:
        return event
    ident = alarm_id(event["kind"], event["device"], event["guid"], event["since"])
    return {**event, "alarm_id": ident, "id": f"{ident}.{event['state']}"}


def active_alarm(raised: dict) -> dict:
    """An active alarm as the summary and ``/api/alarms`` list it: its raise
    event, with ``id`` the alarm's id (what an acknowledgement names)."""
    event = identified(raised)
    return {**event, "id": event["alarm_id"]}


def _event(state: LoggerState, kind: str, change: str, at: float, value, limit, since: float,
           wall: float) -> dict:
    event = {"time": epoch_iso(at), "device": state.device, "guid": state.guid, "kind": kind, "state": change,
             "value": value, "limit": limit, "since": epoch_iso(since), "wall_time": epoch_iso(wall)}
    return identified(event)


def _raise(state, kind, at, value, limit, since, wall) -> dict:
    event = _event(state, kind, "raised", at, value, limit, since, wall)
    state.active[kind] = event
    return event


def clear_event(state, kind, at, value, wall) -> dict:
    raised = state.active.pop(kind)
    since = datetime.fromisoformat(raised["since"]).timestamp()
    return _event(state, kind, "cleared", at, value, raised["limit"], since, wall)


def _threshold(state: LoggerState, delay: float, kind: str, t: float, v: float, limit: float,
               outside: bool, back_inside: bool, wall: float) -> list[dict]:
    events = []
    if kind in state.active:
        if back_inside:
            events.append(clear_event(state, kind, t, v, wall))
            state.breach.pop(kind, None)
        return events
    if outside:
        since = state.breach.setdefault(kind, t)
        if t - since >= delay:
            events.append(_raise(state, kind, t, v, limit, since, wall))
    else:
        state.breach.pop(kind, None)  # the breach was not continuous: start again
    return events


def hourly_trend(buckets: dict, now: float) -> tuple[float | None, float]:
    """(least-squares slope in % RH per hour, time span covered) of the buckets."""
    n = sx = sy = sxy = sxx = 0.0
    first: float | None = None
    last: float | None = None
    for key, (bn, bx, by, bxy, bxx) in buckets.items():
        d = float(key) - now  # move each bucket's x origin to ``now``
        n += bn
        sx += bx + bn * d
        sy += by
        sxy += bxy + d * by
        sxx += bxx + 2 * d * bx + bn * d * d
        first = float(key) if first is None else min(first, float(key))
        last = float(key) if last is None else max(last, float(key))
    if n < 2:
        return None, 0.0
    denominator = n * sxx - sx * sx
    if denominator <= 1e-9:
        return None, 0.0
    return (n * sxy - sx * sy) / denominator * HOUR, (last - first) if first is not None and last is not None else 0.0


def _add_to_trend(state: LoggerState, config: AlarmConfig, t: float, v: float) -> None:
    start = math.floor(t / config.rate_bucket) * config.rate_bucket
    bucket = state.buckets.get(repr(start))
    if bucket is None:
        bucket = state.buckets[repr(start)] = [0, 0.0, 0.0, 0.0, 0.0]
        for key in [k for k in state.buckets if float(k) + config.rate_bucket <= t - HOUR]:
            del state.buckets[key]  # outside the sliding hour
    x = t - start
    bucket[0] += 1
    bucket[1] += x
    bucket[2] += v
    bucket[3] += x * v
    bucket[4] += x * x


def _rate(state: LoggerState, config: AlarmConfig, t: float, v: float, limit: float | None,
          wall: float) -> list[dict]:
    if limit is None:
        return []
    slope, span = hourly_trend(state.buckets, t)
    if slope is None or span + config.rate_bucket < config.rate_min_span:
        return []
    change = round(abs(slope), 2)
    if RATE in state.active:
        if change <= limit - config.hysteresis:
            return [clear_event(state, RATE, t, change, wall)]
        return []
    if change > limit:
        return [_raise(state, RATE, t, change, limit, t, wall)]
    return []


def apply_readings(state: LoggerState, config: AlarmConfig, readings, wall: float) -> list[dict]:
    """Apply a logger's readings, in arrival order: (event time in epoch
    seconds, humidity) pairs. The hourly trend (RATE) is judged once, after
    the last of them: per batch, not per reading."""
    events = []
    state.seen_wall = wall if state.seen_wall is None else max(state.seen_wall, wall)
    limits = config.limits_for(state.device)
    delay = config.delay_for(limits)
    h = config.hysteresis
    newest = None
    for t, v in readings:
        if OFFLINE in state.active:
            events.append(clear_event(state, OFFLINE, wall, v, wall))
        if state.last_time is not None and t <= state.last_time:
            continue  # out of event-time order (or redelivered): no say in HIGH/LOW/RATE
        state.last_time, state.last_value = t, v
        events += _threshold(state, delay, HIGH, t, v, limits.high, v > limits.high, v <= limits.high - h, wall)
        events += _threshold(state, delay, LOW, t, v, limits.low, v < limits.low, v >= limits.low + h, wall)
        if limits.max_change_per_hour is not None:
            _add_to_trend(state, config, t, v)
            newest = (t, v)
    if newest is not None:
        events += _rate(state, config, newest[0], newest[1], limits.max_change_per_hour, wall)
    return events


def may_go_offline(seen_wall: float | None, active: dict, current: bool | None = None) -> bool:
    """Whether a logger's pair (its state's ``seen_wall``, ``active`` and
    ``current``) can still raise OFFLINE: heard at least once, not OFFLINE
    now, and not left for another device."""
    return seen_wall is not None and OFFLINE not in active and current is not False


def is_silent(state: LoggerState, config: AlarmConfig, wall: float) -> bool:
    """Whether the logger is silent longer than the timeout and not OFFLINE yet."""
    seen = state.seen_wall
    return seen is not None and may_go_offline(seen, state.active, state.current) and \
        wall - seen > config.offline_timeout


def check_offline(state: LoggerState, config: AlarmConfig, wall: float) -> list[dict]:
    """Raise OFFLINE when the logger has been silent longer than the timeout."""
    if is_silent(state, config, wall):
        return [_raise(state, OFFLINE, wall, state.last_value, config.offline_timeout, state.seen_wall, wall)]
    return []


def _newest_first(alarm: dict) -> tuple:
    return alarm["since"], alarm["time"], alarm["device"], alarm["guid"], alarm["kind"]


#: Active alarms an alarm partition shares and a summary lists, newest first:
#: in a fleet-wide outage (every logger OFFLINE) the whole list would outgrow
#: Kafka's message limit; the counts cover every active alarm.
ALARMS_LISTED = 1000


def newest_alarms(alarms, limit: int = ALARMS_LISTED) -> list[dict]:
    """The ``limit`` newest of ``alarms``, newest first."""
    return heapq.nlargest(limit, alarms, key=_newest_first)


def shared_alarms(active: Iterable[dict]) -> dict:
    """Active alarms as a partition shares them: the newest ALARMS_LISTED,
    and how many there are in all, by kind and by device."""
    alarms = list(active)
    by_kind: dict[str, int] = {}
    by_device: dict[str, int] = {}
    for alarm in alarms:
        by_kind[alarm["kind"]] = by_kind.get(alarm["kind"], 0) + 1
        by_device[alarm["device"]] = by_device.get(alarm["device"], 0) + 1
    return {"active": newest_alarms(alarms), "count": len(alarms), "by_kind": by_kind, "by_device": by_device}


def alarm_key(kind: str, device: str, guid: str) -> str:
    """Key of an active alarm in its partition's bookkeeping."""
    return orjson.dumps([kind, device, guid]).decode()


@dataclass
class Whereabouts:
    """The device each logger last reported for, as stored (``lookup``) and
    as changed by the messages applied since (``moved``: what to store)."""

    lookup: Callable[[str], str | None]
    known: dict[str, str | None] = field(default_factory=dict)
    moved: dict[str, str] = field(default_factory=dict)

    def of(self, guid: str) -> str | None:
        if guid not in self.known:
            self.known[guid] = self.lookup(guid)
        return self.known[guid]

    def move(self, guid: str, device: str) -> None:
        self.known[guid] = self.moved[guid] = device


def whereabouts_key(guid: str) -> str:
    """Table key of a logger's whereabouts, beside the (device, guid) states:
    theirs begin with a digit (:func:`humidity.core.aggregate.sighting_key`)."""
    return "@" + guid


def is_whereabouts_key(key: bytes | str) -> bool:
    return key[:1] in (b"@", "@")


def alarm_partition_of(guid: str, partitions: int) -> int:
    """The alarm partition of a logger: all its readings meet there."""
    return zlib.crc32(guid.encode("utf-8", "surrogatepass")) % partitions
