"""The local broker is real Apache Kafka: round trips, and restarts keep data."""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from tests import helpers

pytestmark = pytest.mark.kafka


async def test_keyed_round_trip_over_four_partitions(kafka):
    topic = helpers.unique("roundtrip")
    await helpers.create_topic(topic, 4)
    producer = AIOKafkaProducer(bootstrap_servers=kafka)
    await producer.start()
    sent = {}
    try:
        for i in range(200):
            key, value = f"device-{i % 20}".encode(), f"reading-{i}".encode()
            meta = await producer.send_and_wait(topic, value=value, key=key)
            sent[value] = (key, meta.partition)
    finally:
        await producer.stop()
    assert len({p for _, p in sent.values()}) > 1, "keys should spread over partitions"

    records = await helpers.read_topic(topic)
    got = {r.value: (r.key, r.partition) for r in records}
    assert got == sent
    by_key = {}
    for key, partition in got.values():
        assert by_key.setdefault(key, partition) == partition, "one key, one partition"


async def test_key_partition_is_where_kafka_puts_a_keyed_message(kafka):
    """The sightings go to the partition a guid key would go to: the service's
    placement against a keyed send and the partition the broker holds it in."""
    from humidity.core.simulation import UNUSUAL_NAMES, guid_for
    from humidity.plumbing.kafka_admin import key_partition

    topic = helpers.unique("placement")
    await helpers.create_topic(topic, 4)
    keys = [guid_for(i).encode() for i in range(300)] + [name.encode() for name in UNUSUAL_NAMES]
    await helpers.produce_pairs(topic, [(key, key) for key in keys])
    placed = {r.key: r.partition for r in await helpers.read_topic(topic)}
    assert placed == {key: key_partition(key, 4) for key in keys}
    assert len(set(placed.values())) == 4



async def test_restart_keeps_messages_and_committed_offsets(tmp_path, monkeypatch):
    with helpers.OwnBroker(tmp_path / "own-kafka") as broker:
        broker.used_by(monkeypatch)
        await restart_keeps_messages_and_committed_offsets(broker)


async def restart_keeps_messages_and_committed_offsets(broker):
    kafka = broker.bootstrap
    topic, group = helpers.unique("restart"), helpers.unique("group")
    await helpers.create_topic(topic, 1)
    await helpers.produce(topic, [b"before-restart-1", b"before-restart-2"])
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=kafka, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        first = await consumer.getone()
        await consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(first.offset + 1, "")})
    finally:
        await consumer.stop()

    await asyncio.to_thread(broker.script, "down")
    await asyncio.to_thread(broker.script, "up")

    records = await helpers.read_topic(topic, timeout=30)
    assert [r.value for r in records] == [b"before-restart-1", b"before-restart-2"]
    # The group coordinator loads the offsets topic after a restart; ask until
    # it answers with an offset (bounded).
    committed = None
    deadline = asyncio.get_running_loop().time() + 30
    while committed is None and asyncio.get_running_loop().time() < deadline:
        consumer = AIOKafkaConsumer(bootstrap_servers=kafka, group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            committed = await consumer.committed(TopicPartition(topic, 0))
        finally:
            await consumer.stop()
        if committed is None:
            await asyncio.sleep(0.5)
    assert committed == 1
