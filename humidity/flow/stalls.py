"""Stall detection: is every input partition this worker owns moving? (a flow).

A Faust consumer can stop fetching a partition after a rebalance without an
error, while the worker keeps its place in the group (faust-streaming issues
#175, #640). Every few seconds this reads, with Kafka clients of its own, the
end offset and the group's committed offset of each owned input partition,
and feeds :class:`humidity.core.health.StallWatch`; ``/health`` reports the
partitions that have had readings waiting and no progress for
HUMIDITY_STALL_SECONDS, and ``/metrics`` the lag of each. It also logs, one
line each, a broker that leaves or rejoins the cluster and input partitions
whose leader moved (the clients themselves retry quietly).
"""

from __future__ import annotations

import asyncio
import logging
import time

from humidity.application import HumidityApp
from humidity.core.health import StallWatch, leadership_changes
from humidity.declare.metrics import Metrics
from humidity.plumbing.kafka_admin import GroupOffsets, client_security

log = logging.getLogger(__name__)

#: Seconds one reading of the offsets may take before it counts as failed.
READ_TIMEOUT = 10.0


def check_every(stall_seconds: float) -> float:
    """Often enough to see a stall soon after it passes the limit."""
    return min(10.0, max(1.0, stall_seconds / 6))


class StallMonitor:
    def __init__(self, app: HumidityApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics
        settings = app.settings
        self.topic = settings.input_topic
        self.watch = StallWatch(settings.stall_seconds)
        self.offsets = GroupOffsets(settings.bootstrap_servers, settings.app_id, client_security(settings))
        self.failing = False
        self.brokers: set[int] = set()
        self.leaders: dict[int, int] = {}
        app.timer(check_every(settings.stall_seconds))(self.check)
        app.on_before_shutdown.connect(self._close)

    async def _close(self, sender, **_) -> None:
        await self.offsets.close()

    def describe(self) -> list[str]:
        return self.watch.describe(time.time())

    async def check(self) -> None:
        app = self.app
        if app.rebalancing or not app.tables.recovery.completed.is_set():
            # Partitions being assigned or restored cannot progress yet: their wait starts afterwards.
            self.watch.observe({}, time.time())
        else:
            owned = sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == self.topic)
            try:
                offsets = await asyncio.wait_for(self.offsets.read(self.topic, owned), READ_TIMEOUT)
                brokers, leaders = await asyncio.wait_for(self.offsets.leaders(self.topic), READ_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - unknown offsets are no verdict either way
                if not self.failing:
                    log.warning("Stall check: cannot read the offsets of %s (%s: %s); trying again", self.topic,
                                type(exc).__name__, exc)
                self.failing = True
                return
            if self.failing:
                log.info("Stall check: offsets of %s readable again", self.topic)
            self.failing = False
            self.watch.observe(offsets, time.time())
            for line in leadership_changes(self.topic, self.leaders, leaders, self.brokers, brokers):
                log.warning("%s", line)
            self.brokers, self.leaders = brokers, leaders
        self.metrics.observe_partitions(self.topic, self.watch, time.time())
