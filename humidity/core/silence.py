"""Which dataloggers may have gone silent: the OFFLINE check's index (pure).

A fleet can have a million loggers, so the index holds each logger not
known to be OFFLINE once, as its encoded key in a byte string per time slot,
not as an object per logger. A logger is filed under the slot it was last
heard in as far as the index knows; a reading does not move it, which would
cost work per reading. When a slot ended at least the timeout ago, its
loggers are *due*: their stored state says whether they were heard since
(file them again under that time) or went silent (OFFLINE).
"""

from __future__ import annotations

from collections.abc import Iterator

_LENGTH = 2  # bytes of each key's length; sighting keys are far shorter than 64 KiB


class SilenceIndex:
    def __init__(self, slot_seconds: float) -> None:
        self.slot_seconds = slot_seconds
        self.slots: dict[int, bytearray] = {}

    def file(self, key: str, heard: float) -> None:
        """Keep ``key``, last heard at wall clock ``heard``, until it is due."""
        data = key.encode("utf-8", "surrogatepass")
        slot = int(heard // self.slot_seconds)
        kept = self.slots.get(slot)
        if kept is None:
            kept = self.slots[slot] = bytearray()
        kept += len(data).to_bytes(_LENGTH, "big")
        kept += data

    def due(self, wall: float, timeout: float) -> list[str]:
        """Take out the keys filed under slots that ended ``timeout`` or more
        before ``wall``: each was last heard more than ``timeout`` ago unless
        heard again since."""
        ended = [slot for slot in self.slots if (slot + 1) * self.slot_seconds <= wall - timeout]
        return [key for slot in sorted(ended) for key in _keys(self.slots.pop(slot))]


def _keys(kept: bytearray) -> Iterator[str]:
    at = 0
    while at < len(kept):
        size = int.from_bytes(kept[at:at + _LENGTH], "big")
        at += _LENGTH
        yield kept[at:at + size].decode("utf-8", "surrogatepass")
        at += size
