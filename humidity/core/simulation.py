"""Realistic datalogger traffic, and malformed messages of many kinds (pure).

Used by ``faust -A app simulate`` and by the tests. Each logger starts on
one device, and now and then one is moved to another (``move_rate``: the
share of readings that come from a logger just moved, which stays where it
went), as engineers move loggers between rooms; each device's humidity
drifts slowly around its own level
(mostly 35 to 65 % RH), with rare short excursions. A backfill writes the
hours before now with a daily cycle, so that a new user sees trends at once.
"""

from __future__ import annotations

import math
import random
import unicodedata
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import orjson

from humidity.core.readings import HUMIDITY_FORMAT, utc_iso

DEVICE_TYPES = ("MRI", "CT", "PETCT", "SPECT")
DAY = 86400.0
_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


#: Device names as sites type them, each valid and each its own device, for
#: names are compared as exact strings: quotes, markup, a slash, non-Latin
#: letters, one name in NFC and NFD (two devices), spaces around a name and a
#: name that differs from a plain one only by a trailing space, control characters.
UNUSUAL_NAMES = (
    'MRI "Nord"', "CT <b>3</b>", "КТ 4 (Радиология)", "SPECT 東 2", "MRI 2/3",
    unicodedata.normalize("NFC", "Café MRI"), unicodedata.normalize("NFD", "Café MRI"),
    " SPECT 9 ", "MRI 1 ", "PETCT\t7", "CT\x07 8",
)


def device_names(count: int, unusual: bool = False) -> list[str]:
    """``MRI 1``, ``CT 1``, ``PETCT1``, ``SPECT 1``, ``MRI 2``, ... (unique);
    ``unusual``: every fourth one of :data:`UNUSUAL_NAMES` while they last."""
    names = []
    for i in range(count):
        kind = DEVICE_TYPES[i % len(DEVICE_TYPES)]
        number = i // len(DEVICE_TYPES) + 1
        names.append(f"{kind}{number}" if kind == "PETCT" else f"{kind} {number}")
    if unusual:
        for slot, name in zip(range(3, count, 4), UNUSUAL_NAMES, strict=False):
            names[slot] = name
    return names


def guid_for(index: int) -> str:
    """Seed-like sensor ids, e.g. ``0-ZZZ12345678-08K``; unique per index."""
    return f"0-ZZZ{12345678 + index // 1000}-{index % 1000:03d}{_LETTERS[index % len(_LETTERS)]}"


def reading_doc(guid: str, device: str, event_time: datetime, humidity: float, *, lower_case_key: bool = False) -> dict:
    return {
        "guid": guid,
        "destination": "0-AAA12345678",
        ("medicalimagingdevice" if lower_case_key else "medicalImagingdevice"): device,
        "eventTime": utc_iso(event_time),
        "payload": {"format": HUMIDITY_FORMAT, "data": {"humidity": humidity}},
    }


def _valid_base(rng: random.Random) -> dict:
    return reading_doc("0-ZZZ12345678-99Z", "MRI 1", datetime(2022, 8, 16, 13, 26, 39, tzinfo=UTC), 50.0)


def _with(path: tuple, value) -> Callable[[random.Random], bytes]:
    def make(rng: random.Random) -> bytes:
        doc = _valid_base(rng)
        target = doc
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        return orjson.dumps(doc)

    return make


def _without(path: tuple) -> Callable[[random.Random], bytes]:
    def make(rng: random.Random) -> bytes:
        doc = _valid_base(rng)
        target = doc
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]
        return orjson.dumps(doc)

    return make


def _replace_number(text: str) -> Callable[[random.Random], bytes]:
    return lambda rng: orjson.dumps(_valid_base(rng)).replace(b"50.0", text.encode())


#: name -> maker of one malformed message of that kind
INVALID_KINDS: dict[str, Callable[[random.Random], bytes]] = {
    "not json": lambda rng: b"humidity=71.7 MRI 12",
    "truncated json": lambda rng: orjson.dumps(_valid_base(rng))[:-7],
    "not utf-8": lambda rng: b'{"guid": "\xff\xfe", "x": 1}',
    "random bytes": lambda rng: bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))),
    "empty": lambda rng: b"",
    "top-level array": lambda rng: b"[1, 2, 3]",
    "top-level number": lambda rng: b"42",
    "top-level string": lambda rng: b'"MRI 12"',
    "top-level null": lambda rng: b"null",
    "no guid": _without(("guid",)),
    "empty guid": _with(("guid",), ""),
    "numeric guid": _with(("guid",), 12345),
    "no device": _without(("medicalImagingdevice",)),
    "null device": _with(("medicalImagingdevice",), None),
    "no eventTime": _without(("eventTime",)),
    "bad eventTime": _with(("eventTime",), "yesterday"),
    "eventTime without zone": _with(("eventTime",), "2022-08-16T13:26:39"),
    "wrong format": _with(("payload", "format"), "urn:example:sensor:temperature"),
    "null payload": _with(("payload",), None),
    "null data": _with(("payload", "data"), None),
    "no humidity": _without(("payload", "data", "humidity")),
    "string humidity": _with(("payload", "data", "humidity"), "71.7"),
    "bool humidity": _with(("payload", "data", "humidity"), True),
    "negative humidity": _with(("payload", "data", "humidity"), -0.5),
    "humidity over 100": _with(("payload", "data", "humidity"), 100.5),
    "NaN humidity": _replace_number("NaN"),
    "Infinity humidity": _replace_number("Infinity"),
    "huge humidity": _replace_number("1e400"),
    "deeply nested": lambda rng: b'{"guid": ' + b"[" * 5000 + b"]" * 5000 + b"}",
}


def daily_cycle(t: float) -> float:
    """% RH above or below a device's level over the day: highest mid-afternoon (UTC)."""
    return 4.0 * math.sin(2 * math.pi * (t % DAY - 9 * 3600) / DAY)


#: The share of readings that come from a logger just moved to another device.
MOVE_RATE = 0.005


class Simulator:
    def __init__(self, loggers: int = 2000, devices: int = 50, invalid_ratio: float = 0.0,
                 seed: int | None = None, move_rate: float = MOVE_RATE, unusual_names: bool = False) -> None:
        self.rng = random.Random(seed)
        self.devices = device_names(devices, unusual_names)
        #: the share of readings that carry both spellings of the device key (the other one a decoy)
        self.both_keys_rate = 0.01 if unusual_names else 0.0
        self.guids = [guid_for(i) for i in range(loggers)]
        placement = [i % devices for i in range(loggers)]  # every device gets loggers
        self.rng.shuffle(placement)
        self.device_of = [self.devices[d] for d in placement]
        self.level = {d: self.rng.uniform(40.0, 60.0) for d in self.devices}
        self.invalid_ratio = invalid_ratio
        self.move_rate = move_rate if devices > 1 else 0.0
        self._kinds = list(INVALID_KINDS.values())

    def next_reading(self, now: float) -> dict:
        rng = self.rng
        index = rng.randrange(len(self.guids))
        if self.move_rate and rng.random() < self.move_rate:
            self.device_of[index] = self._elsewhere(self.device_of[index])
        device = self.device_of[index]
        level = self.level[device] + rng.gauss(0.0, 0.05)  # slow drift
        level = self.level[device] = min(65.0, max(35.0, level))
        humidity = level + daily_cycle(now) + rng.gauss(0.0, 1.5)
        if rng.random() < 0.001:  # rare excursion (door open, HVAC fault)
            humidity += rng.choice((-1, 1)) * rng.uniform(10.0, 25.0)
        humidity = round(min(100.0, max(0.0, humidity)), 1)
        event_time = datetime.fromtimestamp(now, UTC)
        if self.both_keys_rate and rng.random() < self.both_keys_rate:
            doc = reading_doc(self.guids[index], device, event_time, humidity)
            doc["medicalimagingdevice"] = "DECOY " + device  # the upper-case key is the one read
            return doc
        return reading_doc(self.guids[index], device, event_time, humidity,
                           lower_case_key=rng.random() < 0.1)

    def _elsewhere(self, device: str) -> str:
        """Another device than ``device``, at random."""
        other = self.rng.randrange(len(self.devices) - 1)
        return self.devices[other + (other >= self.devices.index(device))]

    def next_record(self, now: float) -> tuple[bytes, dict | None]:
        """One message, and the reading it carries (None for a malformed one)."""
        if self.invalid_ratio and self.rng.random() < self.invalid_ratio:
            return self.rng.choice(self._kinds)(self.rng), None
        doc = self.next_reading(now)
        return orjson.dumps(doc), doc

    def next_message(self, now: float) -> bytes:
        return self.next_record(now)[0]

    def backfill(self, hours: float, now: float, every: float = 60.0) -> Iterator[bytes]:
        """Readings for the ``hours`` before ``now``, in event-time order: each
        logger reads every ``every`` seconds; each device's level follows a
        daily cycle (most humid in the afternoon) with noise, and a few devices
        have an excursion of 15 to 45 minutes (a door left open, an HVAC fault)."""
        rng = self.rng
        start = now - hours * 3600.0
        excursions = []
        for _ in range(max(1, round(hours / 4))):
            at = rng.uniform(start, max(start, now - 2700.0))
            excursions.append((rng.choice(self.devices), at, at + rng.uniform(900.0, 2700.0),
                               rng.choice((-1, 1)) * rng.uniform(12.0, 20.0)))
        offsets = [rng.uniform(0.0, every) for _ in self.guids]
        t = start
        while t < now:
            for index, guid in enumerate(self.guids):
                at = t + offsets[index]
                if at >= now:
                    continue
                device = self.device_of[index]
                humidity = self.level[device] + daily_cycle(at)
                humidity += rng.gauss(0.0, 0.8)
                for name, begin, end, size in excursions:
                    if name == device and begin <= at < end:
                        humidity += size
                humidity = round(min(100.0, max(0.0, humidity)), 1)
                yield orjson.dumps(reading_doc(guid, device, datetime.fromtimestamp(at, UTC), humidity))
            t += every
