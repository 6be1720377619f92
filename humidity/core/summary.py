"""The four summaries, computed from per-partition totals (pure).

Workers share the totals and active alarms of the partitions they own as
*partials*, keyed ``ingest/<p>``, ``sensors/<p>`` and ``alarms/<p>``.
:class:`PartialsBook` keeps the newest
partial per partition; once it holds every partition it yields the global
summary, which is the same whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from humidity.core.aggregate import IngestTotals, SensorTotals, exact_total
from humidity.core.alarms import sort_alarms
from humidity.core.readings import utc_iso

INGEST = "ingest"
SENSORS = "sensors"
ALARMS = "alarms"
KINDS = (INGEST, SENSORS, ALARMS)


def partial_key(kind: str, partition: int) -> str:
    return f"{kind}/{partition}"


def parse_partial_key(key: str) -> tuple[str, int] | None:
    kind, _, number = key.partition("/")
    if kind not in KINDS or not number.isdigit():
        return None
    return kind, int(number)


@dataclass
class PartialsBook:
    """Newest totals per partition, as shared by the workers that own them."""

    partitions: int
    ingest: dict[int, IngestTotals] = field(default_factory=dict)
    sensors: dict[int, SensorTotals] = field(default_factory=dict)
    alarms: dict[int, dict] = field(default_factory=dict)  # {"offset", "active": [alarm, ...]}

    def update(self, key: str, doc: dict) -> bool:
        """Record one partial; an older one (lower offset) never replaces a newer."""
        parsed = parse_partial_key(key)
        if parsed is None:
            return False
        kind, partition = parsed
        if partition >= self.partitions:
            return False  # left over from a run with more partitions
        if kind == ALARMS:
            current_alarms = self.alarms.get(partition)
            if current_alarms is not None and current_alarms["offset"] > doc["offset"]:
                return False
            self.alarms[partition] = {"offset": int(doc["offset"]), "active": list(doc["active"])}
            return True
        book: dict = self.ingest if kind == INGEST else self.sensors
        totals = IngestTotals.from_json(doc) if kind == INGEST else SensorTotals.from_json(doc)
        current = book.get(partition)
        if current is not None and current.offset > totals.offset:
            return False
        book[partition] = totals
        return True

    def missing(self) -> list[str]:
        """Partitions with no partial yet: the summary would not be global."""
        books = {INGEST: self.ingest, SENSORS: self.sensors, ALARMS: self.alarms}
        return [partial_key(kind, p) for kind in KINDS for p in range(self.partitions) if p not in books[kind]]

    def summary(self, published_at: datetime, interval: float) -> dict:
        active = [alarm for part in self.alarms.values() for alarm in part["active"]]
        return build_summary(self.ingest.values(), self.sensors.values(), published_at, interval, active)


def build_summary(
    ingest: Iterable[IngestTotals],
    sensors: Iterable[SensorTotals],
    published_at: datetime,
    interval: float,
    active_alarms: Iterable[dict] | None = None,
) -> dict:
    """Merge partition totals into the published summary (the exact JSON shape)."""
    partials: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    valid = invalid = 0
    for totals in ingest:
        valid += totals.valid
        invalid += totals.invalid
        for device, sums in totals.devices.items():
            partials.setdefault(device, []).extend(sums.partials)
            counts[device] = counts.get(device, 0) + sums.count
    averages = [
        {"device": device, "average": exact_total(partials[device]) / counts[device]}
        for device in counts
        if counts[device]
    ]
    averages.sort(key=lambda row: (-row["average"], row["device"]))

    per_device: dict[str, int] = {}
    total_sensors = 0
    for totals in sensors:
        total_sensors += totals.sensors
        for device, n in totals.devices.items():
            per_device[device] = per_device.get(device, 0) + n
    return {
        "time": utc_iso(published_at),
        "interval_seconds": float(interval),
        "average_humidity_by_device": averages,
        "total_messages": valid,
        "sensors_by_device": [{"device": d, "sensors": per_device[d]} for d in sorted(per_device)],
        "total_sensors": total_sensors,
        "invalid_messages": invalid,
        "active_alarms": sort_alarms(list(active_alarms or [])),
    }


#: Active alarms listed in the log per summary; a fleet-wide outage (every
#: logger OFFLINE) would otherwise put thousands of lines in the log each interval.
LOGGED_ALARMS_MAX = 20


def render_text(summary: dict) -> str:
    """Four titled blocks, like the old job's console output, for the log."""
    rule = "-" * 43
    blocks = [
        ("Average humidity by device (highest first)",
         [f"({row['device']!r}, {row['average']})" for row in summary["average_humidity_by_device"]]),
        ("Total messages processed",
         [f"Total number of messages: {summary['total_messages']}",
          f"Invalid messages (dead-lettered): {summary['invalid_messages']}"]),
        ("Number of sensors by device (devices ascending)",
         [f"({row['device']!r}, {row['sensors']})" for row in summary["sensors_by_device"]]),
        ("Total number of sensors", [f"Total number of sensors: {summary['total_sensors']}"]),
    ]
    alarms = summary.get("active_alarms", [])
    rows = [f"{a['kind']} {a['device']!r} {a['guid']!r} value={a['value']} limit={a['limit']} since {a['since']}"
            for a in alarms[:LOGGED_ALARMS_MAX]]
    if len(alarms) > LOGGED_ALARMS_MAX:
        rows.append(f"... and {len(alarms) - LOGGED_ALARMS_MAX} more (all of them: GET /api/alarms)")
    blocks.insert(0, (f"Active alarms ({len(alarms)}, newest first)", rows))
    lines = []
    for title, rows in blocks:
        lines += [rule, f"Time: {summary['time']}  {title}", rule]
        lines += rows or ["(none yet)"]
        lines.append("")
    return "\n".join(lines)


def render_line(summary: dict) -> str:
    """The summary in one log line (HUMIDITY_LOG_FORMAT=line)."""
    alarms = summary.get("active_alarms", [])
    return (f"time={summary['time']} messages={summary['total_messages']} invalid={summary['invalid_messages']} "
            f"sensors={summary['total_sensors']} devices={len(summary['average_humidity_by_device'])} "
            f"active_alarms={len(alarms)}")
