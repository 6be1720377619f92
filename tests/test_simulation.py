"""The simulator's traffic has what real fleets have: loggers that move (no broker)."""

from collections import defaultdict

from humidity.core.simulation import MOVE_RATE, Simulator
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
