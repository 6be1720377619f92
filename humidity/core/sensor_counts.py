"""Distinct sensors per device, counted per sightings partition by round (pure).

A sensor is remembered once, in its own key, with the offset that first saw
it; the rules below use that offset to tell a redelivery from a new
sighting. Distinct-sensor counts are only additive over partitions when
every sensor lives on one partition: the ingest step forwards each first
sighting of a (device, guid) pair to a topic keyed by guid, and the counts
are kept there."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from humidity.core import formats, messages
from humidity.core.rounds import Ends


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
    ends: Ends = field(default_factory=lambda: Ends(0))  # Ends(0): not given
    epoch: int = 0  # of the owner that wrote it (humidity.core.ownership)
    #: Devices whose count changed since the last write, with the count
    #: before (None: the device was not counted yet); stored with the next header.
    unsaved: dict[str, int | None] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if not self.ends.partitions:
            self.ends = Ends(self.partitions)

    @property
    def sensors(self) -> int:
        return self.counts.sensors

    @property
    def devices(self) -> dict[str, int]:
        return self.counts.devices

    def in_round(self, round_number: int) -> SensorCounts:
        return self.open.setdefault(round_number, SensorCounts())

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
        before_versions = formats.version_of(doc) == 0
        if not before_versions and "devices" in doc:
            raise ValueError("a versioned sensor-totals header holds no devices")
        return cls(partitions, int(doc["offset"]), SensorCounts.from_json({"devices": {}, **doc}),
                   {int(r): SensorCounts.from_json(c) for r, c in doc.get("open", {}).items()},
                   Ends.from_json(partitions, doc if "ends" in doc or not before_versions else None),
                   int(doc.get("epoch", 0)))

    @classmethod
    def from_stored(cls, header: dict | None, entries: Iterable[tuple[str, dict]], partitions: int) -> SensorTotals:
        """The totals from a stored header and device entries. An entry
        written after its header (``r`` past the header's closed round: the
        header of its batch was lost) counts as it was before that batch.
        Devices held by a header written before format versions are stored
        as entries by the next write."""
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
    One written before format versions and rounds (``{"first", "devices":
    {device: offset}}``) counts as counted in a closed round."""
    if doc is None:
        return None
    if formats.version_of(doc) == 0 and "round" not in doc:
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
    counting = _Counting(totals, sensor_entry, epoch)
    for offset, message in messages:
        counting.message(offset, message)
    if through is not None:
        totals.offset = max(totals.offset, through)
    return counting.out


class _Counting:
    """One call of :func:`count_sensors`: the sensor entries it has loaded
    (each judged once, as it loads) and changed."""

    def __init__(self, totals: SensorTotals, sensor_entry: Callable[[str], dict | None], epoch: int) -> None:
        self.totals, self.sensor_entry, self.epoch = totals, sensor_entry, epoch
        self.out = SensorOutcome(totals)
        self.loaded: dict[str, dict | None] = {}
        self.stored = totals.offset  # what the totals included when the stored entries were written
        self.counted = totals.offset  # what the totals include so far

    def message(self, offset: int, message: dict) -> None:
        totals = self.totals
        replay = offset <= self.counted
        partition = message.get("p")
        if messages.is_end(message):
            if not replay:
                closing = totals.ends.end(int(message["p"]), int(message["end"]), int(message.get("o", -1)))
                if closing:
                    self.out.closed += _close(totals, closing)
                totals.offset = self.counted = offset
            return
        round_number = message.get("round")
        adds = None
        if replay:  # re-record in the round it counted in, or the last closed one
            at = totals.ends.closed if round_number is None else max(int(round_number), totals.ends.closed)
        else:
            at = totals.ends.effective(None if round_number is None else int(round_number))
            adds = totals.in_round(at)
            if partition is not None:
                adds.inputs[partition] = max(int(message["o"]), adds.inputs.get(partition, -1))
        for guid, device in message["s"]:
            self.sighting(guid, device, at, offset, adds)
        if not replay:
            totals.offset = self.counted = offset

    def sighting(self, guid: str, device: str, at: int, offset: int, adds: SensorCounts | None) -> None:
        """One sighting in round ``at``; ``adds``: that round's counts, or None
        for a redelivered message, which only re-records a lost entry."""
        if guid not in self.loaded:
            self.loaded[guid] = _entry(self.sensor_entry(guid), self.stored)
        entry = self.loaded[guid]
        changed = False
        if entry is None:
            if adds is not None:
                adds.sensors += 1
            entry = self.loaded[guid] = {"round": at, "first": offset, "devices": {}}
            changed = True
        elif adds is not None and entry["round"] > at:
            self.totals.open[entry["round"]].sensors -= 1
            adds.sensors += 1
            entry["round"], changed = at, True
        seen = entry["devices"].get(device)
        if seen is None:
            if adds is not None:
                adds.devices[device] = adds.devices.get(device, 0) + 1
            entry["devices"][device], changed = [at, offset], True
        elif adds is not None and seen[0] > at:
            self.totals.open[seen[0]].devices[device] -= 1
            adds.devices[device] = adds.devices.get(device, 0) + 1
            entry["devices"][device], changed = [at, seen[1]], True
        if changed:
            entry["epoch"] = self.epoch
            self.out.entries[guid] = entry


def _close(totals: SensorTotals, closing: list[int]) -> list[tuple[int, SensorCounts]]:
    """Fold the rounds up to the last of ``closing`` into the final counts;
    the counts as of each round that added something, that an input
    partition ended (what they cover changes there), and the last, each
    with what it covers (:meth:`Ends.covered`), listing the devices whose
    count the round changed (and how many devices there are)."""
    closed = closing[-1]
    counts = totals.counts
    snapshots = []
    for round_number in sorted({r for r in totals.open if r <= closed}.union(closing)):
        changed = {}
        adds = totals.open.pop(round_number, None)
        if adds is not None:
            counts.sensors += adds.sensors
            for partition, offset in adds.inputs.items():
                counts.inputs[partition] = max(offset, counts.inputs.get(partition, -1))
            for device, n in adds.devices.items():
                if device not in totals.unsaved:
                    totals.unsaved[device] = counts.devices.get(device)
                changed[device] = counts.devices[device] = counts.devices.get(device, 0) + n
        snapshots.append((round_number, SensorCounts(counts.sensors, changed, dict(counts.inputs),
                                               totals.ends.covered(round_number), len(counts.devices))))
    totals.ends.forget_closed()
    return snapshots
