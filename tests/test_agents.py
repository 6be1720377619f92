"""The agents, driven through Faust's ``test_context()`` (no broker), on a
service composed for each test with explicit settings."""

import asyncio
import time

import orjson
import pytest

from humidity.core.alarm_limits import load_config
from humidity.core.alarms import alarm_partition_of
from humidity.core.settings import DEFAULT_ALARMS_FILE, Settings
from humidity.plumbing.kafka_admin import key_partition
from humidity.plumbing.stream import PRODUCER_BACKLOG_MAX, per_batch, producer_caught_up
from humidity.service import compose


@pytest.fixture
def service(tmp_path):
    return compose(Settings(app_id="agent-test", data_dir=tmp_path / "data"), load_config(DEFAULT_ALARMS_FILE))


def reading(guid, device, humidity, key="medicalImagingdevice"):
    return orjson.dumps({"guid": guid, key: device, "eventTime": "2022-08-16T13:26:39.447974Z",
                         "payload": {"format": "urn:example:sensor:humidity", "data": {"humidity": humidity}}})


async def eventually(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "timed out waiting for the agent"
        await asyncio.sleep(0.05)


@pytest.fixture
def sent(service, monkeypatch):
    """What the agents queue for other topics, instead of a producer."""
    out = {"sightings": [], "invalid": [], "alarm_readings": [], "alerts": []}
    topics = service.topics
    monkeypatch.setattr(topics.sightings, "send_soon", lambda **kw: out["sightings"].append(kw))
    monkeypatch.setattr(topics.invalid, "send_soon", lambda **kw: out["invalid"].append(kw))
    monkeypatch.setattr(topics.alarm_readings, "send_soon", lambda **kw: out["alarm_readings"].append(kw))
    monkeypatch.setattr(topics.alerts, "send_soon", lambda **kw: out["alerts"].append(kw))
    return out


async def test_ingest_counts_readings_and_dead_letters_bad_ones(service, sent):
    ingest_totals = service.tables.ingest_totals
    async with service.ingest.agent.test_context() as agent:
        await agent.put(reading("g1", "MRI 12", 70.0))
        await agent.put(b"not json")
        await agent.put(reading("g1", "MRI 12", 72.0, key="medicalimagingdevice"))
        await agent.put(reading("g2", "CT 3", 40.0))
        raw = await eventually(lambda: (v := ingest_totals.get("0")) and orjson.loads(v)["offset"] >= 3 and v)
    totals = orjson.loads(raw)
    assert (totals["valid"], totals["invalid"]) == (3, 1)
    entry = orjson.loads(ingest_totals.get(b"0/MRI 12"))
    assert (entry["s"], entry["c"], totals["device_count"]) == ([142.0], 2, 2)
    bundles = [orjson.loads(s["value"]) for s in sent["sightings"]]
    assert [tuple(pair) for bundle in bundles for pair in bundle["s"]] == [("g1", "MRI 12"), ("g2", "CT 3")]
    for bundle, message in zip(bundles, sent["sightings"], strict=True):
        # where a guid key would go (key_partition against Kafka's own placement: test_kafka_broker.py)
        assert message["partition"] == key_partition(bundle["s"][0][0].encode(), 4)
        assert bundle["p"] == 0 and isinstance(bundle["round"], int)
    (letter,) = [orjson.loads(s["value"]) for s in sent["invalid"]]
    assert letter["reason"] == "not valid JSON" and letter["offset"] == 1


async def test_ingest_bundles_valid_readings_per_alarm_partition(service, sent):
    async with service.ingest.agent.test_context() as agent:
        await agent.put(reading("g1", "MRI 12", 70.0))
        await agent.put(reading("g2", "CT 3", 40.0))
        await eventually(lambda: sum(len(orjson.loads(b["value"])["r"]) for b in sent["alarm_readings"]) == 2)
    for bundle in sent["alarm_readings"]:
        for guid, _device, _t, _h in orjson.loads(bundle["value"])["r"]:
            assert bundle["partition"] == alarm_partition_of(guid, service.app.settings.partitions)


async def test_evaluate_alarms_raises_high_after_the_delay(service, sent):
    rows = [["g9", "MRI 1", 1_700_000_000.0 + t, 64.0] for t in range(0, 130, 10)]
    alarm_totals = service.tables.alarm_totals
    async with service.alarms.agent.test_context() as agent:
        await agent.put(orjson.dumps({"r": rows}), key=b"r")
        await eventually(lambda: (v := alarm_totals.get("0")) and orjson.loads(v)["offset"] >= 0)
    (active,) = service.alarms.index.partitions[0]["active"].values()  # kept by the flow, from the loggers' states
    assert (active["kind"], active["guid"], active["limit"]) == ("HIGH", "g9", 60.0)
    assert [orjson.loads(a["value"])["state"] for a in sent["alerts"]] == ["raised"]


async def test_count_sensors_counts_distinct_guids_per_device_as_of_each_closed_round(service, sent):
    sensor_totals, sensors = service.tables.sensor_totals, service.tables.sensors
    partials = []
    service.topics.partials.send_soon = lambda **kw: partials.append(kw)
    async with service.sensors.agent.test_context() as agent:
        for pairs in ([["g1", "MRI 12"]], [["g1", "MRI 12"], ["g2", "MRI 12"]], [["g1", "CT 3"]]):
            await agent.put(orjson.dumps({"p": 0, "round": 7, "o": 9, "s": pairs}), key=b"s")
        for p in range(4):  # every input partition ends round 7
            await agent.put(orjson.dumps({"p": p, "end": 7, "o": 9}), key=b"e")
        raw = await eventually(lambda: (v := sensor_totals.get("0")) and orjson.loads(v)["offset"] >= 6 and v)
    totals = orjson.loads(raw)
    devices = {name: orjson.loads(sensor_totals.get(b"0/" + name.encode()))["n"] for name in ("MRI 12", "CT 3")}
    assert (totals["sensors"], devices, totals["device_count"], totals["closed"]) == \
        (2, {"MRI 12": 2, "CT 3": 1}, 2, 7)
    assert orjson.loads(sensors.get("g1"))["devices"] == {"MRI 12": [7, 0], "CT 3": [7, 2]}
    (shared,) = [orjson.loads(p["value"]) for p in partials]
    assert (shared["round"], shared["sensors"], shared["inputs"]) == (7, 2, {"0": 9})


async def test_agents_wait_while_the_producer_is_behind():
    class Buffer:
        size = PRODUCER_BACKLOG_MAX + 1

    class Producer:
        buffer = Buffer()

    class Changelog:
        queued_rows = 0

    waiter = asyncio.ensure_future(producer_caught_up(Producer, Changelog))
    await asyncio.sleep(0.1)
    assert not waiter.done(), "went on with more than PRODUCER_BACKLOG_MAX messages queued"
    Producer.buffer.size = PRODUCER_BACKLOG_MAX
    await asyncio.wait_for(waiter, timeout=1.0)

    Changelog.queued_rows = PRODUCER_BACKLOG_MAX + 1
    waiter = asyncio.ensure_future(producer_caught_up(Producer, Changelog))
    await asyncio.sleep(0.1)
    assert not waiter.done(), "went on with more than PRODUCER_BACKLOG_MAX changelog records queued"
    Changelog.queued_rows = 0
    await asyncio.wait_for(waiter, timeout=1.0)


async def test_the_rest_of_the_worker_runs_between_the_partitions_of_a_take(service):
    """A take of two partitions is handled one partition per turn of the
    event loop: with a large fleet each can hold it for a few tenths of a
    second."""
    app = service.app
    turns, handled = [0], []

    async def other_work():
        while True:
            turns[0] += 1
            await asyncio.sleep(0)

    @app.agent(app.topic("partition-turns", value_serializer="raw"))
    async def agent(stream):
        await per_batch(stream, lambda work: handled.append((work.partition, turns[0])), within=1.0,
                        backpressure=False)

    ticker = asyncio.ensure_future(other_work())
    try:
        async with agent.test_context() as tested:
            await tested.put(b"a", partition=0)
            await tested.put(b"b", partition=1)
            await eventually(lambda: len(handled) == 2)
    finally:
        ticker.cancel()
    (first, at_first), (second, at_second) = handled
    assert {first, second} == {0, 1} and at_second > at_first
