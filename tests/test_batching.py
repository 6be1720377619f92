"""Record batches (humidity.plumbing.batching): one Faust event per fetched batch, and
offsets committed only over whole batches, to the end of the input."""

import pytest
from aiokafka.structs import ConsumerRecord

from humidity.plumbing.batching import RecordBatch, batch_record, contiguous, records_of
from tests import helpers
from tests.reference import dataset, expected_summary, matches


def record(offset, value, key=None, partition=2):
    return ConsumerRecord(topic="t", partition=partition, offset=offset, timestamp=1_000 + offset,
                          timestamp_type=0, key=key, value=value, checksum=None, serialized_key_size=-1,
                          serialized_value_size=len(value) if value is not None else -1, headers=())


def test_a_batch_stands_for_its_records_at_the_last_offset():
    recs = [record(7, b"a"), record(8, None), record(9, b"ccc", key=b"k")]
    batch = batch_record(recs, 6, 10)  # offsets 6 and 10: transaction markers
    assert (batch.topic, batch.partition, batch.offset, batch.timestamp) == ("t", 2, 9, 1_009)
    assert batch.value == [(7, None, b"a"), (8, None, None), (9, b"k", b"ccc")]
    assert (batch.value.start, batch.value.end) == (6, 10)
    assert isinstance(batch.value, RecordBatch) and batch.serialized_value_size == 4


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
