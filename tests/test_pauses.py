"""PauseWatch: a process frozen past the session timeout holds back its
wall-clock judgements until its group has settled (pure)."""

from hypothesis import given
from hypothesis import strategies as st

from humidity.core.pauses import PauseWatch


def test_a_running_process_is_never_held_back():
    watch = PauseWatch(10.0)
    for now in range(0, 600, 5):
        watch.note(float(now))
        assert not watch.woke_recently(float(now))


def test_after_a_freeze_longer_than_the_limit_it_is_held_back_for_twice_the_limit():
    watch = PauseWatch(10.0)
    watch.note(100.0)
    watch.note(112.5)  # frozen for 12.5 s
    assert watch.woke_recently(112.5)
    assert watch.woke_recently(132.0)
    assert not watch.woke_recently(132.6)


def test_a_freeze_within_the_limit_holds_nothing_back():
    watch = PauseWatch(10.0)
    watch.note(100.0)
    watch.note(109.9)
    assert not watch.woke_recently(109.9)


@given(st.lists(st.floats(0.0, 30.0), min_size=1, max_size=50))
def test_held_back_exactly_within_twice_the_limit_of_the_last_long_gap(gaps):
    watch, now, last_woken = PauseWatch(10.0), 0.0, None
    watch.note(now)
    for gap in gaps:
        now += gap
        watch.note(now)
        if gap > 10.0:
            last_woken = now
        assert watch.woke_recently(now) == (last_woken is not None and now < last_woken + 20.0)
