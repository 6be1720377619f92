"""How far behind the input the published cut is (pure, no broker)."""

from hypothesis import given
from hypothesis import strategies as st

from humidity.core.behind import LOOKS_KEPT, InputLooks


def test_a_cut_is_behind_by_the_readings_it_leaves_out_and_since_the_first_look_that_held_one():
    looks = InputLooks()
    looks.observe({0: 10, 1: 5}, now=100)
    looks.observe({0: 20, 1: 5}, now=101)
    looks.observe({0: 30, 1: 8}, now=102)
    assert looks.behind({"0": 29, "1": 7}, now=110).to_json() == {"seconds": 0.0, "readings": 0}, "all counted"
    assert looks.behind({"0": 9, "1": 4}, now=103).to_json() == {"seconds": 2.0, "readings": 23}
    assert looks.behind({"0": 19, "1": 4}, now=103).to_json() == {"seconds": 1.0, "readings": 13}
    assert looks.behind(None, now=103).to_json() == {"seconds": 3.0, "readings": 38}, "no summary yet"
    assert looks.behind({"0": 35, "1": 9}, now=103).readings == 0, "a summary newer than the last look"


def test_a_cut_that_stands_still_falls_further_behind_and_catches_up_at_once():
    looks = InputLooks()
    as_of = {"0": 99}
    for second in range(60):
        looks.observe({0: 100 + 50 * second}, now=float(second))
    assert looks.behind(as_of, now=60.0).seconds == 59.0
    assert looks.behind(as_of, now=60.0).readings == 50 * 59
    looks.forget_counted({"0": 100 + 50 * 59 - 1})
    assert looks.behind({"0": 100 + 50 * 59 - 1}, now=60.0).seconds == 0.0


def test_a_long_stall_keeps_a_bounded_memory_and_never_understates_by_more_than_it_thinned():
    looks = InputLooks()
    for second in range(5 * LOOKS_KEPT):
        looks.observe({0: second + 1}, now=float(second))
    assert len(looks.looks[0]) <= LOOKS_KEPT
    assert looks.behind({"0": -1}, now=5.0 * LOOKS_KEPT).seconds == 5.0 * LOOKS_KEPT, "the first look is kept"


ends_by_look = st.lists(st.dictionaries(st.integers(0, 3), st.integers(0, 50), min_size=1), min_size=1, max_size=30)


def reference_behind(history, as_of, now):
    """Straight from the definition: the first look at which each partition held an offset past the cut."""
    first_past, newest = {}, {}
    for t, ends in history:
        for p, end in ends.items():
            newest[p] = max(newest.get(p, 0), end)
            if newest[p] - 1 > as_of.get(str(p), -1) and p not in first_past:
                first_past[p] = t
    readings = sum(max(0, end - 1 - as_of.get(str(p), -1)) for p, end in newest.items())
    return (now - min(first_past.values(), default=now)), readings


@given(ends_by_look, st.dictionaries(st.integers(0, 3).map(str), st.integers(-1, 60)),
       st.dictionaries(st.integers(0, 3).map(str), st.integers(-1, 60)))
def test_behind_is_the_definition_also_after_forgetting_what_an_earlier_cut_counted(history, earlier, as_of):
    looks = InputLooks()
    monotone = []
    for t, ends in enumerate(history):
        looks.observe(ends, now=float(t))
        monotone.append((float(t), ends))
    later = {p: max(as_of.get(p, -1), earlier.get(p, -1)) for p in {*as_of, *earlier}}
    looks.forget_counted(earlier)
    found = looks.behind(later, now=100.0)
    assert (found.seconds, found.readings) == reference_behind(monotone, later, 100.0)
