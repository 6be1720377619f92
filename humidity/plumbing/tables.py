"""RocksDB tables of raw bytes, restored so that a late write never wins (plumbing)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from itertools import islice

import faust
import rocksdict

from humidity.core import formats
from humidity.core.ownership import epoch_of, newest_rows
from humidity.plumbing import changelogs, internals, transaction
from humidity.plumbing.exit import stop_worker
from humidity.plumbing.record_batches import batched, changelog_batches

log = logging.getLogger(__name__)

#: RocksDB per table and partition: Faust's defaults (64 MB write buffers x3,
#: a 2 GB block cache each) are sized for a server with a few big tables; a
#: worker here has a table per state and HUMIDITY_PARTITIONS databases each
#: (8 x 4 by default), every one with its own memtables and block cache, so
#: each gets little: the flows keep their hot values in memory, and the
#: files RocksDB reads again stay in the operating system's page cache.
ROCKSDB = {"write_buffer_size": 1024 * 1024, "max_write_buffer_number": 2,
           "block_cache_size": 1024 * 1024, "block_cache_compressed_size": 1024 * 1024,
           "target_file_size_base": 16 * 1024 * 1024}
#: Changelog events (each a whole fetched record batch) a restore applies
#: together. Not 1: at 1 Faust keeps fetching the changelogs of the worker's
#: own partitions after the restore (as a global table needs), so a worker
#: would read back every record it writes, and could apply one late over a
#: newer value of its key.
RESTORE_EVENTS_BUFFERED = 2


class RawTable(faust.Table):
    """A table of bytes whose changelog is written and restored in record
    batches (:mod:`humidity.plumbing.changelogs`; one event per fetched
    batch, :func:`humidity.plumbing.record_batches.changelog_batches`). Inside a
    batch's transaction (:mod:`humidity.plumbing.transaction`) its writes
    reach RocksDB when the transaction commits, in one write batch per
    partition; the batch's reads of single keys see them before, its range
    reads (:func:`partition_range`) do not."""

    #: Changelog records handed to this table to restore (applied or not).
    changelog_records_read = 0

    def __setitem__(self, key: bytes | str, value: bytes) -> None:
        self.on_key_set(key, value)
        if transaction.current() is None:
            self.data[key] = value

    def __delitem__(self, key: bytes | str) -> None:
        self.on_key_del(key)
        if transaction.current() is None:
            del self.data[key]

    def __getitem__(self, key: bytes | str):
        value = self._written(key)
        if value is transaction.UNWRITTEN:
            return super().__getitem__(key)
        return self.__missing__(key) if value is None else value

    def __contains__(self, key) -> bool:
        value = self._written(key)
        return super().__contains__(key) if value is transaction.UNWRITTEN else value is not None

    def _written(self, key: bytes | str):
        batch = transaction.current()
        if batch is None:
            return transaction.UNWRITTEN
        return batch.written(self, self.partition_for_key(key), _raw(key))

    def on_key_set(self, key: bytes | str, value: bytes) -> None:
        self._write(key, _raw(value))
        internals.tell_sensors_set(self, key, value)

    def on_key_del(self, key: bytes | str) -> None:
        self._write(key, None)
        internals.tell_sensors_del(self, key)

    def _write(self, key: bytes | str, value: bytes | None) -> None:
        """Into the batch's transaction, or (outside one) to the changelog at once."""
        partition, key = self.partition_for_key(key), _raw(key)
        batch = transaction.current()
        if batch is None:
            changelogs.write_now(self, partition, key, value)
        else:
            batch.write(self, partition, key, value)

    def write_rows(self, partition: int, rows: list[tuple[bytes, bytes | None]]) -> None:
        """A transaction's writes to one partition (None: a deletion), into its RocksDB at once."""
        _write(self.data, partition, rows)

    def apply_changelog_batch(self, batch) -> None:
        for tp, rows in changelog_batches(batch):
            self.changelog_records_read += len(rows)
            _refuse_newer_formats(tp, rows)
            rows = _unapplied(rows, self.data.persisted_offset(tp))
            if not rows:
                continue
            applied = self._restorable(tp.partition, rows)
            if applied:
                _write(self.data, tp.partition, [(key, value) for _offset, key, value in applied])
            # what it left out (a late write) the store includes too: it never
            # replaces what is there, and the next write of this worker follows it
            self.data.set_persisted_offset(tp, rows[-1][0])

    def _restorable(self, partition: int, rows: list) -> list:
        """Of one partition's rows to restore, those to apply (all of them here)."""
        return rows


def _refuse_newer_formats(tp, rows: list) -> None:
    """Stop the worker, with one line, at a value a newer release wrote."""
    try:
        for _offset, _key, value in rows:
            formats.check_raw(value, f"{tp.topic}[{tp.partition}]")
    except formats.NewerFormat as exc:
        stop_worker(str(exc), traceback=False)


def _unapplied(rows: list, applied: int | None) -> list:
    """The rows (in offset order) past the offset the table already
    includes. Faust seeks a restore to that offset itself and skips its
    record one message at a time; a batch starting there would apply it
    again, over any newer value written here since (the worker's state would
    no longer agree with itself)."""
    if applied is None or not rows or rows[0][0] > applied:
        return rows
    return [row for row in rows if row[0] > applied]


def _write(store, partition: int, rows: list[tuple[bytes, bytes | None]]) -> None:
    """Rows of one partition into its RocksDB as one write batch (what Faust's
    store does with a changelog batch)."""
    batch = rocksdict.WriteBatch(raw_mode=True)
    for key, value in rows:
        if value is None:
            batch.delete(key)
        else:
            batch.put(key, value)
    internals.partition_db(store, partition).write(batch)


def _raw(data: bytes | str) -> bytes:
    """As Faust's raw codec stores it."""
    return data.encode() if isinstance(data, str) else data


class EpochTable(RawTable):
    """A table whose JSON values carry their writer's epoch: restoring from
    the changelog, a record never replaces a value of a higher epoch (a late
    write of a worker that lost the partition; see :mod:`humidity.core.ownership`)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        #: Per partition, the highest epoch in its RocksDB while that is known:
        #: from an empty database through restores only.
        self._epoch_ceilings: dict[int, int] = {}

    def on_key_set(self, key: bytes | str, value: bytes) -> None:
        if self._epoch_ceilings:
            self._epoch_ceilings.clear()  # a value of this worker's epoch, not looked at
        super().on_key_set(key, value)

    def on_key_del(self, key: bytes | str) -> None:
        if self._epoch_ceilings:
            self._epoch_ceilings.clear()
        super().on_key_del(key)

    def _restorable(self, partition: int, rows: list) -> list:
        ceiling = self._epoch_ceilings.get(partition)
        if ceiling is None and partition_is_empty(self, partition):
            ceiling = 0
        records, stale, ceiling = newest_rows(rows, lambda key: self._stored_epoch(partition, key), ceiling)
        if ceiling is not None:
            self._epoch_ceilings[partition] = ceiling
        if stale:
            log.warning("Table %s: %d changelog record(s) older than the value they would replace were "
                        "left out (late writes of a previous owner)", self.name, stale)
        return records

    def _stored_epoch(self, partition: int, key: bytes) -> int:
        return epoch_of(partition_get(self, partition, key))


def raw_table(app, name: str, *, help: str, epochs: bool = True):
    """A table of bytes keys and values, (de)serialised by the code that owns
    them, partitioned like the app's topics; with ``epochs``, an
    :class:`EpochTable` (its values are JSON objects with an ``epoch``)."""
    cls = EpochTable if epochs else RawTable
    # A standby's changelog event is a whole fetched batch: apply it at once.
    table = app.tables.add(cls(app, name=name, beacon=app.tables.beacon, partitions=app.conf.topic_partitions,
                               help=help, key_type=bytes, value_type=bytes, options=dict(ROCKSDB),
                               recovery_buffer_size=RESTORE_EVENTS_BUFFERED, standby_buffer_size=1))
    batched(app).changelogs.add(table.changelog_topic.get_topic_name())
    return table


def partition_items(table, partition: int):
    """(key, value) bytes of one partition of a RocksDB table.

    Faust's table iterates all active partitions at once; the OFFLINE check
    needs one partition, so this reads that partition's RocksDB directly.
    """
    store = table.data
    return internals.visible_items(store, internals.partition_db(store, partition))


def partition_get(table, partition: int, key: bytes | str) -> bytes | None:
    """One key's value in one partition's RocksDB, read directly: Faust's
    ``get`` passes through several mapping layers, reads a stored key twice,
    and outside an agent's event looks in every partition the worker has
    opened when the key is not in its index. Inside a transaction, what it
    wrote (:meth:`humidity.plumbing.transaction.BatchTransaction.written`)."""
    key = _raw(key)
    batch = transaction.current()
    value = transaction.UNWRITTEN if batch is None else batch.written(table, partition, key)
    return internals.partition_db(table.data, partition).get(key) if value is transaction.UNWRITTEN else value


def partition_is_empty(table, partition: int) -> bool:
    """Whether one partition's RocksDB holds no key at all (not even Faust's
    record of the changelog offset it includes)."""
    return next(iter(internals.partition_db(table.data, partition).keys()), None) is None


def partition_range(table, partition: int, start: bytes, stop: bytes | None = None, reverse: bool = False):
    """(key, value) bytes of one partition with ``start <= key < stop``, in key
    order; without ``stop``, the keys that begin with ``start`` (with
    ``reverse``, those keys from the last one down)."""
    db = internals.partition_db(table.data, partition)
    if reverse:
        for key, value in db.items(backwards=True, from_key=start + b"\xff"):
            if not key.startswith(start):
                if key < start:
                    break
                continue
            yield key, value
        return
    for key, value in db.items(from_key=start):
        if (key >= stop) if stop is not None else not key.startswith(start):
            break
        yield key, value


def partition_slice(table, partition: int, start: bytes, stop: bytes,
                    size: int) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
    """At most ``size`` rows of :func:`partition_range` from ``start`` to
    ``stop``, and the key to go on from (``None`` once the range is done);
    no iterator stays open after it returns."""
    rows = list(islice(partition_range(table, partition, start, stop), size))
    return rows, (rows[-1][0] + b"\x00" if len(rows) == size else None)  # the smallest key after the last


class PartitionMoved(Exception):
    """The partition left this worker while it was being read step by step."""


async def partition_steps(table, partition: int, start: bytes, stop: bytes, size: int,
                          owned: Callable[[int], bool]) -> AsyncIterator[list[tuple[bytes, bytes]]]:
    """:func:`partition_range` in lists of at most ``size`` rows with the event
    loop free between them, so that reading a large partition does not hold
    up the agents. No iterator stays open across a step, and after each
    pause ``owned(partition)`` must still hold, else :class:`PartitionMoved`
    (its RocksDB may be closed, or not this worker's any more)."""
    while True:
        rows, start = partition_slice(table, partition, start, stop, size)
        if rows:
            yield rows
        if start is None:
            return
        await asyncio.sleep(0)
        if not owned(partition):
            raise PartitionMoved(partition)


async def partition_item_steps(table, partition: int, size: int,
                               owned: Callable[[int], bool]) -> AsyncIterator[list[tuple[bytes, bytes]]]:
    """:func:`partition_items` in the steps of :func:`partition_steps`."""
    hidden = table.data.offset_key
    async for rows in partition_steps(table, partition, b"", b"\xff", size, owned):  # no UTF-8 key has 0xff
        yield [row for row in rows if row[0] != hidden]
