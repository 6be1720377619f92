"""Restoring a table from its changelog into RocksDB, without a broker: a
late write of a former owner never replaces a value of a higher epoch."""

from __future__ import annotations

from types import SimpleNamespace

import faust
import orjson
import pytest
from faust.types import TP

from humidity.plumbing import changelogs
from humidity.plumbing.record_batches import RecordBatch
from humidity.plumbing.tables import partition_get, raw_table
from humidity.plumbing.transaction import transaction


def value(epoch: int, **fields) -> bytes:
    return orjson.dumps({**fields, "epoch": epoch})


class Restore:
    """One table of a worker (partition 0) and the changelog batches it restores."""

    def __init__(self, tmp_path) -> None:
        app = faust.App("t-restore", broker="kafka://127.0.0.1:9", store="rocksdb://", datadir=str(tmp_path),
                        topic_partitions=1)
        self.table = raw_table(app, "states", help="test")
        self.tp = TP(self.table.changelog_topic.get_topic_name(), 0)
        self.next_offset = 0

    def restore(self, *records: tuple[bytes, bytes]) -> None:
        start = self.next_offset
        self.next_offset += len(records)
        rows = RecordBatch.of([(start + i, key, data) for i, (key, data) in enumerate(records)],
                              start, self.next_offset - 1)
        message = SimpleNamespace(tp=self.tp, partition=0, offset=self.next_offset - 1)
        self.table.apply_changelog_batch([SimpleNamespace(value=rows, message=message)])

    def write(self, key: bytes, data: bytes, monkeypatch) -> None:
        """The worker's own write (its changelog record is not sent here)."""
        monkeypatch.setattr(changelogs, "write_now", lambda *args: None)
        monkeypatch.setattr(self.table, "partition_for_key", lambda key: 0)
        self.db().put(key, data)
        self.table.on_key_set(key, data)

    def db(self):
        return self.table.data._db_for_partition(0)


@pytest.fixture
def worker(tmp_path):
    return Restore(tmp_path)


def test_into_an_empty_store_a_late_write_in_a_later_batch_is_left_out(worker):
    worker.restore((b"g1", value(5, devices=["MRI 1", "CT 1"])), (b"g2", value(5)))
    worker.restore((b"g1", value(4, devices=["MRI 1"])))  # the former owner's, landed last
    assert orjson.loads(worker.db().get(b"g1"))["devices"] == ["MRI 1", "CT 1"]


def test_after_the_workers_own_writes_a_lower_epoch_is_still_left_out(worker, monkeypatch):
    worker.restore((b"g1", value(3)))
    worker.write(b"g2", value(9, devices=["CT 1"]), monkeypatch)  # this worker's epoch, above the restore's
    worker.restore((b"g2", value(6, devices=["MRI 1"])))  # a later restore (a rebalance) meets a late write
    assert orjson.loads(worker.db().get(b"g2"))["devices"] == ["CT 1"]


def test_a_record_of_an_equal_or_higher_epoch_replaces_the_stored_value(worker):
    worker.restore((b"g1", value(5, n=1)))
    worker.restore((b"g1", value(5, n=2)), (b"g2", value(7)))
    worker.restore((b"g1", value(6, n=3)))
    assert orjson.loads(worker.db().get(b"g1"))["n"] == 3


def test_into_a_store_kept_from_before_a_lower_epoch_is_left_out(worker):
    worker.db().put(b"g1", value(9, devices=["CT 1"]))  # the data directory of a previous run
    worker.restore((b"g1", value(6, devices=["MRI 1"])))
    assert orjson.loads(worker.db().get(b"g1"))["devices"] == ["CT 1"]


def test_a_restore_includes_the_late_writes_it_left_out(worker):
    """The store includes everything it read, kept or left out: this
    worker's next write follows it, and a later restore starts after it."""
    worker.restore((b"g1", value(5)), (b"g2", value(5)))
    worker.restore((b"g1", value(4)))  # left out, and the last record read
    assert worker.table.data.persisted_offset(worker.tp) == 2


def test_a_blocks_writes_reach_rocksdb_when_it_ends_and_its_reads_see_them_before(worker, monkeypatch):
    table, sent = worker.table, []
    monkeypatch.setattr(table, "partition_for_key", lambda key: 0)
    monkeypatch.setattr(changelogs, "sender_of", lambda app: SimpleNamespace(
        submit=lambda t, partition, rows: sent.append((partition, rows))))
    worker.db().put(b"kept", value(1))
    worker.db().put(b"gone", value(1))
    with transaction():
        table[b"new"] = value(2, n=1)
        table["new"] = value(2, n=2)  # str keys are stored as their bytes
        del table[b"gone"]
        assert worker.db().get(b"new") is None and worker.db().get(b"gone") is not None  # RocksDB not yet
        assert orjson.loads(table[b"new"])["n"] == 2 and orjson.loads(partition_get(table, 0, "new"))["n"] == 2
        assert b"gone" not in table and table.get(b"gone") is None and partition_get(table, 0, b"gone") is None
        assert b"kept" in table and partition_get(table, 0, b"kept") == value(1)
    assert orjson.loads(worker.db().get(b"new"))["n"] == 2 and worker.db().get(b"gone") is None
    assert sent == [(0, [(b"new", value(2, n=2)), (b"gone", None)])]
