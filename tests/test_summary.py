"""Summaries as cuts: the book of per-round figures, the cut it picks, the
summary and its interval (no broker)."""

import math
import random
from datetime import UTC, datetime
from fractions import Fraction

import orjson

from humidity.core.aggregate import IngestTotals
from humidity.core.alarms import ALARMS_LISTED, shared_alarms
from humidity.core.device_rows import brief, device_rows
from humidity.core.exact_sums import DeviceSum
from humidity.core.partials import BASE_EVERY, INGEST, SENSORS, TRIM_EVERY, Chain, Cut, PartialsBook, Sharer
from humidity.core.sensor_counts import SensorCounts, SensorTotals, count_sensors
from humidity.core.summary import Previous, SummaryMemo, build_summary
from humidity.core.summary_log import LOGGED_ALARMS_MAX, render_line, render_text

NOW = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
LATER = datetime(2024, 5, 6, 7, 8, 12, 123456, tzinfo=UTC)


def ingest_totals(offset, devices, invalid=0):
    return IngestTotals(offset=offset, valid=sum(len(v) for v in devices.values()), invalid=invalid,
                        devices={d: DeviceSum(list(v), len(v)) for d, v in devices.items()})


def sensors(n, devices, inputs=None):
    return SensorCounts(n, devices, inputs or {})


def cut(ingest, sensor_counts, alarms=None):
    return Cut(0, dict(enumerate(ingest)), dict(enumerate(sensor_counts)),
               dict(enumerate(shared_alarms(active) for active in (alarms or [[] for _ in ingest]))))


def test_summary_shape_orders_and_cut():
    summary, counted = build_summary(cut(
        [ingest_totals(3, {"MRI 12": [70.0, 71.0], "CT 3": [40.0]}, invalid=2),
         ingest_totals(1, {"CT 3": [42.0], "SPECT 7": [70.5]})],
        [sensors(2, {"MRI 12": 1, "CT 3": 1}), sensors(1, {"SPECT 7": 1, "CT 3": 1})]), NOW, 3.0)
    assert summary == {
        "time": "2024-05-06T07:08:09.123456Z",
        "interval_seconds": 3.0,
        "as_of": {"0": 3, "1": 1},
        "average_humidity_by_device": [
            {"device": "MRI 12", "average": 70.5}, {"device": "SPECT 7", "average": 70.5},
            {"device": "CT 3", "average": 41.0}],
        "total_messages": 5,
        "sensors_by_device": [{"device": "CT 3", "sensors": 2}, {"device": "MRI 12", "sensors": 1},
                              {"device": "SPECT 7", "sensors": 1}],
        "total_sensors": 3,
        "invalid_messages": 2,
        "active_alarms": [],
        "active_alarm_count": 0,
        "active_alarms_by_kind": {},
        "active_alarms_by_device": {},
        "interval": {"since": None, "messages": 5, "invalid_messages": 2, "new_sensors": 3,
                     "average_humidity_by_device": [
                         {"device": "MRI 12", "average": 70.5, "count": 2},
                         {"device": "SPECT 7", "average": 70.5, "count": 1},
                         {"device": "CT 3", "average": 41.0, "count": 2}]},
    }
    assert Previous.from_json(orjson.loads(orjson.dumps(counted.to_json()))) == counted


def test_the_interval_is_exactly_what_the_cut_added_since_the_previous_summary():
    first, counted = build_summary(cut([ingest_totals(4, {"MRI 1": [0.1, 0.2]})], [sensors(1, {"MRI 1": 1})]),
                                   NOW, 3.0)
    second, _ = build_summary(cut([ingest_totals(9, {"MRI 1": [0.1, 0.2, 0.3, 1e16, -1e16], "CT 2": [40.0]})],
                                  [sensors(3, {"MRI 1": 2, "CT 2": 1})]), LATER, 3.0, counted)
    assert second["interval"] == {
        "since": first["time"], "messages": 4, "invalid_messages": 0, "new_sensors": 2,
        "average_humidity_by_device": [{"device": "CT 2", "average": 40.0, "count": 1},
                                       {"device": "MRI 1", "average": 0.3 / 3, "count": 3}]}


def partial(tagged, offset, figures):
    return {"round": tagged, "offset": offset, **figures.to_json()} if not isinstance(figures, list) else \
        {"round": tagged, "offset": offset, "active": figures}


def full_book(rounds):
    """A book for 2 partitions with figures for every round in ``rounds``:
    ingest partition p at round r includes offsets up to 10 * r + p."""
    book = PartialsBook(partitions=2)
    for r in rounds:
        for p in (0, 1):
            book.update(f"ingest/{p}", partial(r, 10 * r + p, ingest_totals(10 * r + p, {"MRI 1": [50.0] * r})))
            book.update(f"sensors/{p}", partial(r, r, sensors(r, {"MRI 1": r}, {0: 10 * r, 1: 10 * r + 1})))
            book.update(f"alarms/{p}", partial(r, r, []))
    return book


def test_the_book_takes_the_newest_round_every_partition_has_closed():
    book = PartialsBook(partitions=2)
    assert book.missing() == ["ingest/0", "ingest/1", "sensors/0", "sensors/1", "alarms/0", "alarms/1"]
    assert not book.update("ingest/7", partial(1, 1, IngestTotals())), "a partition beyond the count"
    assert not book.update("ingest/0", IngestTotals().to_json()), "a partial written before rounds"
    book = full_book([3, 4, 5])
    book.update("ingest/0", partial(6, 60, ingest_totals(60, {"MRI 1": [50.0] * 6})))  # only one partition at 6
    found = book.newest_cut()
    assert found.round == 5 and found.as_of() == {"0": 50, "1": 51}
    assert book.newest_cut({"0": 50, "1": 52}) is None, "never below the previous summary's cut"


def test_an_alarm_partition_that_stopped_holds_the_cut_back_so_that_alarms_are_never_older_than_the_counts():
    book = full_book([3, 4])
    for p in (0, 1):  # counts close round 5 and 6; alarm partition 1 stays at round 4
        for r in (5, 6):
            book.update(f"ingest/{p}", partial(r, 10 * r + p, ingest_totals(10 * r + p, {"MRI 1": [50.0] * r})))
            book.update(f"sensors/{p}", partial(r, r, sensors(r, {"MRI 1": r}, {0: 10 * r, 1: 10 * r + 1})))
    book.update("alarms/0", partial(6, 6, []))
    assert book.newest_cut().round == 4
    book.update("alarms/1", partial(5, 5, []))
    assert book.newest_cut().round == 5


def test_a_cut_asked_for_again_is_the_same_until_a_new_owner_closes_its_round_again():
    book = full_book([3, 4, 5])
    first = book.newest_cut()
    again = book.newest_cut()
    assert again.round == 5 and all(again.ingest[p] is first.ingest[p] for p in (0, 1)), "built once"
    # partition 0's owner lost its state write: its successor (a higher epoch) closes round 5 again
    book.update("ingest/0", {**partial(5, 50, ingest_totals(50, {"MRI 1": [40.0] * 5})), "epoch": 2})
    after = book.newest_cut()
    assert after.round == 5 and after.ingest[0].devices == {"MRI 1": DeviceSum([40.0] * 5, 5)}
    summary, _ = build_summary(after, LATER, 3.0)
    assert summary["average_humidity_by_device"] == [{"device": "MRI 1", "average": 45.0}]


def test_a_round_whose_sensors_counted_past_its_input_offsets_is_not_used():
    book = full_book([3, 4, 5])
    # round 5 of sightings partition 1 already holds sightings of input partition 0 up to offset 57
    book.update("sensors/1", partial(5, 6, sensors(5, {"MRI 1": 5}, {0: 57, 1: 51})))
    assert book.newest_cut().round == 4


def test_a_partition_that_skipped_rounds_is_taken_as_of_its_last_close():
    book = full_book([3, 4, 5])
    for r in (6, 7):  # input partition 1 closed no round 6, only 7
        book.update("ingest/0", partial(r, 10 * r, ingest_totals(10 * r, {"MRI 1": [50.0] * r})))
        book.update("sensors/0", partial(r, r, sensors(r, {"MRI 1": r}, {0: 10 * r, 1: 51})))
        book.update("sensors/1", partial(r, r, sensors(r, {"MRI 1": r}, {0: 10 * r, 1: 51})))
        book.update("alarms/0", partial(r, r, []))
        book.update("alarms/1", partial(r, r, []))
    book.update("ingest/1", partial(7, 71, ingest_totals(71, {"MRI 1": [50.0] * 7})))
    found = book.newest_cut()
    assert found.round == 7 and found.as_of() == {"0": 70, "1": 71}
    book.forget_before(7)
    assert book.newest_cut().round == 7


def test_text_form_has_four_titled_blocks_both_views_and_escapes_names():
    summary, _ = build_summary(cut([ingest_totals(0, {"MRI\n1": [50.0]})], [sensors(1, {"MRI\n1": 1})]), NOW, 3.0)
    text = render_text(summary)
    for title in ("Average humidity by device (highest first), since the start",
                  "Average humidity by device (highest first), this interval", "Total messages processed",
                  "Number of sensors by device", "Total number of sensors", "this interval"):
        assert title in text
    assert "'MRI\\n1'" in text
    assert text.startswith("Readings at or below offsets {0: 0} of the input partitions")
    orjson.dumps(summary)


def test_text_form_lists_at_most_twenty_active_alarms():
    summary, _ = build_summary(cut([ingest_totals(0, {"MRI 1": [50.0]})], [sensors(1, {"MRI 1": 1})]), NOW, 3.0)
    summary["active_alarms"] = [{"kind": "OFFLINE", "device": "MRI 1", "guid": f"g{i}", "value": 50.0,
                                 "limit": 300.0, "since": "2024-01-01T00:00:00.000000Z"} for i in range(1000)]
    summary["active_alarm_count"] = 1000
    lines = render_text(summary).splitlines()
    assert "Active alarms (1000, newest first)" in lines[2]
    assert sum(line.startswith("OFFLINE") for line in lines) == LOGGED_ALARMS_MAX == 20
    assert "... and 980 more (all of them: GET /api/alarms)" in lines


def test_a_fleet_wide_outage_lists_the_newest_alarms_and_counts_them_all():
    """Every logger OFFLINE: the partitions share, and the summary lists, the
    newest ALARMS_LISTED; the counts cover all, so nothing outgrows Kafka's limit."""
    def offline(p, i):
        return {"time": f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000000Z", "device": f"MRI {i % 700}",
                "guid": f"g{p}-{i}", "kind": "OFFLINE", "state": "raised", "value": 50.0, "limit": 300.0,
                "since": f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000000Z"}

    partitions = [[offline(p, i) for i in range(30_000)] for p in range(2)]
    partitions[1].append({**offline(1, 0), "kind": "HIGH", "guid": "newest", "since": "2024-06-01T00:00:00.000000Z"})
    summary, _ = build_summary(cut([ingest_totals(0, {"MRI 1": [50.0]})] * 2, [sensors(1, {"MRI 1": 1})] * 2,
                                   partitions), NOW, 3.0)
    assert len(summary["active_alarms"]) == ALARMS_LISTED and summary["active_alarm_count"] == 60_001
    assert summary["active_alarms"][0]["guid"] == "newest"
    newest_first = sorted(summary["active_alarms"], reverse=True,
                          key=lambda a: (a["since"], a["time"], a["device"], a["guid"], a["kind"]))
    assert summary["active_alarms"] == newest_first
    assert summary["active_alarms_by_kind"] == {"HIGH": 1, "OFFLINE": 60_000}
    assert sum(summary["active_alarms_by_device"].values()) == 60_001 and len(summary["active_alarms_by_device"]) == 700
    assert len(orjson.dumps(summary)) < 1_000_000
    assert len(orjson.dumps(shared_alarms(partitions[0]))) < 1_000_000
    lines = render_text(summary).splitlines()
    assert "Active alarms (60001, newest first)" in lines[2]
    assert "... and 59,981 more (the newest 1,000: GET /api/alarms)" in lines
    assert "active_alarms=60001 " in render_line(summary)
    assert "active_alarms_by_device" not in brief(summary, device_rows(summary))


def test_text_form_lists_at_most_fifty_devices_per_block():
    devices = {f"MRI {i}": [40.0 + i % 20] for i in range(40_000)}
    summary, _ = build_summary(cut([ingest_totals(0, devices)], [sensors(1, {d: 1 for d in devices})]), NOW, 3.0)
    lines = render_text(summary).splitlines()
    assert len(lines) < 250
    assert lines.count("... and 39,950 more (all of them: GET /api/summary/devices?sort=average)") == 1
    assert lines.count("... and 39,950 more (all of them: GET /api/summary/devices?sort=device)") == 1
    assert "... and 39,950 more (all of them: GET /api/summary/devices?sort=interval_average)" in lines


def test_one_line_form_for_deployments():
    summary, _ = build_summary(cut([ingest_totals(0, {"MRI 1": [50.0]}, invalid=3)], [sensors(1, {"MRI 1": 1})]),
                               NOW, 3.0)
    line = render_line(summary)
    assert "\n" not in line
    assert line == ("time=2024-05-06T07:08:09.123456Z messages=1 invalid=3 sensors=1 devices=1 active_alarms=0 "
                    "interval_messages=1 interval_invalid=3 new_sensors=1 as_of=0:0")


def test_sightings_lost_with_their_owner_keep_the_rounds_that_miss_them_out_of_summaries():
    """The kill -9 case: input partition 1's figures for round 5 reached the
    partials topic, but its sightings and its end of round 5 were lost with
    the worker; its next owner sends them again in its first round, 8. A
    round in between would count the readings but not their sensors."""
    book = PartialsBook(partitions=2)
    sightings = {0: SensorTotals(2), 1: SensorTotals(2)}
    log = {0: [], 1: []}

    sharers = {0: Sharer(), 1: Sharer()}

    def to(q, message):
        offset = len(log[q])
        log[q].append(message)
        out = count_sensors(sightings[q], [(offset, message)], {}.get)
        if out.closed:
            shares = [(tagged, partial(tagged, sightings[q].offset, counts)) for tagged, counts in out.closed]
            for doc in sharers[q].docs(shares, lambda: dict(sightings[q].counts.devices)):
                book.update(f"sensors/{q}", doc)

    def close(p, tagged, offset, devices, lost=False):
        book.update(f"ingest/{p}", partial(tagged, offset, ingest_totals(offset, devices)))
        book.update(f"alarms/{p}", partial(tagged, offset, []))
        if not lost:
            for q in (0, 1):
                to(q, {"p": p, "end": tagged, "o": offset})

    def seen(p, tagged, offset, q, guid, device):
        return to(q, {"p": p, "round": tagged, "o": offset, "s": [[guid, device]]})

    seen(0, 4, 0, 0, "g1", "MRI 1")
    seen(1, 4, 0, 1, "g2", "CT 1")
    close(0, 4, 0, {"MRI 1": [50.0]})
    close(1, 4, 0, {"CT 1": [40.0]})
    # round 5: partition 1's sighting of g3 and its end are lost, its figures are not
    close(1, 5, 1, {"CT 1": [40.0, 41.0]}, lost=True)
    seen(0, 5, 1, 1, "g4", "MRI 1")
    close(0, 5, 1, {"MRI 1": [50.0, 51.0]})
    seen(0, 6, 2, 1, "g5", "MRI 1")
    close(0, 6, 2, {"MRI 1": [50.0, 51.0, 52.0]})
    close(0, 7, 2, {"MRI 1": [50.0, 51.0, 52.0]})
    seen(1, 8, 1, 0, "g3", "CT 1")  # partition 1's new owner reads offset 1 again
    close(1, 8, 1, {"CT 1": [40.0, 41.0]})
    assert [tagged for tagged, *_ in book.chains[("sensors", 1)].rounds] == [4, 5, 6, 7]
    found = book.newest_cut()
    assert found.round == 4 and found.as_of() == {"0": 0, "1": 0}
    assert sum(counts.sensors for counts in found.sensors.values()) == 2
    close(0, 8, 2, {"MRI 1": [50.0, 51.0, 52.0]})
    found = book.newest_cut()
    assert found.round == 8 and found.as_of() == {"0": 2, "1": 1}
    assert sum(counts.sensors for counts in found.sensors.values()) == 5


def ingest_share(tagged, offset, devices, epoch=1, **extra):
    """An ingest partial: the header of totals with ``devices`` in all, listing ``devices``."""
    totals = ingest_totals(offset, devices)
    totals.epoch = epoch
    return {**totals.to_json(), "round": tagged, **extra}


def test_a_chain_takes_deltas_that_continue_it_and_waits_for_a_base_after_a_gap():
    chain = Chain(INGEST)
    assert not chain.update({**ingest_share(1, 10, {"MRI 1": [50.0]}), "since": 0}), "no base yet"
    assert chain.update(ingest_share(2, 20, {"MRI 1": [50.0], "CT 1": [40.0]}))
    delta = ingest_share(3, 30, {"MRI 1": [50.0, 52.0], "CT 1": [40.0]})
    delta["devices"].pop("CT 1")  # only what changed; the header still counts both devices
    assert chain.update({**delta, "since": 2})
    assert chain.figures(3).devices == {"MRI 1": DeviceSum([50.0, 52.0], 2), "CT 1": DeviceSum([40.0], 1)}
    assert chain.figures(2).devices["MRI 1"] == DeviceSum([50.0], 1), "older rounds stay as they were"
    assert not chain.update({**ingest_share(5, 50, {}), "since": 4}), "round 4 was missed"
    assert not chain.update({**ingest_share(6, 60, {}), "since": 5}), "still no base"
    assert chain.tail == 3
    assert chain.update(ingest_share(7, 70, {"MRI 1": [50.0, 52.0, 53.0], "CT 1": [40.0]}))
    for _ in range(TRIM_EVERY):  # devices that stopped changing are trimmed once in TRIM_EVERY calls
        chain.forget_before(7)
    assert [r for r, *_ in chain.rounds] == [7] and not chain.several


def test_a_new_owners_base_replaces_rounds_it_closes_again_and_drops_devices_it_does_not_list():
    chain = Chain(SENSORS)
    share = {"offset": 5, "sensors": 2, "inputs": {}, "epoch": 3}
    assert chain.update({**share, "round": 4, "devices": {"MRI 1": 1, "CT 1": 1}})
    assert chain.update({**share, "round": 5, "since": 4, "devices": {"MRI 1": 2}, "sensors": 3, "device_count": 2})
    # the owner's state write was lost: its successor (epoch 4) closes round 5 again, without CT 1
    assert chain.update({**share, "round": 5, "epoch": 4, "sensors": 1, "devices": {"MRI 1": 1}})
    assert not chain.update({**share, "round": 6, "since": 5, "devices": {}}), "a late delta of the old owner"
    assert chain.figures(5).devices == {"MRI 1": 1} and chain.figures(4).devices == {"MRI 1": 1, "CT 1": 1}
    assert not chain.update({**share, "round": 9, "devices": {"MRI 1": 9}}), "a late base of the old owner"


def test_figures_whose_device_count_disagrees_are_not_used():
    chain = Chain(SENSORS)
    chain.update({"round": 1, "offset": 1, "sensors": 1, "inputs": {}, "devices": {"MRI 1": 1}})
    chain.update({"round": 2, "offset": 2, "sensors": 2, "inputs": {}, "since": 1, "devices": {},
                  "device_count": 2})
    assert chain.figures(1) is not None and chain.figures(2) is None


def test_an_owner_shares_a_base_first_then_deltas_and_a_base_every_base_every_rounds():
    sharer, everything = Sharer(), {"MRI 1": 1, "CT 1": 1}
    first = sharer.docs([(3, {"round": 3, "devices": {"MRI 1": 1}}), (4, {"round": 4, "devices": {}})],
                        lambda: everything)
    assert first == [{"round": 4, "devices": everything}], "no delta before the first base"
    docs = sharer.docs([(5, {"round": 5, "devices": {"CT 1": 1}}), (6, {"round": 6, "devices": {}})],
                       lambda: everything)
    assert docs == [{"round": 5, "devices": {"CT 1": 1}, "since": 4}, {"round": 6, "devices": {}, "since": 5}]
    assert "since" not in sharer.docs([(4 + BASE_EVERY, {"round": 4 + BASE_EVERY, "devices": {}})],
                                      lambda: everything)[0]
    # a close before the owner's first batch carried the stored epoch; the next one its own
    assert sharer.docs([(50, {"round": 50, "epoch": 7, "devices": {}})], lambda: everything) == \
        [{"round": 50, "epoch": 7, "devices": everything}], "a new epoch starts with a base"


def test_the_newest_rounds_figures_kept_as_they_change_agree_with_a_device_by_device_look_up():
    # Random histories: deltas, gaps, bases of new owners closing rounds
    # again and dropping devices, old rounds forgotten.
    rng = random.Random(17)
    for _ in range(200):
        chain, epoch = Chain(SENSORS), 1
        whole = Chain(SENSORS)  # the same partials, nothing forgotten
        for _ in range(30):
            step = rng.random()
            names = rng.sample([f"MRI {i}" for i in range(8)], rng.randint(0, 5))
            if step < 0.15 and chain.tail >= 0:  # a new owner closes recent rounds again
                epoch += 1
                doc = {"round": max(0, chain.tail - rng.randint(0, 2)),
                       "devices": {name: rng.randint(1, 9) for name in names}}
            elif step < 0.25:  # a base
                doc = {"round": chain.tail + 1, "devices": {name: rng.randint(1, 9) for name in names}}
            elif step < 0.3 and chain.rounds:
                chain.forget_before(rng.choice(chain.rounds)[0])
                for tagged, *_ in chain.rounds:  # what is kept is as it was
                    assert chain.devices_at(tagged) == whole.devices_at(tagged)
                continue
            else:  # a delta, sometimes after a gap
                doc = {"round": chain.tail + rng.choice([1, 1, 1, 2]), "since": chain.tail,
                       "devices": {name: rng.randint(1, 9) for name in names}}
            doc = {"offset": doc["round"], "sensors": 0, "inputs": {}, "epoch": epoch, **doc}
            chain.update(doc)
            whole.update(doc)
            if chain.rounds:
                assert chain.figures(chain.tail).devices == chain.devices_at(chain.tail)
            for tagged, *_ in chain.rounds:
                assert chain.devices_at(tagged) == whole.devices_at(tagged)
                figures = chain.figures(tagged)  # built once per round, until a new owner replaces it
                assert figures is not None, tagged  # no device counts here: every kept round is complete
                assert figures.devices == whole.devices_at(tagged)


def test_a_device_that_changes_every_round_keeps_only_the_entries_a_cut_may_need_and_the_one_before():
    chain = Chain(SENSORS)
    share = {"offset": 0, "sensors": 0, "inputs": {}, "epoch": 1}
    chain.update({**share, "round": 0, "devices": {"MRI 1": 0, "CT 1": 0}})
    for tagged in range(1, TRIM_EVERY - 1):  # fewer calls than the pass over every device needs
        chain.update({**share, "round": tagged, "since": tagged - 1, "devices": {"MRI 1": tagged}})
        chain.forget_before(tagged - 1)  # the summary of the round before
        # the last round summarised and the newest, and the one before until the device changes again
        assert len(chain.devices["MRI 1"]) <= 3 and chain.devices["CT 1"] == [(0, 0)]
        assert chain.figures(tagged - 1).devices == {"MRI 1": tagged - 1, "CT 1": 0}


def device_lists(taken: Cut) -> tuple[list[dict], list[dict]]:
    """A summary's averages and sensors per device, computed the plain way."""
    sums: dict = {}
    for totals in taken.ingest.values():
        for device, figure in totals.devices.items():
            partials, count = sums.get(device, ([], 0))
            sums[device] = (partials + figure.partials, count + figure.count)
    averages = sorted(({"device": d, "average": math.fsum(p) / c} for d, (p, c) in sums.items() if c),
                      key=lambda row: (-row["average"], row["device"]))
    sensor_counts: dict = {}
    for counts in taken.sensors.values():
        for device, n in counts.devices.items():
            sensor_counts[device] = sensor_counts.get(device, 0) + n
    return averages, [{"device": d, "sensors": sensor_counts[d]} for d in sorted(sensor_counts)]


def test_the_counted_sums_stay_exact_and_short_when_every_partition_counts_every_device():
    # Unkeyed readings: every input partition counts nearly every device, and
    # the cut header holds one exact sum per device for the next interval.
    rng = random.Random(12)
    names = [f"MRI {i}" for i in range(300)]
    ingest: dict = {p: {} for p in range(8)}
    memo, previous = SummaryMemo(), None
    for step in range(6):
        for p in ingest:
            for name in rng.sample(names, 200):
                grown = DeviceSum(*((list(f.partials), f.count) if (f := ingest[p].get(name)) else ()))
                for _ in range(rng.randint(1, 20)):
                    grown.add(round(rng.uniform(20, 90), 1))
                ingest[p][name] = grown
        taken = Cut(step, {p: IngestTotals(offset=step, devices=dict(ingest[p])) for p in ingest},
                    {p: SensorCounts() for p in ingest}, {p: shared_alarms([]) for p in ingest})
        _summary, previous = build_summary(taken, NOW, 3.0, previous, memo)
        for name, (partials, count) in previous.devices.items():
            figures = [devices[name] for devices in ingest.values() if name in devices]
            assert sum(map(Fraction, partials)) == sum(Fraction(x) for f in figures for x in f.partials)
            assert count == sum(f.count for f in figures)
            assert len(partials) <= 3  # not a float or more for every partition
    assert set(previous.devices) == set(names)


def test_a_summary_built_on_the_last_ones_rows_equals_one_built_from_scratch():
    # Random sequences of cuts: a device keeps its figure object, gets a new
    # one (equal or not), comes or goes in a partition; partitions come and
    # go; the previous summary is the one the memo built, an equal copy
    # (another worker published it), or none. Averages tie often.
    rng = random.Random(11)
    names = [f"MRI {i}" for i in range(12)]
    for _ in range(150):
        memo, previous = SummaryMemo(), None
        ingest: dict = {p: {} for p in range(3)}
        sightings: dict = {p: {} for p in range(3)}
        for step in range(25):
            for p in ingest:
                for name in rng.sample(names, rng.randint(0, 4)):
                    figure, change = ingest[p].get(name), rng.random()
                    if change < 0.15:
                        ingest[p].pop(name, None)
                        sightings[p].pop(name, None)
                    elif change < 0.3 and figure is not None:  # the same figures in a new object
                        ingest[p][name] = DeviceSum(list(figure.partials), figure.count)
                    else:
                        grown = DeviceSum(list(figure.partials), figure.count) if figure else DeviceSum()
                        grown.add(rng.choice([20.0, 35.5, 50.0, 64.25]))
                        ingest[p][name] = grown
                        sightings[p][name] = rng.randint(0, 3)
            partitions = [0, 1] if rng.random() < 0.1 else [0, 1, 2]
            taken = Cut(step, {p: IngestTotals(offset=step, valid=step, devices=dict(ingest[p])) for p in partitions},
                        {p: SensorCounts(sum(sightings[p].values()), dict(sightings[p])) for p in partitions},
                        {p: shared_alarms([]) for p in partitions})
            expected = build_summary(taken, NOW, 3.0, previous)
            summary, counted = build_summary(taken, NOW, 3.0, previous, memo)
            assert (summary, counted) == expected
            assert (summary["average_humidity_by_device"], summary["sensors_by_device"]) == device_lists(taken)
            base = rng.random()
            previous = counted if base < 0.6 else Previous.from_json(orjson.loads(orjson.dumps(counted.to_json()))) \
                if base < 0.85 else None
