"""Every table of the service (RocksDB via rocksdict, changelogs in Kafka),
declared once (declarations).

Keys and values are bytes; :mod:`humidity.core.aggregate` and
:mod:`humidity.core.alarms` define their meaning. Each table is partitioned
like its source topic: a value written while an event from partition *p* is
current lives in partition *p*. JSON values carry their writer's epoch
(:mod:`humidity.core.ownership`). The worker creates every table's changelog
topic before it consumes.
"""

from __future__ import annotations

from dataclasses import dataclass

from faust.types import TableT

from humidity.application import HumidityApp
from humidity.plumbing.tables import raw_table


@dataclass(frozen=True)
class Tables:
    #: key: input partition number (``b"3"``); value: the header of
    #: :class:`humidity.core.aggregate.IngestTotals` (valid / invalid counts,
    #: the offset up to which it includes the partition, epoch, number of
    #: devices); key ``b"3/" + device name``: the device's entry (exact
    #: humidity sum and count, the offset through which they include its
    #: readings, epoch). Written by agent ``ingest``, once per partition per
    #: batch: the devices the batch touched, then the header.
    ingest_totals: TableT
    #: key: :func:`humidity.core.aggregate.sighting_key` of (device, guid);
    #: value: the input offset (ASCII) that first saw the pair in this
    #: partition (the same whoever writes it, so no epoch). Written by agent
    #: ``ingest`` on a pair's first sighting only.
    sightings: TableT
    #: key: sightings partition number; value: JSON of
    #: :class:`humidity.core.sensor_counts.SensorTotals` (distinct sensors overall
    #: and per device among the guids of this partition). Written by agent
    #: ``count_sensors``.
    sensor_totals: TableT
    #: key: guid; value: JSON ``{"first": offset, "devices": {device: offset},
    #: "epoch": n}``. Written by agent ``count_sensors`` when a sensor or one of
    #: its devices is new.
    sensors: TableT
    #: key: :func:`humidity.core.aggregate.sighting_key` of (device, guid);
    #: value: JSON of :class:`humidity.core.alarms.LoggerState` (limits
    #: breached since when, active alarms, the hour's trend sums, when the
    #: logger was last heard from, the last bundle applied). Written by agent
    #: ``evaluate_alarms``, once per logger per batch.
    alarm_states: TableT
    #: key: alarm-readings partition number; value: JSON of
    #: :class:`humidity.core.alarm_partition.AlarmPartition` (the offset it includes,
    #: the rounds its input partitions ended, the latest events; its active
    #: alarms are in the loggers' states). Written by agent
    #: ``evaluate_alarms`` once per batch.
    alarm_totals: TableT
    #: Per history partition (the partitions devices' names hash to), keys of
    #: :mod:`humidity.core.history`: the partition's progress under its number
    #: (JSON of :class:`humidity.core.history.HistoryPartition`); per device
    #: and per datalogger, minute and hour windows (:func:`window_key`: count,
    #: exact sum, min, max, the last bundle included); per (logger, device) its
    #: newest reading (:func:`latest_key`). Written by agent ``history``.
    history_windows: TableT
    #: key: acks partition number; value: JSON ``{"offset", "epoch"}`` (the
    #: commands it includes); key ``ack/<alarm id>``: JSON of the alarm's
    #: entry (:mod:`humidity.core.acks`: who acknowledged it, when, the
    #: comment; when it was escalated). Written by agent ``alarm_acks``.
    #: Every worker reads its changelog for ``/api/alarms``.
    alarm_acks: TableT
    #: key: silences partition number; value: JSON ``{"offset", "epoch"}``;
    #: key ``silence/<id>``: JSON of the silence
    #: (:class:`humidity.core.maintenance.Silence`: what it covers, until
    #: when, why, who set it, what ended it). Written by agent ``silences``.
    #: Every worker reads its changelog: the alarm flow marks what a silence
    #: covers, and ``/api/silences`` lists them.
    silences: TableT


def declare_tables(app: HumidityApp) -> Tables:
    return Tables(
        ingest_totals=raw_table(app, "ingest-totals",
                                help="Per input partition: message counts and humidity sums per device."),
        sightings=raw_table(app, "sightings", epochs=False,
                            help="Per input partition: (device, sensor) pairs already forwarded."),
        sensor_totals=raw_table(app, "sensor-totals",
                                help="Per sightings partition: distinct sensors overall and per device."),
        sensors=raw_table(app, "sensors", help="Per sensor (guid): the devices it was seen on."),
        alarm_states=raw_table(app, "alarm-states", help="Per datalogger: alarm state."),
        alarm_totals=raw_table(app, "alarm-totals",
                               help="Per alarm partition: active alarms and recent alarm events."),
        history_windows=raw_table(app, "history",
                                  help="Per device and datalogger: windows over time, newest readings."),
        alarm_acks=raw_table(app, "alarm-acks", help="Per alarm: who acknowledged it, when it was escalated."),
        silences=raw_table(app, "silences", help="Per maintenance silence: what it covers, until when, why."),
    )
