"""An independent reference for the four summaries: plain Python over the
readings a test generated (it never calls the service's parser or rules)."""

from __future__ import annotations

import math
import time
from collections import defaultdict

from humidity.core.simulation import MOVE_RATE, Simulator


def dataset(count: int, *, invalid_ratio: float = 0.01, loggers: int = 2000, devices: int = 50, seed: int = 7,
            move_rate: float = MOVE_RATE, start: float | None = None):
    """``count`` messages: (bytes, reading dict or None for a malformed one),
    with loggers that move between devices (``move_rate``), unusual device
    names and messages with both spellings of the device key; one a
    millisecond of event time, the last one now (or from ``start``)."""
    sim = Simulator(loggers=loggers, devices=devices, invalid_ratio=invalid_ratio, seed=seed, move_rate=move_rate,
                    unusual_names=True)
    if start is None:
        start = time.time() - count * 0.001
    return [sim.next_record(start + i * 0.001) for i in range(count)]


class Reference:
    """The reference summary of the records added so far (one at a time, for
    streams too long to keep)."""

    def __init__(self) -> None:
        self.humidity: dict[str, list[float]] = defaultdict(list)
        self.sensors: dict[str, set[str]] = defaultdict(set)
        self.guids: set[str] = set()
        self.invalid = 0

    def add(self, doc: dict | None) -> None:
        if doc is None:
            self.invalid += 1
            return
        device = doc.get("medicalImagingdevice", doc.get("medicalimagingdevice"))
        self.humidity[device].append(doc["payload"]["data"]["humidity"])
        self.sensors[device].add(doc["guid"])
        self.guids.add(doc["guid"])

    def summary(self) -> dict:
        averages = [{"device": d, "average": math.fsum(v) / len(v)} for d, v in self.humidity.items()]
        averages.sort(key=lambda r: (-r["average"], r["device"]))
        return {
            "average_humidity_by_device": averages,
            "total_messages": sum(len(v) for v in self.humidity.values()),
            "sensors_by_device": [{"device": d, "sensors": len(self.sensors[d])} for d in sorted(self.sensors)],
            "total_sensors": len(self.guids),
            "invalid_messages": self.invalid,
        }


def expected_summary(records) -> dict:
    reference = Reference()
    for _raw, doc in records:
        reference.add(doc)
    return reference.summary()


def assert_matches(summary: dict, expected: dict) -> None:
    for field, value in expected.items():
        assert summary[field] == value, f"{field} differs"


def matches(expected: dict):
    """Predicate: a summary equals the reference in every field it has."""
    return lambda summary: all(summary.get(k) == v for k, v in expected.items())
