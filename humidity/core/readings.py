"""Parse and validate one datalogger message (pure: no Faust, no I/O).

``parse_reading`` never raises: every input gives either a :class:`Reading`
or an :class:`Invalid` with a short, stable reason a person can act on.

Nearly every message has the documented shape, so ``common_shape`` checks
that shape in one pass and hands anything else to the full validator, which
names the reason. ``tests/test_readings.py`` property-tests the two against
each other.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

HUMIDITY_FORMAT = "urn:example:sensor:humidity"
DEVICE_KEYS = ("medicalImagingdevice", "medicalimagingdevice")
MAX_ID_LENGTH = 200  # guid and device name: longer values are rejected
MAX_TIME_LENGTH = 64
#: Dead letters keep at most this much of the original message (base64 grows it
#: by a third; Kafka's default message limit is 1 MB).
MAX_DEAD_LETTER_ORIGINAL = 256 * 1024


# Not frozen: a frozen dataclass is built through object.__setattr__ per
# field, a cost paid on every reading. Nothing changes a Reading once built.
@dataclass(slots=True)
class Reading:
    guid: str
    device: str
    event_time: datetime  # timezone-aware
    humidity: float


@dataclass(frozen=True, slots=True)
class Invalid:
    reason: str


Parsed = Reading | Invalid


def _identifier(value: Any, name: str) -> str | Invalid:
    if value is None:
        return Invalid(f"{name} is missing")
    if not isinstance(value, str):
        return Invalid(f"{name} is not a string")
    if not value.strip():
        return Invalid(f"{name} is empty")
    if len(value) > MAX_ID_LENGTH:
        return Invalid(f"{name} is longer than {MAX_ID_LENGTH} characters")
    return value


def _event_time(value: Any) -> datetime | Invalid:
    if value is None:
        return Invalid("eventTime is missing")
    if not isinstance(value, str):
        return Invalid("eventTime is not a string")
    if len(value) > MAX_TIME_LENGTH or "T" not in value:
        return Invalid("eventTime is not an ISO-8601 timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return Invalid("eventTime is not an ISO-8601 timestamp")
    if parsed.tzinfo is None:
        return Invalid("eventTime has no time zone (Z or an offset)")
    return parsed


def _humidity(payload: Any) -> float | Invalid:
    if payload is None:
        return Invalid("payload is missing")
    if not isinstance(payload, dict):
        return Invalid("payload is not an object")
    if payload.get("format") != HUMIDITY_FORMAT:
        return Invalid(f"payload.format is not {HUMIDITY_FORMAT}")
    data = payload.get("data")
    if data is None:
        return Invalid("payload.data is missing")
    if not isinstance(data, dict):
        return Invalid("payload.data is not an object")
    value = data.get("humidity")
    if value is None:
        return Invalid("humidity is missing")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return Invalid("humidity is not a number")
    try:
        number = float(value)
    except OverflowError:  # an int too large for a float
        return Invalid("humidity is out of range 0 to 100")
    if not math.isfinite(number):
        return Invalid("humidity is not finite")
    if not 0.0 <= number <= 100.0:
        return Invalid("humidity is out of range 0 to 100")
    return number


def parse_reading(raw: Any) -> Parsed:
    """Turn the raw bytes of one Kafka message into a Reading or an Invalid."""
    if raw is None:
        return Invalid("empty message")
    if not isinstance(raw, (bytes, bytearray, memoryview, str)):
        return Invalid("message is not bytes")
    if len(raw) == 0:
        return Invalid("empty message")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        text = str(exc)
        if "UTF-8" in text:
            return Invalid("not UTF-8")
        if "depth" in text or "recursion" in text:
            return Invalid("not valid JSON: nested too deeply")
        return Invalid("not valid JSON")
    except Exception:  # noqa: BLE001 - any other decoder failure is bad input too
        return Invalid("not valid JSON")
    return common_shape(doc) or validate(doc)


def common_shape(doc: Any) -> Reading | None:
    """The reading if ``doc`` has the documented shape and passes every check
    of :func:`validate`; None for anything else, valid or not.

    Accepts a subset of what :func:`validate` accepts, with the same result:
    the upper-case device key, a float humidity, an eventTime with a zone.
    """
    try:
        guid = doc["guid"]
        device = doc["medicalImagingdevice"]
        when = doc["eventTime"]
        payload = doc["payload"]
        humidity = payload["data"]["humidity"]
        format_ = payload["format"]
    except (KeyError, TypeError):  # a key missing, or not objects all the way down
        return None
    if not (
        type(guid) is str and type(device) is str and type(when) is str and type(humidity) is float
        and 0.0 <= humidity <= 100.0 and format_ == HUMIDITY_FORMAT
        and 0 < len(guid) <= MAX_ID_LENGTH and not guid.isspace()
        and 0 < len(device) <= MAX_ID_LENGTH and not device.isspace()
        and len(when) <= MAX_TIME_LENGTH and "T" in when
    ):
        return None
    try:
        event_time = datetime.fromisoformat(when)
    except ValueError:
        return None
    if event_time.tzinfo is None:
        return None
    return Reading(guid, device, event_time, humidity)


def validate(doc: Any) -> Parsed:
    """Check a decoded message field by field; the first failure is the reason."""
    if not isinstance(doc, dict):
        return Invalid("not a JSON object")

    guid = _identifier(doc.get("guid"), "guid")
    if isinstance(guid, Invalid):
        return guid
    device_value = None
    for key in DEVICE_KEYS:
        if doc.get(key) is not None:
            device_value = doc[key]
            break
    device = _identifier(device_value, "medicalImagingdevice")
    if isinstance(device, Invalid):
        return device
    event_time = _event_time(doc.get("eventTime"))
    if isinstance(event_time, Invalid):
        return event_time
    humidity = _humidity(doc.get("payload"))
    if isinstance(humidity, Invalid):
        return humidity
    return Reading(guid=guid, device=device, event_time=event_time, humidity=humidity)


def dead_letter(
    reason: str, raw: bytes | None, *, topic: str, partition: int, offset: int, now: datetime
) -> dict:
    """The JSON record written to the dead-letter topic for an invalid message.

    Originals over :data:`MAX_DEAD_LETTER_ORIGINAL` bytes keep only their
    start (``original_truncated``); ``original_size`` is always the full size.
    """
    original = bytes(raw or b"")
    kept = original[:MAX_DEAD_LETTER_ORIGINAL]
    return {
        "reason": reason,
        "original_base64": base64.b64encode(kept).decode("ascii"),
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "time": utc_iso(now),
        "original_size": len(original),
        "original_truncated": len(kept) < len(original),
    }


def utc_iso(moment: datetime) -> str:
    """ISO-8601 in UTC with a ``Z`` suffix, e.g. ``2022-08-16T13:26:39.447974Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_iso() -> str:
    """The wall clock now, as :func:`utc_iso` writes it."""
    return utc_iso(datetime.now(UTC))


def epoch_iso(epoch: float) -> str:
    """Epoch seconds as :func:`utc_iso` writes them."""
    return utc_iso(datetime.fromtimestamp(epoch, UTC))
