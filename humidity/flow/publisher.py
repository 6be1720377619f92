"""Partials in, one global summary out per interval (a flow).

* ``share_partials`` (every worker, every PARTIALS_EVERY s): the totals and
  active alarms of the partitions this worker owns go to the compacted
  partials topic.
* ``follow`` (every worker): a group-less consumer reads the whole partials
  topic into a :class:`PartialsBook`, and the results topic for the latest
  published summary, which the web page serves.
* ``publish_summary`` (leader only, every HUMIDITY_INTERVAL s): once the book
  holds every partition, the merged summary goes to the results topic and,
  as four titled blocks, to the log.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from humidity.application import HumidityApp
from humidity.core.aggregate import IngestTotals, SensorTotals
from humidity.core.summary import ALARMS, INGEST, SENSORS, PartialsBook, partial_key, render_line, render_text
from humidity.declare.metrics import Metrics
from humidity.declare.topics import Topics
from humidity.plumbing.kafka_admin import client_security
from tables import Tables

log = logging.getLogger(__name__)

RESEND_AFTER = 30.0  # seconds: re-share unchanged partials now and then
EMPTY = {INGEST: orjson.dumps(IngestTotals().to_json()), SENSORS: orjson.dumps(SensorTotals().to_json()),
         ALARMS: b'{"offset":-1,"active":{}}'}


def _alarm_partial(value: bytes) -> bytes:
    """Only what the summary needs: the offset and the active alarms."""
    doc = orjson.loads(value)
    return orjson.dumps({"offset": doc["offset"], "active": list(doc["active"].values())})


@dataclass
class Latest:
    """The newest summary on the results topic, for the web page."""

    summary: dict | None = None
    raw: bytes | None = None
    received_monotonic: float = 0.0


class Publisher:
    def __init__(self, app: HumidityApp, topics: Topics, tables: Tables, metrics: Metrics) -> None:
        self.app, self.settings, self.topics, self.tables, self.metrics = app, app.settings, topics, tables, metrics
        self.book = PartialsBook(self.settings.partitions)
        self.latest = Latest()
        self.sent: dict[str, tuple[bytes, float]] = {}
        self.waiting_logged = 0.0
        metrics.read_age_from(lambda: self.latest.summary)
        app.timer(min(0.5, self.settings.interval / 2))(self.share_partials)
        app.task(self.follow)
        app.timer(self.settings.interval, on_leader=True)(self.publish_summary)

    def _owned(self, topic: str) -> list[int]:
        return sorted(tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic)

    async def share_partials(self) -> None:
        app, settings = self.app, self.settings
        if app.rebalancing or not app.tables.recovery.completed.is_set():
            return
        now = time.monotonic()
        for kind, topic, table in (
            (INGEST, settings.input_topic, self.tables.ingest_totals),
            (SENSORS, settings.sightings_topic, self.tables.sensor_totals),
            (ALARMS, settings.alarm_readings_topic, self.tables.alarm_totals),
        ):
            for partition in self._owned(topic):
                value = table.get(str(partition)) or EMPTY[kind]
                if kind == ALARMS:
                    value = _alarm_partial(value)
                key = partial_key(kind, partition)
                previous = self.sent.get(key)
                if previous and previous[0] == value and now - previous[1] < RESEND_AFTER:
                    continue
                await self.topics.partials.send(key=key.encode(), value=value)
                self.sent[key] = (value, now)

    def _on_record(self, topic: str, key: bytes | None, value: bytes | None) -> None:
        if value is None:
            return
        try:
            if topic == self.settings.partials_topic and key is not None:
                self.book.update(key.decode(), orjson.loads(value))
            elif topic == self.settings.results_topic:
                summary = orjson.loads(value)
                latest = self.latest.summary
                if latest is None or summary.get("time", "") >= latest.get("time", ""):
                    self.latest = Latest(summary, bytes(value), time.monotonic())
                    self.metrics.observe_summary(summary)
        except (ValueError, KeyError, TypeError):
            log.warning("Ignoring a malformed record on %s", topic)

    async def _follow_once(self) -> None:
        settings = self.settings
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest",
                                    **client_security(settings))
        await consumer.start()
        try:
            partials = [TopicPartition(settings.partials_topic, p) for p in range(settings.partitions)]
            results = [TopicPartition(settings.results_topic, p) for p in range(settings.partitions)]
            consumer.assign(partials + results)
            await consumer.seek_to_beginning(*partials)
            ends = await consumer.end_offsets(results)
            for tp in results:
                consumer.seek(tp, max(0, ends[tp] - 1))
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=10000)
                for tp, records in batches.items():
                    for record in records:
                        self._on_record(tp.topic, record.key, record.value)
        finally:
            await consumer.stop()

    async def follow(self) -> None:
        """Read partials and published summaries for as long as the worker runs."""
        while True:
            try:
                await self._follow_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect after any broker trouble
                log.warning("Reading partials/summaries failed (%s: %s); retrying in 5 s", type(exc).__name__, exc)
                await asyncio.sleep(5)

    async def publish_summary(self) -> None:
        settings = self.settings
        missing = self.book.missing()
        if missing:
            now = time.monotonic()
            if now - self.waiting_logged > 30:
                log.info("Summary waits for totals of %d partition(s): %s", len(missing), ", ".join(missing))
                self.waiting_logged = now
            return
        summary = self.book.summary(datetime.now(UTC), settings.interval)
        raw = orjson.dumps(summary)
        await self.topics.results.send(key=b"summary", value=raw)
        self.latest = Latest(summary, raw, time.monotonic())
        self.metrics.summaries_published.inc()
        self.metrics.observe_summary(summary)
        if settings.log_format == "line":
            log.info("Summary published to %s: %s", settings.results_topic, render_line(summary))
        else:
            log.info("Summary published to %s:\n%s", settings.results_topic, render_text(summary))
