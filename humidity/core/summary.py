"""The published summary of a cut: the four figures of the old job, each one
cut of the input, with what it added since the previous summary (pure).

:func:`build_summary` turns a :class:`humidity.core.partials.Cut` into the
published summary, with what it added since the previous one
(:class:`Previous`, carried in a header of the previous summary), building
only the devices whose figures changed (:class:`SummaryMemo`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress
from operator import is_not, ne

from humidity.core.alarms import active_alarm, newest_alarms
from humidity.core.exact_sums import DeviceSum, exact_compact, exact_total
from humidity.core.partials import Cut
from humidity.core.readings import utc_iso


def _added(counts) -> dict[str, int]:
    """Counts per name, summed over the partitions' counts (names sorted)."""
    total: dict[str, int] = {}
    for by_name in counts:
        for name, n in by_name.items():
            total[name] = total.get(name, 0) + n
    return dict(sorted(total.items()))


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
        # orjson writes each (partials, count) tuple as a JSON array
        return {"time": self.time, "as_of": self.as_of, "valid": self.valid, "invalid": self.invalid,
                "sensors": self.sensors, "devices": self.devices}

    @classmethod
    def from_json(cls, doc: dict) -> Previous:
        return cls(doc["time"], {str(p): int(o) for p, o in doc["as_of"].items()}, int(doc["valid"]),
                   int(doc["invalid"]), int(doc["sensors"]),
                   {d: (list(p), int(c)) for d, (p, c) in doc["devices"].items()})


def _changed(before: dict[int, dict], now: dict[int, dict], differ: Callable[[object, object], bool]) -> set[str]:
    """The devices whose figure in some partition of ``now`` differs from
    the one ``before`` had, or that one of them lacks; every device if the
    partitions differ."""
    if before.keys() != now.keys():
        return set().union(*before.values(), *now.values())
    changed: set[str] = set()
    for p, devices in now.items():
        changed.update(_differing(before[p], devices, differ))
    return changed


def _differing(old: dict, new: dict, differ: Callable[[object, object], bool]) -> Iterable[str]:
    """The names whose value in ``new`` differs from the one in ``old``, or that one of them lacks."""
    if old is new:  # a chain's figures of the same round (Chain.built)
        return ()
    if list(old) == list(new):  # the same names in the same order, as usual: compared in C
        return compress(new, map(differ, old.values(), new.values()))
    return [*(d for d, v in new.items() if d not in old or differ(old[d], v)), *(old.keys() - new.keys())]


@dataclass
class SummaryMemo:
    """What the last summary built per device, kept for the next one: a
    device is built again only if its figures changed, so that a summary
    costs what changed since the last one plus C-level copies, sorts and
    serialising. Ingest figures are compared by identity: a chain makes new
    ones from every partial, and nothing changes them once made."""

    ingest: dict[int, dict[str, DeviceSum]] = field(default_factory=dict)  # the last cut's, per partition
    #: device -> its exact sum over the partitions (exact_compact) and count
    sums: dict[str, tuple[list[float], int]] = field(default_factory=dict)
    #: (-average, device, row) per device with readings, sorted: the order of average_humidity_by_device
    #: (highest first, by name among equal averages), kept so that a change sorts only what changed
    ordered: list[tuple[float, str, dict]] = field(default_factory=list)
    by_average: list[dict] = field(default_factory=list)
    sensors: dict[int, dict[str, int]] = field(default_factory=dict)  # the last cut's, per partition
    sensor_rows: dict[str, dict] = field(default_factory=dict)  # device -> its row of sensors_by_device
    by_name: list[dict] = field(default_factory=list)
    #: What the last summary counted: ``changed`` is relative to it.
    counted: Previous | None = None

    def take(self, cut: Cut) -> set[str]:
        """Bring the rows up to ``cut``; the devices whose sums changed."""
        ingest = {p: totals.devices for p, totals in cut.ingest.items()}
        before, sums = self.ingest, self.sums
        changed: set[str] = set()
        if before.keys() != ingest.keys():  # partitions came or went: every sum from the start
            changed.update(sums)
            sums.clear()
            before = {p: {} for p in ingest}
        # A device's sum moves by what its figure changed in each partition,
        # not by a pass over every partition.
        for p, devices in ingest.items():
            old = before[p]
            for device in _differing(old, devices, is_not):
                changed.add(device)
                partials, count = sums.get(device, ((), 0))
                parts = [*partials]
                if (now := devices.get(device)) is not None:
                    parts += now.partials
                    count += now.count
                if (then := old.get(device)) is not None:
                    parts += [-x for x in then.partials]
                    count -= then.count
                if count:
                    sums[device] = (exact_compact(parts), count)
                else:  # in no partition (a figure counts one reading at least)
                    sums.pop(device, None)
        rows = []
        for device in changed:
            found = sums.get(device)
            if found is not None:
                average = exact_total(found[0]) / found[1]
                rows.append((-average, device, {"device": device, "average": average}))
        if changed:
            self.ordered = [entry for entry in self.ordered if entry[1] not in changed] + rows
            self.ordered.sort()  # a sorted run and the changed rows: about linear
            self.by_average = [entry[2] for entry in self.ordered]
        self.ingest = ingest

        sensors = {p: counts.devices for p, counts in cut.sensors.items()}
        touched = _changed(self.sensors, sensors, ne)
        parts = list(sensors.values())
        reorder = False  # a device came or went
        for device in touched:
            counts = [n for devices in parts if (n := devices.get(device)) is not None]
            if counts:
                reorder |= device not in self.sensor_rows
                self.sensor_rows[device] = {"device": device, "sensors": sum(counts)}
            elif self.sensor_rows.pop(device, None) is not None:
                reorder = True
        if reorder:
            self.by_name = [self.sensor_rows[d] for d in sorted(self.sensor_rows)]
        elif touched:
            self.by_name = [self.sensor_rows[row["device"]] for row in self.by_name]
        self.sensors = sensors
        return changed


def _by_average(rows: Iterable[dict]) -> list[dict]:
    """Rows by average, highest first, and by device name among equal averages."""
    return sorted(rows, key=lambda row: (-row["average"], row["device"]))


def build_summary(cut: Cut, published_at: datetime, interval: float,
                  previous: Previous | None = None, memo: SummaryMemo | None = None) -> tuple[dict, Previous]:
    """The published summary of ``cut`` (the exact JSON shape), and what it
    counted, exactly, for the next one's ``interval``. ``memo``: what the
    last summary built (updated; a new one builds every device)."""
    memo = memo or SummaryMemo()
    since_counted = previous is memo.counted
    changed = memo.take(cut)
    ingest = cut.ingest.values()
    valid = sum(t.valid for t in ingest)
    invalid = sum(t.invalid for t in ingest)
    total_sensors = sum(c.sensors for c in cut.sensors.values())
    time = utc_iso(published_at)
    base = previous or Previous("", {}, 0, 0, 0, {})
    added: dict[str, tuple[list[float], int]] = {}
    # a device that did not change since what ``previous`` counted added nothing
    for device in changed if since_counted else memo.sums:
        found = memo.sums.get(device)
        if found is None:
            continue
        partials, count = found
        before_partials, before_count = base.devices.get(device, ([], 0))
        if count > before_count:
            added[device] = (partials + [-x for x in before_partials], count - before_count)
    summary = {
        "time": time,
        "interval_seconds": float(interval),
        "as_of": cut.as_of(),
        "average_humidity_by_device": memo.by_average,
        "total_messages": valid,
        "sensors_by_device": memo.by_name,
        "total_sensors": total_sensors,
        "invalid_messages": invalid,
        "active_alarms": [active_alarm(a) for a in newest_alarms(a for shared in cut.alarms.values()
                                                                 for a in shared["active"])],
        "active_alarm_count": sum(shared["count"] for shared in cut.alarms.values()),
        "active_alarms_by_kind": _added(shared["by_kind"] for shared in cut.alarms.values()),
        "active_alarms_by_device": _added(shared["by_device"] for shared in cut.alarms.values()),
        "interval": {
            "since": previous.time if previous else None,
            "messages": valid - base.valid,
            "invalid_messages": invalid - base.invalid,
            "new_sensors": total_sensors - base.sensors,
            "average_humidity_by_device": _by_average(
                {"device": d, "average": exact_total(p) / c, "count": c} for d, (p, c) in added.items()),
        },
    }
    memo.counted = Previous(time, summary["as_of"], valid, invalid, total_sensors, dict(memo.sums))
    return summary, memo.counted


