"""Cumulative per-partition totals and the rules that update them (pure).

Why per partition, and why the offsets:

* A worker owns whole partitions. Everything kept for partition *p* is one
  value (``IngestTotals`` / ``SensorTotals``) that also records the offset of
  the last message it includes. That value is written in one table write, so
  counts and offset can never disagree, and a message redelivered after a
  crash (offset <= the recorded one) is recognised and not counted twice.
* Sensor sets do not go into those values (they would grow with the fleet).
  A sensor is remembered once, in its own key, with the offset that first saw
  it; the rules below use that offset to tell a redelivery from a new sighting.
* Distinct-sensor counts are only additive over partitions when every sensor
  lives on one partition. Readings arrive unkeyed, so the ingest step forwards
  each first sighting of a (device, guid) pair to a topic keyed by guid, and the
  sensor step counts there.

Humidity sums are kept exactly (Shewchuk's non-overlapping partials, the
algorithm behind :func:`math.fsum`), so the average does not depend on how
readings were split over partitions or workers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from humidity.core.readings import Invalid, Reading, parse_reading


def exact_add(partials: list[float], x: float) -> None:
    """Add ``x`` to an exact sum kept as non-overlapping float partials."""
    i = 0
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            partials[i] = lo
            i += 1
        x = hi
    partials[i:] = [x]


def exact_total(partials: Iterable[float]) -> float:
    return math.fsum(partials)


@dataclass
class DeviceSum:
    partials: list[float] = field(default_factory=list)
    count: int = 0

    def add(self, value: float) -> None:
        exact_add(self.partials, value)
        self.count += 1


@dataclass
class IngestTotals:
    """Everything counted from one input partition, up to ``offset``."""

    offset: int = -1
    valid: int = 0
    invalid: int = 0
    devices: dict[str, DeviceSum] = field(default_factory=dict)
    epoch: int = 0  # of the owner that wrote it (humidity.core.ownership)

    def to_json(self) -> dict:
        return {
            "offset": self.offset,
            "valid": self.valid,
            "invalid": self.invalid,
            "devices": {d: [s.partials, s.count] for d, s in self.devices.items()},
            "epoch": self.epoch,
        }

    @classmethod
    def from_json(cls, doc: dict | None) -> IngestTotals:
        if not doc:
            return cls()
        return cls(
            offset=int(doc["offset"]),
            valid=int(doc["valid"]),
            invalid=int(doc["invalid"]),
            devices={d: DeviceSum(list(p), int(c)) for d, (p, c) in doc["devices"].items()},
            epoch=int(doc.get("epoch", 0)),
        )


@dataclass
class SensorTotals:
    """Distinct sensors counted from one sightings partition, up to ``offset``."""

    offset: int = -1
    sensors: int = 0
    devices: dict[str, int] = field(default_factory=dict)
    epoch: int = 0  # of the owner that wrote it (humidity.core.ownership)

    def to_json(self) -> dict:
        return {"offset": self.offset, "sensors": self.sensors, "devices": dict(self.devices), "epoch": self.epoch}

    @classmethod
    def from_json(cls, doc: dict | None) -> SensorTotals:
        if not doc:
            return cls()
        return cls(int(doc["offset"]), int(doc["sensors"]), {d: int(n) for d, n in doc["devices"].items()},
                   int(doc.get("epoch", 0)))


def sighting_key(device: str, guid: str) -> str:
    """Table key of a (device, guid) pair; unambiguous for any strings."""
    return f"{len(device)}:{device}{guid}"


@dataclass
class IngestOutcome:
    totals: IngestTotals
    new_sightings: dict[str, int] = field(default_factory=dict)  # sighting key -> offset
    forwards: list[tuple[str, str]] = field(default_factory=list)  # (guid, device)
    dead_letters: list[tuple[int, str, bytes]] = field(default_factory=list)  # (offset, reason, raw)
    readings: list[Reading] = field(default_factory=list)  # every valid one, redelivered too (for alarms)


def ingest(
    totals: IngestTotals,
    messages: Iterable[tuple[int, bytes]],
    sighting_offset: Callable[[str], int | None],
    through: int | None = None,
) -> IngestOutcome:
    """Apply a partition's messages, in offset order, to its totals.

    ``sighting_offset(key)`` returns the offset that first saw a (device, guid)
    pair in this partition, or None. A redelivered message (offset at or below
    ``totals.offset``) changes no count; it only repeats what it sent (its
    dead letter, or the forward of a sighting it made), in case that was lost
    with the crash: those outputs are at-least-once, the counts exactly-once.
    A sighting whose table entry was lost is recorded again. ``through``: the
    last offset the messages cover (offsets without a message included).
    """
    out = IngestOutcome(totals)
    for offset, raw in messages:
        replay = offset <= totals.offset
        parsed = parse_reading(raw)
        if isinstance(parsed, Invalid):
            out.dead_letters.append((offset, parsed.reason, raw))
            if not replay:
                totals.invalid += 1
                totals.offset = offset
            continue
        _note_sighting(out, parsed, offset, sighting_offset)
        out.readings.append(parsed)
        if replay:
            continue
        totals.valid += 1
        device = totals.devices.get(parsed.device)
        if device is None:
            device = totals.devices[parsed.device] = DeviceSum()
        device.add(parsed.humidity)
        totals.offset = offset
    if through is not None:
        totals.offset = max(totals.offset, through)
    return out


def _note_sighting(
    out: IngestOutcome, reading: Reading, offset: int, sighting_offset: Callable[[str], int | None]
) -> None:
    key = sighting_key(reading.device, reading.guid)
    first = out.new_sightings.get(key)
    if first is None:
        first = sighting_offset(key)
    if first is None:
        out.new_sightings[key] = offset
        out.forwards.append((reading.guid, reading.device))
    elif first >= offset:  # this very message made the sighting: a redelivery
        out.forwards.append((reading.guid, reading.device))


@dataclass
class SensorOutcome:
    totals: SensorTotals
    entries: dict[str, dict] = field(default_factory=dict)  # guid -> entry to write


def count_sensors(
    totals: SensorTotals,
    sightings: Iterable[tuple[int, str, str]],
    sensor_entry: Callable[[str], dict | None],
    through: int | None = None,
    epoch: int = 0,
) -> SensorOutcome:
    """Count distinct sensors per device and overall from (offset, guid, device).

    A sensor entry is ``{"first": offset, "devices": {device: offset},
    "epoch": n}``: the offset at which the guid, and each of its devices, was
    counted. Something counts when it is absent, or when its recorded offset is
    beyond ``totals.offset`` (recorded just before a crash that lost the
    totals, and now redelivered); it is then re-recorded at the counting
    offset, so it can never count twice.

    A redelivered sighting (offset at or below ``totals.offset``) counts
    nothing, but re-records what its counting recorded if that entry is
    missing (its changelog record was lost while the totals' was not): the
    partition resumes at or before the first such sighting, so without this a
    later sighting of the same sensor would count it again. Changed entries
    are stamped with ``epoch``.
    """
    out = SensorOutcome(totals)
    loaded: dict[str, dict | None] = {}
    counted = totals.offset  # what the totals included before this batch
    for offset, guid, device in sightings:
        if guid not in loaded:
            loaded[guid] = sensor_entry(guid)
        entry = loaded[guid]
        if entry is None:
            entry = loaded[guid] = {"first": None, "devices": {}}
        changed = False
        first = entry["first"]
        if first is None or first > counted:
            if offset > counted:
                totals.sensors += 1
            if first != offset:
                entry["first"] = offset
                changed = True
        seen = entry["devices"].get(device)
        if seen is None or seen > counted:
            if offset > counted:
                totals.devices[device] = totals.devices.get(device, 0) + 1
            if seen != offset:
                entry["devices"][device] = offset
                changed = True
        if offset > counted:
            totals.offset = offset
            counted = offset
        if changed:
            entry["epoch"] = epoch
            out.entries[guid] = entry
    if through is not None:
        totals.offset = max(totals.offset, through)
    return out
