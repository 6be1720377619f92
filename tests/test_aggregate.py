"""Per-partition totals: exact sums, and redelivery never counts twice (no broker)."""

import itertools
import math
import random
from datetime import UTC, datetime
from fractions import Fraction

import orjson

from humidity.core import formats
from humidity.core.aggregate import IngestTotals, device_entries, device_entry_key, ingest, sighting_key, stored_records
from humidity.core.exact_sums import exact_add, exact_compact, exact_total
from humidity.core.sensor_counts import SensorTotals, count_sensors
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


def test_a_compacted_exact_sum_is_exact_short_and_the_same_however_it_was_split():
    rng = random.Random(4)
    for _ in range(300):
        values = [round(rng.uniform(0, 100), rng.choice([1, 2, 6])) for _ in range(rng.randint(0, 400))]
        parts = [[] for _ in range(rng.randint(1, 8))]
        for v in values:
            exact_add(rng.choice(parts), v)
        negated = rng.sample(values, len(values) // 3)  # some taken out again, as a summary's interval does
        mixed = [x for part in parts for x in part] + [-v for v in negated]
        compact = exact_compact(mixed)
        assert sum(map(Fraction, compact)) == sum(map(Fraction, values)) - sum(map(Fraction, negated))
        assert len(compact) <= 3 and all(abs(a) > abs(b) for a, b in itertools.pairwise(compact))
        assert exact_total(compact) == math.fsum(mixed)
        rng.shuffle(mixed)
        assert exact_compact(mixed) == compact
    assert exact_compact([]) == exact_compact([0.1, -0.1]) == []


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


def test_a_message_without_a_value_is_a_dead_letter_not_a_crash():
    """A tombstone or an empty record has no value (None): the Kafka records' own type."""
    totals = IngestTotals()
    out = ingest(totals, [(0, None), (1, b""), (2, msg("g1", "MRI 1", 50.0))], {}.get)
    assert (totals.offset, totals.valid, totals.invalid) == (2, 1, 2)
    assert [(o, reason, raw) for o, reason, raw in out.dead_letters] == [(0, "empty message", None),
                                                                         (1, "empty message", b"")]


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


def bundle(p, tagged, through, *pairs):
    """First sightings of input partition p's batch through ``through``, in round ``tagged``."""
    return {"p": p, "round": tagged, "o": through, "s": [list(pair) for pair in pairs]}


def end(p, tagged, offset=0):
    return {"p": p, "end": tagged, "o": offset}


def counted(totals):
    """(sensors, devices) over closed and open rounds."""
    sensors, devices = totals.counts.sensors, dict(totals.counts.devices)
    for adds in totals.open.values():
        sensors += adds.sensors
        for device, n in adds.devices.items():
            devices[device] = devices.get(device, 0) + n
    return sensors, {d: n for d, n in devices.items() if n}


def test_count_sensors_counts_each_guid_once_and_each_device_once():
    totals = SensorTotals(1)
    out = count_sensors(totals, [(0, bundle(0, 5, 10, ("g1", "MRI 1"))), (1, bundle(0, 5, 20, ("g1", "MRI 1"))),
                                 (2, bundle(0, 5, 30, ("g2", "MRI 1"), ("g1", "CT 1")))], {}.get)
    assert counted(totals) == (2, {"MRI 1": 2, "CT 1": 1}) and totals.offset == 2
    assert totals.sensors == 0 and out.closed == [], "round 5 is not closed yet"
    assert out.entries["g1"] == {"round": 5, "first": 0, "devices": {"MRI 1": [5, 0], "CT 1": [5, 2]}, "epoch": 0}
    out = count_sensors(totals, [(3, end(0, 5, 30))], {**out.entries}.get)
    assert [(tagged, counts.sensors, counts.devices, counts.inputs) for tagged, counts in out.closed] == \
        [(5, 2, {"MRI 1": 2, "CT 1": 1}, {0: 30})]
    assert (totals.sensors, totals.ends.closed) == (2, 5)


def test_a_logger_that_moves_device_within_one_batch_counts_once_and_each_device_once():
    """A logger's first readings on two devices in one input batch: one
    bundle names its guid twice. The second sighting must not take the
    entry the first one made for a lost write's."""
    totals = SensorTotals(2)
    out = count_sensors(totals, [(0, bundle(0, 5, 10, ("g1", "MRI 1"), ("g1", "CT 1")))], {}.get)
    assert counted(totals) == (1, {"MRI 1": 1, "CT 1": 1})
    assert out.entries["g1"]["devices"] == {"MRI 1": [5, 0], "CT 1": [5, 0]}
    count_sensors(totals, [(1, bundle(1, 5, 3, ("g1", "MRI 1")))], out.entries.get)  # back on MRI 1, seen elsewhere
    assert counted(totals) == (1, {"MRI 1": 1, "CT 1": 1})


def test_a_round_closes_once_every_input_partition_has_ended_it_and_holds_what_its_cut_holds():
    totals, entries = SensorTotals(2), {}

    def step(offset, message):
        out = count_sensors(totals, [(offset, message)], entries.get)
        entries.update(out.entries)
        return [(tagged, counts.sensors, dict(counts.inputs)) for tagged, counts in out.closed]

    step(0, bundle(0, 7, 100, ("g1", "MRI 1")))  # partition 0 sees g1 in round 7
    step(1, bundle(1, 6, 40, ("g1", "MRI 1")))  # partition 1 saw it in round 6, arriving later: it moves to 6
    step(2, bundle(1, 6, 50, ("g2", "CT 1")))
    assert step(3, end(1, 6)) == [], "partition 0 has not ended round 6"
    assert step(4, end(0, 6)) == [(6, 2, {1: 50})]  # g1 and g2: both sighted at or below round 6's cut
    step(5, bundle(0, 6, 90, ("g3", "CT 1")))  # late (a paused former owner): round 6 is closed, it goes to 7
    assert step(6, end(0, 7)) == []
    assert step(7, end(1, 8)) == [(7, 3, {0: 100, 1: 50})]
    assert totals.devices == {"MRI 1": 1, "CT 1": 2}


def test_count_sensors_after_a_crash_between_entry_and_totals_writes():
    entries = {}
    out = count_sensors(SensorTotals(1), [(0, bundle(0, 1, 5, ("g1", "MRI 1"), ("g2", "CT 1")))], {}.get)
    entries.update(out.entries)  # entries reached the table, the totals write was lost
    again = count_sensors(SensorTotals(1), [(0, bundle(0, 1, 5, ("g1", "MRI 1"), ("g2", "CT 1"))),
                                            (1, bundle(0, 1, 9, ("g1", "MRI 1")))], entries.get)
    assert counted(again.totals) == (2, {"MRI 1": 1, "CT 1": 1})


def test_count_sensors_skips_what_the_totals_already_include():
    totals = SensorTotals(1, offset=5)
    first = count_sensors(SensorTotals(1), [(5, bundle(0, 1, 5, ("g1", "MRI 1")))], {}.get)
    totals = SensorTotals.from_json(first.totals.to_json(), 1)
    count_sensors(totals, [(5, bundle(0, 1, 5, ("g1", "MRI 1"))), (6, bundle(0, 1, 6, ("g1", "MRI 1")))],
                  first.entries.get)
    assert counted(totals) == (1, {"MRI 1": 1}) and totals.offset == 6


def test_a_lost_sensor_entry_is_recorded_again_on_redelivery_so_it_never_counts_twice():
    messages = [(0, bundle(0, 1, 5, ("g1", "MRI 1"))), (1, bundle(0, 1, 8, ("g1", "CT 1")))]
    first = count_sensors(SensorTotals(1), messages, {}.get, epoch=3)
    saved = first.totals  # its changelog record arrived; the entry of g1 was lost
    assert counted(saved) == (1, {"MRI 1": 1, "CT 1": 1})
    entries = {}
    # the partition moves; the new owner re-reads from the committed offset 0
    again = count_sensors(SensorTotals.from_json(saved.to_json(), 1), messages, entries.get, epoch=4)
    assert counted(again.totals) == (1, {"MRI 1": 1, "CT 1": 1})
    assert again.entries == {"g1": {"round": 1, "first": 0, "devices": {"MRI 1": [1, 0], "CT 1": [1, 1]},
                                    "epoch": 4}}
    entries.update(again.entries)
    later = count_sensors(again.totals, [(2, bundle(0, 1, 9, ("g1", "CT 1"))),
                                         (3, bundle(0, 2, 12, ("g1", "MRI 1")))], entries.get, epoch=4)
    assert counted(later.totals) == (1, {"MRI 1": 1, "CT 1": 1}) and later.totals.offset == 3


def test_sensor_figures_written_before_rounds_still_count_once():
    old_totals = {"offset": 7, "sensors": 1, "devices": {"MRI 1": 1}, "epoch": 2}
    old_entry = {"first": 3, "devices": {"MRI 1": 3}, "epoch": 2}
    totals = SensorTotals.from_json(old_totals, 1)
    out = count_sensors(totals, [(8, {"s": [["g1", "MRI 1"], ["g2", "MRI 1"]]}), (9, end(0, 4))],
                        {"g1": old_entry}.get)
    assert (totals.sensors, totals.devices) == (2, {"MRI 1": 2})
    assert out.closed[-1][0] == 4


def test_the_offsets_a_batch_covers_are_included_even_without_a_message():
    totals = IngestTotals()
    ingest(totals, [(0, msg("g1", "MRI 1", 50.0))], {}.get, through=2)  # 1 and 2: transaction markers
    assert (totals.offset, totals.valid) == (2, 1)
    sensors = SensorTotals(1)
    count_sensors(sensors, [(4, bundle(0, 1, 3, ("g1", "MRI 1")))], {}.get, through=6)
    assert sensors.offset == 6


def stored(totals, store=None):
    """What the flows write for a batch (stored_records), by device name (None: the header)."""
    store = {} if store is None else store
    *entries, (_, header) = stored_records(0, totals)
    store.update(device_entries(0, entries))
    store[None] = orjson.loads(header)
    totals.unsaved.clear()
    return store


def entries_of(store):
    """The device entries of a store, as the flows read them back from the table."""
    return device_entries(0, [(device_entry_key(0, k), orjson.dumps(v)) for k, v in store.items() if k is not None])


def restored(store):
    return IngestTotals.from_stored(store.get(None), entries_of(store))


def test_a_batch_stores_only_the_devices_it_touched():
    totals = IngestTotals()
    ingest(totals, [(i, msg(f"g{i}", f"MRI {i}", 50.0)) for i in range(100)], {}.get)
    assert len(totals.unsaved) == 100
    store = stored(totals)
    ingest(totals, [(100, msg("g1", "MRI 7", 51.0)), (101, msg("g2", "CT 9", 40.0))], {}.get)
    assert totals.unsaved == {"MRI 7", "CT 9"}
    stored(totals, store)
    assert restored(store) == totals and store[None]["device_count"] == 101
    assert store["MRI 7"]["o"] == 101 and store["MRI 8"]["o"] == 99


def test_device_entries_kept_by_a_crash_that_lost_the_header_do_not_count_twice():
    rng = random.Random(5)
    batches = [[(o, msg(f"g{o % 7}", f"MRI {o % 5}", round(rng.uniform(20, 80), 1))) for o in range(b, b + 10)]
               for b in range(0, 50, 10)]
    reference = IngestTotals()
    for batch in batches:
        ingest(reference, batch, {}.get)
    totals = IngestTotals()
    store = {}
    for batch in batches[:2]:
        ingest(totals, batch, {}.get)
        stored(totals, store)
    ingest(totals, batches[2], {}.get)  # written in part: two device entries, not the header
    for name in ("MRI 1", "MRI 3"):
        store[name] = orjson.loads(orjson.dumps(totals.device_json(name)))
    again = restored(store)
    assert again.offset == 19 and again.devices["MRI 1"].offset == 29
    for batch in batches[2:]:
        ingest(again, batch, {}.get)
    assert again == reference and sum(d.count for d in again.devices.values()) == 50


def test_totals_stored_as_one_value_by_an_earlier_version_continue_as_entries():
    old = IngestTotals()
    ingest(old, [(0, msg("g1", "MRI 1", 50.0)), (1, msg("g2", "CT 1", 40.0))], {}.get)
    totals = IngestTotals.from_stored(orjson.loads(orjson.dumps(old.to_json())), [])
    assert totals.unsaved == {"MRI 1", "CT 1"} and totals.devices["CT 1"].offset == 1
    ingest(totals, [(1, msg("g2", "CT 1", 40.0)), (2, msg("g1", "MRI 1", 52.0))], {}.get)
    store = stored(totals)
    assert set(store) == {None, "MRI 1", "CT 1"}
    assert (store["MRI 1"]["c"], store["CT 1"]["c"], store[None]["valid"]) == (2, 1, 3)


def test_totals_round_trip_through_json():
    totals = IngestTotals()
    ingest(totals, [(0, msg("g1", "MRI 1", 50.5))], {}.get)
    assert IngestTotals.from_json(orjson.loads(orjson.dumps(totals.to_json()))) == totals


def test_shared_counts_say_up_to_which_input_offset_they_are_complete():
    totals, entries = SensorTotals(2), {}

    def step(offset, message):
        out = count_sensors(totals, [(offset, message)], entries.get)
        entries.update(out.entries)
        return [(tagged, counts.sensors, counts.covers) for tagged, counts in out.closed]

    step(0, bundle(0, 3, 10, ("g1", "MRI 1")))
    assert step(1, end(0, 3, 10)) == []
    assert step(2, end(1, 3, 20)) == [(3, 1, {0: 10, 1: 20})]
    step(3, end(0, 4, 11))
    step(4, end(0, 5, 12))
    # partition 1's next end is of round 6 (a new owner): rounds 4 and 5 close, and what they
    # cover of partition 1 is still its end of round 3
    assert step(5, end(1, 6, 25)) == [(4, 1, {0: 11, 1: 20}), (5, 1, {0: 12, 1: 20})]
    restored = SensorTotals.from_json(orjson.loads(orjson.dumps(totals.to_json())), 2)
    assert restored.ends.marks == {0: [[5, 12]], 1: [[3, 20], [6, 25]]}, "only marks a later cut may need are kept"
    assert count_sensors(restored, [(6, end(0, 6, 13))], entries.get).closed[-1][1].covers == {0: 13, 1: 25}


def sensors_restored(store, partitions=1):
    return SensorTotals.from_stored(store.get(None), entries_of(store), partitions)


def test_sensor_device_entries_kept_by_a_crash_that_lost_the_header_count_as_before_it():
    batches = [[(0, bundle(0, 1, 5, ("g1", "MRI 1"), ("g2", "CT 1"))), (1, end(0, 1))],
               [(2, bundle(0, 2, 9, ("g3", "MRI 1"), ("g1", "CT 1"))), (3, end(0, 2))],
               [(4, bundle(0, 3, 12, ("g4", "PET 1"))), (5, end(0, 3))]]
    reference, entries = SensorTotals(1), {}
    for batch in batches:
        entries.update(count_sensors(reference, batch, entries.get).entries)
    totals, store, entries = SensorTotals(1), {}, {}
    entries.update(count_sensors(totals, batches[0], entries.get).entries)
    stored(totals, store)
    assert formats.body(store["MRI 1"]) == {"n": 1, "r": 1, "was": None, "epoch": 0}
    assert store[None]["device_count"] == 2
    entries.update(count_sensors(totals, batches[1], entries.get).entries)
    assert totals.unsaved == {"MRI 1": 1, "CT 1": 1}
    store["MRI 1"] = totals.device_json("MRI 1")  # written; CT 1 and the header were lost
    again = sensors_restored(store)
    assert again.counts.devices == {"MRI 1": 1, "CT 1": 1} and again.ends.closed == 1
    for batch in batches[1:]:
        entries.update(count_sensors(again, batch, entries.get).entries)
    assert (again.sensors, again.devices) == (reference.sensors, reference.devices) == \
        (4, {"MRI 1": 2, "CT 1": 2, "PET 1": 1})


def test_sensor_totals_stored_as_one_value_by_an_earlier_version_continue_as_entries():
    old = {"offset": 7, "sensors": 2, "devices": {"MRI 1": 2}, "closed": 3, "ends": {"0": 3}, "epoch": 2}
    totals = sensors_restored({None: old})
    assert totals.devices == {"MRI 1": 2} and totals.unsaved == {"MRI 1": 2}
    count_sensors(totals, [(8, bundle(0, 4, 9, ("g9", "CT 1"))), (9, end(0, 4))], {}.get)
    store = stored(totals)
    assert store["MRI 1"]["n"] == 2 and formats.body(store["CT 1"]) == {"n": 1, "r": 4, "was": None, "epoch": 2}
    assert sensors_restored(store).devices == {"MRI 1": 2, "CT 1": 1}
