"""Rounds: the cuts that summaries are made of (pure).

The four figures of a summary come from two hops: messages and humidity
from the input partitions, distinct sensors (and alarms) from partitions of
a second topic that the first hop feeds. To describe one set of readings,
every figure must be taken at the same per-partition cut of the input.

A *round* is a span of ``length`` seconds of wall-clock time, numbered
``floor(t / length)``. The owner of input partition *p* tags everything it
sends on (sightings, alarm readings) with the round it is in, and when its
clock passes the end of a round it *closes* it: it shares its totals at
that moment (the partition's cut for the round: the offset they include)
and sends an *end* mark ``(p, round, offset)`` to every partition of the
second hop, after everything it tagged with that round (one producer keeps
their order). A second-hop partition has everything of round *R* once it
has seen the end of *R* (or a later round) from every input partition; it
then closes *R* too and shares its counts as of *R*. A summary takes one
round for which every partition has shared its figures, so all of them
describe the readings at or below the same cut.

A new owner of *p* starts at a round past any its predecessor may have
closed, even with clocks that disagree by up to CLOCK_MARGIN seconds, and
past the last round stored in the partition's state.

The partials of *p* and its ends travel to different partitions, so a crash
can keep the one and lose the other: *p*'s figures for round *R* may be
durable while its sightings and end of *R* were lost, and its next owner
sends those sightings again in a later round. A second-hop partition
therefore says, with the counts it shares as of a round, up to which offset
of each input partition they are complete (the offset of the newest end at
or below that round it has seen: everything *p* sent before an end is in
the log before it), and a summary uses a round only where that covers every
input partition's figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

#: How far the workers' clocks may disagree (they are expected to run NTP).
CLOCK_MARGIN = 1.0


def round_length(interval: float) -> float:
    """Seconds per round: a quarter of the summary interval, from 0.5 s (each
    round costs every input partition an end mark to every second-hop
    partition, and the second hop a write per mark) to 1 s (a cut is at most
    about a round old)."""
    return min(1.0, max(0.5, interval / 4))


def round_of(t: float, length: float) -> int:
    return math.floor(t / length)


def first_round(now: float, length: float, stored: int) -> int:
    """The round a new owner of a partition starts in (``stored``: the last
    round its state records)."""
    return max(round_of(now, length) + math.ceil(CLOCK_MARGIN / length), stored + 1)


@dataclass
class Ends:
    """A second-hop partition's view of the input partitions' rounds:
    ``ends[p]`` is the last round input partition *p* has closed, and
    ``closed`` the last round closed here (every input partition past it).
    ``marks[p]``: the ``[round, offset]`` of *p*'s ends that later cuts may
    need (those past ``closed`` and the newest at or below it)."""

    partitions: int
    ends: dict[int, int] = field(default_factory=dict)
    closed: int = -1
    marks: dict[int, list[list[int]]] = field(default_factory=dict)

    def effective(self, round_number: int | None) -> int:
        """The open round something tagged with round ``round_number`` belongs to: a closed
        round never changes (a late message, e.g. of a paused former owner,
        goes to the first open one)."""
        return self.closed + 1 if round_number is None else max(round_number, self.closed + 1)

    def end(self, partition: int, round_number: int, offset: int | None = None) -> list[int]:
        """Input partition ``partition`` closed round ``round_number`` at input
        ``offset`` (None: not tracked). Returns the rounds that close here now
        and that an end was marked in, ending with the newest (every round up
        to it closes); empty if none closes."""
        if round_number > self.ends.get(partition, -1):
            self.ends[partition] = round_number
            if offset is not None:
                self.marks.setdefault(partition, []).append([round_number, offset])
        newest = min(self.ends.get(p, -1) for p in range(self.partitions))
        if newest <= self.closed:
            return []
        marked = {r for marks in self.marks.values() for r, _ in marks if self.closed < r < newest}
        self.closed = newest
        return [*sorted(marked), newest]

    def covered(self, round_number: int) -> dict[int, int]:
        """Per input partition, the offset of its newest end at or below
        round ``round_number``: what everything counted as of ``round_number`` includes
        (partitions without such an end left out)."""
        covered = {}
        for p, marks in self.marks.items():
            at = [offset for r, offset in marks if r <= round_number]
            if at:
                covered[p] = at[-1]
        return covered

    def forget_closed(self) -> None:
        """Keep of each partition's marks those past ``closed`` and the newest at or below it."""
        for marks in self.marks.values():
            done = sum(1 for r, _ in marks if r <= self.closed)
            if done > 1:
                del marks[:done - 1]

    def to_json(self) -> dict:
        doc = {"closed": self.closed, "ends": {str(p): r for p, r in self.ends.items()}}
        if self.marks:
            doc["marks"] = {str(p): marks for p, marks in self.marks.items()}
        return doc

    @classmethod
    def from_json(cls, partitions: int, doc: dict | None) -> Ends:
        if not doc:
            return cls(partitions)
        return cls(partitions, {int(p): int(r) for p, r in doc["ends"].items()}, int(doc["closed"]),
                   {int(p): [[int(r), int(o)] for r, o in marks] for p, marks in doc.get("marks", {}).items()})
