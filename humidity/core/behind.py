"""How far behind the input the published cut is (pure; a flow supplies
the input's end offsets every second, and the newest summary's ``as_of``).

``as_of`` says, per input partition, the offset of the last message the
summary includes. The input's end offsets say what has arrived. The cut is
behind by the readings between the two, and by the time since the input
first held one it still leaves out. That time is known to within one look
at the end offsets, and counts from the first look a worker made.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

#: Looks kept per partition while the cut stands still; past it, every
#: other one of the older looks is dropped (an older time is then known less
#: precisely, never later than it was).
LOOKS_KEPT = 1024


@dataclass(frozen=True)
class Behind:
    seconds: float
    readings: int

    def to_json(self) -> dict:
        return {"seconds": round(self.seconds, 1), "readings": self.readings}


@dataclass
class InputLooks:
    """When each input partition was first seen holding each stretch of
    offsets: ``partition -> [(time, end offset), ...]``, one entry per look
    that found the end further on."""

    looks: dict[int, list[tuple[float, int]]] = field(default_factory=dict)

    def observe(self, ends: dict[int, int], now: float) -> None:
        for partition, end in ends.items():
            seen = self.looks.setdefault(partition, [])
            if not seen or end > seen[-1][1]:
                seen.append((now, end))
                if len(seen) > LOOKS_KEPT:
                    self.looks[partition] = seen[:-1:2] + seen[-1:]

    def behind(self, as_of: dict[str, int] | None, now: float) -> Behind:
        """How far a cut with ``as_of`` (None: no summary yet) is behind what
        the input has held: 0 when it includes everything seen."""
        as_of = as_of or {}
        oldest, readings = now, 0
        for partition, seen in self.looks.items():
            included = int(as_of.get(str(partition), -1))
            if not seen or seen[-1][1] - 1 <= included:
                continue
            readings += seen[-1][1] - 1 - included
            # the first look that found an offset past the cut
            first = bisect_right(seen, included + 1, key=lambda look: look[1])
            oldest = min(oldest, seen[first][0])
        return Behind(max(0.0, now - oldest), readings)

    def forget_counted(self, as_of: dict[str, int]) -> None:
        """Drop the looks a published cut has counted (all but the last of them)."""
        for partition, seen in self.looks.items():
            first = bisect_right(seen, int(as_of.get(str(partition), -1)) + 1, key=lambda look: look[1])
            if first > 1:
                del seen[:first - 1]
