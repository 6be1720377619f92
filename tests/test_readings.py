"""Parsing and validation of one datalogger message (no broker)."""

import copy
from datetime import UTC, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from humidity.core.readings import Invalid, Reading, common_shape, dead_letter, parse_reading, validate
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


# The fast path for the documented shape against the full validator.
_int64 = st.integers(-(2**63), 2**63 - 1)  # what orjson can encode
_anything = st.none() | st.booleans() | _int64 | st.text(max_size=4) | st.lists(_int64, max_size=2)
_odd_text = st.sampled_from(["", " ", "\t\u2003", "x" * 200, "x" * 201, " MRI 12 "]) | st.text(max_size=6)
_ODD = {
    "guid": _odd_text,
    "medicalImagingdevice": _odd_text,
    "eventTime": st.sampled_from([
        "2022-08-16T15:26:39+02:00", "2022-08-16T13:26:39", "2022-08-16 13:26:39Z", "2022-08-16T25:00:00Z",
        "16/08/2022", "T", "2022-08-16T13:26:39Z" + " " * 50, "2022-08-16T13:26:39.447974+02:00:00.123456",
    ]) | st.text(max_size=70),
    "payload": st.just({"format": GOOD["payload"]["format"], "data": []}) | st.just([]),
    "payload__format": _odd_text,
    "payload__data": st.just({}) | st.just({"humidity": None}),
    "payload__data__humidity": st.floats() | st.integers(-10, 200) | st.booleans() | st.sampled_from(
        [0.0, -0.0, 100.0, 100.00000000000001, 99.99999999999999, -1e-300, 1e400]),
}


@st.composite
def _near_documented(draw):
    """The documented example with one to three fields changed, renamed or dropped."""
    doc = orjson.loads(orjson.dumps(GOOD))
    for path in draw(st.lists(st.sampled_from(sorted(_ODD)), min_size=1, max_size=3, unique=True)):
        *parents, last = path.split("__")
        target = doc
        for step in parents:
            target = target.get(step) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            continue
        change = draw(st.sampled_from(["odd", "odd", "anything", "drop"]))
        if change == "drop":
            target.pop(last, None)
        else:
            # a copy: st.just gives the same object every time, and later paths change it
            target[last] = copy.deepcopy(draw(_ODD[path] if change == "odd" else _anything))
    if draw(st.booleans()):
        doc["medicalimagingdevice"] = doc.pop("medicalImagingdevice", None)
    return orjson.loads(orjson.dumps(doc))  # what the decoder gives (NaN and infinity become null)


@hsettings(max_examples=2000, deadline=None)
@given(_near_documented())
def test_the_fast_path_agrees_with_the_full_validator(doc):
    full = validate(doc)
    fast = common_shape(doc)
    assert fast is None or fast == full
    assert parse_reading(orjson.dumps(doc)) == full


_identifiers = st.text(min_size=1, max_size=200).filter(str.strip)
_zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-9.5))])


@hsettings(max_examples=300, deadline=None)
@given(guid=_identifiers, device=_identifiers, humidity=st.floats(0, 100), when=st.datetimes(timezones=_zones))
def test_the_documented_shape_takes_the_fast_path(guid, device, humidity, when):
    doc = {**GOOD, "guid": guid, "medicalImagingdevice": device, "eventTime": when.isoformat(),
           "payload": {"format": GOOD["payload"]["format"], "data": {"humidity": humidity}}}
    assert common_shape(doc) == validate(doc) == Reading(guid, device, when, humidity)
