"""Every table of the service (RocksDB via rocksdict, changelogs in Kafka).

Keys and values are bytes; :mod:`humidity.aggregate` defines their meaning.
Each table is partitioned like its source topic: a value written while an
event from partition *p* is current lives in partition *p*.
"""

from __future__ import annotations

import logging

import faust

from app import app, settings
from humidity.ownership import epoch_of, newest_records

log = logging.getLogger(__name__)

P = settings.partitions

#: RocksDB per table and partition: Faust's defaults (64 MB write buffers x3,
#: a 2 GB block cache each) are sized for a server with a few big tables; this
#: worker has 6 tables x HUMIDITY_PARTITIONS databases and a 400 MB budget.
ROCKSDB = {"write_buffer_size": 4 * 1024 * 1024, "max_write_buffer_number": 2,
           "block_cache_size": 8 * 1024 * 1024, "block_cache_compressed_size": 1024 * 1024,
           "target_file_size_base": 16 * 1024 * 1024}


def _raw() -> dict:
    """Keys and values are bytes ("raw"), (de)serialised by the code that owns them."""
    return {"key_type": bytes, "value_type": bytes, "options": dict(ROCKSDB)}


class EpochTable(faust.Table):
    """A table whose JSON values carry their writer's epoch: restoring from
    the changelog, a record never replaces a value of a higher epoch (a late
    write of a worker that lost the partition; see :mod:`humidity.ownership`)."""

    def apply_changelog_batch(self, batch) -> None:
        records, stale = newest_records(batch, self._stored_epoch)
        if stale:
            log.warning("Table %s: %d changelog record(s) older than the value they would replace were "
                        "left out (late writes of a previous owner)", self.name, stale)
        super().apply_changelog_batch(records)

    def _stored_epoch(self, partition: int, key: bytes) -> int:
        return epoch_of(self.data._db_for_partition(partition).get(key))  # noqa: SLF001


def epoch_table(name: str, *, help: str):
    """An :class:`EpochTable` of raw JSON values with HUMIDITY_PARTITIONS partitions."""
    return app.tables.add(EpochTable(app, name=name, beacon=app.tables.beacon, partitions=P, help=help, **_raw()))


#: key: input partition number (``b"3"``); value: JSON of
#: :class:`humidity.aggregate.IngestTotals` (valid / invalid counts, exact
#: humidity sums and counts per device, offset of the last message included).
#: Written by agent ``ingest``, once per partition per batch.
ingest_totals = epoch_table(
    "ingest-totals",
    help="Per input partition: message counts and humidity sums per device.",
)

#: key: :func:`humidity.aggregate.sighting_key` of (device, guid); value: the
#: input offset (ASCII) that first saw the pair in this partition.
#: Written by agent ``ingest`` on a pair's first sighting only.
sightings = app.Table(
    "sightings", partitions=P, **_raw(),
    help="Per input partition: (device, sensor) pairs already forwarded.",
)

#: key: sightings partition number; value: JSON of
#: :class:`humidity.aggregate.SensorTotals` (distinct sensors overall and per
#: device among the guids of this partition). Written by agent ``count_sensors``.
sensor_totals = epoch_table(
    "sensor-totals",
    help="Per sightings partition: distinct sensors overall and per device.",
)

#: key: guid; value: JSON ``{"first": offset, "devices": {device: offset}, "epoch": n}``.
#: Written by agent ``count_sensors`` when a sensor or one of its devices is new.
sensors = epoch_table(
    "sensors",
    help="Per sensor (guid): the devices it was seen on.",
)

#: key: :func:`humidity.aggregate.sighting_key` of (device, guid); value: JSON
#: of :class:`humidity.alarms.LoggerState` (limits breached since when, active
#: alarms, the hour's trend sums, when the logger was last heard from).
#: Written by agent ``evaluate_alarms``, once per logger per batch.
alarm_states = epoch_table(
    "alarm-states",
    help="Per datalogger: alarm state.",
)

#: key: alarm-readings partition number; value: JSON ``{"offset", "active":
#: {alarm key: raise event}, "recent": [[offset, event], ...], "epoch"}``: the active
#: alarms of the partition's loggers and the latest events (re-sent if a crash
#: cut their delivery). Written by agent ``evaluate_alarms`` once per batch.
alarm_totals = epoch_table(
    "alarm-totals",
    help="Per alarm partition: active alarms and recent alarm events.",
)


def partition_items(table, partition: int):
    """(key, value) bytes of one partition of a RocksDB table.

    Faust's table iterates all active partitions at once; the OFFLINE check
    needs one partition, so this reads that partition's RocksDB directly.
    """
    store = table.data
    return store._visible_items(store._db_for_partition(partition))  # noqa: SLF001
