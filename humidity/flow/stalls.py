"""Stall detection: is every partition this worker consumes moving? (a flow).

A Faust consumer can stop fetching a partition after a rebalance without an
error, while the worker keeps its place in the group (faust-streaming issues
#175, #640), and an agent that stops taking batches leaves its partitions
fetched but never committed. Every few seconds this reads, with Kafka
clients of its own, the end offset of every partition a reader of this
worker consumes: the agents (the input, the sightings, the alarm and
history readings, the acks and the audit intake), each notification
channel (the alerts) and the readers of whole topics (the partials, the
summaries, the acknowledgements); and how far each reader has got (its
group's committed offset, or its position). It feeds them to
:class:`humidity.core.stalls.StallWatch`: ``/health`` reports the
partitions that have had records waiting and no progress for
HUMIDITY_STALL_SECONDS, and ``/metrics`` the lag of each. It also logs, one
line each, a broker that leaves or rejoins the cluster and input partitions
whose leader moved (the clients themselves retry quietly).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from humidity.application import HumidityApp
from humidity.core.cluster_changes import leadership_changes
from humidity.core.stalls import AGENTS, Feed, Reader, StallWatch
from humidity.declare.metrics import Metrics
from humidity.plumbing.assignment import owned
from humidity.plumbing.kafka_admin import KafkaOffsets
from humidity.plumbing.record_batches import batched

log = logging.getLogger(__name__)

#: Seconds one reading of the offsets may take before it counts as failed.
READ_TIMEOUT = 10.0


def check_every(stall_seconds: float) -> float:
    """Often enough to see a stall soon after it passes the limit."""
    return min(10.0, max(1.0, stall_seconds / 6))


class StallMonitor:
    def __init__(self, app: HumidityApp, metrics: Metrics, offsets: KafkaOffsets,
                 other_readers: Callable[[], Awaitable[list[Reader | None]]]) -> None:
        self.app, self.metrics, self.other_readers = app, metrics, other_readers
        settings = app.settings
        self.topic = settings.input_topic
        self.watch = StallWatch(settings.stall_seconds)
        self.offsets = offsets
        self.failing = False
        self.brokers: set[int] = set()
        self.leaders: dict[int, int] = {}
        app.timer(check_every(settings.stall_seconds))(self.check)

    def describe(self) -> list[str]:
        return self.watch.describe(time.time())

    def _agents(self) -> Reader:
        """The partitions the agents own; none while they are being assigned or
        restored: they cannot progress yet, and their wait starts afterwards."""
        # what the agents read (Faust's own topics are active too)
        return Reader(AGENTS, tuple(owned(self.app, batched(self.app).topics)), group=self.app.settings.app_id)

    async def _progress(self, readers: list[Reader]) -> dict[Feed, tuple[int, int]]:
        """Each feed's ``(end offset, how far its reader has got)``."""
        ends = await self.offsets.ends({tp for reader in readers for tp in reader.partitions})
        found = {}
        for reader in readers:
            done = await self.offsets.committed(reader.group, reader.partitions) if reader.group else reader.positions
            for tp in reader.partitions:
                found[Feed(*tp, reader.name)] = (ends[tp], done.get(tp, -1))
        return found

    async def check(self) -> None:
        try:
            readers = [self._agents(), *filter(None, await asyncio.wait_for(self.other_readers(), READ_TIMEOUT))]
            progress = await asyncio.wait_for(self._progress(readers), READ_TIMEOUT)
            brokers, leaders = await asyncio.wait_for(self.offsets.leaders(self.topic), READ_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - unknown offsets are no verdict either way
            if not self.failing:
                log.warning("Stall check: cannot read the offsets (%s: %s); trying again", type(exc).__name__, exc)
            self.failing = True
            return
        if self.failing:
            log.info("Stall check: offsets readable again")
        self.failing = False
        now = time.time()
        busy = [Feed(*tp, reader.name) for reader in readers if reader.busy for tp in reader.partitions]
        self.watch.observe(progress, now, busy)
        for line in leadership_changes(self.topic, self.leaders, leaders, self.brokers, brokers):
            log.warning("%s", line)
        self.brokers, self.leaders = brokers, leaders
        self.metrics.observe_partitions(self.watch, now)
