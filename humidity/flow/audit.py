"""Audit intake in, one hash chain out (a flow).

The alarm, acks and notification flows report what happened to the intake
topic's partition 0; agent ``audit_chain`` (on the worker that owns that
partition) links each entry to the chain (:mod:`humidity.core.audit`) and
sends it to the audit topic. The chain's end is read back from the audit
topic itself whenever the partition is (re)assigned: the topic, not a
table, is the record of what was chained, so an entry read again after a
crash is not chained twice (its intake offset is at or below the last
record's ``source``), and the chain never forks.
"""

from __future__ import annotations

import logging

import orjson
from aiokafka.errors import KafkaError

from humidity.application import HumidityApp
from humidity.core import audit, formats
from humidity.declare.topics import Topics
from humidity.plumbing.exit import stop_worker
from humidity.plumbing.follow import read_range
from humidity.plumbing.record_batches import batched
from humidity.plumbing.single_writer import SingleWriter
from humidity.plumbing.stream import PartitionWork

log = logging.getLogger(__name__)

#: A resume offset that never sends a partition back (see AuditFlow.resume_at).
NOT_KNOWN = 2**62


class AuditFlow:
    def __init__(self, app: HumidityApp, topics: Topics) -> None:
        self.app, self.settings, self.topics = app, app.settings, topics
        self.tail: audit.Tail | None = None
        self.tail_generation = None
        self.writer = SingleWriter(self.settings, "audit-chain")
        batched(app).resume_at[topics.audit_intake.get_topic_name()] = self.resume_at
        self.agent = app.agent(topics.audit_intake, name="audit_chain")(self.run)

    def resume_at(self, partition: int) -> int:
        """Where partition 0 continues the chain. Before the chain's end is
        read back, the committed offset is safe as it is (a commit never
        passes an entry whose record the broker has not acknowledged)."""
        if partition == 0 and self.tail is not None:
            return self.tail.source + 1
        return NOT_KNOWN

    async def _read_tail(self) -> audit.Tail:
        records = [orjson.loads(value) async for _offset, value in
                   read_range(self.settings, self.settings.audit_topic, last=audit.RECENT_IDS)]
        return audit.Tail.of(records)

    async def run(self, stream) -> None:
        """Chain the intake's entries onto the audit trail, in order."""
        consumer = self.app.consumer
        async for event in stream.events():
            work = PartitionWork([event], consumer)
            if work.partition != 0:
                continue  # nothing is sent to the other partitions
            if self.tail is None or self.tail_generation != work.generation:
                if not await self.writer.take(work.generation):
                    continue  # another worker chains in this generation
                try:
                    self.tail, self.tail_generation = await self._read_tail(), work.generation
                except KafkaError as exc:  # the broker went away: chain once the chain's end can be read
                    log.warning("Could not read the audit chain's end (%s: %s); trying again later",
                                type(exc).__name__, exc)
                    await self.writer.release()
                    continue
            rows = work.follow(self.tail.source)
            if rows is not None:
                if not await self.writer.write(self._records(rows)):
                    self.tail = None  # linked to what was not written: read the chain's end again
                    continue
                self.tail.source = max(self.tail.source, work.through)
                consumer.progress.handled(work.tp, work.through, [])
            if work.rewind_to is not None:
                await consumer.rewind(work.tp, work.rewind_to, work.generation)

    def _records(self, rows) -> list:
        """The chain's next records, made of the intake's ``rows``."""
        records = []
        for offset, _key, value in rows:
            try:
                record = self.tail.link(formats.body(formats.loads(value, "the audit intake topic")), offset)
            except formats.NewerFormat as exc:
                stop_worker(str(exc), traceback=False)
            except (orjson.JSONDecodeError, KeyError, TypeError):
                log.warning("Audit intake: record at offset %d is not an audit entry; left out", offset)
                continue
            if record is not None:
                records.append((self.settings.audit_topic, record["id"].encode(), orjson.dumps(record), 0, []))
        return records
