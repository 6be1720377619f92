"""Silences: maintenance that holds alarm notifications on purpose (pure).

An operator silences a device, a datalogger, or one on the other, for some
alarm kinds or all of them, until a time at most :data:`MAX_AHEAD` ahead,
with a reason. While a silence is active, matching alarms are still
judged, raised, cleared and shown, and their events carry ``"silenced":
{"id", "until"}`` (:func:`mark`); the channels hold them back and nothing
is escalated. When the silence ends (its ``until`` passes, or an operator
ends it) an alarm it covered that is still active is notified once, like a
new raise (:func:`unsilenced_event`).

Commands, keyed by silence id on the silences topic, are applied in order
to the silence's entry (:func:`apply`): ``{"create": silence}`` and ``{"end":
id, "by": user or "expired", "at": ISO time}``. The first end wins, and a
command read again (a crash before its commit) makes the same audit records
again, with the same ids, and nothing else.

(:mod:`humidity.core.silence` is another thing: the index of dataloggers
that have gone quiet, for OFFLINE.)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from humidity.core.alarms import KINDS
from humidity.core.readings import epoch_iso

#: Longest silence, seconds ahead of its creation.
MAX_AHEAD = 7 * 24 * 3600.0
#: Longest reason kept, and longest device or datalogger name accepted (characters).
REASON_MAX = 1000
NAME_MAX = 500
#: Who ends a silence whose time ran out.
EXPIRED = "expired"


class SilenceError(ValueError):
    """A silence that cannot be created as asked; the message says why (HTTP 400)."""


@dataclass(frozen=True)
class Silence:
    id: str
    device: str | None  # None: any device (then ``guid`` is set)
    guid: str | None  # None: any datalogger of the device
    kinds: tuple[str, ...]  # empty: every kind
    start: float  # wall clock, epoch seconds ("from")
    until: float
    reason: str
    created_by: str
    ended_at: float | None = None
    ended_by: str | None = None  # the user who ended it early, or EXPIRED
    offsets: dict = field(default_factory=dict, compare=False)  # command -> the offset that made it

    def active_at(self, wall: float) -> bool:
        """Whether it holds notifications at ``wall``: from its start until, not including, its end."""
        return self.ended_at is None and self.start <= wall < self.until

    def matches(self, device: str, guid: str, kind: str) -> bool:
        return ((self.device is None or self.device == device) and (self.guid is None or self.guid == guid)
                and (not self.kinds or kind in self.kinds))

    def mark(self) -> dict:
        return {"id": self.id, "until": epoch_iso(self.until)}

    def to_json(self) -> dict:
        """The API's shape (times as ISO 8601), with what ended it once it has ended."""
        doc = {"id": self.id, "device": self.device, "guid": self.guid, "kinds": list(self.kinds),
               "from": epoch_iso(self.start), "until": epoch_iso(self.until), "reason": self.reason,
               "created_by": self.created_by}
        if self.ended_at is not None:
            doc.update(ended_at=epoch_iso(self.ended_at), ended_by=self.ended_by)
        return doc

    def to_stored(self) -> dict:
        return {**self.to_json(), "offsets": self.offsets}

    @classmethod
    def from_json(cls, doc: dict) -> Silence:
        ended = doc.get("ended_at")
        return cls(doc["id"], doc["device"], doc["guid"], tuple(doc["kinds"]), _epoch(doc["from"]),
                   _epoch(doc["until"]), doc["reason"], doc["created_by"],
                   None if ended is None else _epoch(ended), doc.get("ended_by"), dict(doc.get("offsets", {})))


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _name(body: dict, key: str) -> str | None:
    """A device or datalogger name, exactly as the readings spell it (any string)."""
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise SilenceError(f"{key} must be a string")
    if len(value) > NAME_MAX:
        raise SilenceError(f"{key} is longer than {NAME_MAX} characters")
    return value


def _reason(body: dict) -> str:
    """Why: required, printable (other characters become spaces), trimmed."""
    value = body.get("reason")
    if value is not None and not isinstance(value, str):
        raise SilenceError("reason must be a string")
    value = "".join(c if c.isprintable() or c in "\n\t" else " " for c in value or "").strip()
    if not value:
        raise SilenceError("reason is required")
    if len(value) > REASON_MAX:
        raise SilenceError(f"reason is longer than {REASON_MAX} characters")
    return value


def _kinds(body: dict) -> tuple[str, ...]:
    kinds = body.get("kinds")
    if kinds is None:
        return ()
    if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) and k in KINDS for k in kinds):
        raise SilenceError(f"kinds must be a non-empty list of {', '.join(KINDS)}")
    return tuple(k for k in KINDS if k in kinds)


def _until(body: dict, now: float) -> float:
    text = body.get("until")
    if not isinstance(text, str) or not text:
        raise SilenceError("until is required (ISO 8601, with a time zone)")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SilenceError("until is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise SilenceError("until needs a time zone (Z or an offset)")
    until = moment.timestamp()
    if until <= now:
        raise SilenceError("until must be in the future")
    if until - now > MAX_AHEAD:
        raise SilenceError(f"until must be at most {MAX_AHEAD / 86400:g} days ahead")
    return until


def from_request(body: dict, user: str, now: float, silence_id: str) -> Silence:
    """The silence an operator asks for with ``{"device", "guid", "kinds", "until", "reason"}``."""
    device, guid = _name(body, "device"), _name(body, "guid")
    if device is None and guid is None:
        raise SilenceError("device or guid is required")
    return Silence(silence_id, device, guid, _kinds(body), now, _until(body, now), _reason(body), user)


def covering(silences: Iterable[Silence], device: str, guid: str, kind: str, wall: float) -> Silence | None:
    """The active silence that matches an alarm at ``wall`` (of several, the one that ends last)."""
    found = None
    for silence in silences:
        if silence.active_at(wall) and silence.matches(device, guid, kind):
            if found is None or (silence.until, silence.id) > (found.until, found.id):
                found = silence
    return found


def mark(event: dict, silences: Iterable[Silence], wall: float) -> None:
    """Mark an alarm event made at ``wall`` as silenced, if a silence covers its alarm."""
    silence = covering(silences, event["device"], event["guid"], event["kind"], wall)
    if silence is not None:
        event["silenced"] = silence.mark()


def unsilenced_event(raised: dict, silence_id: str, wall: float) -> dict:
    """What the channels get when the silence over an active alarm ends: its raise, again, once."""
    event = {k: v for k, v in raised.items() if k != "silenced"}
    return {**event, "id": f"{raised['alarm_id']}.raised.after.{silence_id}", "wall_time": epoch_iso(wall),
            "after_silence": silence_id}


def create_command(silence: Silence) -> dict:
    return {"create": silence.to_json()}


def command_id(command: dict) -> str:
    """The silence a command is about (its key on the silences topic)."""
    return command["create"]["id"] if "create" in command else command["end"]


def end_command(silence_id: str, by: str, at: float) -> dict:
    return {"end": silence_id, "by": by, "at": epoch_iso(at)}


def expired(silences: Iterable[Silence], now: float) -> list[Silence]:
    """The silences whose time ran out and whose end is not recorded yet."""
    return [s for s in silences if s.ended_at is None and s.until <= now]


def apply(entry: Silence | None, command: dict, offset: int) -> tuple[Silence | None, list[dict]]:
    """Apply one command read at ``offset``: (the silence to store, or None if
    unchanged; the audit entries to report)."""
    if "create" in command:
        if entry is None:
            entry = Silence.from_json({**command["create"], "offsets": {"create": offset}})
        elif entry.offsets.get("create") != offset:
            return None, []
        return entry, [_created_record(entry)]
    if entry is None:
        return None, []
    if entry.ended_at is None:
        entry = Silence(entry.id, entry.device, entry.guid, entry.kinds, entry.start, entry.until, entry.reason,
                        entry.created_by, min(_epoch(command["at"]), entry.until), command["by"],
                        {**entry.offsets, "end": offset})
    elif entry.offsets.get("end") != offset:
        return None, []
    return entry, [_ended_record(entry)]


def _record(silence: Silence, what: str, at: float, user: str) -> dict:
    return {"type": f"silence-{what}", "id": f"silence.{silence.id}.{what}", "time": epoch_iso(at),
            "silence": silence.id, "device": silence.device, "guid": silence.guid, "user": user,
            "comment": silence.reason,
            "detail": f"kinds {','.join(silence.kinds) or 'all'} from {epoch_iso(silence.start)} "
                      f"until {epoch_iso(silence.until)}"}


def _created_record(silence: Silence) -> dict:
    return _record(silence, "created", silence.start, silence.created_by)


def _ended_record(silence: Silence) -> dict:
    return _record(silence, "ended", silence.ended_at or silence.until, silence.ended_by or EXPIRED)
