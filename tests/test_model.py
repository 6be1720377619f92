"""The whole counting path, model-based: streams in which loggers move
between devices (and back), malformed messages, several partitions; any
batching, any interleaving of producers on the sightings topic, rounds
skipped, owners that change, crashes that cut a batch's changelogs short and
redeliver. Every summary must equal the reference at its ``as_of``
(no broker: :mod:`tests.pipeline_model`)."""

from __future__ import annotations

import os
import random

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from humidity.core.simulation import INVALID_KINDS, reading_doc
from tests.pipeline_model import NOW, Pipeline
from tests.reference import assert_matches

#: Names as real sites write them: spaces, quotes, markup, other scripts.
DEVICES = ("MRI 1", "CT 1", 'PET-CT "north"', "<b>SPECT</b> 2", "МРТ 3", "CT 1 ")
GUIDS = ("0-ZZZ12345678-001A", "0-ZZZ12345678-002B", "g 3", "ログ4", "0-ZZZ12345678-005E")
MALFORMED = sorted(INVALID_KINDS)
EXAMPLES = int(os.environ.get("HUMIDITY_MODEL_EXAMPLES", "300"))

message = st.one_of(
    st.tuples(st.sampled_from(GUIDS), st.sampled_from(DEVICES), st.integers(0, 1000).map(lambda n: n / 10)),
    st.sampled_from(MALFORMED),
)
partition_index = st.integers(0, 2)
action = st.one_of(
    st.tuples(st.just("ingest"), partition_index, st.integers(1, 5)),
    st.tuples(st.just("close"), partition_index, st.integers(0, 2)),
    st.tuples(st.just("deliver"), partition_index, st.integers(0, 3)),
    st.tuples(st.just("count"), partition_index, st.integers(1, 5)),
    st.tuples(st.just("move_input"), partition_index, st.integers(0, 3), st.integers(0, 3), st.booleans()),
    st.tuples(st.just("move_sightings"), partition_index, st.integers(0, 3),
              st.sampled_from(("", "totals", "entries", "both"))),
    st.tuples(st.just("publish")),
)


def record(item, rng_seed: int):
    """(raw, reading doc or None) of one drawn message."""
    if isinstance(item, str):
        return INVALID_KINDS[item](random.Random(rng_seed)), None
    guid, device, humidity = item
    doc = reading_doc(guid, device, NOW, humidity)
    return orjson.dumps(doc), doc


def run(streams, actions) -> Pipeline:
    pipeline = Pipeline([[record(item, i) for i, item in enumerate(stream)] for stream in streams])
    partitions = pipeline.partitions
    last = None
    for name, *args in actions:
        if name == "publish":
            summary = pipeline.publish()
        else:
            args[0] %= partitions
            getattr(pipeline, {"close": "close_round"}.get(name, name))(*args)
            summary = pipeline.publish() if name in ("close", "count") else None
        if summary is not None:
            check(pipeline, summary, last)
            last = summary
    pipeline.drain()
    summary = pipeline.publish() or last
    assert summary is not None, "no summary after every partition closed its rounds"
    assert summary["as_of"] == {str(p): len(s) - 1 for p, s in enumerate(pipeline.inputs)}
    check(pipeline, summary, None)
    return pipeline


def check(pipeline: Pipeline, summary: dict, before: dict | None) -> None:
    assert_matches(summary, pipeline.expected(summary["as_of"]))
    if before is not None:
        for p, offset in before["as_of"].items():
            assert summary["as_of"][p] >= offset
        assert summary["total_sensors"] >= before["total_sensors"]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams=st.lists(st.lists(message, max_size=14), min_size=1, max_size=3),
       actions=st.lists(action, max_size=60))
@example(streams=[[("g1", "MRI 1", 50.0), ("g1", "CT 1", 51.0)], [("g1", "MRI 1", 52.0)]],
         actions=[("ingest", 0, 2), ("ingest", 1, 1)])
@example(streams=[[("g1", "MRI 1", 50.0)]],  # a new owner closes a round before re-sending lost forwards
         actions=[("ingest", 0, 1), ("move_input", 0, 0, 0, True), ("close", 0, 0), ("deliver", 0, 0),
                  ("count", 0, 1)])
@example(streams=[[("g1", "MRI 1", 50.0)]],  # a paused owner's forwards arrive after its successor's end
         actions=[("ingest", 0, 1), ("move_input", 0, 0, 0, False), ("close", 0, 0), ("deliver", 0, 1),
                  ("count", 0, 1)])
@example(streams=[[("g1", "MRI 1", 50.0), ("g1", "CT 1", 51.0)]],  # a new owner re-reads part of what it lost
         actions=[("ingest", 0, 1), ("ingest", 0, 1), ("move_input", 0, 0, 0, True), ("ingest", 0, 1),
                  ("close", 0, 0), ("deliver", 0, 0), ("deliver", 0, 0), ("count", 0, 2)])
def test_every_summary_equals_the_reference_at_its_cut(streams, actions):
    run(streams, actions)
