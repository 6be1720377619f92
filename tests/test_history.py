"""The history's windows, retention and queries, without a broker."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest

from humidity.core import history
from humidity.core.history import DEVICE, LOGGER, Retention, apply_bundles
from humidity.core.history_query import QueryError, Range, merge_points

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
KEEP_ALL = Retention(minute_days=2, hour_days=400)


class Store:
    """A dict standing in for the table, written like the flow writes, with
    the partition's newest input offset per input partition."""

    def __init__(self) -> None:
        self.data: dict[bytes, dict] = {}
        self.sources: dict[str, int] = {}

    def apply(self, bundles, now=NOW, retention=KEEP_ALL, max_windows=None):
        applied = apply_bundles(bundles, now, retention, self.stored, self.sources, max_windows)
        for key, window in applied.windows.items():
            self.data[key] = window.to_json(epoch=1)
        self.sources = applied.sources
        return applied

    def stored(self, key):
        return history.StoredWindow.from_json(self.data.get(key))

    def windows(self, what, name, resolution):
        prefix = history.window_prefix(what, name, resolution)
        return sorted((history.start_of_key(k), history.StoredWindow.from_json(v).window)
                      for k, v in self.data.items() if k.startswith(prefix))


def bundled(rows, size, first_offset=0):
    """Bundles of ``size`` rows as ingest sends them: each from one input
    partition (two here, alternating), rows numbered by input offset."""
    out, next_input = [], {0: 0, 1: 0}
    for n, i in enumerate(range(0, len(rows), size)):
        source = n % 2
        part = []
        for row in rows[i:i + size]:
            part.append([*row[:4], next_input[source]])
            next_input[source] += 1
        out.append((first_offset + n, source, part))
    return out


def meaning(data: dict) -> dict:
    """What stored windows say (count, exact sum, min, max, newest), not how
    (sums as partials are not unique; the offset only has to be high enough)."""
    return {key: (doc["n"], math.fsum(doc["s"]), doc["lo"], doc["hi"], doc["new"]) for key, doc in data.items()
            if key.startswith(b"w")}


def reference(rows, what_index, name, size, cutoff=float("-inf")):
    """Windows straight from the readings: exact sums as fractions."""
    out: dict[int, list] = {}
    for row in rows:
        if row[what_index] != name:
            continue
        start = int(row[2] // size) * size
        if start < cutoff:
            continue
        out.setdefault(start, []).append(row[3])
    return {s: (len(v), float(sum(map(Fraction, v)) / len(v)), min(v), max(v)) for s, v in out.items()}


def figures(window):
    f = window.figures()
    return f["count"], f["average"], f["min"], f["max"]


def some_rows(n=3000, seed=7):
    rng = random.Random(seed)
    devices = ["MRI 12", "CT <b>&", "PET-CT Ω"]
    return [[f"g{rng.randrange(20)}", rng.choice(devices), NOW - rng.uniform(0, 3 * 3600),
             round(rng.uniform(20, 80), 1) + 1e-13 * rng.random()] for _ in range(n)]


def test_windows_equal_the_reference_per_device_and_logger_at_both_resolutions():
    rows = some_rows()
    store = Store()
    # bundles of 50 rows, out of event-time order
    store.apply(bundled(rows, 50))
    for what, index, names in ((DEVICE, 1, {r[1] for r in rows}), (LOGGER, 0, {r[0] for r in rows})):
        for name in names:
            for resolution, size in history.RESOLUTIONS.items():
                got = {s: figures(w) for s, w in store.windows(what, name, resolution)}
                want = reference(rows, index, name, size)
                assert got.keys() == want.keys()
                for start, (count, average, low, high) in want.items():
                    assert got[start][0] == count and got[start][2:] == (low, high)
                    assert got[start][1] == pytest.approx(average, abs=1e-9)


def test_a_bundle_read_again_is_not_counted_twice():
    rows = some_rows(600)
    bundles = bundled(rows, 60)
    once, twice = Store(), Store()
    once.apply(bundles)
    twice.apply(bundles[:7])
    twice.data, twice.sources = dict(twice.data), {}  # a crash: the partition state was not written ...
    twice.apply(bundles[4:])  # ... so the last three bundles are read again, then the rest
    assert meaning(once.data) == meaning(twice.data)


def test_readings_sent_again_after_an_input_replay_are_counted_once():
    """After a crash ``ingest`` reads its input partition again from its state
    and sends those readings again, in bundles cut differently."""
    rows = some_rows(1200)
    first = [(n, 0, [[*row, i] for i, row in enumerate(rows[n * 100:(n + 1) * 100], n * 100)]) for n in range(8)]
    again = [(8 + n, 0, [[*row, i] for i, row in enumerate(rows[n * 70 + 350:(n + 1) * 70 + 350], n * 70 + 350)])
             for n in range(12)]  # input offsets 350 to 1189, in bundles of 70
    once, twice = Store(), Store()
    once.apply([(n, 0, [[*row, i] for i, row in enumerate(rows[:1190])]) for n in range(1)])
    twice.apply(first)
    applied = twice.apply(again)
    assert applied.repeated == 800 - 350
    assert meaning(twice.data) == meaning(once.data)
    assert twice.sources == {"0": 1189}


def in_steps(store, bundles, max_windows):
    """Apply ``bundles`` as the flow does with a window budget: each run
    continues after the last bundle the one before took. Yields each run's result."""
    rest = bundles
    while rest:
        applied = store.apply(rest, max_windows=max_windows)
        yield applied
        done = applied.stopped_after if applied.stopped_after is not None else rest[-1][0]
        rest = [b for b in rest if b[0] > done]


def test_a_run_stopped_at_its_window_budget_continues_where_it_stopped():
    rows = some_rows(3000)
    bundles = bundled(rows, 30)
    whole, steps = Store(), Store()
    whole.apply(bundles)
    runs = 0
    for applied in in_steps(steps, bundles, max_windows=200):
        runs += 1
        assert len(applied.windows) < 200 + 30 * 4  # the budget, overshot by one bundle at most
    assert runs > 5 and meaning(steps.data) == meaning(whole.data)


def test_partly_written_state_is_completed_without_doubling():
    """After a crash some windows of a run were written and others not: the
    run again adds each bundle once to every window."""
    rows = some_rows(400)
    bundles = bundled(rows, 40)
    whole = Store()
    whole.apply(bundles)
    torn = Store()
    applied = apply_bundles(bundles, NOW, KEEP_ALL, torn.stored)
    for n, (key, window) in enumerate(applied.windows.items()):
        if n % 2:
            torn.data[key] = window.to_json(epoch=1)  # half of the writes reached the changelog
    torn.apply(bundles)
    assert meaning(torn.data) == meaning(whole.data)


class KeptStore(Store):
    """A store that, like the flow, keeps the windows it read or wrote in
    memory and hands the same objects to the next run."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: dict[bytes, history.StoredWindow] = {}

    def stored(self, key):
        if key not in self.kept:
            self.kept[key] = self.stored_fresh(key)
        return self.kept[key]

    def stored_fresh(self, key):
        return super().stored(key)


def test_windows_kept_in_memory_between_runs_stay_what_was_written():
    """The flow keeps windows between runs and a run changes them in place:
    what it keeps must always be what the store holds, or a later run would
    build on figures that were never written. Also after a crash that wrote
    half a run (the slow path, on kept windows)."""
    rows = some_rows(3000)
    bundles = bundled(rows, 30)
    whole = Store()
    whole.apply(bundles)
    kept = KeptStore()
    torn = apply_bundles(bundles[:20], NOW, KEEP_ALL, Store().stored).windows
    for n, (key, window) in enumerate(torn.items()):
        if n % 2:
            kept.data[key] = window.to_json(epoch=1)  # a crash: half of a run's writes reached the changelog
    for _applied in in_steps(kept, bundles, max_windows=150):
        for key, window in kept.kept.items():
            assert window.to_json(epoch=1) == kept.stored_fresh(key).to_json(epoch=1)
    assert meaning(kept.data) == meaning(whole.data)


def test_retention_from_now_and_readings_too_old_for_every_resolution_are_only_counted():
    retention = Retention(minute_days=1 / 24, hour_days=0.5)  # an hour of minutes, 12 hours of hours
    rows = [["g", "MRI 1", NOW - 600, 50.0],          # both resolutions
            ["g", "MRI 1", NOW - 2 * 3600, 51.0],     # hours only
            ["g", "MRI 1", NOW - 13 * 3600, 52.0],    # too old for both
            ["g", "MRI 1", NOW - 20 * 86400, 53.0]]   # too old for both
    store = Store()
    applied = store.apply(bundled(rows, 10), retention=retention)
    assert applied.too_old == 2
    assert [w.count for _s, w in store.windows(DEVICE, "MRI 1", "m")] == [1]
    assert sum(w.count for _s, w in store.windows(DEVICE, "MRI 1", "h")) == 2
    later = NOW + 3600
    keys = [k for k in store.data if k.startswith(b"w")]
    spans = [history.expired_span(what, name, "m", later, retention)
             for what, name in ((DEVICE, "MRI 1"), (LOGGER, "g"))]
    gone = {k for k in keys for low, high in spans if low <= k < high}
    start = int((NOW - 600) // 60) * 60
    assert gone == {history.window_key(DEVICE, "MRI 1", "m", start), history.window_key(LOGGER, "g", "m", start)}


def test_each_window_keeps_its_newest_reading_by_event_time_not_arrival():
    store = Store()
    applied = store.apply([(1, 0, [["g1", "MRI 1", NOW - 10, 40.0, 0], ["g2", "MRI 1", NOW - 12, 41.0, 1]]),
                           (2, 0, [["g1", "MRI 1", NOW - 30, 70.0, 2]])])
    minute = int((NOW - 10) // 60) * 60
    assert store.data[history.window_key(DEVICE, "MRI 1", "m", minute)]["new"] == [NOW - 10, 40.0, "g1"]
    assert store.data[history.window_key(LOGGER, "g2", "h", int((NOW - 12) // 3600) * 3600)]["new"] == [
        NOW - 12, 41.0, "MRI 1"]
    assert applied.pairs == {("g1", "MRI 1"), ("g2", "MRI 1")}
    assert history.pair_names(history.pair_key("g1 <&>", "MRI Ω")) == ("g1 <&>", "MRI Ω")


def test_steps_merge_stored_windows_exactly():
    rows = some_rows(2000)
    store = Store()
    store.apply(bundled(rows, 500))
    device = "MRI 12"
    for step in history.STEPS:
        query = Range(NOW - 3 * 3600 - 7, NOW + 1, step)
        stored = store.windows(DEVICE, device, query.source())
        points = merge_points(stored, query)
        want = reference(rows, 1, device, step)
        want = {s: v for s, v in want.items() if query.start <= s < query.end}
        assert [p["start"] for p in points] == [history.iso(s) for s in sorted(want)]
        for p, s in zip(points, sorted(want), strict=True):
            count, average, low, high = want[s]
            assert (p["count"], p["min"], p["max"]) == (count, low, high)
            assert p["average"] == pytest.approx(average, abs=1e-9)


def test_keys_sort_by_name_resolution_and_time():
    keys = [history.window_key(DEVICE, "MRI 1", "m", s) for s in (120, 60, 10_000_000_000, 3600)]
    assert sorted(keys) == [history.window_key(DEVICE, "MRI 1", "m", s) for s in (60, 120, 3600, 10_000_000_000)]
    # no name's keys fall inside another name's range
    assert not history.window_key(DEVICE, "MRI 10", "m", 60).startswith(history.window_prefix(DEVICE, "MRI 1", "m"))


@pytest.mark.parametrize("start, end, step, message", [
    (None, "2026-01-01T00:00:00Z", "60", "from is missing"),
    ("2026-01-01T00:00:00Z", "yesterday", "60", "to is not an ISO-8601 time"),
    ("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z", "60", "to must be after from"),
    ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "61", "step must be one of"),
    ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "x", "step must be one of"),
    ("2000-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "60", "more than 100000 steps"),
])
def test_bad_ranges_are_refused_with_a_reason(start, end, step, message):
    with pytest.raises(QueryError, match=message):
        Range.parse(start, end, step)


def test_both_time_zone_forms_are_accepted():
    a = Range.parse("2026-01-01T00:00:00Z", "2026-01-01T01:30:00+01:00", "60")
    assert a.end - a.start == 1800
    b = Range.parse("2026-01-01T00:00:00Z", "2026-01-01T02:00:00+01:00", "300")
    assert (b.end - b.start, b.step) == (3600, 300)


def test_a_moved_loggers_newest_reading_for_each_device_is_its_own_there():
    """A device's view lists each of its loggers with its newest reading for
    that device: a logger that moved has readings for several, and its
    windows, shared by all of them, keep the newest per device."""
    rows = some_rows(2000, seed=11)
    store = Store()
    store.apply(bundled(rows, 40))
    for guid in {row[0] for row in rows}:
        newest_first = [window for _start, window in sorted(
            ((history.start_of_key(k), history.StoredWindow.from_json(v)) for k, v in store.data.items()
             if k.startswith(history.window_prefix(LOGGER, guid, "h"))), key=lambda item: -item[0])]
        for device in {row[1] for row in rows}:
            mine = [(row[2], row[3]) for row in rows if row[0] == guid and row[1] == device]
            expected = list(max(mine)) if mine else None
            assert history.newest_for(newest_first, device) == expected, (guid, device)
