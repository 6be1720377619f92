"""The alarm flow's index of a partition (the loggers that may go OFFLINE,
and the active alarms), read from a large RocksDB partition without a
broker: in steps with the event loop running between them, the same as
read in one piece, and left to the handler if the partition moves."""

from __future__ import annotations

import asyncio
import time
from types import MethodType, SimpleNamespace

import faust
import orjson
import pytest

from humidity.core import aggregate, alarms
from humidity.flow import alarms as alarms_flow
from humidity.flow.alarms import AlarmsFlow
from humidity.plumbing.stream import GenerationCache
from humidity.plumbing.tables import raw_table

LOGGERS = 2_500
STEP = 100


@pytest.fixture
def flow(tmp_path, monkeypatch):
    """What the index methods use: the alarm-states table of a worker
    (partition 0, owned unless taken out of ``owning``) with LOGGERS states,
    every fifth OFFLINE and the rest heard at different times."""
    app = faust.App("t-alarm-index", broker="kafka://127.0.0.1:9", store="rocksdb://", datadir=str(tmp_path),
                    topic_partitions=1)
    table = raw_table(app, "alarm_states", help="test")
    db = table.data._db_for_partition(0)
    now = time.time()
    for i in range(LOGGERS):
        state = alarms.LoggerState(f"MRI {i % 90}", f"0-ZZZ{i:08d}-08K", now - 30, 55.0, now - (i % 600), offset=i)
        if i % 5 == 0:
            state.active = {"OFFLINE": {"kind": "OFFLINE", "alarm_id": f"{i:020d}", "device": state.device,
                                        "guid": state.guid, "since": "2026-12-05T20:00:00Z", "value": None,
                                        "limit": 300}}
        db.put(aggregate.sighting_key(state.device, state.guid).encode(), orjson.dumps(state.to_json()))
    db.put(table.data.offset_key, b"2499")
    monkeypatch.setattr(alarms_flow, "INDEX_STEP", STEP)
    monkeypatch.setattr(alarms_flow, "owned_partitions", lambda app, topic: sorted(flow.owning))
    flow = SimpleNamespace(tables=SimpleNamespace(alarm_states=table), tick_seconds=5.0, owning={0}, app=None,
                           topics=SimpleNamespace(alarm_readings=SimpleNamespace(get_topic_name=lambda: "t")))
    flow._read_index = MethodType(AlarmsFlow._read_index, flow)
    flow._index_in_steps = MethodType(AlarmsFlow._index_in_steps, flow)
    flow._file_states = AlarmsFlow._file_states
    flow.index = GenerationCache(flow._read_index)
    return flow


def prepare(flow, move_after_ticks: int | None = None) -> int:
    """Run ``_index_in_steps`` for partition 0 of generation 3 beside a task
    that counts the event loop's turns (and takes the partition away after
    ``move_after_ticks``); the turns counted."""
    work = SimpleNamespace(partition=0, generation=3)

    async def main() -> int:
        ticks = 0
        preparing = asyncio.create_task(flow._index_in_steps(work))
        while not preparing.done():
            ticks += 1
            if ticks == move_after_ticks:
                flow.owning.clear()
            await asyncio.sleep(0)
        await preparing
        return ticks

    return asyncio.run(main())


def contents(index: dict) -> tuple[list[str], dict]:
    return sorted(index["silence"].due(time.time() + 10**6, 0)), index["active"]


def test_the_index_is_read_in_steps_with_the_loop_running_between_and_equals_one_read_in_one_piece(flow):
    ticks = prepare(flow)
    assert ticks >= LOGGERS // STEP, "the event loop ran other tasks between the steps"
    assert flow.index.built(0, 3)
    flow.index.build = lambda partition: pytest.fail("the handler read the partition again")
    prepared = contents(flow.index.for_partition(0, 3))
    expected = contents(flow._read_index(0))
    assert prepared == expected
    silent, active = prepared
    assert len(active) == LOGGERS // 5 and len(silent) == LOGGERS - LOGGERS // 5


def test_an_index_whose_partition_moves_while_it_is_read_is_left_to_the_handler(flow):
    prepare(flow, move_after_ticks=5)
    assert not flow.index.built(0, 3)
    assert len(contents(flow.index.for_partition(0, 3))[1]) == LOGGERS // 5, "read in one piece instead"


def test_an_index_read_for_an_earlier_generation_does_not_replace_a_later_ones(flow):
    later = flow.index.for_partition(0, 4)
    flow.index.put(0, 3, {"silence": None, "active": {}})
    assert flow.index.for_partition(0, 4) is later
