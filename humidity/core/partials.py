"""The figures of every partition, shared round by round as *partials*, and the
book every worker keeps of them, from which a cut is taken (pure).

Workers share, for every round they close (:mod:`humidity.core.rounds`),
the figures of the partitions they own, keyed ``ingest/<p>`` (counts and
exact sums per device of input partition *p*, and the offset they include),
``sensors/<q>`` (distinct sensors per device of sightings partition *q*, and
per input partition the highest offset whose sightings they include) and
``alarms/<a>`` (the active alarms of alarm partition *a*). Ingest and sensor
partials list only the devices whose figures changed since the owner's
previous one, with a base of every device now and then (:class:`Sharer`,
:class:`Chain`), so that sharing costs what changed, not the size of the
fleet. :class:`PartialsBook` keeps the recent ones;
:meth:`PartialsBook.newest_cut` finds the newest round for which every
partition has shared its figures, whose sensor counts include nothing past
its input offsets and miss nothing at or below them, and whose offsets are
nowhere below the previous summary's.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from humidity.core import formats
from humidity.core.aggregate import IngestTotals
from humidity.core.alarms import shared_alarms
from humidity.core.exact_sums import DeviceSum
from humidity.core.sensor_counts import SensorCounts

INGEST = "ingest"
SENSORS = "sensors"
ALARMS = "alarms"
KINDS = (INGEST, SENSORS, ALARMS)
#: The figures a cut is made of exactly; the active alarms are the newest
#: known, as of the cut's round or later (alarm rules depend on the order
#: readings arrive in, not only on which).
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
        round_number, offset, epoch, since = int(doc["round"]), int(doc["offset"]), int(doc.get("epoch", 0)), \
            doc.get("since")
        if since is None:
            if (epoch, round_number, offset) <= (self.epoch, self.tail, self.rounds[-1][1] if self.rounds else -1):
                return False  # a late base of a former owner, or one already taken
            if round_number <= self.tail:  # a new owner closed these rounds again: its figures replace them
                self._truncate(round_number)
        elif epoch != self.epoch or int(since) != self.tail or round_number <= self.tail:
            return False  # does not continue the chain: wait for the next base
        devices = doc.get("devices", {})
        for name, value in devices.items():
            self._set(name, round_number, _device_value(self.kind, value))
        if since is None:  # a device the base does not list is not in the partition's figures
            for name in [d for d in self.devices if d not in devices]:
                self._set(name, round_number, None)
        self.rounds.append((round_number, offset, _header(self.kind, doc)))
        self.epoch, self.tail = epoch, round_number
        if len(self.rounds) > HISTORY_MAX + HISTORY_MAX // 8:
            self.forget_before(self.rounds[-HISTORY_MAX][0])
        return True

    def _truncate(self, round_number: int) -> None:
        """Forget rounds ``round_number`` and later."""
        self.built = None
        del self.rounds[bisect.bisect_left(self.rounds, round_number, key=lambda e: e[0]):]
        for name in list(self.devices):
            entries = self.devices[name]
            del entries[bisect.bisect_left(entries, round_number, key=lambda e: e[0]):]
            if not entries:
                del self.devices[name]
            if len(entries) < 2:
                self.several.discard(name)
            if entries and entries[-1][1] is not None:
                self.newest[name] = entries[-1][1]
            else:
                self.newest.pop(name, None)
        self.tail = self.rounds[-1][0] if self.rounds else -1

    def _set(self, name: str, round_number: int, value) -> None:
        entries = self.devices.get(name)
        if value is None:
            self.newest.pop(name, None)
        else:
            self.newest[name] = value
        if entries is None:
            if value is not None:
                self.devices[name] = [(round_number, value)]
            return
        entries.append((round_number, value))
        if self.rounds:  # what no cut can need goes as the device changes (forget_before trims the rest)
            _drop_before(entries, self.rounds[0][0])
        self.several.add(name)  # the new entry is after every round kept, so at least two remain

    def head(self, round_number: int):
        """(round, offset, figures without devices) of the last round taken at or before ``round_number``."""
        at = bisect.bisect_right(self.rounds, round_number, key=lambda e: e[0])
        return self.rounds[at - 1] if at else None

    def figures(self, round_number: int):
        """The figures as of round ``round_number`` with every device, or None if
        they are not complete (a device count that disagrees)."""
        head = self.head(round_number)
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

    def forget_before(self, round_number: int) -> None:
        """Drop what no later cut can need: rounds before ``round_number`` but the
        last one at or before it; the entries of devices that did not change
        since (those that do are trimmed as they change) every TRIM_EVERY calls."""
        _drop_before(self.rounds, round_number)
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


def _drop_before(entries: list, round_number: int) -> None:
    """Drop the (round, ...) entries before the last one at or before round ``round_number``."""
    keep = bisect.bisect_right(entries, round_number, key=lambda e: e[0]) - 1
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
            for round_number, delta in deltas:
                out.append({**delta, "since": self.shared})
                self.shared = round_number
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
        before_versions = formats.version_of(doc) == 0
        if parsed is None or (before_versions and "round" not in doc):
            return False  # not a partial, or one written before rounds
        kind, partition = parsed
        if partition >= self.partitions:
            return False  # left over from a run with more partitions
        if kind == ALARMS:
            # as shared before format versions and counts: the active alarms only
            shared = shared_alarms(doc["active"]) if before_versions and "count" not in doc else doc
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
        for round_number in candidates:
            heads = {kind: [chain.head(round_number) for chain in chains[kind]] for kind in CUT_KINDS}
            if any(head is None for by_partition in heads.values() for head in by_partition):
                return None  # older rounds lack a partition too
            ingest = {p: head[2] for p, head in enumerate(heads[INGEST])}
            if any(ingest[p].offset < floor.get(str(p), -1) for p in ingest):
                return None  # older rounds are further below the floor
            if not all(_agree(head[2], ingest) for head in heads[SENSORS]):
                continue
            figures = {kind: {p: chain.figures(round_number) for p, chain in enumerate(chains[kind])}
                       for kind in CUT_KINDS}
            if any(f is None for by_partition in figures.values() for f in by_partition.values()):
                continue
            return Cut(round_number, figures[INGEST], figures[SENSORS],
                       {p: active for p, (_r, _o, active) in self.alarms.items()})
        return None

    def forget_before(self, round_number: int) -> None:
        """Drop what no later cut can need: figures of rounds before
        ``round_number``, but the last one at or before it."""
        for chain in self.chains.values():
            chain.forget_before(round_number)


def _agree(counts: SensorCounts, ingest: dict[int, IngestTotals]) -> bool:
    """Sensor counts describe the readings of the input figures: they count
    no sighting past them, and miss none at or below them."""
    if any(offset > ingest[p].offset for p, offset in counts.inputs.items() if p in ingest):
        return False
    return counts.covers is None or all(counts.covers.get(p, -1) >= totals.offset for p, totals in ingest.items())
