"""Alarm rules, scripted sequences (no broker)."""

import pytest

from humidity.core.alarm_limits import AlarmConfigError, load_config, parse_config
from humidity.core.alarm_partition import AlarmPartition, active_of
from humidity.core.alarms import LoggerState, Whereabouts, alarm_key, apply_readings, check_offline, is_silent
from humidity.core.settings import DEFAULT_ALARMS_FILE

CONFIG = load_config(DEFAULT_ALARMS_FILE)
T0 = 1_700_000_000.0


def run(device, readings, state=None, wall=T0):
    """readings: (seconds after T0, humidity); returns (state, events)."""
    state = state or LoggerState(device, "g1")
    events = []
    for dt, value in readings:
        events += apply_readings(state, CONFIG, [(T0 + dt, value)], wall + dt)
    return state, events


def kinds(events):
    return [(e["kind"], e["state"]) for e in events]


def test_default_file_has_the_vendor_limits():
    assert (CONFIG.limits_for("MRI 12").low, CONFIG.limits_for("MRI 12").high) == (30, 60)
    assert CONFIG.limits_for("MRI 12").max_change_per_hour == 5
    assert CONFIG.limits_for("CT 3").high == 70 and CONFIG.limits_for("CT 3").max_change_per_hour is None
    assert CONFIG.limits_for("PETCT10").high == 60 and CONFIG.limits_for("SPECT 7").high == 60
    assert CONFIG.limits_for("Ultrasound 2").high == 60
    assert (CONFIG.activation_delay, CONFIG.hysteresis, CONFIG.offline_timeout) == (60, 2, 300)


def test_a_30_second_spike_raises_nothing():
    _, events = run("MRI 1", [(0, 50), (10, 65), (20, 66), (30, 65), (40, 50), (100, 50)])
    assert events == []


def test_a_sustained_breach_raises_once_and_clears_once():
    readings = [(0, 50)] + [(t, 63) for t in range(10, 200, 10)] + [(t, 57) for t in range(200, 300, 10)]
    state, events = run("MRI 1", readings)
    assert kinds(events) == [("HIGH", "raised"), ("HIGH", "cleared")]
    raised, cleared = events
    assert raised["value"] == 63 and raised["limit"] == 60 and raised["since"] == "2023-11-14T22:13:30.000000Z"
    assert raised["time"] == "2023-11-14T22:14:30.000000Z"  # 60 s of event time after the breach began
    assert cleared["since"] == raised["since"] and cleared["value"] == 57
    assert state.active == {}


def test_oscillating_around_the_limit_after_a_raise_neither_clears_nor_re_raises():
    readings = [(t, 62) for t in range(0, 100, 10)]
    readings += [(100 + i * 10, 59.5 if i % 2 else 60.5) for i in range(60)]
    _, events = run("MRI 1", readings)
    assert kinds(events) == [("HIGH", "raised")]


def test_a_ct_at_65_percent_stays_quiet():
    _, events = run("CT 3", [(t, 65) for t in range(0, 3600, 30)])
    assert events == []


def test_low_humidity_raises_low_and_clears_with_hysteresis():
    readings = [(t, 25) for t in range(0, 120, 10)] + [(130, 31), (140, 33)]
    _, events = run("SPECT 7", readings)
    assert kinds(events) == [("LOW", "raised"), ("LOW", "cleared")]
    assert events[1]["value"] == 33


def test_out_of_order_readings_cannot_raise_or_clear():
    state, events = run("MRI 1", [(0, 50), (100, 50)])
    # late readings from before t=100, all outside the limit: ignored
    _, late = run("MRI 1", [(10, 70), (50, 70), (99, 70)], state)
    assert late == []
    state, events = run("MRI 1", [(t, 63) for t in range(200, 300, 10)], state)
    assert kinds(events) == [("HIGH", "raised")]
    _, late = run("MRI 1", [(150, 40), (160, 40)], state)  # late and inside: no clear
    assert late == [] and "HIGH" in state.active


def test_rate_of_change_on_mri_uses_averages_over_the_hour():
    readings = [(t, 40 + (1 if (t // 30) % 2 else -1)) for t in range(0, 1800, 30)]  # noisy but flat
    state, events = run("MRI 1", readings)
    assert events == []
    readings = [(1800 + t, 40 + t / 120) for t in range(0, 1800, 30)]  # +15 % RH in 30 min
    state, events = run("MRI 1", readings, state)
    assert kinds(events) == [("RATE", "raised")]
    assert events[0]["limit"] == 5
    _, events = run("CT 3", [(t, 40 + t / 120) for t in range(0, 1800, 30)])
    assert events == []  # CT has no rate limit


def test_offline_after_the_timeout_of_wall_time_and_cleared_by_the_next_reading():
    state, _ = run("MRI 1", [(0, 50)])
    assert check_offline(state, CONFIG, T0 + 299) == []
    (raised,) = check_offline(state, CONFIG, T0 + 301)
    assert (raised["kind"], raised["state"], raised["limit"]) == ("OFFLINE", "raised", 300)
    assert check_offline(state, CONFIG, T0 + 400) == []  # once per episode
    events = apply_readings(state, CONFIG, [(T0 + 500, 50)], T0 + 500)
    assert kinds(events) == [("OFFLINE", "cleared")]


def test_state_round_trips_through_json():
    state, _ = run("MRI 1", [(t, 63) for t in range(0, 100, 10)])
    assert LoggerState.from_json(state.to_json()) == state


@pytest.mark.parametrize("text,message", [
    ("[types.MRI]\nlow = 70\nhigh = 60\n", "low < high"),
    ("[types.MRI]\nlow = 'x'\nhigh = 60\n", "must be a number"),
    ("[defaults]\noffline_timeout_seconds = 0\n", "must be positive"),
    ("not toml ===", "not valid TOML"),
])
def test_bad_alarm_files_say_what_is_wrong(text, message):
    with pytest.raises(AlarmConfigError, match=message):
        parse_config(text)


class Loggers:
    """Logger states by (device, guid), and where each logger last reported,
    as the alarm flow keeps them in its table."""

    def __init__(self):
        self.states = {}
        self.where = {}
        self.whereabouts = Whereabouts(self.where.get)

    def stored(self):
        """A new batch: what the last one changed is stored."""
        self.where.update(self.whereabouts.moved)
        self.whereabouts = Whereabouts(self.where.get)

    def __call__(self, device, guid):
        return self.states.setdefault((device, guid), LoggerState(device, guid))


def bundle(guid, device, seconds, value):
    return {"r": [[guid, device, T0 + t, value] for t in seconds]}


def test_an_alarm_partition_applies_bundles_and_keeps_the_active_alarms():
    partition, loggers = AlarmPartition(1), Loggers()
    events = partition.apply(0, bundle("g1", "MRI 1", range(0, 70, 10), 64), loggers, list, CONFIG, T0,
                             loggers.whereabouts)
    events += partition.apply(1, bundle("g2", "CT 1", range(0, 70, 10), 50), loggers, list, CONFIG, T0,
                             loggers.whereabouts)
    partition.finish_batch(1, loggers.states.values(), epoch=3)
    assert kinds(events) == [("HIGH", "raised")]
    assert list(partition.active) == [alarm_key("HIGH", "MRI 1", "g1")] and partition.offset == 1
    assert partition.recent == [[0, events[0]]]
    assert {state.epoch for state in loggers.states.values()} == {3}
    stored = partition.to_json()
    assert "active" not in stored, "a partition's active alarms grow with the fleet: the loggers' states hold them"
    assert AlarmPartition.from_json(stored, 1, active_of(s.to_json() for s in loggers.states.values())) == partition


def test_a_bundle_read_again_resends_its_events_and_applies_only_where_its_state_was_lost():
    partition, loggers = AlarmPartition(1), Loggers()
    first = partition.apply(0, bundle("g1", "MRI 1", range(0, 70, 10), 64), loggers, list, CONFIG, T0,
                             loggers.whereabouts)
    partition.finish_batch(0, loggers.states.values(), epoch=1)
    again = partition.apply(0, bundle("g1", "MRI 1", range(0, 70, 10), 64), loggers, list, CONFIG, T0,
                             loggers.whereabouts)
    assert again == first, "the events of a re-read bundle are sent again (their delivery may have been cut)"
    assert loggers.states[("MRI 1", "g1")].offset == 0
    lost = Loggers()  # the logger's state write was lost, the partition's was not
    again = partition.apply(0, bundle("g1", "MRI 1", range(0, 70, 10), 64), lost, list, CONFIG, T0,
                             lost.whereabouts)
    assert again == first, "its events are not made twice"
    assert "HIGH" in lost.states[("MRI 1", "g1")].active, "but its state is rebuilt"


def test_ticks_raise_offline_once_and_a_tick_read_again_only_resends_its_events():
    partition, loggers = AlarmPartition(1), Loggers()
    partition.apply(0, bundle("g1", "MRI 1", [0], 45), loggers, list, CONFIG, T0, loggers.whereabouts)
    state = loggers.states[("MRI 1", "g1")]
    late = T0 + CONFIG.offline_timeout + 1
    events = partition.apply(1, {"tick": late}, loggers, lambda: [state], CONFIG, late, loggers.whereabouts)
    assert kinds(events) == [("OFFLINE", "raised")]
    partition.finish_batch(1, [state], epoch=1)
    assert partition.apply(1, {"tick": late}, loggers, lambda: [state], CONFIG, late, loggers.whereabouts) == events
    assert partition.apply(2, {"tick": late + 5}, loggers, lambda: [state], CONFIG, late + 5,
                           loggers.whereabouts) == []


def test_an_alarm_partition_closes_a_round_once_every_input_partition_has_ended_it():
    partition, loggers = AlarmPartition(2), Loggers()
    partition.apply(0, {"p": 0, "end": 4, "o": 10}, loggers, list, CONFIG, T0, loggers.whereabouts)
    assert partition.closed_now is None
    partition.apply(1, {"p": 1, "end": 5, "o": 12}, loggers, list, CONFIG, T0, loggers.whereabouts)
    assert partition.closed_now == 4
    partition.apply(1, {"p": 1, "end": 5, "o": 12}, loggers, list, CONFIG, T0, loggers.whereabouts)  # read again
    assert partition.ends.closed == 4


class Partition:
    """An alarm partition and its loggers, stepped message by message as the
    flow does, each message its own batch."""

    def __init__(self):
        self.partition, self.loggers, self.offset = AlarmPartition(1), Loggers(), -1

    def step(self, message, wall):
        self.offset += 1
        loggers = self.loggers

        def silent():
            return [s for s in loggers.states.values() if is_silent(s, CONFIG, wall)]

        events = self.partition.apply(self.offset, message, loggers, silent, CONFIG, wall, loggers.whereabouts)
        self.partition.finish_batch(self.offset, loggers.states.values(), epoch=1)
        loggers.stored()
        return [(e["kind"], e["state"], e["device"]) for e in events]

    def reading(self, device, t, value=45.0, guid="g1"):
        return self.step({"r": [[guid, device, T0 + t, value]]}, T0 + t)

    def tick(self, t):
        return self.step({"tick": T0 + t}, T0 + t)


TIMEOUT = CONFIG.offline_timeout


def test_a_logger_that_moves_to_another_device_is_offline_on_neither_while_it_reports_there():
    room = Partition()
    room.reading("MRI 1", 0)
    for t in range(6, int(TIMEOUT) + 60, 30):
        room.reading("MRI 2", t)
    assert room.tick(TIMEOUT + 60) == [], "MRI 1's pair stopped being watched when its logger moved"
    assert room.tick(2 * TIMEOUT + 60) == [("OFFLINE", "raised", "MRI 2")], "silent: on its last device"
    assert room.reading("MRI 1", 2 * TIMEOUT + 70) == [("OFFLINE", "cleared", "MRI 2")], "back, on any device"
    assert room.tick(3 * TIMEOUT + 80) == [("OFFLINE", "raised", "MRI 1")]


def test_an_offline_alarm_clears_when_its_logger_reports_for_another_device():
    room = Partition()
    room.reading("MRI 1", 0)
    (raised,) = room.tick(TIMEOUT + 10)
    assert raised == ("OFFLINE", "raised", "MRI 1")
    assert room.reading("MRI 2", TIMEOUT + 20) == [("OFFLINE", "cleared", "MRI 1")]
    assert room.partition.active == {} and room.partition.offline == {}
    assert room.tick(TIMEOUT + 30) == []


def test_the_last_reading_of_a_bundle_decides_which_device_a_logger_is_on():
    room = Partition()
    room.step({"r": [["g1", "MRI 1", T0, 45.0], ["g1", "MRI 2", T0 + 1, 45.0], ["g1", "MRI 1", T0 + 2, 45.0]]}, T0)
    assert room.loggers.where == {"g1": "MRI 1"}
    assert (room.loggers.states[("MRI 1", "g1")].current, room.loggers.states[("MRI 2", "g1")].current) == \
        (True, False)
    assert room.tick(TIMEOUT + 10) == [("OFFLINE", "raised", "MRI 1")], "one alarm per logger"


def test_states_stored_before_loggers_were_followed_clear_a_stuck_offline_alarm_on_the_next_reading():
    """A logger that moved under the previous version: OFFLINE on its old
    device, watched on both, and no whereabouts stored."""
    room = Partition()
    room.reading("MRI 1", 0)
    room.tick(TIMEOUT + 10)
    moved = LoggerState("MRI 2", "g1")  # the previous version kept the new pair apart
    apply_readings(moved, CONFIG, [(T0 + TIMEOUT + 20, 45.0)], T0 + TIMEOUT + 20)

    def as_stored_before(state):
        return LoggerState.from_json({k: v for k, v in state.to_json().items() if k != "current"})

    old = {("MRI 1", "g1"): as_stored_before(room.loggers.states[("MRI 1", "g1")]),
           ("MRI 2", "g1"): as_stored_before(moved)}
    assert old[("MRI 2", "g1")].current is None, "a state without the field loads"
    upgraded = Partition()
    upgraded.loggers.states = old
    upgraded.partition = AlarmPartition.from_json(None, 1, active_of(s.to_json() for s in old.values()))
    assert upgraded.partition.offline == {"g1": {"MRI 1"}}
    upgraded.offset = 5
    assert upgraded.reading("MRI 2", TIMEOUT + 30) == [("OFFLINE", "cleared", "MRI 1")]
    assert upgraded.tick(2 * TIMEOUT + 40) == [("OFFLINE", "raised", "MRI 2")]
