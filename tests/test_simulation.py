"""The simulator's traffic has what real fleets have: loggers that move, odd names, current times (no broker)."""

import time
import unicodedata
from collections import defaultdict
from datetime import datetime

from humidity.core.simulation import MOVE_RATE, UNUSUAL_NAMES, Simulator
from tests.reference import dataset, expected_summary


def test_loggers_move_at_the_move_rate_and_stay_where_they_went():
    sim = Simulator(loggers=200, devices=10, seed=3, move_rate=0.05)
    devices = defaultdict(list)
    for i in range(20_000):
        doc = sim.next_reading(1_800_000_000.0 + i)
        devices[doc["guid"]].append(doc.get("medicalImagingdevice", doc.get("medicalimagingdevice")))
    changes = sum(a != b for seen in devices.values() for a, b in zip(seen, seen[1:], strict=False))
    assert 0.04 * 20_000 < changes < 0.06 * 20_000
    assert all(seen[-1] == sim.device_of[sim.guids.index(guid)] for guid, seen in devices.items())


def test_the_test_datasets_have_moved_loggers_by_default():
    summary = expected_summary(dataset(10_000))
    moved = sum(row["sensors"] for row in summary["sensors_by_device"]) - summary["total_sensors"]
    assert moved > 10, "a guid seen on two devices counts for both in sensors_by_device, once in total_sensors"
    assert Simulator(devices=1, move_rate=MOVE_RATE).move_rate == 0, "one device: nowhere to move"


def test_the_test_datasets_look_like_real_data():
    """Event times around now, unusual device names (each a device of its own), both spellings of the key."""
    before = time.time()
    records = dataset(10_000)
    docs = [doc for _raw, doc in records if doc is not None]
    times = [datetime.fromisoformat(doc["eventTime"]).timestamp() for doc in docs]
    assert before - 60 < min(times) and max(times) <= time.time()
    names = {doc.get("medicalImagingdevice", doc.get("medicalimagingdevice")) for doc in docs}
    assert set(UNUSUAL_NAMES) <= names
    assert unicodedata.normalize("NFC", "Café MRI") in names and unicodedata.normalize("NFD", "Café MRI") in names
    assert {"MRI 1", "MRI 1 ", " SPECT 9 "} <= names and any(not n.isprintable() for n in names)
    both = [doc for doc in docs if "medicalImagingdevice" in doc and "medicalimagingdevice" in doc]
    assert both and all(doc["medicalimagingdevice"] != doc["medicalImagingdevice"] for doc in both)
    assert len(expected_summary(records)["sensors_by_device"]) == 50, "every name a device of its own"
