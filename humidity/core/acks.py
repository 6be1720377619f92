"""Acknowledgements and escalations of active alarms (pure).

Commands, keyed by alarm id on the acks topic, are applied in order per
alarm to its entry: the first acknowledgement wins (who, when, comment); an
alarm is escalated once, and only while nobody has acknowledged it. Each
entry remembers the offsets of the commands that set it, so a command read
again (a crash before its commit) makes the same effects again, with the
same ids, and nothing else.

Command ``{"ack": alarm id, "alarm": active alarm, "user", "comment", "at"}``
or ``{"escalate": alarm id, "alarm": active alarm, "at"}``; ``at`` is
ISO 8601 wall-clock time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from humidity.core import audit

#: Longest comment kept (characters).
COMMENT_MAX = 1000
#: The fields of an entry that ``/api/alarms`` adds to an active alarm.
SHOWN = ("acknowledged_by", "acknowledged_at", "comment", "escalated_at")


class AckError(ValueError):
    """A request to acknowledge that cannot be taken; the message says why."""


def clean_comment(comment) -> str:
    if comment is None:
        return ""
    if not isinstance(comment, str):
        raise AckError("comment must be a string")
    comment = "".join(c if c.isprintable() or c in "\n\t" else " " for c in comment).strip()
    if len(comment) > COMMENT_MAX:
        raise AckError(f"comment is longer than {COMMENT_MAX} characters")
    return comment


def ack_command(alarm: dict, user: str, comment: str, at: str) -> dict:
    return {"ack": alarm["id"], "alarm": alarm, "user": user, "comment": comment, "at": at}


def escalate_command(alarm: dict, at: str) -> dict:
    return {"escalate": alarm["id"], "alarm": alarm, "at": at}


@dataclass
class Effects:
    alerts: list = field(default_factory=list)  # events for the alerts topic
    audit: list = field(default_factory=list)  # entries for the audit trail


def escalation_event(alarm: dict, at: str) -> dict:
    """The alerts-topic event of an escalation: the raise event, ``state``
    escalated, at ``at``."""
    return {**alarm, "state": "escalated", "id": f"{alarm['alarm_id']}.escalated", "wall_time": at}


def apply(entry: dict | None, command: dict, offset: int) -> tuple[dict | None, Effects]:
    """Apply one command read at ``offset``: (the entry to store, or None if
    unchanged; the effects to send)."""
    effects = Effects()
    entry = dict(entry) if entry else {"alarm": command["alarm"]}
    if "ack" in command:
        if entry.get("acknowledged_by"):
            if entry.get("ack_offset") != offset:
                return None, effects  # acknowledged already: the first one stands
        else:
            entry.update(acknowledged_by=command["user"], acknowledged_at=command["at"],
                         comment=command["comment"], ack_offset=offset)
        alarm = entry["alarm"]
        effects.audit.append({**audit.from_alarm_event({**alarm, "state": "acknowledged"}),
                              "id": f"{alarm['alarm_id']}.acknowledged", "time": entry["acknowledged_at"],
                              "user": entry["acknowledged_by"], "comment": entry["comment"]})
        return entry, effects
    if entry.get("escalate_offset") is not None:
        if entry["escalate_offset"] != offset:
            return None, effects
    elif entry.get("acknowledged_by"):
        return None, effects  # someone reacted: no escalation
    else:
        entry.update(escalated_at=command["at"], escalate_offset=offset)
    event = escalation_event(entry["alarm"], entry["escalated_at"])
    effects.alerts.append(event)
    effects.audit.append(audit.from_alarm_event(event))
    return entry, effects


def due_for_escalation(active: list[dict], entries: dict[str, dict], now: float, after: float,
                       asked: set[str]) -> list[dict]:
    """The active alarms notified at least ``after`` seconds ago (wall clock:
    raised, or notified when a silence over them ended) that nobody has
    acknowledged, not escalated yet nor asked for, and not silenced now."""
    due = []
    for alarm in active:
        entry = entries.get(alarm["id"], {})
        if alarm["id"] in asked or entry.get("acknowledged_by") or entry.get("escalated_at") or alarm.get("silenced"):
            continue
        notified = alarm.get("notified_at") or alarm.get("wall_time") or alarm["time"]
        raised = datetime.fromisoformat(notified).timestamp()
        if now - raised >= after:
            due.append(alarm)
    return due


def with_acks(active: list[dict], entries: dict[str, dict]) -> list[dict]:
    """Active alarms with who acknowledged them (``None`` where nobody has)."""
    out = []
    for alarm in active:
        entry = entries.get(alarm["id"], {})
        out.append({**alarm, **{name: entry.get(name) for name in SHOWN}})
    return out
