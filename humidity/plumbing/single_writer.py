"""One writer at a time for a topic only one worker may write (plumbing).

The summaries and the audit chain each have one writer: the leader, and the
owner of the audit intake's partition 0. A worker paused for longer than the
session timeout (a frozen VM, a long GC, SIGSTOP) loses that role while it
sleeps, and when it wakes up it still believes it has it until its consumer
notices. Its writes in that window would go back in time (an older summary
after a newer one) or fork the audit chain.

Kafka fences such zombies itself: each role has one stable
``transactional.id`` per app, and a worker that takes the role for a term
(a consumer generation) starts a transactional producer with it. The
broker's transaction coordinator then bumps the id's producer epoch, aborts
the previous holder's open transaction and refuses every later write or
commit of the previous holder's producer, whatever that worker believes. A
fenced write is dropped with one log line, and its worker stays silent in
that role until a later term. Readers of these topics read committed records
only (:mod:`humidity.plumbing.follow`).
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import InvalidProducerEpoch, KafkaError, ProducerFenced

from humidity.core.settings import Settings
from humidity.plumbing.kafka_admin import MAX_MESSAGE_BYTES, client_security

log = logging.getLogger(__name__)


class SingleWriter:
    """The transactional producer of one role (``summaries``, ``audit-chain``)."""

    def __init__(self, settings: Settings, role: str) -> None:
        self.settings, self.role = settings, role
        self.transactional_id = f"{settings.app_id}-{role}"
        self.producer: AIOKafkaProducer | None = None
        self.term: Hashable = None  # the term the producer was started for
        self.fenced_term: Hashable = None  # a term in which another worker took the role over

    def holds(self, term: Hashable) -> bool:
        """This worker has taken the role for ``term`` and was not fenced since."""
        return self.producer is not None and self.term == term

    async def take(self, term: Hashable) -> bool:
        """Take the role for ``term``: fences every producer started before
        with the role's id (the broker aborts their open transactions first).
        False when another worker took it over in this term, or the broker
        could not be reached."""
        if term == self.fenced_term:
            return False
        await self.release()
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.bootstrap_servers,
                                    transactional_id=self.transactional_id, enable_idempotence=True,
                                    max_request_size=MAX_MESSAGE_BYTES,  # a large fleet's summary
                                    **client_security(self.settings))
        try:
            await producer.start()
        except KafkaError as exc:
            log.warning("Could not take the %s role (%s: %s); trying again later", self.role, type(exc).__name__, exc)
            await _stopped(producer)
            return False
        self.producer, self.term = producer, term
        return True

    async def write(self, records: Iterable[tuple[str, bytes, bytes, int | None, list]]) -> bool:
        """Send ``(topic, key, value, partition, headers)`` records as one
        transaction. True once the broker has committed it; False, with the
        records dropped, when this worker was fenced or the broker failed."""
        producer = self.producer
        if producer is None:
            return False
        try:
            async with producer.transaction():
                for topic, key, value, partition, headers in records:
                    await producer.send(topic, value=value, key=key, partition=partition, headers=headers)
            return True
        except (KafkaError, AssertionError) as exc:  # aiokafka asserts on a producer a fence already broke
            if isinstance(exc, ProducerFenced | InvalidProducerEpoch | AssertionError):
                self.fenced_term = self.term
                log.warning("Not writing %s: another worker holds the role now (this one was paused or left the "
                            "group); dropped", self.role)
            else:
                log.warning("Writing %s failed (%s: %s); dropped", self.role, type(exc).__name__, exc)
            await self.release()
            return False

    async def release(self) -> None:
        producer, self.producer, self.term = self.producer, None, None
        if producer is not None:
            await _stopped(producer)


async def _stopped(producer: AIOKafkaProducer) -> None:
    try:
        await producer.stop()
    except Exception as exc:  # noqa: BLE001 - a fenced or broken producer may fail to stop cleanly
        log.debug("Stopping a producer: %s: %s", type(exc).__name__, exc)
