"""Questions to the history: time ranges, resolutions and steps, and the
points a range of windows gives (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from humidity.core.history import HOUR, MINUTE, STEPS, Window

# -- queries


class QueryError(ValueError):
    """A query that cannot be answered as asked (HTTP 400)."""


def parse_time(text: str | None, name: str) -> float:
    if not text:
        raise QueryError(f"{name} is missing")
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "+") if "T" in text else text)
    except ValueError:
        raise QueryError(f"{name} is not an ISO-8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


@dataclass(frozen=True)
class Range:
    start: float
    end: float
    step: int

    @classmethod
    def parse(cls, start: str | None, end: str | None, step: str | None) -> Range:
        try:
            seconds = int(step) if step else MINUTE
        except ValueError:
            raise QueryError(f"step must be one of {', '.join(map(str, STEPS))} (seconds)") from None
        if seconds not in STEPS:
            raise QueryError(f"step must be one of {', '.join(map(str, STEPS))} (seconds)")
        begin, finish = parse_time(start, "from"), parse_time(end, "to")
        if finish <= begin:
            raise QueryError("to must be after from")
        if (finish - begin) / seconds > 100_000:
            raise QueryError("the range holds more than 100000 steps; use a larger step")
        return cls(begin, finish, seconds)

    def source(self) -> str:
        """The stored resolution a step is merged from."""
        return "m" if self.step < HOUR else "h"

    def stored_span(self) -> tuple[int, int]:
        """Stored window starts to read: those inside the steps that start in range."""
        first = math.ceil(self.start / self.step) * self.step
        return first, math.ceil(self.end / self.step) * self.step


def merge_points(windows: Iterable[tuple[int, Window]], query: Range) -> list[dict]:
    """Stored windows ``(start, window)`` merged into the query's steps,
    ascending, only steps with readings and ``from <= start < to``."""
    steps: dict[int, Window] = {}
    for start, window in windows:
        step_start = start // query.step * query.step
        if not (query.start <= step_start < query.end):
            continue
        into = steps.get(step_start)
        if into is None:
            into = steps[step_start] = Window()
        into.merge(window)
    return [steps[s].point(s) for s in sorted(steps)]


def last_full_minute(now: float) -> int:
    return int(now // MINUTE) * MINUTE - MINUTE
