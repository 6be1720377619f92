"""Partials in, one global summary out per interval (Faust wiring).

* ``share_partials`` (every worker, every PARTIALS_EVERY s): the totals of the
  partitions this worker owns go to the compacted partials topic.
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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Optional

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from app import app, settings
from humidity.aggregate import IngestTotals, SensorTotals
from humidity import metrics
from humidity.kafka_admin import client_security
from humidity.summary import ALARMS, INGEST, SENSORS, PartialsBook, partial_key, render_line, render_text
from humidity.topics import partials_topic, results_topic
from tables import alarm_totals, ingest_totals, sensor_totals

log = logging.getLogger(__name__)

PARTIALS_EVERY = min(0.5, settings.interval / 2)
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

    summary: Optional[dict] = None
    raw: Optional[bytes] = None
    received_monotonic: float = 0.0


@dataclass
class PublisherState:
    book: PartialsBook = field(default_factory=lambda: PartialsBook(settings.partitions))
    latest: Latest = field(default_factory=Latest)
    sent: dict[str, tuple[bytes, float]] = field(default_factory=dict)
    waiting_logged: float = 0.0


state = PublisherState()


def _owned(topic: str) -> list[int]:
    return sorted(tp.partition for tp in app.assignor.assigned_actives() if tp.topic == topic)


@app.timer(PARTIALS_EVERY)
async def share_partials() -> None:
    if app.rebalancing or not app.tables.recovery.completed.is_set():
        return
    now = time.monotonic()
    for kind, topic, table in (
        (INGEST, settings.input_topic, ingest_totals),
        (SENSORS, settings.sightings_topic, sensor_totals),
        (ALARMS, settings.alarm_readings_topic, alarm_totals),
    ):
        for partition in _owned(topic):
            value = table.get(str(partition)) or EMPTY[kind]
            if kind == ALARMS:
                value = _alarm_partial(value)
            key = partial_key(kind, partition)
            previous = state.sent.get(key)
            if previous and previous[0] == value and now - previous[1] < RESEND_AFTER:
                continue
            await partials_topic.send(key=key.encode(), value=value)
            state.sent[key] = (value, now)


def _on_record(topic: str, key: Optional[bytes], value: Optional[bytes]) -> None:
    if value is None:
        return
    try:
        if topic == settings.partials_topic and key is not None:
            state.book.update(key.decode(), orjson.loads(value))
        elif topic == settings.results_topic:
            summary = orjson.loads(value)
            latest = state.latest.summary
            if latest is None or summary.get("time", "") >= latest.get("time", ""):
                state.latest = Latest(summary, bytes(value), time.monotonic())
                metrics.observe_summary(summary)
    except (ValueError, KeyError, TypeError):
        log.warning("Ignoring a malformed record on %s", topic)


async def _follow_once() -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **client_security(settings),
    )
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
                    _on_record(tp.topic, record.key, record.value)
    finally:
        await consumer.stop()


@app.task
async def follow() -> None:
    """Read partials and published summaries for as long as the worker runs."""
    while True:
        try:
            await _follow_once()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reconnect after any broker trouble
            log.warning("Reading partials/summaries failed (%s: %s); retrying in 5 s", type(exc).__name__, exc)
            await asyncio.sleep(5)


@app.timer(settings.interval, on_leader=True)
async def publish_summary() -> None:
    missing = state.book.missing()
    if missing:
        now = time.monotonic()
        if now - state.waiting_logged > 30:
            log.info("Summary waits for totals of %d partition(s): %s", len(missing), ", ".join(missing))
            state.waiting_logged = now
        return
    summary = state.book.summary(datetime.now(timezone.utc), settings.interval)
    raw = orjson.dumps(summary)
    await results_topic.send(key=b"summary", value=raw)
    state.latest = Latest(summary, raw, time.monotonic())
    metrics.summaries_published.inc()
    metrics.observe_summary(summary)
    if settings.log_format == "line":
        log.info("Summary published to %s: %s", settings.results_topic, render_line(summary))
    else:
        log.info("Summary published to %s:\n%s", settings.results_topic, render_text(summary))


metrics.read_age_from(lambda: state.latest)
