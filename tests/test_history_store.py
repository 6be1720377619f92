"""The history flow's work over a large RocksDB partition, without a broker.
Removing expired windows: a pass over a large fleet is spread over calls
of bounded size and, once complete, has removed every expired window of
every logger and device, and nothing else. Answering for the device list:
the event loop runs other tasks while a large partition is read, and a
partition that moves meanwhile is left out of the answer."""

from __future__ import annotations

import asyncio
from types import MethodType, SimpleNamespace

import faust
import pytest

from humidity.core import history
from humidity.core.history import DEVICE, LOGGER, Retention
from humidity.flow import history as history_flow
from humidity.flow.history import HistoryFlow
from humidity.plumbing import changelogs
from humidity.plumbing.tables import raw_table

NOW = 1_800_000_000.0
RETENTION = Retention(minute_days=1, hour_days=30)
EXPIRED = {"m": NOW - 2 * 86400, "h": NOW - 60 * 86400}
KEPT = {"m": NOW - 600, "h": NOW - 86400}


def start(resolution: str, at: float) -> int:
    size = history.RESOLUTIONS[resolution]
    return int(at // size * size)


@pytest.fixture
def flow(tmp_path, monkeypatch):
    """What the history flow's methods tested here use: the history table of
    a worker (partition 0, owned unless taken out of ``owning``; its
    changelog records are not sent), the retention, and ``newest``."""
    app = faust.App("t-history-store", broker="kafka://127.0.0.1:9", store="rocksdb://", datadir=str(tmp_path),
                    topic_partitions=1)
    table = raw_table(app, "history", help="test")
    monkeypatch.setattr(changelogs, "write_now", lambda *args: None)
    monkeypatch.setattr(table, "partition_for_key", lambda key: 0)
    flow = SimpleNamespace(tables=SimpleNamespace(history_windows=table), retention=RETENTION,
                           db=table.data._db_for_partition(0), owning={0})
    flow.owned = lambda wanted: sorted(wanted & flow.owning)
    flow.newest = MethodType(HistoryFlow.newest, flow)
    return flow


def fleet(flow, loggers: int, devices: int) -> tuple[set[bytes], set[bytes]]:
    """Pairs, and an expired and a kept window per resolution for every
    logger and device: (expired keys, kept keys)."""
    expired, kept = set(), set()
    names = {(LOGGER, f"g-{i:05d}") for i in range(loggers)} | {(DEVICE, f"MRI {d}") for d in range(devices)}
    for i in range(loggers):
        flow.db.put(history.pair_key(f"g-{i:05d}", f"MRI {i % devices}"), b'{"epoch":1}')
    for what, name in names:
        for resolution in history.RESOLUTIONS:
            expired.add(history.window_key(what, name, resolution, start(resolution, EXPIRED[resolution])))
            kept.add(history.window_key(what, name, resolution, start(resolution, KEPT[resolution])))
    for key in expired | kept:
        flow.db.put(key, b'{"epoch":1}')
    return expired, kept


def stored(flow) -> set[bytes]:
    return {key for key, _value in flow.db.items() if key.startswith(b"w")}


def full_pass(flow, now: float) -> int:
    """Calls until a pass is complete (bounded: a pass that never ends fails)."""
    sweeping: dict = {}
    for calls in range(1, 20):
        if HistoryFlow.sweep(flow, 0, now, {}, sweeping):
            return calls
    raise AssertionError("the pass did not complete")


def test_a_pass_over_many_loggers_takes_several_bounded_calls_and_removes_only_what_expired(flow, monkeypatch):
    monkeypatch.setattr(history_flow, "SWEEP_LOGGERS", 100)
    expired, kept = fleet(flow, loggers=250, devices=7)
    cached = {key: {} for key in expired | kept}
    sweeping: dict = {}
    before = stored(flow)

    assert HistoryFlow.sweep(flow, 0, NOW, cached, sweeping) is False
    removed = before - stored(flow)
    # the first 100 loggers' expired windows, and those of the devices they are on
    first_loggers = {history.window_prefix(LOGGER, f"g-{i:05d}", r) for i in range(100) for r in "mh"}
    assert {k for k in removed if k[:2] == b"wl"} == {k for k in expired if k[:-11] in first_loggers}
    assert {k for k in removed if k[:2] == b"wd"} == {k for k in expired if k[:2] == b"wd"}

    assert HistoryFlow.sweep(flow, 0, NOW, cached, sweeping) is False
    assert HistoryFlow.sweep(flow, 0, NOW, cached, sweeping) is True
    assert stored(flow) == kept
    assert cached.keys() == kept
    assert sweeping == {}  # the next call starts a new pass from the first logger


def test_a_new_pass_starts_over_and_finds_windows_expired_since(flow, monkeypatch):
    monkeypatch.setattr(history_flow, "SWEEP_LOGGERS", 100)
    _expired, kept = fleet(flow, loggers=150, devices=3)
    assert full_pass(flow, NOW) == 2
    assert stored(flow) == kept
    later = NOW + 2 * 86400  # the kept minute windows have expired by then
    assert full_pass(flow, later) == 2
    assert stored(flow) == {k for k in kept if history.start_of_key(k) >= RETENTION.cutoff(k[-12:-11].decode(), later)}
    assert all(k[-12:-11] == b"h" for k in stored(flow))


def answer_devices(flow, ticks_every_turn: list[int], move_after_ticks: int | None = None) -> dict:
    """``local_devices`` run on an event loop beside a task that counts the
    loop's turns (and, after ``move_after_ticks`` of them, takes partition 0
    from this worker)."""

    async def main():
        answering = asyncio.ensure_future(HistoryFlow.local_devices(flow, {0}, NOW))

        async def ticker():
            while not answering.done():
                ticks_every_turn[0] += 1
                if ticks_every_turn[0] == move_after_ticks:
                    flow.owning = set()
                await asyncio.sleep(0)

        await asyncio.gather(answering, ticker())
        return answering.result()

    return asyncio.run(main())


def test_the_device_list_of_a_large_partition_is_read_in_steps_with_the_loop_running_between(flow, monkeypatch):
    monkeypatch.setattr(history_flow, "ANSWER_STEP", 100)
    fleet(flow, loggers=2_500, devices=700)
    ticks = [0]
    answer = answer_devices(flow, ticks)
    assert answer["partitions"] == [0]
    assert {device: len(entry["loggers"]) for device, entry in answer["devices"].items()} == {
        f"MRI {d}": len(range(d, 2_500, 700)) for d in range(700)}
    # 2,500 pairs and 700 devices in steps of 100: the other task ran between them
    assert ticks[0] >= 2_500 // 100 + 700 // 100


def test_a_partition_that_moves_while_it_is_read_is_left_out_of_the_answer(flow, monkeypatch):
    monkeypatch.setattr(history_flow, "ANSWER_STEP", 100)
    fleet(flow, loggers=2_500, devices=700)
    answer = answer_devices(flow, [0], move_after_ticks=5)
    assert answer == {"partitions": [], "devices": {}}
