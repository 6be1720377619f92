"""The private members of Faust, aiokafka and rocksdict that the service
reaches (:mod:`humidity.plumbing.internals`) still work as it relies on:
each test names the access and fails with what changed (no broker)."""

import importlib
import inspect

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import Fetcher, PartitionRecords
from faust.stores import rocksdb

from humidity.core.alarm_limits import load_config
from humidity.core.settings import DEFAULT_ALARMS_FILE, Settings
from humidity.plumbing import internals
from humidity.service import compose


def uses(cls, member: str) -> bool:
    return f"self.{member}" in inspect.getsource(cls)


def test_the_installed_versions_are_the_pinned_ones():
    assert internals.check_pins() == [], "pins differ: check every access in humidity/plumbing/internals.py"


async def test_the_consumer_takes_its_fetch_wait_and_isolation_level_from_the_attributes_set_before_start():
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
    internals.tune_consumer(consumer, 100)
    assert (consumer._fetch_max_wait_ms, consumer._isolation_level) == (100, "read_committed")
    start = inspect.getsource(AIOKafkaConsumer.start)
    assert "self._fetch_max_wait_ms" in start and "self._isolation_level" in start, \
        "aiokafka no longer builds its fetcher from these attributes at start()"


def test_the_fetcher_keeps_its_records_subscriptions_and_waiters_where_the_batches_read_them():
    for member in ("_records", "_subscriptions", "_closed"):
        assert uses(Fetcher, member), f"aiokafka's Fetcher has no {member}"
    assert callable(getattr(Fetcher, "_create_fetch_waiter", None)), "Fetcher._create_fetch_waiter is gone"
    for member in ("_fetcher", "_closed"):
        assert uses(AIOKafkaConsumer, member), f"AIOKafkaConsumer has no {member}"


def test_partition_records_look_up_the_record_maker_per_record():
    assert "self._consumer_record(" in inspect.getsource(PartitionRecords), \
        "PartitionRecords no longer calls self._consumer_record per record: raw hand-out would be ignored"
    assert "_partition_records" in inspect.getsource(importlib.import_module("aiokafka.consumer.fetcher"))


def test_the_rocksdb_store_opens_a_db_per_partition_and_hides_its_offset_key():
    for member in ("_db_for_partition", "_visible_items"):
        assert callable(getattr(rocksdb.Store, member, None)), f"faust's RocksDB Store has no {member}"
    assert list(inspect.signature(rocksdb.Store._db_for_partition).parameters) == ["self", "partition"]


def test_the_leader_topic_is_named_by_faust_s_assignor(tmp_path):
    service = compose(Settings(app_id="internals-test", data_dir=tmp_path / "data"), load_config(DEFAULT_ALARMS_FILE))
    assert internals.leader_topic_name(service.app) == "internals-test-__assignor-__leader"


@pytest.mark.parametrize("path, member", internals.OVERRIDDEN)
def test_the_private_members_the_subclasses_override_are_there(path, member):
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert callable(getattr(cls, member, None)) or uses(cls.__init__, member), f"{path}.{member} is gone"


def test_an_event_made_current_is_the_one_faust_s_tables_take_their_partition_from():
    from faust import streams

    event = type("Event", (), {})()
    assert streams.current_event() is None
    with internals.current_event(event):
        assert streams.current_event() is event, "faust.streams.current_event() no longer reads _current_event"
    assert streams.current_event() is None


def test_the_members_the_subclasses_reach_on_their_faust_bases_are_there():
    from faust.tables.base import Collection
    from faust.transport.consumer import ThreadDelegateConsumer
    from faust.transport.drivers.aiokafka import Producer

    assert uses(ThreadDelegateConsumer, "_thread"), "Faust's consumer keeps no _thread"
    assert callable(getattr(Producer, "_ensure_producer", None)), "Faust's aiokafka Producer has no _ensure_producer"
    for member in ("_sensor_on_set", "_sensor_on_del"):
        assert uses(Collection, member), f"Faust's tables no longer keep {member}"
