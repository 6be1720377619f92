"""Per-partition totals: exact sums, and redelivery never counts twice (no broker)."""

import math
import random
from datetime import UTC, datetime

import orjson

from humidity.core.aggregate import (
    IngestTotals,
    SensorTotals,
    count_sensors,
    exact_add,
    exact_total,
    ingest,
    sighting_key,
)
from humidity.core.simulation import reading_doc

T0 = datetime(2022, 8, 16, tzinfo=UTC)


def msg(guid, device, humidity):
    return orjson.dumps(reading_doc(guid, device, T0, humidity))


def test_exact_sum_does_not_depend_on_order_or_split():
    rng = random.Random(3)
    values = [round(rng.uniform(0, 100), 1) for _ in range(5000)]
    whole = []
    for v in values:
        exact_add(whole, v)
    halves = [[], []]
    for i, v in enumerate(reversed(values)):
        exact_add(halves[i % 2], v)
    assert exact_total(whole) == exact_total(halves[0] + halves[1]) == math.fsum(values)


def test_ingest_counts_valid_and_invalid_and_forwards_first_sightings():
    totals = IngestTotals()
    store = {}
    out = ingest(totals, [(0, msg("g1", "MRI 1", 50.0)), (1, b"junk"), (2, msg("g1", "MRI 1", 52.0)),
                          (3, msg("g2", "MRI 1", 40.0)), (4, msg("g1", "CT 1", 60.0))], store.get)
    assert (totals.offset, totals.valid, totals.invalid) == (4, 4, 1)
    assert exact_total(totals.devices["MRI 1"].partials) == 142.0 and totals.devices["MRI 1"].count == 3
    assert out.forwards == [("g1", "MRI 1"), ("g2", "MRI 1"), ("g1", "CT 1")]
    assert out.new_sightings == {sighting_key("MRI 1", "g1"): 0, sighting_key("MRI 1", "g2"): 3,
                                 sighting_key("CT 1", "g1"): 4}
    assert [(o, reason) for o, reason, _ in out.dead_letters] == [(1, "not valid JSON")]


def test_redelivered_messages_change_no_count_but_repeat_their_outputs():
    totals = IngestTotals()
    batch = [(0, msg("g1", "MRI 1", 50.0)), (1, b"junk"), (2, msg("g2", "MRI 1", 40.0))]
    first = ingest(totals, batch, {}.get)
    snapshot = orjson.dumps(totals.to_json())
    # the worker crashed after writing everything but before committing offsets:
    again = ingest(IngestTotals.from_json(orjson.loads(snapshot)), batch, first.new_sightings.get)
    assert orjson.dumps(again.totals.to_json()) == snapshot
    assert again.forwards == first.forwards  # sightings made by these very messages are re-sent
    assert len(again.dead_letters) == 1
    assert again.new_sightings == {}


def test_sightings_from_earlier_messages_are_not_forwarded_again():
    totals = IngestTotals(offset=10)
    out = ingest(totals, [(11, msg("g1", "MRI 1", 50.0))], {sighting_key("MRI 1", "g1"): 3}.get)
    assert out.forwards == [] and totals.valid == 1


def test_count_sensors_counts_each_guid_once_and_each_device_once():
    totals = SensorTotals()
    out = count_sensors(totals, [(0, "g1", "MRI 1"), (1, "g1", "MRI 1"), (2, "g2", "MRI 1"), (3, "g1", "CT 1")],
                        {}.get)
    assert (totals.sensors, totals.devices, totals.offset) == (2, {"MRI 1": 2, "CT 1": 1}, 3)
    assert out.entries["g1"] == {"first": 0, "devices": {"MRI 1": 0, "CT 1": 3}, "epoch": 0}


def test_count_sensors_after_a_crash_between_entry_and_totals_writes():
    entries = {}
    totals = SensorTotals()
    out = count_sensors(totals, [(0, "g1", "MRI 1"), (1, "g2", "CT 1")], {}.get)
    entries.update(out.entries)  # entries reached the table, the totals write was lost
    redelivered = count_sensors(SensorTotals(), [(0, "g1", "MRI 1"), (1, "g2", "CT 1"), (2, "g1", "MRI 1")],
                                entries.get)
    assert (redelivered.totals.sensors, redelivered.totals.devices) == (2, {"MRI 1": 1, "CT 1": 1})


def test_count_sensors_skips_what_the_totals_already_include():
    totals = SensorTotals(offset=5, sensors=1, devices={"MRI 1": 1})
    entries = {"g1": {"first": 5, "devices": {"MRI 1": 5}}}
    count_sensors(totals, [(5, "g1", "MRI 1"), (6, "g1", "MRI 1")], entries.get)
    assert (totals.sensors, totals.devices, totals.offset) == (1, {"MRI 1": 1}, 6)


def test_a_lost_sensor_entry_is_recorded_again_on_redelivery_so_it_never_counts_twice():
    counted = count_sensors(SensorTotals(), [(0, "g1", "MRI 1"), (1, "g1", "CT 1")], {}.get, epoch=3)
    saved_totals = counted.totals  # its changelog record arrived; the entry of g1 was lost
    assert (saved_totals.sensors, saved_totals.devices) == (1, {"MRI 1": 1, "CT 1": 1})
    entries = {}
    # the partition moves; the new owner re-reads from the committed offset 0
    again = count_sensors(SensorTotals.from_json(saved_totals.to_json()), [(0, "g1", "MRI 1"), (1, "g1", "CT 1")],
                          entries.get, epoch=4)
    assert (again.totals.sensors, again.totals.devices) == (1, {"MRI 1": 1, "CT 1": 1})
    assert again.entries == {"g1": {"first": 0, "devices": {"MRI 1": 0, "CT 1": 1}, "epoch": 4}}
    entries.update(again.entries)
    later = count_sensors(again.totals, [(2, "g1", "CT 1"), (3, "g1", "MRI 1")], entries.get, epoch=4)
    assert (later.totals.sensors, later.totals.devices, later.totals.offset) == (1, {"MRI 1": 1, "CT 1": 1}, 3)


def test_the_offsets_a_batch_covers_are_included_even_without_a_message():
    totals = IngestTotals()
    ingest(totals, [(0, msg("g1", "MRI 1", 50.0))], {}.get, through=2)  # 1 and 2: transaction markers
    assert (totals.offset, totals.valid) == (2, 1)
    sensors = SensorTotals()
    count_sensors(sensors, [(4, "g1", "MRI 1")], {}.get, through=6)
    assert sensors.offset == 6


def test_totals_round_trip_through_json():
    totals = IngestTotals()
    ingest(totals, [(0, msg("g1", "MRI 1", 50.5))], {}.get)
    assert IngestTotals.from_json(orjson.loads(orjson.dumps(totals.to_json()))) == totals
