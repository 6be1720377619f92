"""Every private member of Faust, aiokafka and rocksdict the service reaches,
in one place (plumbing).

The exactly-once machinery rests on how these libraries work inside, not
only on their public API. Each function here is one such access, says what
it relies on, and has a test in ``tests/test_internals.py`` that fails with a
clear message if the pinned version behaves otherwise. The subclasses of
Faust's consumer, consumer thread and producer (:mod:`humidity.plumbing.batching`,
:mod:`humidity.plumbing.producer`) also override private methods of their
bases; those are named in :data:`OVERRIDDEN`, checked by the same tests.
:func:`check_pins` tells at start-up, in one line, when the installed
versions are not the ones these were checked against.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version

from faust import streams as faust_streams

log = logging.getLogger(__name__)

#: The versions these accesses were written and tested against.
PINS = {"faust-streaming": "0.15.3", "aiokafka": "0.14.0", "rocksdict": "0.3.29"}

#: Private methods of Faust's classes that the service's subclasses override
#: or call on ``super()``: ``(base class path, method)``.
OVERRIDDEN = (
    ("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread", "_create_worker_consumer"),
    ("faust.transport.drivers.aiokafka.AIOKafkaConsumerThread", "_fetch_records"),
    ("faust.transport.consumer.Consumer", "_new_offset"),
    ("faust.transport.consumer.Consumer", "_commit_offsets"),
    ("faust.transport.consumer.Consumer", "_filter_tps_with_pending_acks"),
    ("faust.transport.consumer.Consumer", "_commit"),
    ("faust.transport.consumer.Consumer", "_acked"),
    ("faust.transport.consumer.Consumer", "_acked_index"),
    ("faust.transport.consumer.Consumer", "_gap"),
    ("faust.transport.consumer.Consumer", "_read_offset"),
    ("faust.transport.consumer.Consumer", "_committed_offset"),
)


def check_pins() -> list[str]:
    """One warning line per library whose installed version is not the pinned one."""
    lines = []
    for package, pinned in PINS.items():
        try:
            installed = version(package)
        except PackageNotFoundError:
            installed = "missing"
        if installed != pinned:
            lines.append(f"{package} {installed} is installed, the service's use of its internals was checked "
                         f"with {pinned} (humidity/plumbing/internals.py): run tests/test_internals.py")
    for line in lines:
        log.warning("%s", line)
    return lines


# -- Faust's app


def leader_topic_name(app) -> str:
    """The topic of Faust's leader election (``LeaderAssignor._leader_topic_name``),
    created with the others so that every topic exists before the consumer joins."""
    return app._leader_assignor._leader_topic_name  # noqa: SLF001


# -- Faust's consumer: what it acknowledged, read and committed


def replace_read_offsets(consumer, read_offsets: dict) -> None:
    """Faust drops a message below a partition's read offset
    (``Consumer._read_offset``, a dict by TopicPartition) and commits over
    what it takes for a gap: the batched topics keep their own."""
    consumer._read_offset = read_offsets  # noqa: SLF001


def forget_acks(consumer, tp) -> None:
    """Drop Faust's own acknowledgement bookkeeping of ``tp`` (``_acked``,
    ``_acked_index``, ``_gap``): for batched topics what may be committed
    comes from the broker's acknowledgements instead."""
    for bookkeeping in (consumer._acked, consumer._acked_index, consumer._gap):  # noqa: SLF001
        bookkeeping.pop(tp, None)


async def commit(consumer, offsets: dict) -> bool:
    """Commit ``offsets`` with Faust's consumer (``Consumer._commit``), without
    its producer flush first."""
    return await consumer._commit(offsets)  # noqa: SLF001


def record_committed(consumer, offsets: dict) -> None:
    """What Faust records as committed (``Consumer._committed_offset``), which
    its own commit would have updated."""
    consumer._committed_offset.update(offsets)  # noqa: SLF001


# -- aiokafka's consumer, as Faust's consumer thread drives it


def tune_consumer(consumer, fetch_max_wait_ms: int) -> None:
    """Before ``start()``: the broker's wait for caught-up partitions, and
    committed reads. Faust passes a fixed ``fetch_max_wait_ms`` and sets
    the isolation level only inside its own transactions; aiokafka reads
    both attributes when the consumer starts its fetcher."""
    consumer._fetch_max_wait_ms = fetch_max_wait_ms  # noqa: SLF001
    consumer._isolation_level = "read_committed"  # noqa: SLF001


def fetcher_of(consumer):
    """aiokafka's Fetcher of a consumer (``consumer._fetcher``), or None once
    the consumer or the fetcher is closed."""
    fetcher = consumer._fetcher  # noqa: SLF001
    if consumer._closed or fetcher is None or fetcher._closed:  # noqa: SLF001
        return None
    return fetcher


def is_closed(fetcher) -> bool:
    return fetcher._closed  # noqa: SLF001


def subscriptions_of(fetcher):
    """The fetcher's SubscriptionState: assignment, positions, fetch context."""
    return fetcher._subscriptions  # noqa: SLF001


def fetch_waiter(fetcher):
    """A future that the fetcher completes when records arrive (as
    ``Fetcher.fetched_records`` waits)."""
    return fetcher._create_fetch_waiter()  # noqa: SLF001


def hand_out_raw_records(fetcher, topics: set, as_read) -> None:
    """Let the fetched records of ``topics`` be handed out as ``as_read(tp,
    record)`` makes them: aiokafka looks ``_consumer_record`` up per record
    on each partition's not yet drained ``_partition_records``."""
    for tp, fetched in fetcher._records.items():  # noqa: SLF001
        if tp.topic in topics:
            partition_records = getattr(fetched, "_partition_records", None)  # None: drained, or an error
            if partition_records is not None:
                partition_records._consumer_record = as_read  # noqa: SLF001


# -- Faust's RocksDB store (rocksdict), one partition at a time


def partition_db(store, partition: int):
    """The rocksdict ``Rdict`` of one partition of a Faust RocksDB store
    (``Store._db_for_partition``), opened on first use."""
    return store._db_for_partition(partition)  # noqa: SLF001


def visible_items(store, db):
    """``(key, value)`` of a partition's db without Faust's own offset key
    (``Store._visible_items``)."""
    return store._visible_items(db)  # noqa: SLF001


@contextmanager
def current_event(event) -> Iterator[None]:
    """Make ``event`` Faust's current event while the block runs: a table
    read or written without a partition takes the current event's
    (``faust.streams._current_event``, a context variable holding a weak
    reference to the event, read by ``faust.streams.current_event()``)."""
    token = faust_streams._current_event.set(weakref.ref(event))  # noqa: SLF001
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)  # noqa: SLF001


def consumer_thread(consumer):
    """The thread-side consumer of Faust's consumer (``Consumer._thread``),
    which answers for aiokafka's positions."""
    return consumer._thread  # noqa: SLF001


def aiokafka_producer(producer):
    """The aiokafka producer under Faust's producer, started if it was not
    (``Producer._ensure_producer``): record batches go to it directly."""
    return producer._ensure_producer()  # noqa: SLF001


def tell_sensors_set(table, key, value) -> None:
    """What Faust's table tells its sensors (monitors) of a write
    (``Table._sensor_on_set``): the tables here write around Faust's
    ``on_key_set`` and must still tell them."""
    table._sensor_on_set(table, key, value)  # noqa: SLF001


def tell_sensors_del(table, key) -> None:
    """The same for a deletion (``Table._sensor_on_del``)."""
    table._sensor_on_del(table, key)  # noqa: SLF001
