"""Readings in: per-partition totals, dead letters, first sightings and
bundles for the alarms (a flow).

Agent ``ingest`` gets one record batch of an input partition at a time
(:mod:`humidity.plumbing.stream`): it loads the partition's totals, applies
the pure rules of :mod:`humidity.core.aggregate` to the records that
continue them, writes the new totals (one changelog message per batch) and
new sightings, and queues what it sends: ``(device, guid)`` first sightings
keyed by guid, dead letters, and the valid readings bundled per alarm
partition.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from humidity.application import HumidityApp
from humidity.core import aggregate
from humidity.core.alarms import alarm_partition_of
from humidity.core.readings import Reading, dead_letter
from humidity.declare.metrics import Metrics
from humidity.declare.topics import Topics
from humidity.plumbing.batching import batched
from humidity.plumbing.stream import GenerationCache, PartitionWork, load_json, per_batch, resume_from
from tables import Tables


class IngestFlow:
    def __init__(self, app: HumidityApp, topics: Topics, tables: Tables, metrics: Metrics) -> None:
        self.settings, self.topics, self.tables, self.metrics = app.settings, topics, tables, metrics
        #: Sightings already known in each partition (key -> first offset),
        #: so most readings need no table read.
        self.known_sightings = GenerationCache()
        batched(app).resume_at[topics.input.get_topic_name()] = resume_from(tables.ingest_totals)
        self.agent = app.agent(topics.input, name="ingest")(self.run)

    async def run(self, stream) -> None:
        """Parse readings, count them per partition, forward first sightings and readings for alarms."""
        await per_batch(stream, self.ingest_partition)

    def ingest_partition(self, work: PartitionWork) -> None:
        tables = self.tables
        with work.current():
            totals = aggregate.IngestTotals.from_json(load_json(tables.ingest_totals.get(str(work.partition))))
            rows = work.follow(totals.offset)
            if rows is None:
                return
            known = self.known_sightings.for_partition(work.partition, work.generation)

            def sighting_offset(key: str) -> int | None:
                offset = known.get(key)
                if offset is None:
                    raw = tables.sightings.get(key)
                    if raw is not None:
                        offset = known[key] = int(raw)
                return offset

            before = (totals.valid, totals.invalid)
            totals.epoch = work.epoch(totals.epoch)
            outcome = aggregate.ingest(totals, [(offset, value) for offset, _key, value in rows],
                                       sighting_offset, through=work.through)
            for key, offset in outcome.new_sightings.items():
                tables.sightings[key] = str(offset).encode()
                known[key] = offset
            tables.ingest_totals[str(work.partition)] = orjson.dumps(totals.to_json())
        for guid, device in outcome.forwards:
            self.topics.sightings.send_soon(key=guid.encode(), value=device.encode())
        self.forward_for_alarms(outcome.readings)
        self.metrics.readings_processed.labels(result="valid").inc(totals.valid - before[0])
        self.metrics.readings_processed.labels(result="invalid").inc(totals.invalid - before[1])
        if outcome.dead_letters:
            now = datetime.now(UTC)
            for offset, reason, raw in outcome.dead_letters:
                record = dead_letter(reason, raw, topic=self.settings.input_topic, partition=work.partition,
                                     offset=offset, now=now)
                self.topics.invalid.send_soon(value=orjson.dumps(record))

    def forward_for_alarms(self, readings: list[Reading]) -> None:
        """One bundle per alarm partition: a logger's readings all meet there."""
        bundles: dict[int, list] = {}
        for r in readings:
            bundles.setdefault(alarm_partition_of(r.guid, self.settings.partitions), []).append(
                [r.guid, r.device, r.event_time.timestamp(), r.humidity])
        for partition, rows in bundles.items():
            self.topics.alarm_readings.send_soon(key=b"r", value=orjson.dumps({"r": rows}), partition=partition)
