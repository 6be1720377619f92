"""Humidity alarm rules per datalogger (pure: no Faust, no I/O).

Kinds, per (device, guid):

* HIGH / LOW: readings outside the type's limits continuously for at least the
  activation delay of *event time*; cleared only once back inside by the
  hysteresis margin (an MRI HIGH at 60 % clears at 58 % or below).
* RATE: the trend over the sliding hour of event time (least-squares slope of
  the readings, in % RH per hour) is steeper than the type's maximum change
  per hour (only types that have one). Judged only once the hour's readings
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
import re
import tomllib
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from humidity.core.readings import utc_iso
from humidity.core.rounds import Ends

HIGH, LOW, RATE, OFFLINE = "HIGH", "LOW", "RATE", "OFFLINE"
KINDS = (HIGH, LOW, RATE, OFFLINE)
HOUR = 3600.0


class AlarmConfigError(ValueError):
    """The alarms file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Limits:
    low: float
    high: float
    max_change_per_hour: float | None = None


@dataclass(frozen=True)
class AlarmConfig:
    types: dict[str, Limits]
    default: Limits
    activation_delay: float = 60.0
    hysteresis: float = 2.0
    offline_timeout: float = 300.0
    rate_min_span: float = 900.0
    rate_bucket: float = 60.0  # readings are summed per minute for the slope

    def type_of(self, device: str) -> str:
        """Device type from the name's prefix: ``MRI 12`` -> MRI, ``PETCT10`` -> PETCT."""
        letters = re.sub(r"[^A-Z0-9]", "", device.upper())
        best = ""
        for name in self.types:
            if letters.startswith(name) and len(name) > len(best):
                best = name
        return best or "default"

    def limits_for(self, device: str) -> Limits:
        return self.types.get(self.type_of(device), self.default)


def _number(table: dict, key: str, where: str, default=None, positive=False) -> float | None:
    value = table.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AlarmConfigError(f"{where}.{key} must be a number")
    if positive and value <= 0:
        raise AlarmConfigError(f"{where}.{key} must be positive")
    return float(value)


def parse_config(text: str, source: str = "alarms file") -> AlarmConfig:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AlarmConfigError(f"{source} is not valid TOML: {exc}") from None
    defaults = doc.get("defaults", {})
    types_doc = doc.get("types", {})
    if not isinstance(defaults, dict) or not isinstance(types_doc, dict):
        raise AlarmConfigError(f"{source}: [defaults] and [types.*] must be tables")
    types: dict[str, Limits] = {}
    for name, table in types_doc.items():
        where = f"types.{name}"
        if not isinstance(table, dict):
            raise AlarmConfigError(f"{source}: [{where}] must be a table")
        low = _number(table, "low", where)
        high = _number(table, "high", where)
        if low is None or high is None:
            raise AlarmConfigError(f"{source}: [{where}] needs low and high")
        if not 0 <= low < high <= 100:
            raise AlarmConfigError(f"{source}: [{where}] needs 0 <= low < high <= 100")
        rate = _number(table, "max_change_per_hour", where, positive=True)
        types[re.sub(r"[^A-Z0-9]", "", name.upper()) if name != "default" else "default"] = Limits(low, high, rate)
    default = types.pop("default", Limits(30.0, 60.0))
    return AlarmConfig(
        types=types,
        default=default,
        activation_delay=_number(defaults, "activation_delay_seconds", "defaults", 60.0),
        hysteresis=_number(defaults, "hysteresis_percent", "defaults", 2.0),
        offline_timeout=_number(defaults, "offline_timeout_seconds", "defaults", 300.0, positive=True),
        rate_min_span=_number(defaults, "rate_min_span_seconds", "defaults", 900.0, positive=True),
    )


def load_config(path: Path) -> AlarmConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AlarmConfigError(f"alarms file {str(path)!r} cannot be read: {exc.strerror}") from None
    return parse_config(text, f"alarms file {str(path)!r}")


def _iso(epoch: float) -> str:
    return utc_iso(datetime.fromtimestamp(epoch, UTC))


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
        return cls(**doc)


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
    event = {"time": _iso(at), "device": state.device, "guid": state.guid, "kind": kind, "state": change,
             "value": value, "limit": limit, "since": _iso(since), "wall_time": _iso(wall)}
    return identified(event)


def _raise(state, kind, at, value, limit, since, wall) -> dict:
    event = _event(state, kind, "raised", at, value, limit, since, wall)
    state.active[kind] = event
    return event


def _clear(state, kind, at, value, wall) -> dict:
    raised = state.active.pop(kind)
    since = datetime.fromisoformat(raised["since"]).timestamp()
    return _event(state, kind, "cleared", at, value, raised["limit"], since, wall)


def _threshold(state: LoggerState, config: AlarmConfig, kind: str, t: float, v: float, limit: float,
               outside: bool, back_inside: bool, wall: float) -> list[dict]:
    events = []
    if kind in state.active:
        if back_inside:
            events.append(_clear(state, kind, t, v, wall))
            state.breach.pop(kind, None)
        return events
    if outside:
        since = state.breach.setdefault(kind, t)
        if t - since >= config.activation_delay:
            events.append(_raise(state, kind, t, v, limit, since, wall))
    else:
        state.breach.pop(kind, None)  # the breach was not continuous: start again
    return events


def hourly_trend(buckets: dict, now: float) -> tuple[float | None, float]:
    """(least-squares slope in % RH per hour, time span covered) of the buckets."""
    n = sx = sy = sxy = sxx = 0.0
    first = last = None
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
    return (n * sxy - sx * sy) / denominator * HOUR, (last - first) if first is not None else 0.0


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
            return [_clear(state, RATE, t, change, wall)]
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
    h = config.hysteresis
    newest = None
    for t, v in readings:
        if OFFLINE in state.active:
            events.append(_clear(state, OFFLINE, wall, v, wall))
        if state.last_time is not None and t <= state.last_time:
            continue  # out of event-time order (or redelivered): no say in HIGH/LOW/RATE
        state.last_time, state.last_value = t, v
        events += _threshold(state, config, HIGH, t, v, limits.high, v > limits.high, v <= limits.high - h, wall)
        events += _threshold(state, config, LOW, t, v, limits.low, v < limits.low, v >= limits.low + h, wall)
        if limits.max_change_per_hour is not None:
            _add_to_trend(state, config, t, v)
            newest = (t, v)
    if newest is not None:
        events += _rate(state, config, newest[0], newest[1], limits.max_change_per_hour, wall)
    return events


def apply_reading(state: LoggerState, config: AlarmConfig, t: float, v: float, wall: float) -> list[dict]:
    """Apply one reading (event time ``t`` in epoch seconds, humidity ``v``)."""
    return apply_readings(state, config, [(t, v)], wall)


def may_go_offline(seen_wall: float | None, active: dict, current: bool | None = None) -> bool:
    """Whether a logger's pair (its state's ``seen_wall``, ``active`` and
    ``current``) can still raise OFFLINE: heard at least once, not OFFLINE
    now, and not left for another device."""
    return seen_wall is not None and OFFLINE not in active and current is not False


def is_silent(state: LoggerState, config: AlarmConfig, wall: float) -> bool:
    """Whether the logger is silent longer than the timeout and not OFFLINE yet."""
    return may_go_offline(state.seen_wall, state.active, state.current) and \
        wall - state.seen_wall > config.offline_timeout


def check_offline(state: LoggerState, config: AlarmConfig, wall: float) -> list[dict]:
    """Raise OFFLINE when the logger has been silent longer than the timeout."""
    if is_silent(state, config, wall):
        return [_raise(state, OFFLINE, wall, state.last_value, config.offline_timeout, state.seen_wall, wall)]
    return []


def _newest_first(alarm: dict) -> tuple:
    return alarm["since"], alarm["time"], alarm["device"], alarm["guid"], alarm["kind"]


def sort_alarms(alarms: list[dict]) -> list[dict]:
    return sorted(alarms, key=_newest_first, reverse=True)


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


#: Events kept per alarm partition, re-sent when their message is read again
#: (a crash may have cut their delivery).
RECENT_EVENTS = 500


@dataclass
class AlarmPartition:
    """An alarm partition's bookkeeping; stored as JSON.

    ``offset``: up to which the partition's alarm-readings are applied;
    ``active``: the raise events of its loggers' active alarms, by
    :func:`alarm_key`, and ``offline``: the devices each OFFLINE logger's
    alarm is on (neither is stored: they grow with the fleet, and the
    loggers' states hold them; the flow rebuilds them); ``recent``: ``[offset,
    event]`` of the latest events; ``epoch``: of the owner that wrote it
    (:mod:`humidity.core.ownership`).
    """

    partitions: int
    offset: int = -1
    active: dict = field(default_factory=dict)
    recent: list = field(default_factory=list)
    epoch: int = 0
    ends: Ends = None  # type: ignore[assignment]  # the input partitions' rounds (humidity.core.rounds)
    closed_now: int | None = None  # the last round closed by the messages applied since loading
    offline: dict[str, set[str]] = field(default_factory=dict)  # guid -> devices it is OFFLINE on

    def __post_init__(self) -> None:
        if self.ends is None:
            self.ends = Ends(self.partitions)

    def to_json(self) -> dict:
        return {"offset": self.offset, "recent": self.recent, "epoch": self.epoch, **self.ends.to_json()}

    @classmethod
    def from_json(cls, doc: dict | None, partitions: int, active: dict | None = None,
                  offline: dict[str, set[str]] | None = None) -> AlarmPartition:
        """The stored bookkeeping, with ``active`` and ``offline`` (the flow's,
        from the loggers' states: :func:`active_of`, :func:`offline_of`)."""
        active = active if active is not None else {}
        offline = offline if offline is not None else offline_of(active)
        if not doc:
            return cls(partitions, active=active, offline=offline)
        return cls(partitions, int(doc["offset"]), active, list(doc["recent"]), int(doc.get("epoch", 0)),
                   Ends.from_json(partitions, doc if "ends" in doc else None), offline=offline)

    def apply(self, offset: int, message: dict, logger: Callable[[str, str], LoggerState],
              silent: Callable[[], Iterable[LoggerState]], config: AlarmConfig, wall: float,
              whereabouts: Whereabouts) -> list[dict]:
        """Apply one alarm-readings message at ``offset``: a bundle of readings
        ``{"r": [[guid, device, event time, humidity], ...]}`` (also carrying
        the input partition ``p`` and round it came from), the end of an input
        partition's round ``{"p", "end", "o"}``, or an OFFLINE tick
        ``{"tick": ...}``. ``logger(device, guid)`` gives a logger's
        state, ``silent()`` the states of loggers that may have gone silent,
        ``whereabouts`` the device each logger last reported for.
        Returns the events to send.

        A message read again (offset at or below :attr:`offset`) re-sends the
        events it made, and is applied only to loggers whose state does not
        include it yet (their state write was lost); its events then were
        sent already. A tick read again does nothing: OFFLINE is wall time."""
        replay = offset <= self.offset
        out = [event for at, event in self.recent if at == offset] if replay else []
        produced: list[dict] = []
        if "end" in message:
            closing = [] if replay else self.ends.end(int(message["p"]), int(message["end"]))
            if closing:
                self.closed_now = closing[-1]
        elif "tick" in message:
            if not replay:
                for state in silent():
                    if state.current is None and whereabouts.of(state.guid) not in (None, state.device):
                        state.current = False  # stored before loggers were followed: it moved since
                    produced += check_offline(state, config, wall)
                    self._track(state)
                    state.offset = offset
        else:
            per_logger: dict[tuple[str, str], list] = {}
            last: dict[str, str] = {}  # guid -> the device of its last reading here
            for guid, device, t, humidity in message["r"]:
                per_logger.setdefault((device, guid), []).append((t, humidity))
                last[guid] = device
            for (device, guid), rows in per_logger.items():
                state = logger(device, guid)
                if state.offset >= offset:
                    continue
                events = apply_readings(state, config, rows, wall)
                if last[guid] == device:
                    events += self._locate(state, logger, whereabouts, rows[-1][1], wall)
                else:
                    state.current = False
                self._track(state)
                if not replay:
                    produced += events
                state.offset = offset
        if not replay:
            self.recent += [[offset, event] for event in produced]
            out += produced
        return out

    def _locate(self, state: LoggerState, logger: Callable[[str, str], LoggerState], whereabouts: Whereabouts,
                value: float, wall: float) -> list[dict]:
        """The logger last reported for ``state.device``: that pair is the one
        watched for OFFLINE, and its OFFLINE alarm on any other device clears."""
        guid = state.guid
        if state.current is not True:
            was = whereabouts.of(guid)
            if was != state.device:
                if was is not None:
                    logger(was, guid).current = False
                whereabouts.move(guid, state.device)
            state.current = True
        events = []
        for device in sorted(self.offline.get(guid, ())):
            other = logger(device, guid)
            if OFFLINE in other.active:
                events.append(_clear(other, OFFLINE, wall, value, wall))
            self._track(other)
        return events

    def _track(self, state: LoggerState) -> None:
        """Keep :attr:`offline` in step with a logger's state."""
        devices = self.offline.get(state.guid)
        if OFFLINE in state.active:
            if devices is None:
                devices = self.offline[state.guid] = set()
            devices.add(state.device)
        elif devices is not None:
            devices.discard(state.device)
            if not devices:
                del self.offline[state.guid]

    def settle(self, through: int, states: Iterable[LoggerState], epoch: int) -> None:
        """After a batch: include it up to ``through``, take the active alarms
        of the loggers it touched, stamp them with ``epoch``."""
        self.offset = max(self.offset, through)
        self.epoch = epoch
        for state in states:
            state.epoch = epoch
            for kind in KINDS:
                key = alarm_key(kind, state.device, state.guid)
                if kind in state.active:
                    self.active[key] = state.active[kind]
                else:
                    self.active.pop(key, None)
        self.recent = self.recent[-RECENT_EVENTS:]


def active_of(states: Iterable[dict]) -> dict:
    """The active alarms of loggers' stored states (JSON of
    :class:`LoggerState`), by :func:`alarm_key`: an alarm partition's
    ``active``, rebuilt."""
    return {alarm_key(kind, state["device"], state["guid"]): event
            for state in states for kind, event in state["active"].items()}


def offline_of(active: dict) -> dict[str, set[str]]:
    """guid -> the devices its OFFLINE alarm is on, from a partition's active alarms."""
    offline: dict[str, set[str]] = {}
    for event in active.values():
        if event["kind"] == OFFLINE:
            offline.setdefault(event["guid"], set()).add(event["device"])
    return offline


def alarm_partition_of(guid: str, partitions: int) -> int:
    """The alarm partition of a logger: all its readings meet there."""
    return zlib.crc32(guid.encode("utf-8", "surrogatepass")) % partitions
