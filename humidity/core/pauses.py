"""Did this process sleep through its group membership? (pure)

A process frozen for longer than the session timeout (SIGSTOP, a VM
snapshot, a long GC) was thrown out of its consumer group while it slept,
but it wakes up believing it still owns its partitions, and it keeps
believing so until its consumer hears from the coordinator. Judgements
that compare stored state with the wall clock (a logger is OFFLINE when its
last reading is older than the timeout) would then be made on a state the
sleeper stopped updating, and raise alarms the partition's new owner knows
to be false. Such judgements wait until the group has settled.
"""

from __future__ import annotations


class PauseWatch:
    """Noticed from the gaps between calls of :meth:`note`, which its user
    makes more often than ``limit`` s while the process runs."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.last: float | None = None
        self.quiet_until = float("-inf")

    def note(self, now: float) -> None:
        """The process is running at monotonic time ``now``."""
        if self.last is not None and now - self.last > self.limit:
            # by twice the session timeout the consumer has rejoined, or was never out
            self.quiet_until = now + 2 * self.limit
        self.last = now

    def woke_recently(self, now: float) -> bool:
        """It slept past ``limit`` s, and the group may not have settled yet."""
        return now < self.quiet_until
