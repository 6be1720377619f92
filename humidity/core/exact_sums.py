"""Humidity sums kept exactly (Shewchuk's non-overlapping partials, the
algorithm behind :func:`math.fsum`), so that an average does not depend on
how readings were split over partitions or workers (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field


def exact_add(partials: list[float], x: float) -> None:
    """Add ``x`` to an exact sum kept as non-overlapping float partials."""
    i = 0
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            partials[i] = lo
            i += 1
        x = hi
    partials[i:] = [x]


def exact_total(partials: Iterable[float]) -> float:
    return math.fsum(partials)


def exact_compact(values: Iterable[float]) -> list[float]:
    """The exact sum of ``values`` in as few floats as it takes, largest
    first: each the correctly rounded rest of the sum after the ones before.
    The list depends only on the exact sum, however it was split."""
    rest = list(values)
    out: list[float] = []
    while part := math.fsum(rest):
        out.append(part)
        if not math.isfinite(part):
            break
        rest.append(-part)
    return out


@dataclass
class DeviceSum:
    partials: list[float] = field(default_factory=list)
    count: int = 0
    #: The input offset through which the device's readings are included
    #: (stored entries only; -1 in shared figures).
    offset: int = field(default=-1, compare=False)

    def add(self, value: float) -> None:
        exact_add(self.partials, value)
        self.count += 1
