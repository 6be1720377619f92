"""The four summaries, each one cut of the input, computed from per-partition
figures (pure).

Workers share, for every round they close (:mod:`humidity.core.rounds`),
the figures of the partitions they own as *partials*, keyed ``ingest/<p>``
(counts and exact sums per device of input partition *p*, and the offset
they include), ``sensors/<q>`` (distinct sensors per device of sightings
partition *q*, and per input partition the highest offset whose sightings
they include) and ``alarms/<a>`` (the active alarms of alarm partition *a*).
Ingest and sensor partials list only the devices whose figures changed since
the owner's previous one, with a base of every device now and then
(:class:`Sharer`, :class:`Chain`), so that sharing costs what changed, not
the size of the fleet. :class:`PartialsBook` keeps the recent ones;
:meth:`PartialsBook.newest_cut` finds the newest round for which every
partition has shared its figures, whose sensor counts include nothing past
its input offsets and miss nothing at or below them, and whose offsets are
nowhere below the previous summary's; :func:`build_summary` turns it into
the published summary, with what it added since the previous one
(:class:`Previous`, carried in a header of the previous summary).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from itertools import compress
from operator import is_not, itemgetter, ne

from humidity.core.aggregate import DeviceSum, IngestTotals, SensorCounts, exact_compact, exact_total
from humidity.core.alarms import ALARMS_LISTED, active_alarm, newest_alarms, shared_alarms
from humidity.core.listing import Listing, ListingError
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
#: A chain trims the entries of devices that stopped changing once in this
#: many forget_before calls: each summary calls it, and a pass is O(devices).
TRIM_EVERY = 40


def partial_key(kind: str, partition: int) -> str:
    return f"{kind}/{partition}"


def parse_partial_key(key: str) -> tuple[str, int] | None:
    kind, _, number = key.partition("/")
    if kind not in KINDS or not number.isdigit():
        return None
    return kind, int(number)


#: A partition's owner shares every device's figures (a base) at least once
#: in this many rounds, and in between only the devices that changed: a
#: reader that missed part of a chain (compaction keeps one record per key)
#: has a complete one again after at most this many rounds.
BASE_EVERY = 40


def _header(kind: str, doc: dict):
    """A partial's figures without the devices (they are kept per device)."""
    if kind == INGEST:
        return IngestTotals.from_json({**doc, "devices": {}})
    return SensorCounts.from_json({**doc, "devices": {}})


def _device_value(kind: str, value):
    return DeviceSum(list(value[0]), int(value[1])) if kind == INGEST else int(value)


@dataclass
class Chain:
    """One partition's figures of one kind (ingest or sensors), round by
    round, as its owners share them: a *base* lists every device; a *delta*
    (``since``: the round of the owner's previous partial) only the devices
    whose figures changed. A delta is taken only where it continues the
    chain, a base from the same owner or a later one (a higher epoch), so the
    figures as of any round kept are complete. Devices are kept per device,
    so that a delta costs what it changed."""

    kind: str
    epoch: int = -1
    tail: int = -1  # the newest round taken
    rounds: list = field(default_factory=list)  # [(round, offset, figures without devices)], ascending
    devices: dict[str, list] = field(default_factory=dict)  # device -> [(round, value or None)], ascending
    several: set[str] = field(default_factory=set)  # devices with more than one entry
    #: device -> its value as of the newest round taken (None left out): a
    #: summary of the newest round copies it instead of looking up every device.
    newest: dict = field(default_factory=dict)
    forgets: int = 0  # calls of forget_before
    #: (round, its figures) of the last figures built: a round's figures do
    #: not change once taken (only a new owner's base replaces them, _truncate),
    #: and summaries mostly ask for the same round again.
    built: tuple | None = None

    def update(self, doc: dict) -> bool:
        tagged, offset, epoch, since = int(doc["round"]), int(doc["offset"]), int(doc.get("epoch", 0)), \
            doc.get("since")
        if since is None:
            if (epoch, tagged, offset) <= (self.epoch, self.tail, self.rounds[-1][1] if self.rounds else -1):
                return False  # a late base of a former owner, or one already taken
            if tagged <= self.tail:  # a new owner closed these rounds again: its figures replace them
                self._truncate(tagged)
        elif epoch != self.epoch or int(since) != self.tail or tagged <= self.tail:
            return False  # does not continue the chain: wait for the next base
        devices = doc.get("devices", {})
        for name, value in devices.items():
            self._set(name, tagged, _device_value(self.kind, value))
        if since is None:  # a device the base does not list is not in the partition's figures
            for name in [d for d in self.devices if d not in devices]:
                self._set(name, tagged, None)
        self.rounds.append((tagged, offset, _header(self.kind, doc)))
        self.epoch, self.tail = epoch, tagged
        if len(self.rounds) > HISTORY_MAX + HISTORY_MAX // 8:
            self.forget_before(self.rounds[-HISTORY_MAX][0])
        return True

    def _truncate(self, tagged: int) -> None:
        """Forget rounds ``tagged`` and later."""
        self.built = None
        del self.rounds[bisect.bisect_left(self.rounds, tagged, key=lambda e: e[0]):]
        for name in list(self.devices):
            entries = self.devices[name]
            del entries[bisect.bisect_left(entries, tagged, key=lambda e: e[0]):]
            if not entries:
                del self.devices[name]
            if len(entries) < 2:
                self.several.discard(name)
            if entries and entries[-1][1] is not None:
                self.newest[name] = entries[-1][1]
            else:
                self.newest.pop(name, None)
        self.tail = self.rounds[-1][0] if self.rounds else -1

    def _set(self, name: str, tagged: int, value) -> None:
        entries = self.devices.get(name)
        if value is None:
            self.newest.pop(name, None)
        else:
            self.newest[name] = value
        if entries is None:
            if value is not None:
                self.devices[name] = [(tagged, value)]
            return
        entries.append((tagged, value))
        if self.rounds:  # what no cut can need goes as the device changes (forget_before trims the rest)
            _drop_before(entries, self.rounds[0][0])
        self.several.add(name)  # the new entry is after every round kept, so at least two remain

    def head(self, tagged: int):
        """(round, offset, figures without devices) of the last round taken at or before ``tagged``."""
        at = bisect.bisect_right(self.rounds, tagged, key=lambda e: e[0])
        return self.rounds[at - 1] if at else None

    def figures(self, tagged: int):
        """The figures as of round ``tagged`` with every device, or None if
        they are not complete (a device count that disagrees)."""
        head = self.head(tagged)
        if head is None:
            return None
        at, _offset, header = head
        if self.built is not None and self.built[0] == at:
            return self.built[1]
        devices = dict(self.newest) if at == self.tail else self.devices_at(at)
        if header.device_count is not None and header.device_count != len(devices):
            return None
        figures = replace(header, devices=devices)
        self.built = (at, figures)
        return figures

    def devices_at(self, at: int) -> dict:
        """Every device's value as of round ``at`` (one that was taken), looked up device by device."""
        devices = {}
        for name, entries in self.devices.items():
            if entries[0][0] > at:
                continue
            value = entries[0][1] if len(entries) == 1 else \
                entries[bisect.bisect_right(entries, at, key=lambda e: e[0]) - 1][1]
            if value is not None:
                devices[name] = value
        return devices

    def forget_before(self, tagged: int) -> None:
        """Drop what no later cut can need: rounds before ``tagged`` but the
        last one at or before it; the entries of devices that did not change
        since (those that do are trimmed as they change) every TRIM_EVERY calls."""
        _drop_before(self.rounds, tagged)
        self.forgets += 1
        if not self.rounds or self.forgets % TRIM_EVERY:
            return
        oldest = self.rounds[0][0]
        for name in list(self.several):
            entries = self.devices[name]
            _drop_before(entries, oldest)
            if len(entries) == 1:
                self.several.discard(name)
                if entries[0][1] is None:
                    del self.devices[name]


def _drop_before(entries: list, tagged: int) -> None:
    """Drop the (round, ...) entries before the last one at or before round ``tagged``."""
    keep = bisect.bisect_right(entries, tagged, key=lambda e: e[0]) - 1
    if keep > 0:
        del entries[:keep]


class Sharer:
    """An owner's side of a :class:`Chain` (for one generation): which
    partials are bases and which round each delta continues."""

    def __init__(self) -> None:
        self.shared: int | None = None  # the round of the last partial sent
        self.base = -1
        self.epoch: int | None = None  # of the partials sent

    def docs(self, shares: list[tuple[int, dict]], every_device: Callable[[], dict]) -> list[dict]:
        """The partials to send for ``shares``: ``(round, doc)`` in round
        order, each doc listing the devices its round changed (and the
        owner's ``epoch``); ``every_device()``: every device's figures as of
        the last round. A base when nothing was sent yet, when the epoch
        changed (the owner claimed the partition after a close with the
        stored one), and every BASE_EVERY rounds."""
        *deltas, (last, doc) = shares
        continues = self.shared is not None and doc.get("epoch") == self.epoch
        out = []
        if continues:
            for tagged, delta in deltas:
                out.append({**delta, "since": self.shared})
                self.shared = tagged
        if not continues or last - self.base >= BASE_EVERY:
            out.append({**doc, "devices": every_device()})
            self.base = last
        else:
            out.append({**doc, "since": self.shared})
        self.shared, self.epoch = last, doc.get("epoch")
        return out


@dataclass
class Cut:
    """Every partition's figures as of one round."""

    round: int
    ingest: dict[int, IngestTotals]
    sensors: dict[int, SensorCounts]
    alarms: dict[int, dict]  # p -> what its alarm partition shared (humidity.core.alarms.shared_alarms)

    def as_of(self) -> dict[str, int]:
        """Per input partition, the offset of the last message included (-1: none)."""
        return {str(p): self.ingest[p].offset for p in sorted(self.ingest)}


@dataclass
class PartialsBook:
    """The recent figures of every partition, by round, as shared by the
    workers that own them."""

    partitions: int
    chains: dict[tuple[str, int], Chain] = field(default_factory=dict)
    alarms: dict[int, tuple[int, int, dict]] = field(default_factory=dict)  # p -> newest (round, offset, shared)

    def update(self, key: str, doc: dict) -> bool:
        """Record one partial. Active alarms: the newest round's (of two
        shares of a round, by a new owner closing it again, the higher offset)."""
        parsed = parse_partial_key(key)
        if parsed is None or "round" not in doc:
            return False  # not a partial, or one written before rounds
        kind, partition = parsed
        if partition >= self.partitions:
            return False  # left over from a run with more partitions
        if kind == ALARMS:
            shared = doc if "count" in doc else shared_alarms(doc["active"])  # as shared before the counts
            entry = (int(doc["round"]), int(doc["offset"]),
                     {k: shared[k] for k in ("active", "count", "by_kind", "by_device")})
            if entry[:2] <= self.alarms.get(partition, (-1, -1))[:2]:
                return False
            self.alarms[partition] = entry
            return True
        chain = self.chains.get(parsed)
        if chain is None:
            chain = self.chains[parsed] = Chain(kind)
        return chain.update(doc)

    def missing(self) -> list[str]:
        """Partitions with no figures yet: no summary could be global."""
        return [partial_key(kind, p) for kind in KINDS for p in range(self.partitions)
                if not (p in self.alarms if kind == ALARMS else
                        (chain := self.chains.get((kind, p))) is not None and chain.rounds)]

    def newest_cut(self, floor: dict[str, int] | None = None) -> Cut | None:
        """The newest round every input, sightings and alarm partition has
        closed whose figures agree (no sensor counted from past the round's
        input offsets, none missed at or below them) and whose input offsets
        are at or above ``floor`` (the previous summary's as_of), with the
        newest active alarms (which include at least the round's readings:
        an alarm partition that stopped holds the cut back, as the others do)."""
        if self.missing():
            return None
        floor = floor or {}
        chains = {kind: [self.chains[(kind, p)] for p in range(self.partitions)] for kind in CUT_KINDS}
        counted = chains[INGEST] + chains[SENSORS]
        newest = min(min(chain.tail for chain in counted), min(r for r, _o, _s in self.alarms.values()))
        candidates = sorted({e[0] for chain in counted for e in chain.rounds if e[0] <= newest}, reverse=True)
        for tagged in candidates:
            heads = {kind: [chain.head(tagged) for chain in chains[kind]] for kind in CUT_KINDS}
            if any(head is None for by_partition in heads.values() for head in by_partition):
                return None  # older rounds lack a partition too
            ingest = {p: head[2] for p, head in enumerate(heads[INGEST])}
            if any(ingest[p].offset < floor.get(str(p), -1) for p in ingest):
                return None  # older rounds are further below the floor
            if not all(_agree(head[2], ingest) for head in heads[SENSORS]):
                continue
            figures = {kind: {p: chain.figures(tagged) for p, chain in enumerate(chains[kind])} for kind in CUT_KINDS}
            if any(f is None for by_partition in figures.values() for f in by_partition.values()):
                continue
            return Cut(tagged, figures[INGEST], figures[SENSORS],
                       {p: active for p, (_r, _o, active) in self.alarms.items()})
        return None

    def forget_before(self, tagged: int) -> None:
        """Drop what no later cut can need: figures of rounds before
        ``tagged``, but the last one at or before it."""
        for chain in self.chains.values():
            chain.forget_before(tagged)


def _added(counts) -> dict[str, int]:
    """Counts per name, summed over the partitions' counts (names sorted)."""
    total: dict[str, int] = {}
    for by_name in counts:
        for name, n in by_name.items():
            total[name] = total.get(name, 0) + n
    return dict(sorted(total.items()))


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
            found = [n for devices in parts if (n := devices.get(device)) is not None]
            if found:
                reorder |= device not in self.sensor_rows
                self.sensor_rows[device] = {"device": device, "sensors": sum(found)}
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


#: The band the page marks averages inside or outside of (% RH), as the old job did.
BAND = (30.0, 60.0)
#: The per-device lists of a summary (a brief summary leaves them out).
DEVICE_LISTS = ("average_humidity_by_device", "sensors_by_device", "active_alarms_by_device")


def device_rows(summary: dict) -> list[dict]:
    """One row per device of a summary: ``{"device", "average", "outside"
    (of BAND), "sensors", "interval_average", "interval_count"}`` (None
    where the summary has no figure)."""
    rows: dict[str, dict] = {}

    def row(device: str) -> dict:
        found = rows.get(device)
        if found is None:
            found = rows[device] = {"device": device, "average": None, "outside": False, "sensors": 0,
                                    "interval_average": None, "interval_count": 0}
        return found

    for r in summary["average_humidity_by_device"]:
        row(r["device"]).update(average=r["average"], outside=not BAND[0] <= r["average"] <= BAND[1])
    for r in summary["sensors_by_device"]:
        row(r["device"])["sensors"] = r["sensors"]
    for r in summary.get("interval", {}).get("average_humidity_by_device", []):
        row(r["device"]).update(interval_average=r["average"], interval_count=r["count"])
    return list(rows.values())


#: How a summary's device rows sort (rows without the figure go last), and which a band keeps.
DEVICE_SORTS = {key: itemgetter(key) for key in ("device", "average", "sensors", "interval_average", "interval_count")}
BANDS = {"all": None, "outside": itemgetter("outside"), "inside": lambda row: not row["outside"]}


def devices_query(params: Mapping[str, str]) -> tuple[Listing, Callable[[dict], bool] | None]:
    """The page of device rows asked for (``q``, ``sort``, ``order``,
    ``offset``, ``limit``) and the band's filter; ListingError if malformed."""
    listing = Listing.parse(params, tuple(DEVICE_SORTS), "average")
    band = params.get("band", "all")
    if band not in BANDS:
        raise ListingError("band is all, outside or inside")
    return listing, BANDS[band]


def brief(summary: dict, rows: list[dict]) -> dict:
    """The summary without its per-device lists, with how many devices and
    how many of them are outside BAND (the page's header and cards)."""
    out = {k: v for k, v in summary.items() if k not in DEVICE_LISTS}
    if "interval" in summary:
        out["interval"] = {k: v for k, v in summary["interval"].items() if k != "average_humidity_by_device"}
        out["interval"]["devices"] = len(summary["interval"]["average_humidity_by_device"])
    out["device_count"] = len(rows)
    out["outside_count"] = sum(row["outside"] for row in rows)
    return out


#: Active alarms listed in the log per summary; a fleet-wide outage (every
#: logger OFFLINE) would otherwise put thousands of lines in the log each interval.
LOGGED_ALARMS_MAX = 20
#: Devices listed in the log per block: with tens of thousands of devices a
#: full list every interval would be megabytes of log nobody reads (the
#: results topic and the API have every one).
LOGGED_DEVICES_MAX = 50


def _listed(rows: list, line, limit: int, where: str, total: int | None = None) -> list[str]:
    """``line(row)`` for the first ``limit`` rows, and how many more there
    are (of ``total``, where ``rows`` are only the first of them)."""
    total = len(rows) if total is None else total
    shown = [line(row) for row in rows[:limit]]
    if total > len(shown):
        shown.append(f"... and {total - len(shown):,} more (the newest {ALARMS_LISTED:,}: {where})"
                     if total > len(rows) else f"... and {total - len(shown):,} more (all of them: {where})")
    return shown


def render_text(summary: dict) -> str:
    """The four titled blocks of the old job's console output, each since the
    start and for this interval, for the log (at most LOGGED_DEVICES_MAX
    devices and LOGGED_ALARMS_MAX alarms each)."""
    rule = "-" * 43
    interval = summary["interval"]
    since = f"since {interval['since']}" if interval["since"] else "since the start"

    def listed(rows, line, sort):
        return _listed(rows, line, LOGGED_DEVICES_MAX, f"GET /api/summary/devices?sort={sort}")

    blocks = [
        ("Average humidity by device (highest first), since the start",
         listed(summary["average_humidity_by_device"], lambda row: f"({row['device']!r}, {row['average']})",
                "average")),
        (f"Average humidity by device (highest first), this interval ({since})",
         listed(interval["average_humidity_by_device"],
                lambda row: f"({row['device']!r}, {row['average']}, {row['count']} readings)",
                "interval_average")),
        ("Total messages processed",
         [f"Total number of messages: {summary['total_messages']} since the start, "
          f"{interval['messages']} this interval",
          f"Invalid messages (dead-lettered): {summary['invalid_messages']} since the start, "
          f"{interval['invalid_messages']} this interval"]),
        ("Number of sensors by device (devices ascending), since the start",
         listed(summary["sensors_by_device"], lambda row: f"({row['device']!r}, {row['sensors']})",
                "device")),
        ("Total number of sensors",
         [f"Total number of sensors: {summary['total_sensors']} since the start, "
          f"{interval['new_sensors']} new this interval"]),
    ]
    alarms = summary.get("active_alarms", [])
    count = summary.get("active_alarm_count", len(alarms))
    rows = _listed(alarms, lambda a: f"{a['kind']} {a['device']!r} {a['guid']!r} value={a['value']} "
                                     f"limit={a['limit']} since {a['since']}", LOGGED_ALARMS_MAX, "GET /api/alarms",
                   count)
    blocks.insert(0, (f"Active alarms ({count}, newest first)", rows))
    cut = ", ".join(f"{p}: {o}" for p, o in summary["as_of"].items())
    lines = [f"Readings at or below offsets {{{cut}}} of the input partitions"]
    for title, rows in blocks:
        lines += [rule, f"Time: {summary['time']}  {title}", rule]
        lines += rows or ["(none yet)"]
        lines.append("")
    return "\n".join(lines)


def as_of_text(as_of: dict) -> str:
    """A cut's ``as_of`` as the log shows it: ``0:6223,1:6278,...``."""
    return ",".join(f"{p}:{o}" for p, o in as_of.items())


def render_line(summary: dict) -> str:
    """The summary in one log line (HUMIDITY_LOG_FORMAT=line)."""
    alarms = summary.get("active_alarms", [])
    interval = summary["interval"]
    as_of = as_of_text(summary["as_of"])
    return (f"time={summary['time']} messages={summary['total_messages']} invalid={summary['invalid_messages']} "
            f"sensors={summary['total_sensors']} devices={len(summary['average_humidity_by_device'])} "
            f"active_alarms={summary.get('active_alarm_count', len(alarms))} interval_messages={interval['messages']} "
            f"interval_invalid={interval['invalid_messages']} new_sensors={interval['new_sensors']} as_of={as_of}")
