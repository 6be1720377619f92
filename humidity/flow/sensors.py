"""Sightings in: distinct sensors per device and overall (a flow).

Agent ``count_sensors`` reads the first sightings that ``ingest`` forwards,
keyed by guid, so that each sensor is counted on exactly one partition of
the sightings topic and the per-partition counts add up
(:func:`humidity.core.aggregate.count_sensors`).
"""

from __future__ import annotations

import orjson

from humidity.application import HumidityApp
from humidity.core import aggregate
from humidity.declare.topics import Topics
from humidity.plumbing.batching import batched
from humidity.plumbing.stream import PartitionWork, load_json, per_batch, resume_from
from tables import Tables


class SensorsFlow:
    def __init__(self, app: HumidityApp, topics: Topics, tables: Tables) -> None:
        self.tables = tables
        batched(app).resume_at[topics.sightings.get_topic_name()] = resume_from(tables.sensor_totals)
        self.agent = app.agent(topics.sightings, name="count_sensors")(self.run)

    async def run(self, stream) -> None:
        """Count distinct sensors per device and overall, per guid partition."""
        await per_batch(stream, self.count_partition)

    def count_partition(self, work: PartitionWork) -> None:
        tables = self.tables
        with work.current():
            totals = aggregate.SensorTotals.from_json(load_json(tables.sensor_totals.get(str(work.partition))))
            rows = work.follow(totals.offset)
            if rows is None:
                return
            totals.epoch = work.epoch(totals.epoch)
            outcome = aggregate.count_sensors(
                totals,
                [(offset, key.decode("utf-8", "replace"), value.decode("utf-8", "replace"))
                 for offset, key, value in rows if key is not None and value is not None],
                lambda guid: load_json(tables.sensors.get(guid)),
                through=work.through, epoch=totals.epoch,
            )
            for guid, entry in outcome.entries.items():
                tables.sensors[guid] = orjson.dumps(entry)
            tables.sensor_totals[str(work.partition)] = orjson.dumps(totals.to_json())
