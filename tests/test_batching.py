"""Record batches (humidity.batching): one Faust event per fetched batch, and
offsets committed only over whole batches, to the end of the input."""

import time

import pytest
from aiokafka.structs import ConsumerRecord

from humidity.batching import RecordBatch, batch_record, records_of
from tests import helpers
from tests.reference import dataset, expected_summary, matches


def record(offset, value, key=None, partition=2):
    return ConsumerRecord(topic="t", partition=partition, offset=offset, timestamp=1_000 + offset,
                          timestamp_type=0, key=key, value=value, checksum=None, serialized_key_size=-1,
                          serialized_value_size=len(value) if value is not None else -1, headers=())


def test_a_batch_stands_for_its_records_at_the_last_offset():
    recs = [record(7, b"a"), record(8, None), record(9, b"ccc", key=b"k")]
    batch = batch_record(recs)
    assert (batch.topic, batch.partition, batch.offset, batch.timestamp) == ("t", 2, 9, 1_009)
    assert batch.value == [(7, None, b"a"), (8, None, None), (9, b"k", b"ccc")]
    assert isinstance(batch.value, RecordBatch) and batch.serialized_value_size == 4


class _Message:
    def __init__(self, offset, key):
        self.offset, self.key = offset, key


class _Event:
    def __init__(self, value, offset=3, key=None):
        self.value, self.message = value, _Message(offset, key)


def test_records_of_reads_batches_and_single_events_alike():
    rows = RecordBatch([(1, None, b"x"), (2, None, b"y")])
    assert records_of(_Event(rows)) == rows
    assert records_of(_Event(b"z", offset=5, key=b"k")) == [(5, b"k", b"z")]


@pytest.mark.kafka
def test_committed_offsets_reach_the_end_of_every_input_partition(kafka, tmp_path, workers):
    """Faust commits the batch's last offset over the records in between; the
    case Faust's own gap check misses (a first batch that is just offset 0)
    must not leave the committed offset stuck."""
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

    deadline = time.monotonic() + 30  # Faust commits every 2.8 s
    while True:
        lag = helpers.run(helpers.lag(group, topic))
        if not any(lag.values()) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert lag == {0: 0, 1: 0, 2: 0, 3: 0}, "committed offsets behind the end of the input"
