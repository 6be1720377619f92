"""What may be committed (humidity.plumbing.progress) and whose write wins a restore
(humidity.core.ownership): pure rules, no broker."""

import asyncio

import orjson
import pytest

from humidity.core.ownership import claimed_epoch, epoch_of, newest_records
from humidity.plumbing.progress import NotDelivered, Progress


async def acknowledge(future):
    future.set_result("sent")
    await asyncio.sleep(0)  # its done-callbacks run on the loop


async def test_an_offset_is_committable_only_once_everything_up_to_it_is_acknowledged():
    loop = asyncio.get_running_loop()
    progress = Progress()
    first, second, third = (loop.create_future() for _ in range(3))
    progress.handled("p0", 99, [first, second])
    progress.handled("p0", 199, [third])
    assert progress.committable("p0") is None
    await acknowledge(third)  # a later batch's write arrived first: still nothing
    assert progress.committable("p0") is None
    await acknowledge(first)
    assert progress.committable("p0") is None
    await acknowledge(second)
    assert progress.committable("p0") == 200
    assert progress.committable("p1") is None
    done = loop.create_future()
    done.set_result("sent")  # acknowledged before the batch was handed over
    progress.handled("p0", 299, [done])
    assert progress.committable("p0") == 300


async def test_a_failed_delivery_is_never_committed_over():
    loop = asyncio.get_running_loop()
    progress = Progress()
    failed = loop.create_future()
    failed.set_exception(RuntimeError("message too large"))
    progress.handled("p0", 9, [failed])
    with pytest.raises(NotDelivered, match="message too large"):
        progress.committable("p0")


async def test_settle_waits_boundedly_and_forget_drops_a_partition():
    loop = asyncio.get_running_loop()
    progress = Progress()
    pending = loop.create_future()
    progress.handled("p0", 9, [pending])
    loop.call_later(0.05, pending.set_result, "sent")
    await progress.settle(["p0"], timeout=5)
    assert progress.committable("p0") == 10
    progress.handled("p0", 19, [loop.create_future()])
    await asyncio.wait_for(progress.settle(["p0"], timeout=0.05), 1)  # never answered: gives up
    progress.forget(["p0"])
    assert progress.committable("p0") is None and progress.partitions() == []


def test_a_new_owner_claims_a_higher_epoch_than_any_before():
    assert claimed_epoch(stored=0, generation=7) == 7
    assert claimed_epoch(stored=7, generation=8) == 8
    assert claimed_epoch(stored=7, generation=7) == 8  # same generation, already claimed: above it
    assert claimed_epoch(stored=41, generation=2) == 42  # the group's generations started again


class _Message:
    def __init__(self, partition, key, value):
        self.partition, self.key, self.value = partition, key, value


class _Record:
    def __init__(self, partition, key, value):
        self.message = _Message(partition, key, value)


def value(epoch, **fields):
    return orjson.dumps({**fields, "epoch": epoch})


def test_a_restore_keeps_the_value_of_the_highest_epoch_whatever_the_log_order():
    new_owner = _Record(0, b"g1", value(5, devices=["MRI 1", "CT 1"]))
    late_write = _Record(0, b"g1", value(4, devices=["MRI 1"]))  # a paused former owner, after the new one
    same_owner_later = _Record(0, b"g1", value(5, devices=["MRI 1", "CT 1", "SPECT 1"]))
    other_key = _Record(0, b"g2", value(4, devices=["MRI 2"]))
    kept, stale = newest_records([new_owner, late_write, same_owner_later, other_key], lambda p, k: 0)
    assert kept == [new_owner, same_owner_later, other_key] and stale == 1
    # against what the local store already holds
    kept, stale = newest_records([late_write], lambda p, k: 5)
    assert kept == [] and stale == 1
    # values written before epochs existed count as epoch 0 and never win over a stamped one
    assert epoch_of(orjson.dumps({"offset": 3})) == 0 and epoch_of(b"17") == 0 and epoch_of(None) == 0
    deletion = _Record(0, b"g1", None)
    assert newest_records([deletion], lambda p, k: 9) == ([deletion], 0)


def test_a_restore_into_an_empty_store_looks_up_only_records_below_the_highest_epoch_applied():
    def no_lookup(partition, key):
        raise AssertionError(f"looked up {key!r}")

    ceilings = {0: 0}  # partition 0's store is empty
    first = [_Record(0, b"g1", value(3)), _Record(0, b"g2", value(5)), _Record(0, b"g1", value(5))]
    assert newest_records(first, no_lookup, ceilings) == (first, 0)
    assert ceilings == {0: 5}
    # a later batch: a former owner's late write (epoch 4) must be checked against the store
    looked_up = []

    def stored(partition, key):
        looked_up.append(key)
        return 5

    late, current = _Record(0, b"g2", value(4)), _Record(0, b"g3", value(5))
    assert newest_records([late, current], stored, ceilings) == ([current], 1)
    assert looked_up == [b"g2"] and ceilings == {0: 5}
    # a partition without a known ceiling is looked up as before
    other = _Record(1, b"g9", value(7))
    assert newest_records([other], stored, ceilings) == ([other], 0) and looked_up[-1] == b"g9"
    assert ceilings == {0: 5}
