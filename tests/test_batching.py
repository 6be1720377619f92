"""Record batches (humidity.plumbing.batching): one Faust event per fetched batch, and
offsets committed only over whole batches, to the end of the input; table
changelogs restored from batches."""

from types import SimpleNamespace

import pytest
from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord, TopicPartition
from faust.types import TP

from humidity.core.alarm_limits import load_config
from humidity.core.settings import DEFAULT_ALARMS_FILE, Settings
from humidity.plumbing import batching, record_batches
from humidity.plumbing.record_batches import (
    RecordBatch,
    batch_record,
    batched,
    changelog_batches,
    contiguous,
    records_of,
)
from humidity.plumbing.tables import partition_get
from humidity.service import compose
from tests import helpers
from tests.reference import dataset, expected_summary, matches


def record(offset, value, key=None, partition=2):
    return ConsumerRecord(topic="t", partition=partition, offset=offset, timestamp=1_000 + offset,
                          timestamp_type=0, key=key, value=value, checksum=None, serialized_key_size=-1,
                          serialized_value_size=len(value) if value is not None else -1, headers=())


def test_a_batch_stands_for_its_records_at_the_last_offset():
    recs = [record(7, b"a"), record(8, None), record(9, b"ccc", key=b"k")]
    batch = batch_record(TopicPartition("t", 2), recs, 6, 10)  # offsets 6 and 10: transaction markers
    assert (batch.topic, batch.partition, batch.offset, batch.timestamp) == ("t", 2, 9, 1_009)
    assert batch.value == [(7, None, b"a"), (8, None, None), (9, b"k", b"ccc")]
    assert (batch.value.start, batch.value.end) == (6, 10)
    assert isinstance(batch.value, RecordBatch) and batch.serialized_value_size == 4


def fetched(tp, base_offset, values):
    """What aiokafka's fetcher holds for ``tp`` after a fetch: one record batch of ``values``."""
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=0, producer_id=-1,
                                        producer_epoch=-1, base_sequence=-1, batch_size=1 << 20)
    for i, value in enumerate(values):
        builder.append(i, timestamp=1_000 + i, key=None, value=value, headers=[])
    raw = builder.build()
    raw[0:8] = base_offset.to_bytes(8, "big")
    records = PartitionRecords(tp, MemoryRecords(bytes(raw)), [], base_offset, None, None, True, 0)
    return SimpleNamespace(_partition_records=records)


def test_batched_topics_are_handed_out_as_read_and_batched_the_same():
    batched_tp, other_tp = TopicPartition("readings", 0), TopicPartition("other", 0)
    fetcher = SimpleNamespace(_records={batched_tp: fetched(batched_tp, 40, [b"a", None, b"ccc"]),
                                        other_tp: fetched(other_tp, 0, [b"x"])})
    batching.hand_out_as_read(fetcher, {"readings"})
    as_read = list(fetcher._records[batched_tp]._partition_records)
    assert not any(isinstance(r, ConsumerRecord) for r in as_read), "no record made per reading"
    batch = batch_record(batched_tp, as_read, 40, 42)
    assert batch.value == [(40, None, b"a"), (41, None, None), (42, None, b"ccc")]
    assert (batch.topic, batch.partition, batch.offset, batch.timestamp) == ("readings", 0, 42, 1_002)
    assert batch.serialized_value_size == 4
    assert [type(r) for r in fetcher._records[other_tp]._partition_records] == [ConsumerRecord], "other topics as usual"


def batch_event(start, end, partition=1):
    rows = RecordBatch.of([(o, None, b"x") for o in range(start, end + 1)], start, end)
    event = _Event(rows, offset=end)
    event.message.partition = partition
    return event


def test_batches_count_only_where_they_follow_the_state():
    follow = [batch_event(10, 19), batch_event(20, 29)]
    assert contiguous(follow, 9) == (follow, None)
    # a batch was dropped (20-29): the next one is not counted, the partition is re-read from 20
    assert contiguous([follow[0], batch_event(30, 39)], 9) == ([follow[0]], 20)
    assert contiguous([batch_event(30, 39)], 19) == ([], 20)
    # redelivered batches (at or below the state) are handed on: they count nothing
    replay = [batch_event(5, 14)]
    assert contiguous(replay, 9) == (replay, None)
    # retention deleted 20-24 before they were counted: reading resumes at 25
    late = [batch_event(25, 30)]
    assert contiguous(late, 19) == ([], 20)
    assert contiguous(late, 19, deleted_before=25) == (late, None)


class _Message:
    def __init__(self, offset, key):
        self.offset, self.key = offset, key
        self.partition, self.topic = 0, "t"


class _Event:
    def __init__(self, value, offset=3, key=None):
        self.value, self.message = value, _Message(offset, key)


def test_records_of_reads_batches_and_single_events_alike():
    rows = RecordBatch.of([(1, None, b"x"), (2, None, b"y")], 1, 2)
    assert records_of(_Event(rows)) == rows
    single = records_of(_Event(b"z", offset=5, key=b"k"))
    assert single == [(5, b"k", b"z")] and (single.start, single.end) == (5, 5)


@pytest.mark.kafka
def test_committed_offsets_reach_the_end_of_every_input_partition(kafka, tmp_path, workers):
    """Offsets are committed from what the state includes, over the records
    in between; a first batch that is just offset 0 (which Faust's own gap
    check would miss) must not leave the committed offset stuck."""
    env = helpers.service_env(tmp_path)
    topic, group = env["HUMIDITY_INPUT_TOPIC"], env["HUMIDITY_APP_ID"]
    records = dataset(3_000, seed=5)
    raws = [raw for raw, _ in records]
    worker = workers(env)
    worker.wait_for_log(helpers.READY, timeout=120)

    helpers.run(helpers.produce(topic, raws[:1], partition=0))  # a batch of one, at offset 0
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], lambda s: s["total_messages"] + s["invalid_messages"] >= 1,
                             timeout=60)
    helpers.run(helpers.produce(topic, raws[1:1_500], partition=0))
    helpers.run(helpers.produce(topic, raws[1_500:]))
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected_summary(records)),
                                       timeout=90)
    assert summary["total_messages"] + summary["invalid_messages"] == 3_000

    helpers.wait_for_no_lag(group, [topic], timeout=30)  # Faust commits every 2.8 s


def test_a_restored_changelog_batch_is_applied_record_by_record(tmp_path):
    service = compose(Settings(app_id="restore-test", data_dir=tmp_path / "data"), load_config(DEFAULT_ALARMS_FILE))
    # every table's changelog arrives in record batches
    assert {t.changelog_topic.get_topic_name() for t in service.app.tables.values()} == batched(service.app).changelogs
    table = service.tables.sensors
    tp = TP(table.changelog_topic.get_topic_name(), 3)

    def restored(rows, start, end):
        event = _Event(RecordBatch.of(rows, start, end), offset=end)
        event.message.tp, event.message.partition = tp, 3
        return event

    first = restored([(10, b"g1", b'{"epoch": 2, "first": 1}'), (11, b"g3", b'{"epoch": 2}'),
                      (12, b"g1", b'{"epoch": 1, "first": 9}'),  # a former owner's late write
                      (13, b"g3", None), (14, b"g2", b'{"epoch": 2, "first": 5}')], 10, 14)
    plain = _Event(b"ignored", offset=15, key=b"k")
    plain.message.tp, plain.message.value = tp, b"v"
    assert list(changelog_batches([first, plain])) == [(tp, first.value), (tp, [(15, b"k", b"v")])]
    table.apply_changelog_batch([first])
    assert partition_get(table, 3, b"g1") == b'{"epoch": 2, "first": 1}'
    assert partition_get(table, 3, b"g2") == b'{"epoch": 2, "first": 5}'
    assert partition_get(table, 3, b"g3") is None
    assert table.data.persisted_offset(tp) == 14
    # written here later, its changelog record lost with the worker (kill -9)
    table.data._db_for_partition(3).put(b"g2", b'{"epoch": 2, "first": 7}')
    # the next restore starts at the offset the table includes: that record is not applied again
    table.apply_changelog_batch([restored([(14, b"g2", b'{"epoch": 2, "first": 5}'), (15, b"g4", b'{"epoch": 2}')],
                                          14, 15)])
    assert partition_get(table, 3, b"g2") == b'{"epoch": 2, "first": 7}'
    assert partition_get(table, 3, b"g4") == b'{"epoch": 2}'
    assert table.data.persisted_offset(tp) == 15


def test_a_partition_is_read_again_only_while_its_agent_waits_for_batches(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(batching.time, "monotonic", lambda: clock[0])
    consumer = object.__new__(batching.BatchingConsumer)
    consumer._busy, consumer._idle_since = {}, {}
    assert consumer._idle("in", clock[0])  # never given a batch
    with consumer.working("in"):
        clock[0] += 60  # handling a backlog, or waiting for the producer: its partitions' batches may be queued
        assert not consumer._idle("in", clock[0])
    clock[0] += batching.IDLE_FOR - 0.1
    assert not consumer._idle("in", clock[0])
    clock[0] += 0.1
    assert consumer._idle("in", clock[0]) and consumer._idle("other", clock[0])


def test_a_batched_topic_buffers_at_most_batches_buffered_batches(tmp_path):
    """Faust's app.topic() drops its maxsize: unless the topic is given it,
    an agent that falls behind lets the worker fetch 4,096 batches (up to
    1 MiB each) ahead of it, and peak memory follows the backlog."""
    service = compose(Settings(app_id="buffer-test", data_dir=tmp_path / "data"), load_config(DEFAULT_ALARMS_FILE))
    app = service.app
    streams = {agent.channel.get_topic_name(): agent.channel.clone(is_iterator=True) for agent in app.agents.values()
               if agent.channel.get_topic_name() in batched(app).topics}
    assert set(streams) == batched(app).topics
    for stream in streams.values():
        assert stream.queue.maxsize == record_batches.BATCHES_BUFFERED < app.conf.stream_buffer_maxsize
