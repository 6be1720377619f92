"""Limits per device over limits per type, and the alarms file read again (no broker)."""

import json

import pytest

from humidity.core.alarm_limits import AlarmConfigError, changed_limits, parse_config
from humidity.core.alarms import LoggerState, apply_readings
from humidity.core.settings import DEFAULT_ALARMS_FILE

TYPES = DEFAULT_ALARMS_FILE.read_text(encoding="utf-8")
T0 = 1_700_000_000.0
HOSTILE = 'MRI "12" <img src=x onerror=alert(1)>\n'


def with_devices(sections: str) -> str:
    return TYPES + "\n" + sections


def judge(config, state, readings):
    """readings: (seconds after T0, humidity), one batch each; the events."""
    events = []
    for dt, value in readings:
        events += apply_readings(state, config, [(T0 + dt, value)], T0 + dt)
    return [(e["kind"], e["state"], e["limit"]) for e in events]


def test_a_device_section_overrides_its_type_and_the_type_overrides_the_defaults():
    config = parse_config(with_devices('[devices."MRI 12"]\nhigh = 55\nactivation_delay_seconds = 0\n'
                                       f'[devices.{json.dumps(HOSTILE)}]\nlow = 35.5\n'))
    assert config.shown("MRI 12") == {"low": 30.0, "high": 55.0, "max_change_per_hour": 5.0,
                                      "activation_delay_seconds": 0.0, "source": "device"}
    assert config.shown("MRI 13") == {"low": 30.0, "high": 60.0, "max_change_per_hour": 5.0,
                                      "activation_delay_seconds": 60.0, "source": "type"}
    assert config.shown(HOSTILE)["low"] == 35.5 and config.shown(HOSTILE)["high"] == 60.0
    assert config.shown("Ultrasound 1")["high"] == 60.0 and config.shown("Ultrasound 1")["source"] == "type"
    assert config.shown("CT 3")["max_change_per_hour"] is None


def test_at_57_percent_mri_12_with_its_own_limit_raises_high_and_mri_13_stays_quiet():
    config = parse_config(with_devices('[devices."MRI 12"]\nhigh = 55\n'))
    readings = [(t, 57.0) for t in range(0, 200, 10)]
    assert judge(config, LoggerState("MRI 12", "g1"), readings) == [("HIGH", "raised", 55.0)]
    assert judge(config, LoggerState("MRI 13", "g2"), readings) == []


def test_the_device_s_own_activation_delay_decides_when_a_breach_raises():
    config = parse_config(with_devices('[devices."CT 3"]\nactivation_delay_seconds = 0\n'))
    assert judge(config, LoggerState("CT 3", "g1"), [(0, 71.0)]) == [("HIGH", "raised", 70.0)]
    assert judge(config, LoggerState("CT 4", "g1"), [(0, 71.0)]) == []


@pytest.mark.parametrize("section,message", [
    ('[devices."MRI 12"]\nhihg = 55\n', r'\[devices."MRI 12"\] hihg: unknown key'),
    ('[devices."MRI 12"]\nlow = 61\n', r'\[devices."MRI 12"\] low: needs 0 <= low < high <= 100'),
    ('[devices."MRI 12"]\nhigh = 20\n', r'\[devices."MRI 12"\] high: needs 0 <= low < high <= 100'),
    ('[devices."MRI 12"]\nhigh = nan\n', r'devices."MRI 12".high must be a number'),
    ('[devices."MRI 12"]\nhigh = inf\n', r'devices."MRI 12".high must be a number'),
    ('[devices."MRI 12"]\nhigh = "55"\n', r'devices."MRI 12".high must be a number'),
    ('[devices."MRI 12"]\nmax_change_per_hour = 0\n', r'devices."MRI 12".max_change_per_hour must be positive'),
    ('[devices."MRI 12"]\nactivation_delay_seconds = -1\n', r'activation_delay_seconds: must not be negative'),
    ('[devices."a\\nb"]\nlow = true\n', r'devices."a\\nb".low must be a number'),
    ('devices = 3\n', r'must be tables'),
])
def test_a_bad_device_section_is_refused_in_one_line_naming_the_section_and_key(section, message):
    with pytest.raises(AlarmConfigError, match=message) as refused:
        parse_config(section if section.startswith("devices") else with_devices(section), "alarms file 'a.toml'")
    assert "\n" not in str(refused.value) and str(refused.value).startswith("alarms file 'a.toml'")


def test_new_limits_judge_the_next_reading_and_nothing_before_it():
    before = parse_config(with_devices('[devices."MRI 12"]\nactivation_delay_seconds = 0\n'))
    lower = parse_config(with_devices('[devices."MRI 12"]\nhigh = 55\nactivation_delay_seconds = 0\n'))
    higher = parse_config(with_devices('[devices."MRI 12"]\nhigh = 70\nactivation_delay_seconds = 0\n'))
    state = LoggerState("MRI 12", "g1")
    assert judge(before, state, [(0, 57.0), (10, 57.0)]) == []
    assert judge(lower, state, [(20, 57.0)]) == [("HIGH", "raised", 55.0)]  # the next reading, not the ones before
    assert judge(lower, state, [(30, 54.0)]) == []  # not 2 below 55: the alarm stays
    assert list(state.active) == ["HIGH"]
    assert judge(higher, state, [(40, 66.0)]) == [("HIGH", "cleared", 55.0)]  # cleared under the new limit
    assert judge(higher, state, [(50, 69.0)]) == []


def test_a_change_of_limits_is_described_per_section_and_setting():
    before = parse_config(with_devices('[devices."MRI 12"]\nhigh = 55\n'))
    after = parse_config(with_devices('[devices."CT 3"]\nlow = 35\n').replace("high = 70.0", "high = 65.0")
                         .replace("hysteresis_percent = 2.0", "hysteresis_percent = 1.5"))
    assert changed_limits(before, after) == [
        "[types.CT] low 30 high 70 -> low 30 high 65",
        '[devices."CT 3"] none -> low 35 high 65',
        '[devices."MRI 12"] low 30 high 55 max_change_per_hour 5 -> none',
        "[defaults] hysteresis 2 -> 1.5",
    ]
    assert changed_limits(before, before) == [] and before.sha256 != after.sha256
