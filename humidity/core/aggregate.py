"""Cumulative per-partition totals and the rules that update them (pure).

Why per partition, and why the offsets:

* A worker owns whole partitions. What is kept for partition *p* records
  the offset of the last message it includes, written in the same table
  write as the counts, so counts and offset can never disagree, and a
  message redelivered after a crash (offset <= the recorded one) is
  recognised and not counted twice. Ingest totals are a header (counts,
  offset) and one entry per device (its exact sum, count, and the offset
  through which it includes the device's readings), so that a batch writes
  only the devices it touched: each entry is a fact on its own ("device d's
  readings of p up to offset o"), whichever of the writes a crash kept.
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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import orjson

from humidity.core.readings import Invalid, Reading, parse_reading
from humidity.core.rounds import Ends


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


def exact_compact(values: Iterable[float]) -> list[float]:
    """The exact sum of ``values`` in as few floats as it takes, largest
    first: each the correctly rounded rest of the sum after the ones before.
    The list depends only on the exact sum, however it was split."""
    rest = list(values)
    out: list[float] = []
    while part := math.fsum(rest):
        out.append(part)
        if not math.isfinite(part):
            break
        rest.append(-part)
    return out


@dataclass
class DeviceSum:
    partials: list[float] = field(default_factory=list)
    count: int = 0
    #: The input offset through which the device's readings are included
    #: (stored entries only; -1 in shared figures).
    offset: int = field(default=-1, compare=False)

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
    last_round: int = -1  # the round (humidity.core.rounds) of the last batch counted
    #: Devices whose stored entry is behind: written with the next header.
    unsaved: set[str] = field(default_factory=set, compare=False)
    #: Shared figures without their devices: how many there are.
    device_count: int | None = field(default=None, compare=False)

    def to_json(self) -> dict:
        """Everything in one document (the figures shared for a round)."""
        return {**self.header_json(), "devices": {d: [s.partials, s.count] for d, s in self.devices.items()}}

    def header_json(self) -> dict:
        """The stored header: the counts and offset, without the devices."""
        return {"offset": self.offset, "valid": self.valid, "invalid": self.invalid,
                "epoch": self.epoch, "last_round": self.last_round, "device_count": len(self.devices)}

    def device_json(self, name: str) -> dict:
        """The stored entry of one device."""
        device = self.devices[name]
        return {"s": device.partials, "c": device.count, "o": device.offset, "epoch": self.epoch}

    @classmethod
    def from_json(cls, doc: dict | None) -> IngestTotals:
        if not doc:
            return cls()
        return cls(
            offset=int(doc["offset"]),
            valid=int(doc["valid"]),
            invalid=int(doc["invalid"]),
            devices={d: DeviceSum(list(p), int(c)) for d, (p, c) in doc.get("devices", {}).items()},
            epoch=int(doc.get("epoch", 0)),
            last_round=int(doc.get("last_round", -1)),
            device_count=doc.get("device_count"),
        )

    @classmethod
    def from_stored(cls, header: dict | None, entries: Iterable[tuple[str, dict]]) -> IngestTotals:
        """The totals from a stored header and device entries. A header
        written before device entries existed holds the devices itself: they
        include the readings up to its offset, and are marked unsaved so that
        the next write stores them as entries."""
        totals = cls.from_json(header)
        for device in totals.devices.values():
            device.offset = totals.offset
        totals.unsaved = set(totals.devices)
        for name, doc in entries:
            totals.devices[name] = DeviceSum(list(doc["s"]), int(doc["c"]), int(doc["o"]))
            totals.unsaved.discard(name)
        return totals


@dataclass
class SensorCounts:
    """Distinct sensors overall and per device, and per input partition the
    highest input offset whose sightings they include."""

    sensors: int = 0
    devices: dict[str, int] = field(default_factory=dict)
    inputs: dict[int, int] = field(default_factory=dict)
    #: Shared counts only: per input partition, the offset up to which they
    #: are complete (None: not known, as in partials of earlier versions).
    covers: dict[int, int] | None = None
    #: Shared counts that list only some devices: how many there are.
    device_count: int | None = None

    def to_json(self) -> dict:
        doc = {"sensors": self.sensors, "devices": dict(self.devices),
               "inputs": {str(p): o for p, o in self.inputs.items()}}
        if self.covers is not None:
            doc["covers"] = {str(p): o for p, o in self.covers.items()}
        if self.device_count is not None:
            doc["device_count"] = self.device_count
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> SensorCounts:
        covers = doc.get("covers")
        return cls(int(doc["sensors"]), {d: int(n) for d, n in doc["devices"].items()},
                   {int(p): int(o) for p, o in doc.get("inputs", {}).items()},
                   None if covers is None else {int(p): int(o) for p, o in covers.items()},
                   doc.get("device_count"))


@dataclass
class SensorTotals:
    """Distinct sensors counted from one sightings partition, up to ``offset``:
    final through the last closed round (``counts``), and what each open round
    adds (``open``). See :mod:`humidity.core.rounds`."""

    partitions: int
    offset: int = -1
    counts: SensorCounts = field(default_factory=SensorCounts)
    open: dict[int, SensorCounts] = field(default_factory=dict)
    ends: Ends = None  # type: ignore[assignment]
    epoch: int = 0  # of the owner that wrote it (humidity.core.ownership)
    #: Devices whose count changed since the last write, with the count
    #: before (None: the device was not counted yet); stored with the next header.
    unsaved: dict[str, int | None] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.ends is None:
            self.ends = Ends(self.partitions)

    @property
    def sensors(self) -> int:
        return self.counts.sensors

    @property
    def devices(self) -> dict[str, int]:
        return self.counts.devices

    def in_round(self, tagged: int) -> SensorCounts:
        return self.open.setdefault(tagged, SensorCounts())

    def to_json(self) -> dict:
        return {**self.header_json(), "devices": dict(self.counts.devices)}

    def header_json(self) -> dict:
        """The stored header: everything but the closed counts per device."""
        counts = self.counts.to_json()
        del counts["devices"]
        return {"offset": self.offset, **counts, **self.ends.to_json(),
                "open": {str(r): c.to_json() for r, c in self.open.items()}, "epoch": self.epoch,
                "device_count": len(self.counts.devices)}

    def device_json(self, name: str) -> dict:
        """The stored entry of one device: its count as of the last closed
        round, and before the changes since the previous write (what a
        restore takes if the header written with it was lost)."""
        return {"n": self.counts.devices[name], "r": self.ends.closed, "was": self.unsaved.get(name),
                "epoch": self.epoch}

    @classmethod
    def from_json(cls, doc: dict | None, partitions: int) -> SensorTotals:
        if not doc:
            return cls(partitions)
        return cls(partitions, int(doc["offset"]), SensorCounts.from_json({"devices": {}, **doc}),
                   {int(r): SensorCounts.from_json(c) for r, c in doc.get("open", {}).items()},
                   Ends.from_json(partitions, doc if "ends" in doc else None), int(doc.get("epoch", 0)))

    @classmethod
    def from_stored(cls, header: dict | None, entries: Iterable[tuple[str, dict]], partitions: int) -> SensorTotals:
        """The totals from a stored header and device entries. An entry
        written after its header (``r`` past the header's closed round: the
        header of its batch was lost) counts as it was before that batch.
        Devices held by a header of an earlier version are stored as entries
        by the next write."""
        totals = cls.from_json(header, partitions)
        devices = totals.counts.devices
        totals.unsaved = dict(devices)
        for name, doc in entries:
            totals.unsaved.pop(name, None)
            n = doc["n"] if int(doc["r"]) <= totals.ends.closed else doc["was"]
            if n is None:
                devices.pop(name, None)
            else:
                devices[name] = int(n)
        return totals


def device_entry_prefix(partition: int) -> bytes:
    """Table keys of a partition's device entries begin with this."""
    return b"%d/" % partition


def device_entry_key(partition: int, device: str) -> bytes:
    return device_entry_prefix(partition) + device.encode("utf-8", "surrogatepass")


def stored_records(partition: int, totals: IngestTotals | SensorTotals) -> list[tuple[bytes | str, bytes]]:
    """The table records a batch writes of a partition's totals: the entries
    of its unsaved devices, then the header (under the partition's number)."""
    records: list[tuple[bytes | str, bytes]] = [
        (device_entry_key(partition, name), orjson.dumps(totals.device_json(name))) for name in totals.unsaved]
    records.append((str(partition), orjson.dumps(totals.header_json())))
    return records


def device_entries(partition: int, items: Iterable[tuple[bytes, bytes]]) -> Iterator[tuple[str, dict]]:
    """(device, entry) of a partition's stored device entries, from their table (key, value)."""
    skip = len(device_entry_prefix(partition))
    for key, value in items:
        yield key[skip:].decode("utf-8", "surrogatepass"), orjson.loads(value)


def sighting_key(device: str, guid: str) -> str:
    """Table key of a (device, guid) pair; unambiguous for any strings."""
    return f"{len(device)}:{device}{guid}"


@dataclass
class IngestOutcome:
    totals: IngestTotals
    new_sightings: dict[str, int] = field(default_factory=dict)  # sighting key -> offset
    forwards: list[tuple[str, str]] = field(default_factory=list)  # (guid, device)
    dead_letters: list[tuple[int, str, bytes]] = field(default_factory=list)  # (offset, reason, raw)
    #: (offset, reading) of every valid one, redelivered too (for the alarms and the history)
    readings: list[tuple[int, Reading]] = field(default_factory=list)


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
    A sighting whose table entry was lost is recorded again. A device whose
    entry already includes a reading (its offset is at or past it: stored
    by a batch whose header a crash lost) does not add it again. ``through``:
    the last offset the messages cover (offsets without a message included).
    Devices whose entry changed are added to ``totals.unsaved``.
    """
    out = IngestOutcome(totals)
    touched: set[str] = set()
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
        out.readings.append((offset, parsed))
        if replay:
            continue
        totals.valid += 1
        device = totals.devices.get(parsed.device)
        if device is None:
            device = totals.devices[parsed.device] = DeviceSum()
        if offset > device.offset:
            device.add(parsed.humidity)
            touched.add(parsed.device)
        totals.offset = offset
    if through is not None:
        totals.offset = max(totals.offset, through)
    for name in touched:
        totals.devices[name].offset = totals.offset
    totals.unsaved |= touched
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
    closed: list[tuple[int, SensorCounts]] = field(default_factory=list)  # (round, counts as of it)


def _entry(doc: dict | None, counted: int) -> dict | None:
    """A stored sensor entry ``{"round", "first", "devices": {device: [round,
    offset]}}`` as far as the totals include it (through sightings offset
    ``counted``): what it records past that was written by a batch whose
    totals a crash lost, and counts again when that batch is redelivered.
    One written before rounds (``{"first", "devices": {device: offset}}``)
    counts as counted in a closed round."""
    if doc is None:
        return None
    if "round" not in doc:
        doc = {"round": -1, "first": doc["first"], "devices": {d: [-1, o] for d, o in doc["devices"].items()}}
    if doc["first"] > counted:
        return None
    return {**doc, "devices": {d: seen for d, seen in doc["devices"].items() if seen[1] <= counted}}


def count_sensors(
    totals: SensorTotals,
    messages: Iterable[tuple[int, dict]],
    sensor_entry: Callable[[str], dict | None],
    through: int | None = None,
    epoch: int = 0,
) -> SensorOutcome:
    """Count distinct sensors per device and overall, by round, from the
    messages of one sightings partition: ``(offset, doc)`` with ``doc`` a
    bundle ``{"p", "round", "o", "s": [[guid, device], ...]}`` (the first
    sightings of input partition ``p``'s batch through input offset ``o``,
    in that round) or an end ``{"p", "end", "o"}``.

    A sensor entry records the round it counts in and the sightings offset
    that counted it, for the guid and for each of its devices. A stored
    entry is judged once, as it is loaded, against what the totals include
    (:func:`_entry`); from then on this call's own changes are the truth. A
    sighting counts in its round when its guid (or its device for that
    guid) is not counted yet; one already counted in a later, still open
    round moves to this one, so that each round adds exactly the sensors
    first seen at or below the round's cut. A redelivered message (offset at or below
    ``totals.offset``) counts nothing, but re-records the entry its counting
    made if that was lost while the totals were not. Changed entries are
    stamped with ``epoch``. ``out.closed``: the rounds this closed, with the
    counts as of each (every round that added something, and the last).
    """
    out = SensorOutcome(totals)
    loaded: dict[str, dict | None] = {}
    stored = totals.offset  # what the totals included when the stored entries were written
    counted = stored  # what the totals include so far
    for offset, message in messages:
        replay = offset <= counted
        partition = message.get("p")
        if "end" in message:
            if not replay:
                closing = totals.ends.end(partition, int(message["end"]), int(message.get("o", -1)))
                if closing:
                    out.closed += _close(totals, closing)
                totals.offset = counted = offset
            continue
        tagged = message.get("round")
        if replay:  # re-record in the round it counted in, or the last closed one
            at = totals.ends.closed if tagged is None else max(int(tagged), totals.ends.closed)
        else:
            at = totals.ends.effective(None if tagged is None else int(tagged))
            adds = totals.in_round(at)
            if partition is not None:
                adds.inputs[partition] = max(int(message["o"]), adds.inputs.get(partition, -1))
        for guid, device in message["s"]:
            if guid not in loaded:
                loaded[guid] = _entry(sensor_entry(guid), stored)
            entry = loaded[guid]
            changed = False
            if entry is None:
                if not replay:
                    adds.sensors += 1
                entry = loaded[guid] = {"round": at, "first": offset, "devices": {}}
                changed = True
            elif not replay and entry["round"] > at:
                totals.open[entry["round"]].sensors -= 1
                adds.sensors += 1
                entry["round"], changed = at, True
            seen = entry["devices"].get(device)
            if seen is None:
                if not replay:
                    adds.devices[device] = adds.devices.get(device, 0) + 1
                entry["devices"][device], changed = [at, offset], True
            elif not replay and seen[0] > at:
                moved_from = totals.open[seen[0]].devices
                moved_from[device] -= 1
                adds.devices[device] = adds.devices.get(device, 0) + 1
                entry["devices"][device], changed = [at, seen[1]], True
            if changed:
                entry["epoch"] = epoch
                out.entries[guid] = entry
        if not replay:
            totals.offset = counted = offset
    if through is not None:
        totals.offset = max(totals.offset, through)
    return out


def _close(totals: SensorTotals, closing: list[int]) -> list[tuple[int, SensorCounts]]:
    """Fold the rounds up to the last of ``closing`` into the final counts;
    the counts as of each round that added something, that an input
    partition ended (what they cover changes there), and the last, each
    with what it covers (:meth:`Ends.covered`), listing the devices whose
    count the round changed (and how many devices there are)."""
    closed = closing[-1]
    counts = totals.counts
    snapshots = []
    for tagged in sorted({r for r in totals.open if r <= closed}.union(closing)):
        changed = {}
        adds = totals.open.pop(tagged, None)
        if adds is not None:
            counts.sensors += adds.sensors
            for partition, offset in adds.inputs.items():
                counts.inputs[partition] = max(offset, counts.inputs.get(partition, -1))
            for device, n in adds.devices.items():
                if device not in totals.unsaved:
                    totals.unsaved[device] = counts.devices.get(device)
                changed[device] = counts.devices[device] = counts.devices.get(device, 0) + n
        snapshots.append((tagged, SensorCounts(counts.sensors, changed, dict(counts.inputs),
                                               totals.ends.covered(tagged), len(counts.devices))))
    totals.ends.forget_closed()
    return snapshots
