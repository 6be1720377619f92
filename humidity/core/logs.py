"""Keep the worker log readable while Kafka is away.

While a broker is down, aiokafka logs every failed connection, metadata
refresh and fetch: hundreds of lines a second. :class:`RepeatFilter` lets one
record per (logger, message) through per period and says how many it held
back, so an outage reads as one line per retry period.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

_NUMBERS = re.compile(r"\d+")


class RepeatFilter(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...] = ("aiokafka", "faust.transport"), period: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = 1000) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.period = period
        self.clock = clock
        self.max_keys = max_keys
        self._seen: dict[tuple[str, str], list] = {}  # key -> [last emitted at, held back since]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(self.prefixes):
            return True
        key = (record.name, _NUMBERS.sub("#", str(record.msg)))
        now = self.clock()
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self.period:
            entry[1] += 1
            return False
        if len(self._seen) >= self.max_keys:
            self._seen.clear()
        held = entry[1] if entry else 0
        self._seen[key] = [now, 0]
        if held:
            record.msg = f"{record.msg} [{held} similar held back in the last {self.period:.0f} s]"
        return True


def install(period: float = 10.0) -> RepeatFilter:
    """Attach one filter to every handler of the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in root.handlers:
        for existing in handler.filters:
            if isinstance(existing, RepeatFilter):
                return existing
    repeat = RepeatFilter(period=period)
    for handler in root.handlers:
        handler.addFilter(repeat)
    return repeat
