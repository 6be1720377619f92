"""Which offsets may be committed: those whose every output the broker has
acknowledged (plumbing, no Faust).

A batch of partition *p* writes table changelogs and sends forwards, dead
letters and bundles; each is a future that completes when the broker has the
message. The batch's offsets may be committed once all of them, and all of
every earlier batch of *p*, are acknowledged: then a crash, or another worker
restoring *p* from its changelogs, cannot lose what the commit skips over.
Flushing the producer is not enough: Faust's flush returns after 0.1 s
without progress, with messages still queued.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Hashable, Iterable, Optional


class NotDelivered(Exception):
    """A message the state depends on could not be sent: nothing past it may be committed."""


class Progress:
    """Per partition: the batches handled, in order, with what each produced."""

    def __init__(self) -> None:
        self._pending: dict[Hashable, deque] = {}
        self._durable: dict[Hashable, int] = {}

    def handled(self, tp: Hashable, through: int, produced: list) -> None:
        """The batch covering offsets up to ``through`` is in the state; ``produced``
        holds the futures of every message it sent or wrote."""
        self._pending.setdefault(tp, deque()).append((through, produced))

    def committable(self, tp: Hashable) -> Optional[int]:
        """The offset to commit for ``tp`` (the next one to read), or None.

        Raises :class:`NotDelivered` when a message of a batch failed."""
        queue = self._pending.get(tp)
        while queue:
            through, produced = queue[0]
            if not all(future.done() for future in produced):
                break
            for future in produced:
                if future.cancelled() or future.exception() is not None:
                    cause = "cancelled" if future.cancelled() else repr(future.exception())
                    raise NotDelivered(f"{tp}: a message of the batch through offset {through} was not "
                                       f"delivered ({cause})")
            queue.popleft()
            self._durable[tp] = max(through, self._durable.get(tp, through))
        durable = self._durable.get(tp)
        return None if durable is None else durable + 1

    def partitions(self) -> list:
        return list(self._pending)

    def forget(self, tps: Iterable[Hashable]) -> None:
        """Drop what is known of these partitions (they were revoked or reassigned)."""
        for tp in tps:
            self._pending.pop(tp, None)
            self._durable.pop(tp, None)

    async def settle(self, tps: Iterable[Hashable], timeout: float) -> None:
        """Wait (at most ``timeout`` s) until everything produced for ``tps`` is answered."""
        futures = [f for tp in tps for _, produced in self._pending.get(tp, ()) for f in produced if not f.done()]
        if futures:
            await asyncio.wait(futures, timeout=timeout)
