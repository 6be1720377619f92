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

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from humidity.core import formats
from humidity.core.exact_sums import DeviceSum
from humidity.core.readings import Invalid, Reading, parse_reading

if TYPE_CHECKING:  # only named here: the sensor counts build on these rules
    from humidity.core.sensor_counts import SensorTotals


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
        written before format versions and device entries holds the devices
        itself: they include the readings up to its offset, and are marked
        unsaved so that the next write stores them as entries."""
        totals = cls.from_json(header)
        if header and formats.version_of(header) == 0:
            for device in totals.devices.values():
                device.offset = totals.offset
            totals.unsaved = set(totals.devices)
        elif totals.devices:
            raise ValueError("a versioned ingest-totals header holds no devices")
        for name, doc in entries:
            totals.devices[name] = DeviceSum(list(doc["s"]), int(doc["c"]), int(doc["o"]))
            totals.unsaved.discard(name)
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
        (device_entry_key(partition, name), formats.dumps(totals.device_json(name))) for name in totals.unsaved]
    records.append((str(partition), formats.dumps(totals.header_json())))
    return records


def device_entries(partition: int, items: Iterable[tuple[bytes, bytes]]) -> Iterator[tuple[str, dict]]:
    """(device, entry) of a partition's stored device entries, from their table (key, value)."""
    skip = len(device_entry_prefix(partition))
    for key, value in items:
        yield key[skip:].decode("utf-8", "surrogatepass"), formats.loads(value, "a device entry")


def sighting_key(device: str, guid: str) -> str:
    """Table key of a (device, guid) pair; unambiguous for any strings."""
    return f"{len(device)}:{device}{guid}"


def sighting_value(offset: int) -> bytes:
    """Table value of a (device, guid) pair: the input offset that first sighted it."""
    return formats.dumps({"o": offset})


def sighting_offset(value: bytes) -> int:
    """The offset a stored sighting holds (one written before format
    versions holds it bare, not as a JSON object)."""
    if value[:1] != b"{":
        return int(value)
    return int(formats.loads(value, "table sightings")["o"])


@dataclass
class IngestOutcome:
    totals: IngestTotals
    new_sightings: dict[str, int] = field(default_factory=dict)  # sighting key -> offset
    forwards: list[tuple[str, str]] = field(default_factory=list)  # (guid, device)
    dead_letters: list[tuple[int, str, bytes | None]] = field(default_factory=list)  # (offset, reason, raw)
    #: (offset, reading) of every valid one, redelivered too (for the alarms and the history)
    readings: list[tuple[int, Reading]] = field(default_factory=list)


def ingest(
    totals: IngestTotals,
    messages: Iterable[tuple[int, bytes | None]],
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


