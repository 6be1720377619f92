"""Partials in, one global summary out per interval (a flow).

* The flows share their partitions' figures on the partials topic as each
  round closes (:mod:`humidity.core.rounds`).
* ``reader`` (every worker): a group-less consumer reads the partials topic
  into a :class:`PartialsBook`, and the results topic for the latest
  published summary, which the web page serves, and what it counted.
* ``publish_summary`` (leader only, every HUMIDITY_INTERVAL s): the newest
  cut every partition has shared figures for, never below the previous
  summary's, goes to the results topic as the summary (with what it counted,
  exactly, in a ``cut`` header, for the next one's interval) and, as four
  titled blocks, to the log.

A leader publishes through the summaries' single writer
(:mod:`humidity.plumbing.single_writer`): taking the role fences every
earlier leader's producer, and the new leader then reads the newest summary
on the topic before it publishes. As no other worker can commit a summary
between that read and this leader's commit without fencing it, each summary
on the topic is at least the one before it, even while a paused former
leader still believes it leads.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from aiokafka.errors import KafkaError

from humidity.application import HumidityApp
from humidity.core import formats
from humidity.core.behind import Behind
from humidity.core.partials import PartialsBook
from humidity.core.summary import Previous, SummaryMemo, build_summary
from humidity.core.summary_log import as_of_text, render_line, render_text
from humidity.declare.metrics import Metrics
from humidity.declare.topics import Topics
from humidity.flow.behind import CutBehind
from humidity.plumbing.exit import stop_worker
from humidity.plumbing.follow import ALL, LAST, Follower, read_newest
from humidity.plumbing.single_writer import SingleWriter

log = logging.getLogger(__name__)

#: The header of a summary record that carries what it counted, exactly.
CUT_HEADER = "cut"
#: Seconds between log lines while no summary can be published.
WAITING_LOG_EVERY = 30.0


@dataclass
class Latest:
    """The newest summary on the results topic, for the web page."""

    summary: dict | None = None
    raw: bytes | None = None
    received_monotonic: float = 0.0


class Publisher:
    def __init__(self, app: HumidityApp, topics: Topics, metrics: Metrics, behind: CutBehind) -> None:
        self.app, self.settings, self.topics, self.metrics, self.behind = app, app.settings, topics, metrics, behind
        self.book = PartialsBook(self.settings.partitions)
        self.latest = Latest()
        self.previous: Previous | None = None  # what the latest summary counted
        self.memo = SummaryMemo()  # what this worker's last summary built per device
        self.reader = Follower(self.settings, {self.settings.partials_topic: ALL, self.settings.results_topic: LAST},
                               self._on_record, "partials/summaries")
        self.waiting_logged = 0.0
        self.writer = SingleWriter(self.settings, "summaries")
        metrics.read_age_from(lambda: self.latest.summary)
        metrics.read_cut_behind_from(self.latest_behind)
        app.task(self.reader.run)
        app.timer(self.settings.interval, on_leader=True)(self.publish_summary)

    def latest_behind(self) -> Behind:
        """How far the newest summary this worker has seen is behind the input now."""
        summary = self.latest.summary
        return self.behind.of(summary.get("as_of") if summary else None)

    def _on_summary(self, raw: bytes, headers) -> None:
        if raw == self.latest.raw:
            return  # this worker published it (with a large fleet, reading it again costs)
        summary = orjson.loads(raw)
        latest = self.latest.summary
        if latest is not None and summary.get("time", "") < latest.get("time", ""):
            return
        self.latest = Latest(summary, bytes(raw), time.monotonic())
        self.behind.counted(summary.get("as_of") or {})
        self.metrics.observe_summary(summary)
        cut = dict(headers or ()).get(CUT_HEADER)
        self.previous = Previous.from_json(formats.loads(cut, "a summary's cut header")) if cut else None

    def _on_record(self, topic: str, key: bytes | None, value: bytes | None, headers=()) -> None:
        if value is None:
            return
        try:
            if topic == self.settings.partials_topic and key is not None:
                self.book.update(key.decode(), formats.loads(value, "the partials topic"))
            elif topic == self.settings.results_topic and key == b"summary":
                self._on_summary(value, headers)
        except formats.NewerFormat as exc:
            stop_worker(str(exc), traceback=False)
        except (ValueError, KeyError, TypeError):
            log.warning("Ignoring a malformed record on %s", topic)

    async def _lead(self) -> bool:
        """This worker holds the summaries' writer for the current generation,
        taking it (and reading the newest summary published) if it is new to it."""
        term = self.app.consumer_generation_id
        if self.writer.holds(term):
            return True
        if not await self.writer.take(term):
            return False
        try:
            newest = await read_newest(self.settings, self.settings.results_topic, b"summary", self.settings.partitions)
        except KafkaError as exc:  # the broker went away: lead once the newest summary can be read
            log.warning("Could not read the newest summary (%s: %s); trying again later", type(exc).__name__, exc)
            await self.writer.release()
            return False
        if newest is not None:
            self._on_summary(*newest)
        log.info("Leading: publishing summaries from %s on",
                 as_of_text(self.previous.as_of) if self.previous and self.previous.as_of else "the start")
        return True

    async def publish_summary(self) -> None:
        if not await self._lead():
            return
        settings = self.settings
        previous = self.previous
        cut = self.book.newest_cut(previous.as_of if previous else None) if self.reader.caught_up.is_set() else None
        if cut is None:
            now = time.monotonic()
            if now - self.waiting_logged > WAITING_LOG_EVERY:
                missing = self.book.missing()
                log.info("Summary waits for %s", f"figures of {len(missing)} partition(s): {', '.join(missing)}"
                         if missing else "a round every partition has closed")
                self.waiting_logged = now
            return
        summary, counted = build_summary(cut, datetime.now(UTC), settings.interval, previous, self.memo)
        summary["behind"] = self.behind.of(summary["as_of"]).to_json()
        raw = orjson.dumps(summary)
        if not await self.writer.write([(settings.results_topic, b"summary", raw, None,
                                         [(CUT_HEADER, formats.dumps(counted.to_json()))])]):
            return
        self.latest, self.previous = Latest(summary, raw, time.monotonic()), counted
        self.behind.counted(summary["as_of"])
        self.book.forget_before(cut.round)
        self.metrics.summaries_published.inc()
        self.metrics.observe_summary(summary)
        if settings.log_format == "line":
            log.info("Summary published to %s: %s", settings.results_topic, render_line(summary))
        else:
            log.info("Summary published to %s:\n%s", settings.results_topic, render_text(summary))
