"""Maintenance silences: what they match, when they end, and how the alarm
partition and the escalation treat the alarms they cover (no broker)."""

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from humidity.core import maintenance
from humidity.core.acks import due_for_escalation
from humidity.core.alarm_limits import load_config
from humidity.core.alarm_partition import AlarmPartition
from humidity.core.maintenance import Silence, SilenceError
from humidity.core.settings import DEFAULT_ALARMS_FILE
from tests.test_alarms import Loggers, bundle, kinds

CONFIG = load_config(DEFAULT_ALARMS_FILE)
T0 = 1_700_000_000.0


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def silence(sid="s1", device="CT 3", guid=None, kinds=(), start=T0, until=T0 + 3600) -> Silence:
    return Silence(sid, device, guid, tuple(kinds), start, until, "annual service", "olivia")


def test_a_request_becomes_a_silence_with_who_set_it_and_why():
    made = maintenance.from_request({"device": "CT 3", "until": iso(T0 + 7200), "reason": " annual service, "
                                     "ticket 4711\x00 ", "kinds": ["HIGH", "LOW"]}, "olivia", T0, "abc")
    assert made.to_json() == {"id": "abc", "device": "CT 3", "guid": None, "kinds": ["HIGH", "LOW"],
                              "from": "2023-11-14T22:13:20.000000Z", "until": "2023-11-15T00:13:20.000000Z",
                              "reason": "annual service, ticket 4711", "created_by": "olivia"}
    assert Silence.from_json(made.to_stored()) == made


@pytest.mark.parametrize("body,message", [
    ({"device": "CT 3", "until": iso(T0 - 1), "reason": "r"}, "until must be in the future"),
    ({"device": "CT 3", "until": iso(T0), "reason": "r"}, "until must be in the future"),
    ({"device": "CT 3", "until": iso(T0 + 7 * 86400 + 1), "reason": "r"}, "at most 7 days ahead"),
    ({"device": "CT 3", "until": "2023-11-15T00:00:00", "reason": "r"}, "needs a time zone"),
    ({"device": "CT 3", "until": "tomorrow", "reason": "r"}, "not an ISO-8601 time"),
    ({"device": "CT 3", "reason": "r"}, "until is required"),
    ({"device": "CT 3", "until": iso(T0 + 60)}, "reason is required"),
    ({"device": "CT 3", "until": iso(T0 + 60), "reason": "  \x07 "}, "reason is required"),
    ({"device": "CT 3", "until": iso(T0 + 60), "reason": "x" * 1001}, "reason is longer"),
    ({"until": iso(T0 + 60), "reason": "r"}, "device or guid is required"),
    ({"device": 3, "until": iso(T0 + 60), "reason": "r"}, "device must be a string"),
    ({"device": "CT 3", "until": iso(T0 + 60), "reason": "r", "kinds": ["HOT"]}, "kinds must be"),
    ({"device": "CT 3", "until": iso(T0 + 60), "reason": "r", "kinds": []}, "kinds must be"),
])
def test_a_bad_request_is_refused_with_one_line(body, message):
    with pytest.raises(SilenceError, match=message):
        maintenance.from_request(body, "olivia", T0, "abc")


def test_device_and_logger_names_are_kept_exactly_as_the_readings_spell_them():
    odd = " MRI\t12 \n<b>"
    body = {"device": odd, "guid": "\x00g", "until": iso(T0 + 60), "reason": "r"}
    made = maintenance.from_request(body, "o", T0, "a")
    assert (made.device, made.guid) == (odd, "\x00g") and made.matches(odd, "\x00g", "HIGH")


def test_seven_days_ahead_exactly_is_accepted():
    assert maintenance.from_request({"guid": "g1", "until": iso(T0 + 7 * 86400), "reason": "r"}, "o", T0, "a")


def test_a_silence_matches_by_device_by_guid_and_by_kind():
    on_device, on_logger = silence(device="CT 3"), silence(device=None, guid="g1")
    both, high_only = silence(device="CT 3", guid="g1"), silence(device="CT 3", kinds=["HIGH"])
    assert on_device.matches("CT 3", "any", "OFFLINE") and not on_device.matches("CT 30", "any", "HIGH")
    assert on_logger.matches("MRI 1", "g1", "LOW") and not on_logger.matches("MRI 1", "g2", "LOW")
    assert both.matches("CT 3", "g1", "RATE") and not both.matches("CT 3", "g2", "RATE")
    assert not both.matches("MRI 1", "g1", "RATE")
    assert high_only.matches("CT 3", "g", "HIGH") and not high_only.matches("CT 3", "g", "LOW")


def test_a_silence_ends_at_its_until_exactly():
    s = silence(start=T0, until=T0 + 60)
    assert not s.active_at(T0 - 0.001) and s.active_at(T0) and s.active_at(T0 + 59.999)
    assert not s.active_at(T0 + 60)
    assert maintenance.expired([s], T0 + 59.999) == [] and maintenance.expired([s], T0 + 60) == [s]


@given(st.lists(st.tuples(st.sampled_from(["CT 3", "MRI 1"]), st.sampled_from([None, "g1"]),
                          st.floats(1, 5000)), max_size=6), st.floats(0, 6000))
def test_the_covering_silence_is_an_active_matching_one_that_ends_last(specs, dt):
    silences = [silence(f"s{i}", device, guid, (), T0, T0 + length) for i, (device, guid, length) in enumerate(specs)]
    found = maintenance.covering(silences, "CT 3", "g1", "HIGH", T0 + dt)
    candidates = [s for s in silences if s.device == "CT 3" and T0 + dt < s.until]
    assert (found is None) == (not candidates)
    if found is not None:
        assert found.until == max(s.until for s in candidates)


def test_commands_apply_once_and_a_command_read_again_reports_the_same_records():
    s = silence()
    entry, records = maintenance.apply(None, maintenance.create_command(s), 5)
    assert entry == s and [r["type"] for r in records] == ["silence-created"]
    assert records[0]["comment"] == "annual service" and records[0]["user"] == "olivia"
    again, same = maintenance.apply(entry, maintenance.create_command(s), 5)
    assert again == entry and same == records
    assert maintenance.apply(entry, maintenance.create_command(s), 9) == (None, [])
    ended, records = maintenance.apply(entry, maintenance.end_command("s1", "victor", T0 + 60), 6)
    assert (ended.ended_at, ended.ended_by, ended.active_at(T0 + 61)) == (T0 + 60, "victor", False)
    assert [(r["type"], r["user"]) for r in records] == [("silence-ended", "victor")]
    assert maintenance.apply(ended, maintenance.end_command("s1", maintenance.EXPIRED, T0 + 3600), 7) == (None, [])
    assert maintenance.apply(ended, maintenance.end_command("s1", "victor", T0 + 60), 6)[1] == records


def test_an_expired_silence_ends_at_its_until_not_when_the_leader_noticed():
    ended, records = maintenance.apply(silence(until=T0 + 60), maintenance.end_command("s1", "expired", T0 + 62), 1)
    assert ended.ended_at == T0 + 60 and records[0]["time"] == "2023-11-14T22:14:20.000000Z"


def breach(partition, loggers, offset, device="CT 3", guid="g1", value=75.0, start=0):
    return partition.apply(offset, bundle(guid, device, range(start, start + 70, 10), value), loggers, list,
                           CONFIG, T0 + start + 60, loggers.whereabouts)


def tick(partition, loggers, offset, wall):
    events = partition.apply(offset, {"tick": wall}, loggers, list, CONFIG, wall, loggers.whereabouts)
    partition.finish_batch(offset, loggers.states.values(), epoch=1)
    return events


def test_a_covered_alarm_is_raised_marked_and_notified_once_when_its_silence_ends():
    partition, loggers = AlarmPartition(1, silences=[silence(until=T0 + 600)]), Loggers()
    events = breach(partition, loggers, 0) + breach(partition, loggers, 1, device="CT 4")
    partition.finish_batch(1, loggers.states.values(), epoch=1)
    assert kinds(events) == [("HIGH", "raised"), ("HIGH", "raised")]
    assert events[0]["silenced"] == {"id": "s1", "until": "2023-11-14T22:23:20.000000Z"}
    assert "silenced" not in events[1], "CT 4 is not under the silence"
    assert tick(partition, loggers, 2, T0 + 599) == []
    after = tick(partition, loggers, 3, T0 + 600)
    assert kinds(after) == [("HIGH", "raised")] and after[0]["after_silence"] == "s1" and "silenced" not in after[0]
    assert after[0]["alarm_id"] == events[0]["alarm_id"] and after[0]["id"] != events[0]["id"]
    assert tick(partition, loggers, 4, T0 + 700) == [], "notified once"
    active = [a for a in partition.active.values() if a["device"] == "CT 3"]
    assert "silenced" not in active[0] and active[0]["notified_at"] == "2023-11-14T22:23:20.000000Z"


def test_an_alarm_cleared_under_its_silence_is_not_notified_when_it_ends():
    partition, loggers = AlarmPartition(1, silences=[silence(until=T0 + 600)]), Loggers()
    events = breach(partition, loggers, 0) + breach(partition, loggers, 1, value=50.0, start=100)
    partition.finish_batch(1, loggers.states.values(), epoch=1)
    assert kinds(events) == [("HIGH", "raised"), ("HIGH", "cleared")]
    assert all(e["silenced"]["id"] == "s1" for e in events)
    assert tick(partition, loggers, 2, T0 + 601) == []


def test_a_silence_set_after_the_raise_covers_the_alarm_from_the_next_tick_and_an_early_end_notifies():
    partition, loggers = AlarmPartition(1), Loggers()
    raised = breach(partition, loggers, 0)
    partition.finish_batch(0, loggers.states.values(), epoch=1)
    assert "silenced" not in raised[0]
    partition.silences = [silence(start=T0 + 100, until=T0 + 3600)]
    assert tick(partition, loggers, 1, T0 + 100) == [], "covering it sends nothing"
    assert next(iter(partition.active.values()))["silenced"]["id"] == "s1"
    ended, _ = maintenance.apply(partition.silences[0], maintenance.end_command("s1", "olivia", T0 + 200), 3)
    partition.silences = [ended]
    assert kinds(tick(partition, loggers, 2, T0 + 201)) == [("HIGH", "raised")]


def test_escalation_skips_a_silenced_alarm_and_counts_from_the_end_of_its_silence():
    base = {"id": "a1", "wall_time": iso(T0)}
    assert due_for_escalation([{**base, "silenced": {"id": "s1"}}], {}, T0 + 900, 600, set()) == []
    notified = {**base, "notified_at": iso(T0 + 800)}
    assert due_for_escalation([notified], {}, T0 + 900, 600, set()) == []
    assert due_for_escalation([notified], {}, T0 + 1400, 600, set()) == [notified]
