"""Humidity over time: tumbling windows by event time, current values, and
the queries over them (pure: no Faust, no I/O).

Per device and per datalogger, every reading enters one window per stored
resolution (a minute and an hour, aligned to UTC multiples of the window
size, by the reading's ``eventTime`` however late it arrives), which keeps
the count, the exact sum (non-overlapping float partials, as the totals),
the minimum and the maximum. A window is kept while its start is within the
resolution's retention, measured from wall-clock now; a reading too old for
every resolution is only counted.

Each window's value records the offset of the last bundle it includes, so a
bundle read again after a crash is not counted twice (the same promise as
the totals, per key). Keys sort by (what, resolution, start), so one
device's windows in a time range are one range of the store.

Queries merge stored windows into steps: a step of a minute from minute
windows; steps of 5 and 15 minutes from minute windows (only where they are
still kept); steps of an hour and more from hour windows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from humidity.core.exact_sums import exact_add, exact_total

MINUTE, HOUR = 60, 3600
#: Stored resolutions, by the letter that marks them in keys.
RESOLUTIONS = {"m": MINUTE, "h": HOUR}
#: Steps a history query may ask for, in seconds.
STEPS = (60, 300, 900, 3600, 21600, 86400)
DEVICE, LOGGER = "d", "l"
DAY = 86400.0


# -- keys


def _ident(text: str) -> bytes:
    """A length-prefixed name: no name is a prefix of another."""
    raw = text.encode("utf-8", "surrogatepass")
    return b"%04d" % len(raw) + raw


def window_prefix(what: str, name: str, resolution: str) -> bytes:
    return b"w" + what.encode() + _ident(name) + resolution.encode()


def window_key(what: str, name: str, resolution: str, start: int) -> bytes:
    return window_prefix(what, name, resolution) + b"%011d" % start


def start_of_key(key: bytes) -> int:
    return int(key[-11:])


#: A datalogger seen on a device: ``pair_key(guid, device)`` (value: just
#: the writer's epoch), written once, so a device's loggers can be listed.
PAIR = b"L"
PAIR_END = b"M"  # above every pair key


def pair_key(guid: str, device: str) -> bytes:
    return PAIR + _ident(guid) + _ident(device)


def pair_names(key: bytes) -> tuple[str, str]:
    """(guid, device) of a :func:`pair_key`."""
    n = int(key[1:5])
    guid = key[5:5 + n].decode("utf-8", "surrogatepass")
    rest = key[5 + n:]
    return guid, rest[4:4 + int(rest[:4])].decode("utf-8", "surrogatepass")


# -- windows


@dataclass(slots=True)
class Window:
    count: int = 0
    partials: list[float] = field(default_factory=list)
    low: float = math.inf
    high: float = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        exact_add(self.partials, value)
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    def merge(self, other: Window) -> None:
        self.count += other.count
        for partial in other.partials:
            exact_add(self.partials, partial)
        self.low = min(self.low, other.low)
        self.high = max(self.high, other.high)

    def to_list(self) -> list:
        return [self.count, self.partials, self.low, self.high]

    def figures(self) -> dict:
        return {"count": self.count, "average": exact_total(self.partials) / self.count,
                "min": self.low, "max": self.high}

    def point(self, start: int) -> dict:
        return {"start": iso(start), **self.figures()}


@dataclass(slots=True)
class StoredWindow:
    """A window as stored: with the offset of the last bundle it includes, and
    its newest reading by event time ``[time, humidity, the logger of a
    device's window or the device of a logger's]``. A logger's window with
    readings for more than one device (the logger moved) also keeps the
    newest per device (``by``), so that a device's view shows the logger's
    reading on that device, not on another."""
    window: Window
    offset: int = -1
    newest: list | None = None
    by: dict[str, list] | None = None  # device -> [time, humidity]

    def see(self, t: float, humidity: float, other: str, apart: bool = False) -> None:
        """Keep the newest reading: the latest time; among equal times the
        highest value, then name (the same whatever the order they come in);
        ``apart``: the newest per ``other`` too, once there are several."""
        if apart and self.by is None and self.newest is not None and self.newest[2] != other:
            self.by = {self.newest[2]: self.newest[:2]}
        if self.by is not None:
            seen = self.by.get(other)
            if seen is None or (t, humidity) > tuple(seen):
                self.by[other] = [t, humidity]
        if self.newest is None or (t, humidity, other) > tuple(self.newest):
            self.newest = [t, humidity, other]

    def newest_of(self, other: str) -> list | None:
        """The newest reading of ``other`` in the window: ``[time, humidity]``."""
        if self.by is not None:
            return self.by.get(other)
        return self.newest[:2] if self.newest is not None and self.newest[2] == other else None

    def to_json(self, epoch: int) -> dict:
        w = self.window
        doc = {"n": w.count, "s": w.partials, "lo": w.low, "hi": w.high, "o": self.offset, "new": self.newest}
        if self.by is not None:
            doc["by"] = self.by
        doc["epoch"] = epoch
        return doc

    @classmethod
    def from_json(cls, doc: dict | None) -> StoredWindow:
        if not doc:
            return cls(Window())
        return cls(Window(int(doc["n"]), list(doc["s"]), float(doc["lo"]), float(doc["hi"])), int(doc["o"]),
                   doc.get("new"), doc.get("by"))


def newest_for(windows: Iterable[StoredWindow], device: str) -> list | None:
    """A logger's newest reading for ``device``, ``[time, humidity]``, from
    its windows newest first: the first that has one holds it (the windows
    after it have no reading for that device)."""
    for window in windows:
        found = window.newest_of(device)
        if found is not None:
            return found
    return None


@dataclass(frozen=True)
class Retention:
    """Days each resolution is kept, from wall-clock now."""
    minute_days: float
    hour_days: float

    def cutoff(self, resolution: str, now: float) -> int:
        """The earliest window start still kept."""
        days = self.minute_days if resolution == "m" else self.hour_days
        size = RESOLUTIONS[resolution]
        return math.ceil((now - days * DAY) / size) * size


@dataclass
class HistoryPartition:
    """One partition's progress: the offset it includes, per input partition
    the newest input offset whose reading it includes (``sources``), the
    readings that were too old for any window, and when its expired windows
    were last removed."""
    offset: int = -1
    sources: dict[str, int] = field(default_factory=dict)
    too_old: int = 0
    swept: float = 0.0
    epoch: int = 0

    def to_json(self) -> dict:
        return {"offset": self.offset, "sources": self.sources, "too_old": self.too_old, "swept": self.swept,
                "epoch": self.epoch}

    @classmethod
    def from_json(cls, doc: dict | None) -> HistoryPartition:
        if not doc:
            return cls()
        return cls(int(doc["offset"]), dict(doc.get("sources", {})), int(doc.get("too_old", 0)),
                   float(doc.get("swept", 0.0)), int(doc.get("epoch", 0)))


@dataclass
class Applied:
    """What a run of bundles changes: windows and newest readings to write."""
    windows: dict[bytes, StoredWindow] = field(default_factory=dict)
    pairs: set[tuple[str, str]] = field(default_factory=set)  # every (logger, device) of the run
    stored: int = 0  # readings newly added to at least one window
    too_old: int = 0
    repeated: int = 0  # readings sent again by ingest (after a replay of their input partition): skipped
    #: Per input partition, the newest input offset taken (the partition's new ``sources``).
    sources: dict[str, int] = field(default_factory=dict)
    #: The offset of the last bundle taken when ``max_windows`` stopped the run early.
    stopped_after: int | None = None


def apply_bundles(bundles: Iterable[tuple[int, int, list]], now: float, retention: Retention,
                  stored_window: Callable[[bytes], StoredWindow], sources: dict[str, int] | None = None,
                  max_windows: int | None = None) -> Applied:
    """Fold bundles ``(offset, input partition, rows)`` of ``[guid, device,
    event time (epoch seconds), humidity, input offset]``, in offset order,
    into the windows they touch. ``stored_window(key)``: the window as
    stored (an empty one if none is). The run changes those it returns in
    place, and only those it returns in ``windows``: a caller that keeps
    them in memory writes every window of the result.

    Exactly once, twice over. A reading whose input offset is at or below
    the newest one taken from its input partition (``sources``, then the
    run's own) was sent again by ``ingest`` after a replay: it is skipped.
    A window skips the bundles at or below the (history) offset it already
    includes: this run read again after a crash.

    With ``max_windows``, the run stops after the bundle that brings the
    windows touched to that many (the cost of a run is its windows).

    Usually no window includes any bundle of the run yet: then the readings
    are first summed per (logger, device, minute) and each sum is added to
    its four windows once. A run read again after a crash (some windows
    include some of its bundles) takes each reading on its own instead.
    """
    out = Applied(sources=dict(sources or {}))
    cutoff_m, cutoff_h = retention.cutoff("m", now), retention.cutoff("h", now)
    grouping = _Grouping(cutoff_m, cutoff_h, stored_window, out)
    taken: list[tuple[int, list]] = []
    for offset, source, rows in bundles:
        if max_windows is not None and len(grouping.targets) >= max_windows:
            out.stopped_after = taken[-1][0]
            break
        taken.append((offset, grouping.take(str(source), rows)))
    if not taken:
        return out
    if any(window.offset >= taken[0][0] for window in grouping.targets.values()):
        return _apply_one_by_one(taken, cutoff_m, cutoff_h, stored_window, out)
    grouping.merge(taken[-1][0])
    out.windows = grouping.targets
    return out


class _Grouping:
    """The readings of a run summed per (logger, device, minute), with the
    windows each sum goes to."""

    def __init__(self, cutoff_m: int, cutoff_h: int, stored_window: Callable[[bytes], StoredWindow],
                 out: Applied) -> None:
        self.cutoff_m, self.cutoff_h, self.stored_window, self.out = cutoff_m, cutoff_h, stored_window, out
        #: (guid, device, minute) -> [values, newest time, its humidity, its windows]
        self.groups: dict[tuple, list] = {}
        self.targets: dict[bytes, StoredWindow] = {}
        self.names = _Names()

    def take(self, source: str, rows: list) -> list:
        """One bundle's rows from input partition ``source``; the fresh ones are returned."""
        out = self.out
        newest = out.sources.get(source, -1)
        fresh = []
        for row in rows:
            if row[4] <= newest:
                out.repeated += 1
                continue
            newest = row[4]
            fresh.append(row)
            guid, device, t, humidity = row[0], row[1], row[2], row[3]
            minute = int(t // MINUTE) * MINUTE
            group = self.groups.get((guid, device, minute))
            if group is None:
                if minute - minute % HOUR < self.cutoff_h:
                    out.too_old += 1
                    out.pairs.add((guid, device))
                    continue
                group = self.groups[guid, device, minute] = [[], t, humidity, self._windows(guid, device, minute)]
            group[0].append(humidity)
            if (t, humidity) >= (group[1], group[2]):
                group[1], group[2] = t, humidity
        out.sources[source] = newest
        return fresh

    def _windows(self, guid: str, device: str, minute: int) -> list:
        """(window, the other name it records as newest, whether per name) of each window a minute goes to."""
        into = []
        for key, (other, apart) in zip(self.names.targets(guid, device, minute, self.cutoff_m),
                                       self.names.others(guid, device), strict=False):
            window = self.targets.get(key)
            if window is None:
                window = self.targets[key] = self.stored_window(key)
            into.append((window, other, apart))
        return into

    def merge(self, last: int) -> None:
        """Each sum into its windows, which then include the run through bundle offset ``last``."""
        out = self.out
        for (guid, device, _minute), (values, t, humidity, into) in self.groups.items():
            delta = Window(len(values), [], min(values), max(values))
            for value in values:
                exact_add(delta.partials, value)
            out.stored += len(values)
            out.pairs.add((guid, device))
            for window, other, apart in into:
                window.window.merge(delta)
                window.offset = last
                window.see(t, humidity, other, apart)


class _Names:
    """Window keys of (logger, device, minute), built once per run."""

    def __init__(self) -> None:
        self.prefixes: dict[tuple, bytes] = {}

    def prefix(self, what: str, name: str, resolution: str) -> bytes:
        prefix = self.prefixes.get((what, name, resolution))
        if prefix is None:
            prefix = self.prefixes[what, name, resolution] = window_prefix(what, name, resolution)
        return prefix

    def targets(self, guid: str, device: str, minute: int, cutoff_m: int) -> list[bytes]:
        """Device hour, logger hour, then (if kept) device minute, logger minute."""
        hour = b"%011d" % (minute - minute % HOUR)
        keys = [self.prefix(DEVICE, device, "h") + hour, self.prefix(LOGGER, guid, "h") + hour]
        if minute >= cutoff_m:
            at = b"%011d" % minute
            keys += [self.prefix(DEVICE, device, "m") + at, self.prefix(LOGGER, guid, "m") + at]
        return keys

    @staticmethod
    def others(guid: str, device: str) -> tuple:
        """What each target window records its newest reading with, and
        whether it keeps the newest per that name (a logger's, per device)."""
        return (guid, False), (device, True), (guid, False), (device, True)


def _apply_one_by_one(bundles: list[tuple[int, list]], cutoff_m: int, cutoff_h: int,
                      stored_window: Callable[[bytes], StoredWindow], out: Applied) -> Applied:
    """Each reading into its windows, skipping per window the bundles it includes."""
    out = Applied(too_old=out.too_old, stopped_after=out.stopped_after, repeated=out.repeated,
                  sources=out.sources)
    names = _Names()
    loaded: dict[bytes, int] = {}
    for offset, rows in bundles:
        for guid, device, t, humidity, _input in rows:
            minute = int(t // MINUTE) * MINUTE
            out.pairs.add((guid, device))
            if minute - minute % HOUR < cutoff_h:
                continue  # counted as too old above
            added = False
            for key, (other, apart) in zip(names.targets(guid, device, minute, cutoff_m),
                                           names.others(guid, device), strict=False):
                window = out.windows.get(key)
                if window is None:
                    window = out.windows[key] = stored_window(key)
                    loaded[key] = window.offset
                if offset > loaded[key]:
                    window.window.add(humidity)
                    window.see(t, humidity, other, apart)
                    window.offset = offset
                    added = True
            out.stored += added
    for key in [k for k, w in out.windows.items() if w.offset == loaded[k]]:
        del out.windows[key]  # nothing new: no write
    return out


def expired_span(what: str, name: str, resolution: str, now: float, retention: Retention) -> tuple[bytes, bytes]:
    """The keys ``[low, high)`` of one device's or logger's windows of a
    resolution that are past retention: one range of the store."""
    prefix = window_prefix(what, name, resolution)
    return prefix, prefix + b"%011d" % retention.cutoff(resolution, now)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
