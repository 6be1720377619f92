"""Is every partition this worker consumes moving? (pure; the stall
monitor supplies the offsets).

A Faust consumer can stop fetching a partition without an error while the
worker keeps its place in the group, and an agent can stop taking batches
while the consumer keeps fetching: either way the summaries keep coming,
with a cut that stands still. A partition is *stalled* when records have
waited in it and its reader has made no progress for ``limit`` seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

#: The reader of the worker's own consumer group (the agents).
AGENTS = ""


class Feed(NamedTuple):
    """One partition as one reader of this worker consumes it: the agents
    (:data:`AGENTS`), a notification channel, or a reader of whole topics."""

    topic: str
    partition: int
    reader: str = AGENTS

    def __str__(self) -> str:
        read_by = f" ({self.reader})" if self.reader else ""
        return f"{self.topic} partition {self.partition}{read_by}"


@dataclass(frozen=True)
class Reader:
    """What one reader of this worker reads now: its partitions, as
    ``(topic, partition)``, and how its progress is known: the committed
    offsets of its consumer ``group``, or, for a reader without a group, its
    ``positions``. ``busy``: at work on a record it cannot finish yet
    (progress, although no offset moves)."""

    name: str
    partitions: tuple[tuple[str, int], ...]
    group: str | None = None
    positions: dict[tuple[str, int], int] = field(default_factory=dict)
    busy: bool = False


@dataclass
class PartitionProgress:
    """A feed's end offset, how far its reader has got (the committed offset,
    or the position of a reader without a group: the next offset to read),
    and since when it has waited: the last time its reader moved, was
    caught up, or was busy, or the feed became this worker's."""

    end: int
    done: int
    since: float

    @property
    def lag(self) -> int:
        return max(0, self.end - self.done)


@dataclass
class StallWatch:
    """Which feeds have had records waiting and no progress for ``limit``
    seconds. Progress is the committed offset moving, so a worker that
    fetches but never finishes a batch counts as stalled too."""

    limit: float
    feeds: dict[Feed, PartitionProgress] = field(default_factory=dict)

    def observe(self, offsets: dict[Feed, tuple[int, int]], now: float, busy: Iterable[Feed] = ()) -> None:
        """The feeds now, each ``(end offset, done)`` (done: -1 when the group
        has no committed offset); ``busy``: feeds whose reader is at work on
        them (a notification channel retrying its receiver), which is
        progress too."""
        busy = set(busy)
        for gone in set(self.feeds) - set(offsets):
            del self.feeds[gone]
        for feed, (end, done) in offsets.items():
            known = self.feeds.get(feed)
            if known is None or done > known.done or known.lag == 0 or feed in busy:
                self.feeds[feed] = PartitionProgress(end, done, now)
            else:
                known.end = end

    def stalled(self, now: float) -> dict[Feed, PartitionProgress]:
        return {feed: progress for feed, progress in sorted(self.feeds.items())
                if progress.lag > 0 and now - progress.since >= self.limit}

    def describe(self, now: float) -> list[str]:
        """One reason per stalled feed, naming its topic."""
        return [f"{feed} has {progress.lag} record(s) waiting and no progress for {now - progress.since:.0f} s "
                f"(limit {self.limit:.0f} s)" for feed, progress in self.stalled(now).items()]

    def by_partition(self, now: float) -> dict[tuple[str, int], tuple[int, bool]]:
        """``(topic, partition) -> (lag, stalled)``, the worst of its readers."""
        stalled = self.stalled(now)
        shown: dict[tuple[str, int], tuple[int, bool]] = {}
        for feed, progress in self.feeds.items():
            lag, stuck = shown.get(feed[:2], (0, False))
            shown[feed[:2]] = (max(lag, progress.lag), stuck or feed in stalled)
        return shown
