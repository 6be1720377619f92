"""How far behind the input the published cut is (a flow, on every worker).

A stall anywhere on the way to a summary (an input partition, the
sightings, a round that cannot close) leaves the leader publishing the last
complete cut with a fresh ``time``: summaries arrive on time while the
counts stand still. Every :data:`LOOK_EVERY` seconds this reads the input's
end offsets (last stable: an open transaction has not arrived yet) with a
client of its own into :class:`humidity.core.behind.InputLooks`; the
leader puts the figures of each cut it publishes into the summary
(``behind``), and every worker shows those of the newest summary it has
seen, as of now, on ``/metrics`` and the page.
"""

from __future__ import annotations

import asyncio
import logging
import time

from humidity.application import HumidityApp
from humidity.core.behind import Behind, InputLooks
from humidity.plumbing.kafka_admin import KafkaOffsets

log = logging.getLogger(__name__)

#: Seconds between looks at the input's end offsets: the precision of the figure.
LOOK_EVERY = 1.0
#: Seconds one look may take before it counts as failed.
READ_TIMEOUT = 10.0


class CutBehind:
    def __init__(self, app: HumidityApp, offsets: KafkaOffsets) -> None:
        settings = app.settings
        self.input = [(settings.input_topic, p) for p in range(settings.partitions)]
        self.looks = InputLooks()
        self.offsets = offsets
        self.failing = False
        app.timer(LOOK_EVERY)(self.look)

    async def look(self) -> None:
        try:
            ends = await asyncio.wait_for(self.offsets.ends(self.input), READ_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - the next look tries again; the figure keeps growing meanwhile
            if not self.failing:
                log.warning("Cut behind: cannot read the input's end offsets (%s: %s); trying again",
                            type(exc).__name__, exc)
            self.failing = True
            return
        self.failing = False
        self.looks.observe({partition: end for (_, partition), end in ends.items()}, time.time())

    def of(self, as_of: dict[str, int] | None) -> Behind:
        """How far a cut with ``as_of`` is behind the input now."""
        return self.looks.behind(as_of, time.time())

    def counted(self, as_of: dict[str, int]) -> None:
        """A summary with ``as_of`` was published: what it counted need not be remembered."""
        self.looks.forget_counted(as_of)
