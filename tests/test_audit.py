"""The audit trail's hash chain and its CSV export (pure)."""

import csv
import io

import orjson
import pytest

from humidity.core import audit
from humidity.core.alarm_limits import parse_config
from humidity.core.alarms import LoggerState, apply_readings

CONFIG = parse_config('[types.MRI]\nlow = 40\nhigh = 60\n')


def alarm_events():
    state = LoggerState("MRI 1", "g1")
    events = apply_readings(state, CONFIG, [(t, 65.0) for t in range(0, 130, 10)], wall=1_700_000_000.0)
    events += apply_readings(state, CONFIG, [(200, 50.0)], wall=1_700_000_100.0)
    return events


def chain(entries):
    tail = audit.Tail()
    return [tail.link(entry, source) for source, entry in enumerate(entries)]


def entries():
    raised, cleared = alarm_events()
    return [audit.from_alarm_event(raised),
            audit.notified(raised, "webhook", "https://hooks.example/x", "delivered", 1, "2026-01-01T00:00:00Z"),
            {**audit.from_alarm_event({**raised, "state": "acknowledged"}), "id": raised["alarm_id"] + ".ack",
             "user": "olivia", "comment": "=HYPERLINK(\"http://evil\")"},
            audit.from_alarm_event(cleared)]


def rows(records):
    return [(offset, orjson.dumps(r)) for offset, r in enumerate(records)]


def test_an_untouched_chain_verifies_and_every_record_links_to_the_one_before():
    records = chain(entries())
    assert [r["seq"] for r in records] == [1, 2, 3, 4]
    assert records[0]["prev"] == audit.GENESIS
    assert all(b["prev"] == a["hash"] for a, b in zip(records, records[1:], strict=False))
    verdict = audit.verify(rows(records))
    assert verdict.ok and verdict.records == 4 and verdict.last_hash == records[-1]["hash"]


@pytest.mark.parametrize("tamper,where,why", [
    (lambda rs: rs[:1] + rs[2:], 1, "prev does not match"),  # a record removed
    (lambda rs: [rs[0], {**rs[1], "outcome": "failed"}, *rs[2:]], 1, "hash does not match"),  # changed
    (lambda rs: [rs[0], rs[2], rs[1], rs[3]], 1, "prev does not match"),  # reordered
    (lambda rs: [*rs, {**rs[-1], "id": "forged", "seq": 5, "prev": rs[-1]["hash"]}], 4, "hash does not match"),
    (lambda rs: [*rs[:2], {**rs[1], "seq": 3}, *rs[2:]], 2, "prev does not match"),  # a copy inserted
])
def test_removing_changing_reordering_or_appending_a_forged_record_breaks_the_chain_there(tamper, where, why):
    verdict = audit.verify(rows(tamper(chain(entries()))))
    assert not verdict.ok and verdict.records == where
    assert f"record at offset {where}" in verdict.problem and why in verdict.problem


def test_a_forged_record_with_a_recomputed_hash_still_needs_the_right_seq_and_prev():
    records = chain(entries())
    forged = {**records[1], "id": "forged", "user": "mallory"}
    forged["hash"] = audit.digest(forged)  # the forger recomputes it, but copies seq/prev of record 2
    verdict = audit.verify(rows([*records, forged]))
    assert not verdict.ok and verdict.records == 4 and "prev does not match" in verdict.problem
    assert not audit.verify([(0, b"not json")]).ok


def test_an_entry_reported_twice_or_read_again_from_the_intake_is_chained_once():
    tail = audit.Tail()
    first = entries()[0]
    assert tail.link(first, 0) is not None
    assert tail.link(first, 0) is None  # the same intake offset, read again after a crash
    assert tail.link(first, 1) is None  # the same event reported twice (same id)
    later = audit.Tail.of([tail.link(entries()[1], 2)])  # a new owner reads the chain's end back
    assert later.link(entries()[1], 2) is None and later.link(entries()[1], 3) is None
    assert later.link(entries()[3], 3)["seq"] == 3


def test_export_is_csv_in_a_time_range_with_formulas_defused():
    records = chain(entries())
    table = list(csv.DictReader(io.StringIO(audit.export_csv(records))))
    assert [r["type"] for r in table] == ["raised", "notified", "acknowledged", "cleared"]
    assert table[2]["comment"] == "'=HYPERLINK(\"http://evil\")" and table[2]["user"] == "olivia"
    assert table[1]["channel"] == "webhook" and table[1]["outcome"] == "delivered"
    assert list(table[0]) == list(audit.COLUMNS)
    first = records[0]["time"]
    only_later = list(csv.DictReader(io.StringIO(audit.export_csv(records, start="2025-01-01T00:00:00Z"))))
    assert [r["type"] for r in only_later] == ["notified"]  # the others happened in 2023
    assert list(csv.DictReader(io.StringIO(audit.export_csv(records, end=first)))) == []
