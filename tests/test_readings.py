"""Parsing and validation of one datalogger message (no broker)."""


from datetime import UTC

import orjson
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from humidity.core.readings import Invalid, Reading, dead_letter, parse_reading
from humidity.core.simulation import INVALID_KINDS

GOOD = {
    "guid": "0-ZZZ12345678-08K", "destination": "0-AAA12345678", "medicalImagingdevice": "MRI 12",
    "eventTime": "2022-08-16T13:26:39.447974Z",
    "payload": {"format": "urn:example:sensor:humidity", "data": {"humidity": 71.7}},
}


def message(**changes) -> bytes:
    doc = orjson.loads(orjson.dumps(GOOD))
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = doc
        for step in parents:
            target = target[step]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value
    return orjson.dumps(doc)


def test_the_documented_example_is_valid():
    r = parse_reading(orjson.dumps(GOOD))
    assert isinstance(r, Reading)
    assert (r.guid, r.device, r.humidity) == ("0-ZZZ12345678-08K", "MRI 12", 71.7)
    assert r.event_time.utcoffset().total_seconds() == 0


def test_lower_case_device_key_is_accepted():
    raw = message(medicalImagingdevice=KeyError, medicalimagingdevice="PETCT10")
    assert parse_reading(raw).device == "PETCT10"


def test_extra_fields_are_ignored():
    assert isinstance(parse_reading(message(firmware="1.2", payload__extra=[1])), Reading)


@pytest.mark.parametrize("value", [0, 100, 0.0, 100.0, 55])
def test_limits_and_integers_are_valid(value):
    assert parse_reading(message(payload__data__humidity=value)).humidity == float(value)


def test_offsets_are_accepted():
    assert isinstance(parse_reading(message(eventTime="2022-08-16T15:26:39+02:00")), Reading)


@pytest.mark.parametrize("raw,reason", [
    (message(payload__data__humidity=True), "humidity is not a number"),
    (message(payload__data__humidity="71.7"), "humidity is not a number"),
    (message(payload__data__humidity=-0.1), "humidity is out of range 0 to 100"),
    (message(payload__data__humidity=100.01), "humidity is out of range 0 to 100"),
    (orjson.dumps(GOOD).replace(b"71.7", b"123456789012345678901234567890"), "humidity is out of range 0 to 100"),
    (orjson.dumps(GOOD).replace(b"71.7", b"NaN"), "not valid JSON"),
    (orjson.dumps(GOOD).replace(b"71.7", b"Infinity"), "not valid JSON"),
    (message(eventTime="2022-08-16T13:26:39"), "eventTime has no time zone (Z or an offset)"),
    (message(eventTime="16/08/2022"), "eventTime is not an ISO-8601 timestamp"),
    (message(eventTime=1660656399), "eventTime is not a string"),
    (message(payload__format="urn:example:sensor:temperature"), "payload.format is not urn:example:sensor:humidity"),
    (message(guid=""), "guid is empty"),
    (message(guid="   "), "guid is empty"),
    (message(guid="x" * 201), "guid is longer than 200 characters"),
    (message(medicalImagingdevice=""), "medicalImagingdevice is empty"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[1,2]", "not a JSON object"),
    (b"3.5", "not a JSON object"),
    (b'"text"', "not a JSON object"),
    (b"", "empty message"),
    (None, "empty message"),
])
def test_invalid_messages_have_clear_reasons(raw, reason):
    result = parse_reading(raw)
    assert isinstance(result, Invalid)
    assert result.reason == reason


@pytest.mark.parametrize("path", ["guid", "medicalImagingdevice", "eventTime", "payload", "payload__data",
                                  "payload__data__humidity", "payload__format"])
def test_null_at_every_level_is_invalid(path):
    assert isinstance(parse_reading(message(**{path: None})), Invalid)


@pytest.mark.parametrize("path", ["guid", "medicalImagingdevice", "eventTime", "payload", "payload__data",
                                  "payload__data__humidity", "payload__format"])
def test_missing_field_at_every_level_is_invalid(path):
    assert isinstance(parse_reading(message(**{path: KeyError})), Invalid)


@pytest.mark.parametrize("kind", sorted(INVALID_KINDS))
def test_every_simulated_malformed_kind_is_invalid(kind):
    import random

    assert isinstance(parse_reading(INVALID_KINDS[kind](random.Random(1))), Invalid)


def test_dead_letter_carries_reason_and_original_bytes():
    from base64 import b64decode
    from datetime import datetime

    record = dead_letter("not UTF-8", b"\xff", topic="t", partition=2, offset=9,
                         now=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert record == {"reason": "not UTF-8", "original_base64": "/w==", "topic": "t", "partition": 2,
                      "offset": 9, "time": "2024-01-02T03:04:05.000000Z", "original_size": 1,
                      "original_truncated": False}
    assert b64decode(record["original_base64"]) == b"\xff"


def test_dead_letter_of_a_huge_message_keeps_its_start_and_size():
    from base64 import b64decode
    from datetime import datetime

    huge = b"x" * 1_000_000
    record = dead_letter("guid is longer than 200 characters", huge, topic="t", partition=0, offset=1,
                         now=datetime(2024, 1, 2, tzinfo=UTC))
    assert record["original_truncated"] is True and record["original_size"] == 1_000_000
    assert huge.startswith(b64decode(record["original_base64"]))
    assert len(orjson.dumps(record)) < 400_000


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@hsettings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_never_raises_on_arbitrary_bytes(raw):
    assert isinstance(parse_reading(raw), (Reading, Invalid))


@hsettings(max_examples=300, deadline=None)
@given(json_values)
def test_never_raises_on_arbitrary_json_values(value):
    try:
        raw = orjson.dumps(value)
    except TypeError:
        return
    assert isinstance(parse_reading(raw), (Reading, Invalid))


@hsettings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**63), 2**63 - 1) | st.booleans()
       | st.text())
def test_humidity_is_valid_exactly_when_a_number_from_0_to_100(value):
    raw = message(payload__data__humidity=value)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 100
    assert isinstance(parse_reading(raw), Reading) == ok, value
