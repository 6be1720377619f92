"""An alarm partition's bookkeeping: the loggers' states it owns, the rounds
it closes, the events it re-sends after a crash, and its active alarms (pure)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from humidity.core import formats, maintenance, messages
from humidity.core.alarm_limits import AlarmConfig
from humidity.core.alarms import (
    KINDS,
    OFFLINE,
    LoggerState,
    Whereabouts,
    alarm_key,
    apply_readings,
    check_offline,
    clear_event,
)
from humidity.core.rounds import Ends

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
    ends: Ends = field(default_factory=lambda: Ends(0))  # the input partitions' rounds; Ends(0): not given
    closed_now: int | None = None  # the last round closed by the messages applied since loading
    offline: dict[str, set[str]] = field(default_factory=dict)  # guid -> devices it is OFFLINE on
    #: The maintenance silences as this worker knows them (not stored: every
    #: worker reads them, :mod:`humidity.core.maintenance`).
    silences: list[maintenance.Silence] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.ends.partitions:
            self.ends = Ends(self.partitions)

    def to_json(self) -> dict:
        return {"offset": self.offset, "recent": self.recent, "epoch": self.epoch, **self.ends.to_json()}

    @classmethod
    def from_json(cls, doc: dict | None, partitions: int, active: dict | None = None,
                  offline: dict[str, set[str]] | None = None,
                  silences: list[maintenance.Silence] | None = None) -> AlarmPartition:
        """The stored bookkeeping, with ``active`` and ``offline`` (the flow's,
        from the loggers' states: :func:`active_of`, :func:`offline_of`) and
        the ``silences`` known now."""
        active = active if active is not None else {}
        offline = offline if offline is not None else offline_of(active)
        silences = silences if silences is not None else []
        if not doc:
            return cls(partitions, active=active, offline=offline, silences=silences)
        return cls(partitions, int(doc["offset"]), active, list(doc["recent"]), int(doc.get("epoch", 0)),
                   Ends.from_json(partitions, doc if "ends" in doc or formats.version_of(doc) else None),
                   offline=offline, silences=silences)

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
        if messages.is_end(message):
            closing = [] if replay else self.ends.end(int(message["p"]), int(message["end"]))
            if closing:
                self.closed_now = closing[-1]
        elif messages.is_tick(message):
            if not replay:
                for state in silent():
                    if state.current is None and whereabouts.of(state.guid) not in (None, state.device):
                        state.current = False  # stored before loggers were followed: it moved since
                    produced += check_offline(state, config, wall)
                    self._track(state)
                    state.offset = offset
                produced += self._review_silences(logger, wall)
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
            for event in produced:
                if "after_silence" not in event:
                    maintenance.mark(event, self.silences, wall)
            self.recent += [[offset, event] for event in produced]
            out += produced
        return out

    def _review_silences(self, logger: Callable[[str, str], LoggerState], wall: float) -> list[dict]:
        """On a tick: the active alarms a silence covers now carry its mark; one
        whose silence has ended is notified again, once (the events to send)."""
        events = []
        for raised in list(self.active.values()):
            was = raised.get("silenced")
            now = maintenance.covering(self.silences, raised["device"], raised["guid"], raised["kind"], wall)
            if (was and was["id"]) == (now and now.id):
                continue
            state = logger(raised["device"], raised["guid"])
            stored = state.active.get(raised["kind"])
            if stored is None:
                continue
            if now is not None:
                stored["silenced"] = now.mark()
            else:
                event = maintenance.unsilenced_event(stored, was["id"], wall)
                stored.pop("silenced", None)
                stored["notified_at"] = event["wall_time"]  # escalation counts from here
                events.append(event)
        return events

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
                events.append(clear_event(other, OFFLINE, wall, value, wall))
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

    def finish_batch(self, through: int, states: Iterable[LoggerState], epoch: int) -> None:
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
