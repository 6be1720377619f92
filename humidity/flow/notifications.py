"""Alarm events out to people: webhooks and e-mail, with retries (a flow).

Each channel (:mod:`humidity.core.notify`) reads the alerts topic in its own
consumer group, so Kafka gives each event to one worker per channel, and a
receiver that is down holds back only its own channel: counting, publishing
and the other channels go on. An event is retried with back-off until the
receiver accepts it (HTTP 2xx; SMTP accepted the message), and only then is
its offset committed: a worker that dies before that leaves the event to the
next owner of the partition, which sends it again with the same ``id``
(at least once). A channel's group that has no committed offset yet starts
at the events of the last :data:`START_BACK` seconds, not at the topic's
whole history. An event that a maintenance silence covers (it carries
``silenced``) is held back, not sent (:mod:`humidity.core.maintenance`).
Every outcome is counted in ``/metrics`` and reported to the audit trail
(``delivered``; ``failing`` at the first failed attempt; ``held``), and a
failing channel is logged at most once per :data:`LOG_FAILURES_EVERY` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time

import aiohttp
import aiosmtplib
import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError

from humidity.application import HumidityApp
from humidity.core import audit, formats, notify
from humidity.core.alarms import identified
from humidity.core.readings import now_iso
from humidity.core.stalls import Reader
from humidity.declare.metrics import Metrics
from humidity.declare.topics import Topics
from humidity.plumbing.kafka_admin import client_security

log = logging.getLogger(__name__)

#: Seconds of alerts a channel without a committed offset starts with.
START_BACK = 3600.0
#: Seconds between log lines about the same failing channel.
LOG_FAILURES_EVERY = 60.0
#: Seconds one attempt may take.
HTTP_TIMEOUT = 10.0
SMTP_TIMEOUT = 30.0
#: Seconds before a channel's reader reconnects after broker trouble.
RETRY_AFTER = 5.0


class _StartNear(ConsumerRebalanceListener):
    """A partition the group has no committed offset for starts at the
    events of the last START_BACK seconds, and that start is committed at
    once, so that a worker that dies before its first delivery leaves it to
    the next owner."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked) -> None:
        pass

    async def on_partitions_assigned(self, assigned) -> None:
        try:
            fresh = [tp for tp in assigned if await self.consumer.committed(tp) is None]
            if not fresh:
                return
            since = int((time.time() - START_BACK) * 1000)
            found = await self.consumer.offsets_for_times(dict.fromkeys(fresh, since))
            ends = await self.consumer.end_offsets(fresh)
            starts = {tp: (found[tp].offset if found.get(tp) else ends[tp]) for tp in fresh}
            for tp, offset in starts.items():
                self.consumer.seek(tp, offset)
            await self.consumer.commit(starts)
        except KafkaError as exc:  # the partitions moved again meanwhile: their next owner starts them
            log.info("Notifications: start of %d partition(s) not set (%s)", len(assigned), exc)


class Notifier:
    def __init__(self, app: HumidityApp, topics: Topics, metrics: Metrics) -> None:
        self.app, self.settings, self.topics, self.metrics = app, app.settings, topics, metrics
        s = self.settings
        self.channels = notify.channels(s.notify_webhooks, s.notify_emails, s.escalate_webhooks, s.escalate_emails)
        self.logged_failure: dict[str, float] = {}
        self.consumers: dict[str, AIOKafkaConsumer] = {}  # channel key -> its reader, while it reads
        self.delivering: set[str] = set()  # channel keys with an event in hand
        for channel in self.channels:
            app.task(self._task(channel))

    def _task(self, channel: notify.Channel):
        async def deliver_channel() -> None:
            await self.run(channel)

        deliver_channel.__name__ = f"notify_{channel.name}"
        return deliver_channel

    async def run(self, channel: notify.Channel) -> None:
        """Deliver the channel's events for as long as the worker runs."""
        while True:
            try:
                await self._consume(channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect after any broker trouble
                log.warning("Notifications to %s %s: reading alerts failed (%s: %s); retrying in %.0f s",
                            channel.name, channel.shown, type(exc).__name__, exc, RETRY_AFTER)
                await asyncio.sleep(RETRY_AFTER)

    def group(self, channel: notify.Channel) -> str:
        return f"{self.settings.app_id}-notify-{channel.key}"

    def readers(self) -> list[Reader]:
        """What each channel reads, for the stall watch: a channel retrying
        its receiver is busy, not stalled (restarting would not help)."""
        found = []
        for channel in self.channels:
            consumer = self.consumers.get(channel.key)
            if consumer is not None:
                found.append(Reader(f"notifications to {channel.name}",
                                    tuple(sorted((tp.topic, tp.partition) for tp in consumer.assignment())),
                                    group=self.group(channel), busy=channel.key in self.delivering))
        return found

    async def _consume(self, channel: notify.Channel) -> None:
        s = self.settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap_servers, group_id=self.group(channel),
            enable_auto_commit=False, auto_offset_reset="latest", session_timeout_ms=10_000,
            heartbeat_interval_ms=2_000,
            # A receiver may be down for hours: the reader stays in its group meanwhile.
            max_poll_interval_ms=7 * 24 * 3600 * 1000, **client_security(s))
        consumer.subscribe([s.alerts_topic], listener=_StartNear(consumer))
        await consumer.start()
        self.consumers[channel.key] = consumer
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=100)
                for tp, records in batches.items():
                    for record in records:
                        event = self._event(record.value)
                        if event is not None and channel.takes(event):
                            if event.get("silenced"):
                                self.hold(channel, event)
                                continue
                            await self.deliver(channel, event)
                            if not await self._commit(consumer, channel, tp, record.offset + 1):
                                break
                    else:
                        await self._commit(consumer, channel, tp, records[-1].offset + 1)
        finally:
            self.consumers.pop(channel.key, None)
            await consumer.stop()

    @staticmethod
    async def _commit(consumer, channel: notify.Channel, tp, offset: int) -> bool:
        try:
            await consumer.commit({tp: offset})
            return True
        except (CommitFailedError, KafkaError) as exc:
            # The partition moved: its next owner sends what is not committed (same ids).
            log.info("Notifications to %s: commit not made (%s)", channel.name, exc)
            return False

    @staticmethod
    def _event(raw: bytes | None) -> dict | None:
        try:
            return identified(orjson.loads(raw)) if raw else None
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("Notifications: an alerts record is not an alarm event; skipped")
            return None

    def hold(self, channel: notify.Channel, event: dict) -> None:
        """A maintenance silence covers the event's alarm: it is not sent, and
        the audit trail says so (the alarm is notified when the silence ends)."""
        self.metrics.notifications.labels(channel=channel.name, outcome="held").inc()
        silenced = event["silenced"]
        self._report(event, channel, "held", 0, f"silence {silenced['id']} until {silenced['until']}")

    async def deliver(self, channel: notify.Channel, event: dict) -> None:
        """Send ``event`` until the receiver accepts it."""
        self.delivering.add(channel.key)
        try:
            await self._send_until_accepted(channel, event)
        finally:
            self.delivering.discard(channel.key)

    async def _send_until_accepted(self, channel: notify.Channel, event: dict) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                await self.send(channel, event)
            except Exception as exc:  # noqa: BLE001 - any failure is retried
                self.metrics.notifications.labels(channel=channel.name, outcome="failed").inc()
                reason = notify.scrubbed(f"{type(exc).__name__}: {exc}", channel, self.settings.smtp_password)[:300]
                now = time.monotonic()
                if now - self.logged_failure.get(channel.key, -LOG_FAILURES_EVERY) >= LOG_FAILURES_EVERY:
                    log.warning("Notification to %s %s failed (%s); retrying with back-off", channel.name,
                                channel.shown, reason)
                    self.logged_failure[channel.key] = now
                if attempt == 1:
                    self._report(event, channel, "failing", attempt, reason)
                await asyncio.sleep(notify.backoff(attempt))
                continue
            self.metrics.notifications.labels(channel=channel.name, outcome="delivered").inc()
            self._report(event, channel, "delivered", attempt)
            return

    def _report(self, event: dict, channel: notify.Channel, outcome: str, attempts: int, detail: str = "") -> None:
        entry = audit.notified(event, channel.name, channel.shown, outcome, attempts, now_iso(), detail)
        self.topics.audit_intake.send_soon(key=event["alarm_id"].encode(), value=formats.dumps(entry), partition=0)

    async def send(self, channel: notify.Channel, event: dict) -> None:
        if channel.kind == notify.WEBHOOK:
            await self._post(channel.targets[0], notify.webhook_body(event), event["id"])
        else:
            await self._mail(channel.targets, event)

    @staticmethod
    async def _post(url: str, body: bytes, event_id: str) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT)) as http, \
                http.post(url, data=body, headers={"Content-Type": "application/json",
                                                   "Idempotency-Key": event_id}) as response:
            if not 200 <= response.status < 300:
                raise RuntimeError(f"HTTP {response.status}")

    async def _mail(self, recipients: tuple[str, ...], event: dict) -> None:
        s = self.settings
        message = notify.email_message(event, s.smtp_from, recipients, s.public_url)
        await aiosmtplib.send(
            message, hostname=s.smtp_host, port=s.smtp_port, start_tls=s.smtp_starttls or False,
            username=s.smtp_user or None, password=s.smtp_password or None, timeout=SMTP_TIMEOUT,
            tls_context=ssl.create_default_context() if s.smtp_starttls else None)
