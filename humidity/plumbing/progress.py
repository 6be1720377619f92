"""Which offsets may be committed: those whose every output the broker has
acknowledged (plumbing, no Faust).

A batch of partition *p* writes table changelogs and sends forwards, dead
letters and bundles; each is a future that completes when the broker has the
message. The batch's offsets may be committed once all of them, and all of
every earlier batch of *p*, are acknowledged: then a crash, or another worker
restoring *p* from its changelogs, cannot lose what the commit skips over.
Flushing the producer is not enough: Faust's flush returns after 0.1 s
without progress, with messages still queued.

Only a count of unanswered messages is kept per batch (the futures report
back when they complete), so memory does not grow with what was delivered.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Hashable, Iterable
from functools import partial


class NotDelivered(Exception):
    """A message the state depends on could not be sent: nothing past it may be committed."""


class _Batch:
    __slots__ = ("through", "unanswered", "failure")

    def __init__(self, through: int) -> None:
        self.through = through
        self.unanswered = 0
        self.failure: str | None = None


def _answered(batch: _Batch, future) -> None:
    batch.unanswered -= 1
    if future.cancelled():
        batch.failure = batch.failure or "cancelled"
    elif future.exception() is not None:
        batch.failure = batch.failure or repr(future.exception())


class Progress:
    """Per partition: the batches handled, in order, and what each still waits for."""

    def __init__(self) -> None:
        self._pending: dict[Hashable, deque] = {}
        self._durable: dict[Hashable, int] = {}

    def handled(self, tp: Hashable, through: int, produced: list) -> None:
        """The batch covering offsets up to ``through`` is in the state; ``produced``
        holds the futures of every message it sent or wrote."""
        batch = _Batch(through)
        for future in produced:
            batch.unanswered += 1
            if future.done():
                _answered(batch, future)
            else:
                future.add_done_callback(partial(_answered, batch))
        self._pending.setdefault(tp, deque()).append(batch)

    def committable(self, tp: Hashable) -> int | None:
        """The offset to commit for ``tp`` (the next one to read), or None.

        Raises :class:`NotDelivered` when a message of a batch failed."""
        queue = self._pending.get(tp)
        while queue:
            batch = queue[0]
            if batch.failure is not None:
                raise NotDelivered(f"{tp}: a message of the batch through offset {batch.through} was not "
                                   f"delivered ({batch.failure})")
            if batch.unanswered:
                break
            queue.popleft()
            self._durable[tp] = max(batch.through, self._durable.get(tp, batch.through))
        durable = self._durable.get(tp)
        return None if durable is None else durable + 1

    def partitions(self) -> list:
        return list(self._pending)

    def forget(self, tps: Iterable[Hashable]) -> None:
        """Drop what is known of these partitions (they were revoked or reassigned)."""
        for tp in tps:
            self._pending.pop(tp, None)
            self._durable.pop(tp, None)

    async def wait_answered(self, tps: Iterable[Hashable], timeout: float, poll: float = 0.01) -> None:
        """Wait (at most ``timeout`` s) until everything produced for ``tps`` is answered."""
        batches = [batch for tp in tps for batch in self._pending.get(tp, ())]
        deadline = time.monotonic() + timeout
        while any(batch.unanswered for batch in batches) and time.monotonic() < deadline:
            await asyncio.sleep(poll)
