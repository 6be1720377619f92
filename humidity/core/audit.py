"""The audit trail: a hash chain of what happened to alarms (pure).

Every record names what happened (``type``: raised, cleared, escalated,
notified, acknowledged, limits-changed), has its own ``id`` (the same if it is reported
twice, so a duplicate is dropped), and is chained: ``seq`` counts from 1,
``prev`` is the previous record's ``hash`` (:data:`GENESIS` for the first)
and ``hash`` is the SHA-256 of the record's canonical JSON (keys sorted, no
spaces) without ``hash``. Removing, changing, reordering or inserting a
record breaks the chain at that record (:func:`verify`).
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

GENESIS = "0" * 64
#: Ids of the newest records remembered to drop duplicates (a record is
#: reported twice only when a worker crashed between reporting and committing).
RECENT_IDS = 5000
#: Columns of :func:`export_csv`, in order.
COLUMNS = ("seq", "time", "type", "id", "alarm_id", "device", "guid", "kind", "value", "limit", "since",
           "channel", "target", "outcome", "detail", "attempts", "user", "comment", "silence", "sha256", "prev",
           "hash")
#: Columns whose text comes from outside (device names, comments): a leading
#: character a spreadsheet reads as a formula is escaped.
_UNTRUSTED = ("device", "guid", "user", "comment", "detail", "target")


def from_alarm_event(event: dict) -> dict:
    """The audit entry of an alarm event (raised, cleared, escalated)."""
    return {"type": event["state"], "id": event["id"], "time": event.get("wall_time", event["time"]),
            "alarm_id": event["alarm_id"], "device": event["device"], "guid": event["guid"],
            "kind": event["kind"], "value": event["value"], "limit": event["limit"], "since": event["since"]}


def notified(event: dict, channel: str, target: str, outcome: str, attempts: int, at: str, detail: str = "") -> dict:
    """The audit entry of a notification's outcome: ``delivered``, or
    ``failing`` at its first failed attempt (it is retried until accepted)."""
    return {"type": "notified", "id": f"{event['id']}.{channel}.{outcome}", "time": at,
            "alarm_id": event["alarm_id"], "device": event["device"], "guid": event["guid"], "kind": event["kind"],
            "event": event["id"], "channel": channel, "target": target, "outcome": outcome, "attempts": attempts,
            "detail": detail}


def limits_changed(sha256: str, previous: str, changes: list[str], at: str, file_stamp: str) -> dict:
    """The audit entry of an alarms file read again with new limits. Every
    worker reads the file: the id is the same for all that read the same
    change of one file (``file_stamp``: its modification time), so it is recorded once."""
    return {"type": "limits-changed", "id": f"limits-changed.{sha256[:16]}.{file_stamp}", "time": at,
            "sha256": sha256, "previous_sha256": previous, "detail": "; ".join(changes)}


def digest(record: dict) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class Tail:
    """The end of the chain: the last record's ``seq`` and ``hash``, the
    intake offset it was made from, and the ids of the newest records."""

    seq: int = 0
    hash: str = GENESIS
    source: int = -1
    ids: deque = field(default_factory=lambda: deque(maxlen=RECENT_IDS))

    @classmethod
    def of(cls, records: Iterable[dict]) -> Tail:
        """The tail after ``records`` (the newest ones of the topic, in order)."""
        tail = cls()
        for record in records:
            tail.seq, tail.hash, tail.source = record["seq"], record["hash"], record.get("source", -1)
            tail.ids.append(record["id"])
        return tail

    def link(self, entry: dict, source: int) -> dict | None:
        """The next record of the chain made of ``entry`` (read at intake
        offset ``source``), or None if the chain has it already."""
        if source <= self.source or entry["id"] in self.ids:
            return None
        record = {**entry, "seq": self.seq + 1, "prev": self.hash, "source": source}
        record["hash"] = digest(record)
        self.seq, self.hash, self.source = record["seq"], record["hash"], source
        self.ids.append(record["id"])
        return record


@dataclass
class Verdict:
    records: int = 0
    last_hash: str = GENESIS
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(records: Iterable[tuple[int, bytes | None]]) -> Verdict:
    """Check the chain, records ``(offset, value)`` from the topic's start;
    stops at the first bad record and says which and why."""
    verdict = Verdict()
    for offset, raw in records:
        where = f"record at offset {offset}"
        try:
            record = orjson.loads(raw) if raw is not None else None
        except orjson.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            verdict.problem = f"{where} is not a JSON object"
            return verdict
        where += f" (seq {record.get('seq')!r}, id {record.get('id')!r})"
        if record.get("prev") != verdict.last_hash:
            verdict.problem = f"{where}: prev does not match the hash of the record before it"
        elif record.get("seq") != verdict.records + 1:
            verdict.problem = f"{where}: seq should be {verdict.records + 1}"
        elif record.get("hash") != digest(record):
            verdict.problem = f"{where}: hash does not match its content"
        if verdict.problem:
            return verdict
        verdict.records += 1
        verdict.last_hash = record["hash"]
    return verdict


def _cell(column: str, value) -> str:
    text = "" if value is None else str(value)
    if column in _UNTRUSTED and text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def export_csv(records: Iterable[dict], start: str | None = None, end: str | None = None) -> str:
    """CSV of the records whose ``time`` (ISO 8601, UTC) is in [start, end)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for record in records:
        time = record.get("time", "")
        if (start and time < start) or (end and time >= end):
            continue
        writer.writerow([_cell(c, record.get(c)) for c in COLUMNS])
    return out.getvalue()
