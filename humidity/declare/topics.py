"""Every topic the service reads or writes, declared once (declarations).

All topics get HUMIDITY_PARTITIONS partitions, so that partition *p* of the
input, of the sightings topic and of every table changelog lands on the same
worker (Faust co-partitions topics with equal partition counts). The worker
creates each of them before it consumes (:meth:`HumidityApp.topic_specs`).
"""

from __future__ import annotations

from dataclasses import dataclass

from faust.types import TopicT

from humidity.application import HumidityApp

#: The partials topic keeps only the newest value per key, soon.
PARTIALS_CONFIG = {
    "cleanup.policy": "compact",
    "segment.ms": "600000",
    "min.cleanable.dirty.ratio": "0.1",
}

#: The audit trail is kept for good: an inspection may ask for any year.
AUDIT_CONFIG = {"retention.ms": "-1", "retention.bytes": "-1"}


@dataclass(frozen=True)
class Topics:
    #: Readings from the dataloggers: unkeyed JSON, read as raw bytes so that
    #: a bad message becomes a dead letter rather than a decoding error.
    input: TopicT
    #: Dead letters: ``{"reason", "original_base64", "original_size",
    #: "original_truncated", "topic", "partition", "offset", "time"}``.
    invalid: TopicT
    #: First sightings of (device, sensor) pairs, bundled per partition (a
    #: guid always goes to the partition Kafka's key hash gives it, so that
    #: each sensor is counted on one partition): ``{"p": input partition,
    #: "round", "o": input offset, "s": [[guid, device], ...]}``; and end
    #: marks ``{"p", "end": round, "o"}`` when an input partition closes a round.
    sightings: TopicT
    #: Valid readings bundled per alarm partition (a guid's readings always go
    #: to partition crc32(guid) % P): ``{"p", "round", "o", "r": [[guid,
    #: device, event time, humidity], ...]}``, the same end marks as the
    #: sightings, and ``{"tick": wall time}`` messages that drive the OFFLINE check.
    alarm_readings: TopicT
    #: Valid readings bundled per history partition (a device's readings all
    #: go to the partition Kafka's key hash gives its name): ``{"p": input
    #: partition, "o", "r": [[guid, device, event time, humidity, input
    #: offset], ...]}``.
    history_readings: TopicT
    #: Alarm raises, clears and escalations: ``{"time", "device", "guid",
    #: "kind", "state", "value", "limit", "since", "wall_time", "alarm_id",
    #: "id"}`` (:func:`humidity.core.alarms.identified`); key: the guid.
    alerts: TopicT
    #: Commands to acknowledge or escalate an alarm, keyed by alarm id
    #: (:mod:`humidity.core.acks`), read by agent ``alarm_acks``.
    acks: TopicT
    #: Commands to create or end a maintenance silence, keyed by silence id
    #: (:mod:`humidity.core.maintenance`), read by agent ``silences``.
    silences: TopicT
    #: What the audit trail is to record, all on partition 0, in the order it
    #: arrives (:mod:`humidity.core.audit` entries), read by agent ``audit_chain``.
    audit_intake: TopicT
    #: The audit trail: one partition of hash-chained records
    #: (:mod:`humidity.core.audit`), written only by agent ``audit_chain``.
    audit: TopicT
    #: Per-partition totals and active alarms shared by the workers that own
    #: them (compacted; keys ``ingest/<p>``, ``sensors/<p>``, ``alarms/<p>``;
    #: totals list the devices that changed since the previous partial of the
    #: key, ``since`` its round, or every device: :class:`humidity.core.partials.Chain`).
    #: Every worker reads all of it.
    partials: TopicT
    #: The published summaries (key ``summary``), one per interval.
    results: TopicT


def declare_topics(app: HumidityApp) -> Topics:
    settings = app.settings
    return Topics(
        input=app.declare_topic(settings.input_topic, batched=True, allow_empty=True),
        invalid=app.declare_topic(settings.invalid_topic),
        sightings=app.declare_topic(settings.sightings_topic, batched=True),
        alarm_readings=app.declare_topic(settings.alarm_readings_topic, batched=True),
        history_readings=app.declare_topic(settings.history_topic, batched=True),
        alerts=app.declare_topic(settings.alerts_topic),
        acks=app.declare_topic(settings.acks_topic, batched=True),
        silences=app.declare_topic(settings.silences_topic, batched=True),
        audit_intake=app.declare_topic(settings.audit_intake_topic, batched=True),
        audit=app.declare_topic(settings.audit_topic, partitions=1, config=AUDIT_CONFIG),
        partials=app.declare_topic(settings.partials_topic, config=PARTIALS_CONFIG),
        results=app.declare_topic(settings.results_topic),
    )
