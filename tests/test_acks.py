"""Acknowledgement and escalation rules (pure)."""

import pytest

from humidity.core import acks
from humidity.core.alarm_limits import parse_config
from humidity.core.alarms import LoggerState, active_alarm, apply_readings

CONFIG = parse_config('[types.MRI]\nlow = 40\nhigh = 60\n')
WALL = 1_800_000_000.0


def an_alarm(guid="g1", wall=WALL):
    state = LoggerState("MRI 1", guid)
    raised = apply_readings(state, CONFIG, [(t, 65.0) for t in range(0, 130, 10)], wall=wall)[0]
    return active_alarm(raised)


def test_an_alarm_keeps_its_id_from_raise_to_clear_and_each_event_has_its_own():
    state = LoggerState("MRI 1", "g1")
    raised = apply_readings(state, CONFIG, [(t, 65.0) for t in range(0, 130, 10)], wall=WALL)[0]
    cleared = apply_readings(state, CONFIG, [(200, 50.0)], wall=WALL + 60)[0]
    assert raised["alarm_id"] == cleared["alarm_id"]
    assert (raised["id"], cleared["id"]) == (raised["alarm_id"] + ".raised", raised["alarm_id"] + ".cleared")
    again = apply_readings(LoggerState("MRI 1", "g1"), CONFIG, [(t, 65.0) for t in range(0, 130, 10)], wall=WALL + 5)
    assert again[0]["alarm_id"] == raised["alarm_id"], "a replay on another worker names the same alarm"
    assert active_alarm(raised)["id"] == raised["alarm_id"]


def test_the_first_acknowledgement_stands_and_a_command_read_again_repeats_its_effects_only():
    alarm = an_alarm()
    entry, effects = acks.apply(None, acks.ack_command(alarm, "olivia", "door shut", "2027-01-15T08:00:00Z"), 7)
    assert (entry["acknowledged_by"], entry["comment"], entry["ack_offset"]) == ("olivia", "door shut", 7)
    assert [a["type"] for a in effects.audit] == ["acknowledged"] and effects.alerts == []
    assert effects.audit[0]["user"] == "olivia" and effects.audit[0]["id"] == alarm["alarm_id"] + ".acknowledged"

    later, nothing = acks.apply(entry, acks.ack_command(alarm, "oscar", "me too", "2027-01-15T08:01:00Z"), 9)
    assert later is None and nothing.audit == [] and nothing.alerts == []
    replayed, again = acks.apply(entry, acks.ack_command(alarm, "olivia", "door shut", "2027-01-15T08:00:00Z"), 7)
    assert replayed == entry and again.audit == effects.audit  # same id: the audit trail drops the copy


def test_an_alarm_is_escalated_once_and_never_after_an_acknowledgement():
    alarm = an_alarm()
    entry, effects = acks.apply(None, acks.escalate_command(alarm, "2027-01-15T08:15:00Z"), 3)
    assert entry["escalated_at"] == "2027-01-15T08:15:00Z"
    [event] = effects.alerts
    assert (event["state"], event["id"], event["guid"]) == ("escalated", alarm["alarm_id"] + ".escalated", "g1")
    assert [a["type"] for a in effects.audit] == ["escalated"]
    assert acks.apply(entry, acks.escalate_command(alarm, "2027-01-15T08:16:00Z"), 4)[0] is None
    assert acks.apply(entry, acks.escalate_command(alarm, "2027-01-15T08:15:00Z"), 3)[1].alerts == [event]

    acked, _ = acks.apply(None, acks.ack_command(alarm, "olivia", "", "2027-01-15T08:10:00Z"), 1)
    unchanged, none = acks.apply(acked, acks.escalate_command(alarm, "2027-01-15T08:15:00Z"), 2)
    assert unchanged is None and none.alerts == [] and none.audit == []


def test_due_for_escalation_counts_wall_time_from_the_raise_and_skips_handled_alarms():
    old, new, acked, escalated = an_alarm("old"), an_alarm("new", WALL + 600), an_alarm("acked"), an_alarm("esc")
    entries = {acked["id"]: {"acknowledged_by": "olivia"}, escalated["id"]: {"escalated_at": "x"}}
    active = [old, new, acked, escalated]
    assert acks.due_for_escalation(active, entries, WALL + 900, 900, set()) == [old]
    assert acks.due_for_escalation(active, entries, WALL + 900, 900, {old["id"]}) == []
    assert acks.due_for_escalation(active, entries, WALL + 1500, 900, set()) == [old, new]


def test_comments_are_text_of_bounded_length():
    assert acks.clean_comment(" fixed\x00 it \n") == "fixed  it"
    assert acks.clean_comment(None) == ""
    with pytest.raises(acks.AckError):
        acks.clean_comment("x" * (acks.COMMENT_MAX + 1))
    with pytest.raises(acks.AckError):
        acks.clean_comment(["not", "text"])
    shown = acks.with_acks([an_alarm()], {})[0]
    assert {name: shown[name] for name in acks.SHOWN} == dict.fromkeys(acks.SHOWN)
