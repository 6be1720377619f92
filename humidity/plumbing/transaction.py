"""A batch's transaction: its table writes and the messages it sends, made
durable together (plumbing).

An agent handles each batch of a partition inside one
:class:`BatchTransaction` (:func:`humidity.plumbing.stream.per_batch`):

1. The handler reads and writes tables (:class:`humidity.plumbing.tables.RawTable`
   hands each write to :meth:`BatchTransaction.write`; a read of a single key
   sees the transaction's own writes, :meth:`BatchTransaction.written`; a
   range read does not), and sends messages, whose futures the producer
   notes here (:meth:`BatchTransaction.sent`).
2. When the handler returns, :meth:`BatchTransaction.commit`:

   1. puts each table partition's writes (the last value of each key) into
      its RocksDB, as one write batch;
   2. queues their changelog records on the app's
      :class:`~humidity.plumbing.changelogs.ChangelogSender`, in order per
      changelog partition, as record batches;
   3. returns the futures of every message sent and every changelog record
      queued: the partition's :class:`~humidity.plumbing.progress.Progress`
      lets the batch's offsets be committed once all of them, and those of
      every batch before it, are acknowledged by the broker.

Outside a transaction a table write goes into RocksDB and to the sender at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from humidity.plumbing import changelogs

_current: ContextVar[BatchTransaction | None] = ContextVar("humidity_transaction", default=None)

#: What :meth:`BatchTransaction.written` returns for a key the transaction has not written.
UNWRITTEN = object()


class BatchTransaction:
    """The table writes and sent messages of one batch, until :meth:`commit`."""

    def __init__(self) -> None:
        #: (table, partition) -> {key: value (None: deleted)}, the last value of each key.
        self.writes: dict[tuple, dict[bytes, bytes | None]] = {}
        self.produced: list[asyncio.Future] = []

    def write(self, table, partition: int, key: bytes, value: bytes | None) -> None:
        rows = self.writes.get((table, partition))
        if rows is None:
            rows = self.writes[(table, partition)] = {}
        rows[key] = None if value is None else changelogs.exact_size(value)

    def written(self, table, partition: int, key: bytes):
        """The value this transaction wrote to ``key`` (None: deleted), or UNWRITTEN."""
        rows = self.writes.get((table, partition))
        return UNWRITTEN if rows is None else rows.get(key, UNWRITTEN)

    def sent(self, future: asyncio.Future) -> None:
        self.produced.append(future)

    def commit(self) -> list[asyncio.Future]:
        """Steps 2.1 to 2.3 above: the store, the changelog, what to wait for."""
        durable = list(self.produced)
        for (table, partition), rows in self.writes.items():
            rows = list(rows.items())
            table.write_rows(partition, rows)
            durable.append(changelogs.sender_of(table.app).submit(table, partition, rows))
        self.writes, self.produced = {}, []
        return durable


def current() -> BatchTransaction | None:
    """The transaction of the batch being handled here, if any."""
    return _current.get()


@contextmanager
def transaction() -> Iterator[list[asyncio.Future]]:
    """Handle a batch inside a transaction; the list it yields holds, once
    the block ends, the futures the batch's commit waits for."""
    batch = BatchTransaction()
    durable: list[asyncio.Future] = []
    token = _current.set(batch)
    try:
        yield durable
    finally:
        _current.reset(token)
        durable += batch.commit()
