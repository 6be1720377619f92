"""Sightings in: distinct sensors per device and overall, by round (a flow).

Agent ``count_sensors`` reads the bundles of first sightings that ``ingest``
sends to the partition each guid hashes to, so that each sensor is counted
on exactly one partition of the sightings topic and the per-partition counts
add up (:func:`humidity.core.sensor_counts.count_sensors`). When every input
partition has ended a round here, the round closes and the counts as of it
go to the partials topic. The totals are a header and one entry per device
(:class:`humidity.core.sensor_counts.SensorTotals`): a batch writes the devices
whose counts it changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from humidity.application import HumidityApp
from humidity.core import aggregate, formats, messages
from humidity.core.partials import SENSORS, Sharer, partial_key
from humidity.core.sensor_counts import SensorTotals, count_sensors
from humidity.declare.topics import Topics
from humidity.plumbing.record_batches import batched
from humidity.plumbing.stream import GenerationCache, PartitionWork, load_json, per_batch, resume_from
from humidity.plumbing.tables import partition_get, partition_range
from tables import Tables


@dataclass
class SightingsPartition:
    """What this worker keeps in memory of a sightings partition it owns, for one generation."""

    totals: SensorTotals
    sharer: Sharer = field(default_factory=Sharer)


class SensorsFlow:
    def __init__(self, app: HumidityApp, topics: Topics, tables: Tables) -> None:
        self.partitions, self.topics, self.tables = app.settings.partitions, topics, tables
        #: Each owned partition's :class:`SightingsPartition`: the only writer
        #: of a partition's totals while it owns it, a worker parses them once
        #: per generation, not per batch.
        self.sightings_partitions = GenerationCache(self._load)
        batched(app).resume_at[topics.sightings.get_topic_name()] = resume_from(tables.sensor_totals)
        self.agent = app.agent(topics.sightings, name="count_sensors")(self.run)

    async def run(self, stream) -> None:
        """Count distinct sensors per device and overall, per guid partition."""
        # No waiting on the producer's backlog (the ingest and alarm changelogs):
        # what this agent sends is small (an entry per new sensor, its totals
        # per batch), and every summary waits for its counts.
        await per_batch(stream, self.count_partition, backpressure=False)

    def _load(self, partition: int) -> SightingsPartition:
        table = self.tables.sensor_totals
        entries = aggregate.device_entries(
            partition, partition_range(table, partition, aggregate.device_entry_prefix(partition)))
        return SightingsPartition(SensorTotals.from_stored(load_json(table.get(str(partition))), entries,
                                                           self.partitions))

    def count_partition(self, work: PartitionWork) -> None:
        tables = self.tables
        held = self.sightings_partitions.for_partition(work.partition, work.generation)
        with work.current():
            totals = held.totals
            rows = work.follow(totals.offset)
            if rows is None:
                return
            totals.epoch = work.epoch(totals.epoch)
            parsed = [(offset, message) for offset, key, value in rows
                      if (message := messages.sightings_message(key, value)) is not None]

            def stored(guid: str):
                return load_json(partition_get(tables.sensors, work.partition, guid))

            outcome = count_sensors(totals, parsed, stored, through=work.through, epoch=totals.epoch)
            for guid, entry in outcome.entries.items():
                tables.sensors[guid] = formats.dumps(entry)
            for key, value in aggregate.stored_records(work.partition, totals):
                tables.sensor_totals[key] = value
            totals.unsaved.clear()
        self.share(work.partition, held, outcome.closed)

    def share(self, partition: int, held: SightingsPartition, closed: list) -> None:
        """The counts as of each round closed, as deltas of the devices they
        changed, or every device (:class:`humidity.core.partials.Sharer`)."""
        if not closed:
            return
        key = partial_key(SENSORS, partition).encode()
        totals = held.totals
        shares = [(closed_round, {"round": closed_round, "offset": totals.offset, "epoch": totals.epoch,
                                  **counts.to_json()}) for closed_round, counts in closed]
        for doc in held.sharer.docs(shares, lambda: dict(totals.counts.devices)):
            self.topics.partials.send_soon(key=key, value=formats.dumps(doc))
