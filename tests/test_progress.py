"""What may be committed (humidity.plumbing.progress) and whose write wins a restore
(humidity.core.ownership): pure rules, no broker."""

import asyncio

import orjson
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from humidity.core.ownership import claimed_epoch, epoch_of, newest_rows
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
    await progress.wait_answered(["p0"], timeout=5)
    assert progress.committable("p0") == 10
    progress.handled("p0", 19, [loop.create_future()])
    await asyncio.wait_for(progress.wait_answered(["p0"], timeout=0.05), 1)  # never answered: gives up
    progress.forget(["p0"])
    assert progress.committable("p0") is None and progress.partitions() == []


def test_a_new_owner_claims_a_higher_epoch_than_any_before():
    assert claimed_epoch(stored=0, generation=7) == 7
    assert claimed_epoch(stored=7, generation=8) == 8
    assert claimed_epoch(stored=7, generation=7) == 8  # same generation, already claimed: above it
    assert claimed_epoch(stored=41, generation=2) == 42  # the group's generations started again


def value(epoch, **fields):
    return orjson.dumps({**fields, "epoch": epoch})


def test_a_restore_keeps_the_value_of_the_highest_epoch_whatever_the_log_order():
    new_owner = (1, b"g1", value(5, devices=["MRI 1", "CT 1"]))
    late_write = (2, b"g1", value(4, devices=["MRI 1"]))  # a paused former owner, after the new one
    same_owner_later = (3, b"g1", value(5, devices=["MRI 1", "CT 1", "SPECT 1"]))
    other_key = (4, b"g2", value(4, devices=["MRI 2"]))
    kept, stale, _ = newest_rows([new_owner, late_write, same_owner_later, other_key], lambda k: 0)
    assert kept == [new_owner, same_owner_later, other_key] and stale == 1
    # against what the local store already holds
    kept, stale, _ = newest_rows([late_write], lambda k: 5)
    assert kept == [] and stale == 1
    # values written before epochs existed count as epoch 0 and never win over a stamped one
    assert epoch_of(orjson.dumps({"offset": 3})) == 0 and epoch_of(b"17") == 0 and epoch_of(None) == 0
    deletion = (5, b"g1", None)
    assert newest_rows([deletion], lambda k: 9)[:2] == ([deletion], 0)


def test_a_restore_into_an_empty_store_looks_up_only_records_below_the_highest_epoch_applied():
    def no_lookup(key):
        raise AssertionError(f"looked up {key!r}")

    # the partition's store is empty: nothing stored exceeds epoch 0
    first = [(1, b"g1", value(3)), (2, b"g2", value(5)), (3, b"g1", value(5))]
    assert newest_rows(first, no_lookup, 0) == (first, 0, 5)
    # a later batch: a former owner's late write (epoch 4) must be checked against the store
    looked_up = []

    def stored(key):
        looked_up.append(key)
        return 5

    late, current = (4, b"g2", value(4)), (5, b"g3", value(5))
    assert newest_rows([late, current], stored, 5) == ([current], 1, 5)
    assert looked_up == [b"g2"]
    # without a known ceiling every record is looked up, as before
    other = (6, b"g9", value(7))
    assert newest_rows([other], stored) == ([other], 0, None) and looked_up[-1] == b"g9"


def _reference_epoch(raw):
    """The epoch as the full JSON parse reads it."""
    doc = orjson.loads(raw)
    return int(doc.get("epoch", 0)) if isinstance(doc, dict) else 0


_json = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False)
                     | st.text(alphabet='"\\{},:epoch 7}'),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.sampled_from(["epoch", "e", "x", 'a"epoch":1}']), inner, max_size=3),
                     max_leaves=8)


@hsettings(max_examples=2000, deadline=None)
@given(st.dictionaries(st.sampled_from(["offset", "s", "new", 'k"epoch":9}']), _json, max_size=4),
       st.one_of(st.none(), st.integers(0, 10**15)), st.integers(0, 4))
def test_the_epoch_read_from_a_value_s_tail_is_the_one_its_json_holds(doc, epoch, at):
    """The fast path (a top-level epoch written last) and the full parse
    agree on every JSON object with an integer epoch anywhere or none,
    however its other members, nested epochs or strings look."""
    if epoch is not None:
        items = list(doc.items())
        doc = dict(items[:at] + [("epoch", epoch)] + items[at:])
    raw = orjson.dumps(doc)
    assert epoch_of(raw) == _reference_epoch(raw)
