"""Every topic the service reads or writes, declared once.

All topics get HUMIDITY_PARTITIONS partitions, so that partition *p* of the
input, of the sightings topic and of every table changelog lands on the same
worker (Faust co-partitions topics with equal partition counts).
"""

from __future__ import annotations

from app import app, settings
from humidity.batching import batched_topic
from humidity.kafka_admin import TopicSpec, client_security, ensure_topics

P = settings.partitions

#: Readings from the dataloggers: unkeyed JSON, read as raw bytes so that a
#: bad message becomes a dead letter rather than a decoding error.
input_topic = batched_topic(
    app, settings.input_topic, partitions=P, key_serializer="raw", value_serializer="raw", allow_empty=True,
)

#: Dead letters: ``{"reason", "original_base64", "topic", "partition", "offset", "time"}``.
invalid_topic = app.topic(settings.invalid_topic, partitions=P, key_serializer="raw", value_serializer="raw")

#: First sighting of a (device, sensor) pair in an input partition, keyed by
#: guid (value: device), so that each sensor is counted on one partition.
sightings_topic = batched_topic(app, settings.sightings_topic, partitions=P, key_serializer="raw",
                                value_serializer="raw")

#: Valid readings bundled per alarm partition (a guid's readings always go to
#: partition crc32(guid) % P); ``{"r": [[guid, device, event time, humidity], ...]}``,
#: and ``{"tick": wall time}`` messages that drive the OFFLINE check.
alarm_readings_topic = batched_topic(app, settings.alarm_readings_topic, partitions=P, key_serializer="raw",
                                     value_serializer="raw")

#: Alarm raises and clears: ``{"time", "device", "guid", "kind", "state", "value", "limit", "since"}``.
alerts_topic = app.topic(settings.alerts_topic, partitions=P, key_serializer="raw", value_serializer="raw")

#: Per-partition totals shared by the workers that own them (compacted;
#: keys ``ingest/<p>``, ``sensors/<p>``). Every worker reads all of it.
partials_topic = app.topic(settings.partials_topic, partitions=P, key_serializer="raw", value_serializer="raw")

#: The published summaries (key ``summary``), one per interval.
results_topic = app.topic(settings.results_topic, partitions=P, key_serializer="raw", value_serializer="raw")

PARTIALS_CONFIG = {
    "cleanup.policy": "compact",
    "segment.ms": "600000",
    "min.cleanable.dirty.ratio": "0.1",
}

CHANGELOG_TABLES = ("ingest-totals", "sightings", "sensor-totals", "sensors", "alarm-states", "alarm-totals")


def topic_specs() -> list[TopicSpec]:
    specs = [
        TopicSpec(settings.input_topic, P),
        TopicSpec(settings.invalid_topic, P),
        TopicSpec(settings.sightings_topic, P),
        TopicSpec(settings.partials_topic, P, PARTIALS_CONFIG),
        TopicSpec(settings.results_topic, P),
        TopicSpec(settings.alarm_readings_topic, P),
        TopicSpec(settings.alerts_topic, P),
    ]
    # Table changelogs: created here too (compacted, as Faust would), so that
    # they are in the metadata before the consumer joins; another count is fatal.
    specs += [TopicSpec(f"{settings.app_id}-{name}-changelog", P, {"cleanup.policy": "compact"})
              for name in CHANGELOG_TABLES]
    return specs


async def ensure_all_topics() -> None:
    await ensure_topics(settings.bootstrap_servers, topic_specs(), client_kwargs=client_security(settings))
