"""The OFFLINE check's index of loggers that may have gone silent (no broker)."""

import tracemalloc

from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from humidity.core.silence import SilenceIndex

T0 = 1_700_000_000.0
TIMEOUT = 300.0


def test_a_logger_is_due_once_its_slot_ended_the_timeout_ago_not_before():
    index = SilenceIndex(5.0)
    index.file("4:MRI1g1", T0 + 1)  # slot [T0, T0 + 5)
    assert index.due(T0 + 1 + TIMEOUT, TIMEOUT) == []
    assert index.due(T0 + 5 + TIMEOUT - 0.01, TIMEOUT) == []
    assert index.due(T0 + 5 + TIMEOUT, TIMEOUT) == ["4:MRI1g1"]
    assert index.due(T0 + 10 * TIMEOUT, TIMEOUT) == [], "taken out: due once until filed again"


@hsettings(max_examples=200, deadline=None)
@given(heard=st.dictionaries(st.text(max_size=30), st.floats(0, 10_000), max_size=50),
       slot=st.sampled_from([1.0, 2.5, 5.0]), wall=st.floats(0, 12_000))
def test_due_gives_each_key_once_and_only_when_silent_longer_than_the_timeout(heard, slot, wall):
    index = SilenceIndex(slot)
    for key, at in heard.items():
        index.file(key, at)
    due = index.due(wall, TIMEOUT)
    assert len(due) == len(set(due))
    assert all(wall - heard[key] > TIMEOUT for key in due), "never before the timeout"
    assert {key for key, at in heard.items() if wall - at > TIMEOUT + slot} <= set(due), \
        "at most one slot after it"
    rest = index.due(float("inf"), TIMEOUT)
    assert sorted(due + rest) == sorted(heard), "every key comes out once, as it went in"


def test_a_million_loggers_take_tens_of_megabytes_not_hundreds():
    keys = [f"6:MRI {i % 500:02d}0-ZZZ12345678-{i:06X}" for i in range(1_000_000)]
    tracemalloc.start()
    index = SilenceIndex(5.0)
    for i, key in enumerate(keys):
        index.file(key, T0 + i % 3600)
    held, _peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert held < 60e6, f"{held / 1e6:.0f} MB"  # a dict of str -> float takes about 130 MB
