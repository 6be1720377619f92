"""The four summaries, each one cut of the input, computed from per-partition
figures (pure).

Workers share, for every round they close (:mod:`humidity.core.rounds`),
the figures of the partitions they own as *partials*, keyed ``ingest/<p>``
(counts and exact sums of input partition *p*, and the offset they include),
``sensors/<q>`` (distinct sensors of sightings partition *q*, and per input
partition the highest offset whose sightings they include) and
``alarms/<a>`` (the active alarms of alarm partition *a*).
:class:`PartialsBook` keeps the recent ones; :meth:`PartialsBook.newest_cut`
finds the newest round for which every partition has shared its figures,
whose sensor counts include nothing past its input offsets and miss nothing
at or below them, and whose offsets are nowhere below the previous
summary's; :func:`build_summary`
turns it into the published summary, with what it added since the previous
one (:class:`Previous`, carried in a header of the previous summary).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from humidity.core.aggregate import IngestTotals, SensorCounts, exact_total
from humidity.core.alarms import sort_alarms
from humidity.core.readings import utc_iso

INGEST = "ingest"
SENSORS = "sensors"
ALARMS = "alarms"
KINDS = (INGEST, SENSORS, ALARMS)
#: The figures a cut is made of; the active alarms are the newest known
#: (alarm rules depend on the order readings arrive in, not only on which).
CUT_KINDS = (INGEST, SENSORS)
#: Rounds of figures a book keeps per partition beyond the last published one.
HISTORY_MAX = 400


def partial_key(kind: str, partition: int) -> str:
    return f"{kind}/{partition}"


def parse_partial_key(key: str) -> tuple[str, int] | None:
    kind, _, number = key.partition("/")
    if kind not in KINDS or not number.isdigit():
        return None
    return kind, int(number)


def _figures(kind: str, doc: dict):
    if kind == INGEST:
        return IngestTotals.from_json(doc)
    if kind == SENSORS:
        return SensorCounts.from_json(doc)
    return list(doc["active"])


class Figures:
    """A partial's figures, built when a cut first needs them: most rounds
    are never summarised, and with many devices building is the cost."""

    __slots__ = ("kind", "doc", "_built")

    def __init__(self, kind: str, doc: dict) -> None:
        self.kind, self.doc, self._built = kind, doc, None

    def get(self):
        if self._built is None:
            self._built, self.doc = _figures(self.kind, self.doc), None
        return self._built


@dataclass
class Cut:
    """Every partition's figures as of one round."""

    round: int
    ingest: dict[int, IngestTotals]
    sensors: dict[int, SensorCounts]
    alarms: dict[int, list]

    def as_of(self) -> dict[str, int]:
        """Per input partition, the offset of the last message included (-1: none)."""
        return {str(p): self.ingest[p].offset for p in sorted(self.ingest)}


@dataclass
class PartialsBook:
    """The recent figures of every partition, by round, as shared by the
    workers that own them."""

    partitions: int
    history: dict[tuple[str, int], list] = field(default_factory=dict)  # -> [(round, offset, figures)]

    def update(self, key: str, doc: dict) -> bool:
        """Record one partial. A round's figures shared twice (a new owner
        closing it again) keep the ones of the higher offset."""
        parsed = parse_partial_key(key)
        if parsed is None or "round" not in doc:
            return False  # not a partial, or one written before rounds
        kind, partition = parsed
        if partition >= self.partitions:
            return False  # left over from a run with more partitions
        entries = self.history.setdefault(parsed, [])
        entry = (int(doc["round"]), int(doc["offset"]), Figures(kind, doc))
        at = bisect.bisect_left(entries, entry[0], key=lambda e: e[0])
        if at < len(entries) and entries[at][0] == entry[0]:
            if entries[at][1] > entry[1]:
                return False
            entries[at] = entry
        else:
            entries.insert(at, entry)
        del entries[:-HISTORY_MAX]
        return True

    def missing(self) -> list[str]:
        """Partitions with no figures yet: no summary could be global."""
        return [partial_key(kind, p) for kind in KINDS for p in range(self.partitions)
                if not self.history.get((kind, p))]

    def _as_of(self, kind: str, partition: int, tagged: int):
        """The figures of a partition as of round ``tagged``: those of the last
        round it closed at or before it (None if it closed none by then)."""
        entries = self.history[(kind, partition)]
        at = bisect.bisect_right(entries, tagged, key=lambda e: e[0])
        return entries[at - 1][2].get() if at else None

    def newest_cut(self, floor: dict[str, int] | None = None) -> Cut | None:
        """The newest round every input and sightings partition has closed
        whose figures agree (no sensor counted from past the round's input
        offsets, none missed at or below them) and whose input offsets are
        at or above ``floor`` (the previous summary's as_of), with the newest
        active alarms."""
        if self.missing():
            return None
        floor = floor or {}
        counted = [entries for (kind, _p), entries in self.history.items() if kind in CUT_KINDS]
        newest = min(entries[-1][0] for entries in counted)
        candidates = sorted({e[0] for entries in counted for e in entries if e[0] <= newest}, reverse=True)
        alarms = {p: self.history[(ALARMS, p)][-1][2].get() for p in range(self.partitions)}
        for tagged in candidates:
            figures = {kind: {p: self._as_of(kind, p, tagged) for p in range(self.partitions)} for kind in CUT_KINDS}
            if any(f is None for by_partition in figures.values() for f in by_partition.values()):
                return None  # older rounds lack a partition too
            ingest = figures[INGEST]
            if any(ingest[p].offset < floor.get(str(p), -1) for p in ingest):
                return None  # older rounds are further below the floor
            if all(_agree(counts, ingest) for counts in figures[SENSORS].values()):
                return Cut(tagged, ingest, figures[SENSORS], alarms)
        return None

    def forget_before(self, tagged: int) -> None:
        """Drop what no later cut can need: figures of rounds before
        ``tagged``, but the last one at or before it."""
        for entries in self.history.values():
            keep = bisect.bisect_right(entries, tagged, key=lambda e: e[0]) - 1
            if keep > 0:
                del entries[:keep]


def _agree(counts: SensorCounts, ingest: dict[int, IngestTotals]) -> bool:
    """Sensor counts describe the readings of the input figures: they count
    no sighting past them, and miss none at or below them."""
    if any(offset > ingest[p].offset for p, offset in counts.inputs.items() if p in ingest):
        return False
    return counts.covers is None or all(counts.covers.get(p, -1) >= totals.offset for p, totals in ingest.items())


@dataclass
class Previous:
    """What the previous summary counted, exactly (the ``cut`` header of its
    record on the results topic): the base of the next one's ``interval``."""

    time: str
    as_of: dict[str, int]
    valid: int
    invalid: int
    sensors: int
    devices: dict[str, tuple[list[float], int]]  # device -> (exact sum partials, count)

    def to_json(self) -> dict:
        return {"time": self.time, "as_of": self.as_of, "valid": self.valid, "invalid": self.invalid,
                "sensors": self.sensors, "devices": {d: [p, c] for d, (p, c) in self.devices.items()}}

    @classmethod
    def from_json(cls, doc: dict) -> Previous:
        return cls(doc["time"], {str(p): int(o) for p, o in doc["as_of"].items()}, int(doc["valid"]),
                   int(doc["invalid"]), int(doc["sensors"]),
                   {d: (list(p), int(c)) for d, (p, c) in doc["devices"].items()})


def _device_sums(ingest: Iterable[IngestTotals]) -> dict[str, tuple[list[float], int]]:
    sums: dict[str, tuple[list[float], int]] = {}
    for totals in ingest:
        for device, device_sum in totals.devices.items():
            partials, count = sums.get(device, ([], 0))
            sums[device] = (partials + device_sum.partials, count + device_sum.count)
    return sums


def _averages(sums: dict[str, tuple[list[float], int]], with_count: bool = False) -> list[dict]:
    rows = [{"device": d, "average": exact_total(p) / c, **({"count": c} if with_count else {})}
            for d, (p, c) in sums.items() if c]
    rows.sort(key=lambda row: (-row["average"], row["device"]))
    return rows


def build_summary(cut: Cut, published_at: datetime, interval: float,
                  previous: Previous | None = None) -> tuple[dict, Previous]:
    """The published summary of ``cut`` (the exact JSON shape), and what it
    counted, exactly, for the next one's ``interval``."""
    ingest = cut.ingest.values()
    sums = _device_sums(ingest)
    valid = sum(t.valid for t in ingest)
    invalid = sum(t.invalid for t in ingest)
    per_device: dict[str, int] = {}
    for counts in cut.sensors.values():
        for device, n in counts.devices.items():
            per_device[device] = per_device.get(device, 0) + n
    total_sensors = sum(c.sensors for c in cut.sensors.values())
    time = utc_iso(published_at)
    base = previous or Previous("", {}, 0, 0, 0, {})
    added: dict[str, tuple[list[float], int]] = {}
    for device, (partials, count) in sums.items():
        before_partials, before_count = base.devices.get(device, ([], 0))
        if count > before_count:
            added[device] = (partials + [-x for x in before_partials], count - before_count)
    summary = {
        "time": time,
        "interval_seconds": float(interval),
        "as_of": cut.as_of(),
        "average_humidity_by_device": _averages(sums),
        "total_messages": valid,
        "sensors_by_device": [{"device": d, "sensors": per_device[d]} for d in sorted(per_device)],
        "total_sensors": total_sensors,
        "invalid_messages": invalid,
        "active_alarms": sort_alarms([a for active in cut.alarms.values() for a in active]),
        "interval": {
            "since": previous.time if previous else None,
            "messages": valid - base.valid,
            "invalid_messages": invalid - base.invalid,
            "new_sensors": total_sensors - base.sensors,
            "average_humidity_by_device": _averages(added, with_count=True),
        },
    }
    return summary, Previous(time, summary["as_of"], valid, invalid, total_sensors, sums)


#: Active alarms listed in the log per summary; a fleet-wide outage (every
#: logger OFFLINE) would otherwise put thousands of lines in the log each interval.
LOGGED_ALARMS_MAX = 20


def render_text(summary: dict) -> str:
    """The four titled blocks of the old job's console output, each since the
    start and for this interval, for the log."""
    rule = "-" * 43
    interval = summary["interval"]
    since = f"since {interval['since']}" if interval["since"] else "since the start"
    blocks = [
        ("Average humidity by device (highest first), since the start",
         [f"({row['device']!r}, {row['average']})" for row in summary["average_humidity_by_device"]]),
        (f"Average humidity by device (highest first), this interval ({since})",
         [f"({row['device']!r}, {row['average']}, {row['count']} readings)"
          for row in interval["average_humidity_by_device"]]),
        ("Total messages processed",
         [f"Total number of messages: {summary['total_messages']} since the start, "
          f"{interval['messages']} this interval",
          f"Invalid messages (dead-lettered): {summary['invalid_messages']} since the start, "
          f"{interval['invalid_messages']} this interval"]),
        ("Number of sensors by device (devices ascending), since the start",
         [f"({row['device']!r}, {row['sensors']})" for row in summary["sensors_by_device"]]),
        ("Total number of sensors",
         [f"Total number of sensors: {summary['total_sensors']} since the start, "
          f"{interval['new_sensors']} new this interval"]),
    ]
    alarms = summary.get("active_alarms", [])
    rows = [f"{a['kind']} {a['device']!r} {a['guid']!r} value={a['value']} limit={a['limit']} since {a['since']}"
            for a in alarms[:LOGGED_ALARMS_MAX]]
    if len(alarms) > LOGGED_ALARMS_MAX:
        rows.append(f"... and {len(alarms) - LOGGED_ALARMS_MAX} more (all of them: GET /api/alarms)")
    blocks.insert(0, (f"Active alarms ({len(alarms)}, newest first)", rows))
    cut = ", ".join(f"{p}: {o}" for p, o in summary["as_of"].items())
    lines = [f"Readings at or below offsets {{{cut}}} of the input partitions"]
    for title, rows in blocks:
        lines += [rule, f"Time: {summary['time']}  {title}", rule]
        lines += rows or ["(none yet)"]
        lines.append("")
    return "\n".join(lines)


def render_line(summary: dict) -> str:
    """The summary in one log line (HUMIDITY_LOG_FORMAT=line)."""
    alarms = summary.get("active_alarms", [])
    interval = summary["interval"]
    as_of = ",".join(f"{p}:{o}" for p, o in summary["as_of"].items())
    return (f"time={summary['time']} messages={summary['total_messages']} invalid={summary['invalid_messages']} "
            f"sensors={summary['total_sensors']} devices={len(summary['average_humidity_by_device'])} "
            f"active_alarms={len(alarms)} interval_messages={interval['messages']} "
            f"interval_invalid={interval['invalid_messages']} new_sensors={interval['new_sensors']} as_of={as_of}")
