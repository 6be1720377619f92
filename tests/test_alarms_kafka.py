"""Alarms end to end on the real local Kafka: scripted sequences for every
kind, a restart with an active alarm, two workers, and OFFLINE."""

import time
from datetime import UTC, datetime

import orjson
import pytest

from humidity.core.simulation import reading_doc
from tests import helpers

pytestmark = pytest.mark.kafka

READY = helpers.READY
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def reading(guid, device, seconds, humidity):
    when = datetime.fromtimestamp(T0 + seconds, UTC)
    return guid.encode(), orjson.dumps(reading_doc(guid, device, when, humidity))


def send(env, rows):
    """rows: (guid, device, seconds after T0, humidity). Keyed by guid here so
    that each logger's readings stay in order; late ones are sent on purpose."""
    helpers.run(helpers.produce_pairs(env["HUMIDITY_INPUT_TOPIC"], [reading(*row) for row in rows]))


def all_judged(env, count):
    """Wait until a summary's cut includes ``count`` readings: a summary's
    alarms are as of its cut, so the alarm partitions have applied every one
    of them, and sent their events before their share of the cut."""
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], lambda s: s["total_messages"] >= count, timeout=90)


def events_of(env, guid):
    return [(e["kind"], e["state"]) for e in helpers.alerts(env["HUMIDITY_ALERTS_TOPIC"]) if e["guid"] == guid]


def wait_events(env, guid, expected, timeout=90):
    helpers.wait_until(lambda: events_of(env, guid) == expected, timeout,
                       what=f"alarm events {expected} for {guid} (have {events_of(env, guid)})")


def alarm_env(tmp_path, **extra):
    return helpers.service_env(tmp_path, HUMIDITY_ALERTS_TOPIC=helpers.unique("alerts"), **extra)


def test_scripted_sequences_for_every_kind_and_a_restart(kafka, tmp_path, workers):
    env = alarm_env(tmp_path)
    worker = workers(env, "alarms")
    worker.wait_for_log(READY, timeout=120)
    rows = []
    rows += [("spike", "MRI 1", t, v) for t, v in [(0, 50), (10, 65), (20, 66), (30, 65), (40, 50), (100, 50)]]
    rows += [("sustained", "MRI 2", t, 63) for t in range(0, 160, 10)]
    rows += [("sustained", "MRI 2", t, 57) for t in range(160, 220, 10)]
    rows += [("oscillating", "MRI 3", t, 62) for t in range(0, 100, 10)]
    rows += [("oscillating", "MRI 3", 100 + i * 10, 59.5 if i % 2 else 60.5) for i in range(40)]
    rows += [("ct-65", "CT 4", t, 65) for t in range(0, 1200, 30)]
    rows += [("late", "MRI 5", t, 50) for t in range(0, 300, 10)]
    rows += [("late", "MRI 5", t, 75) for t in range(5, 150, 10)]  # out of event-time order: must not raise
    rows += [("low", "SPECT 6", t, 25) for t in range(0, 120, 10)] + [("low", "SPECT 6", 130, 33)]
    rows += [("ramp", "MRI 7", t, 40 + t / 120) for t in range(0, 1860, 60)]  # +15 % RH in 31 min
    send(env, rows)

    wait_events(env, "sustained", [("HIGH", "raised"), ("HIGH", "cleared")])
    wait_events(env, "oscillating", [("HIGH", "raised")])
    wait_events(env, "low", [("LOW", "raised"), ("LOW", "cleared")])
    wait_events(env, "ramp", [("RATE", "raised")])
    summary = helpers.wait_for_summary(
        env["HUMIDITY_RESULTS_TOPIC"],
        lambda s: {(a["guid"], a["kind"]) for a in s["active_alarms"]} == {("oscillating", "HIGH"), ("ramp", "RATE")},
        timeout=60)
    assert summary["active_alarms"][0]["since"] >= summary["active_alarms"][1]["since"]  # newest first
    status, _, body = helpers.http_get(helpers.web_url(env, "/api/alarms"))
    assert status == 200 and len(orjson.loads(body)["active_alarms"]) == 2
    all_judged(env, len(rows))
    for quiet in ("spike", "ct-65", "late"):
        assert events_of(env, quiet) == [], quiet
    assert events_of(env, "sustained") == [("HIGH", "raised"), ("HIGH", "cleared")]
    assert events_of(env, "oscillating") == [("HIGH", "raised")]
    raised = [e for e in helpers.alerts(env["HUMIDITY_ALERTS_TOPIC"]) if e["guid"] == "sustained"][0]
    assert set(raised) == {"time", "device", "guid", "kind", "state", "value", "limit", "since", "wall_time",
                           "alarm_id", "id"}
    assert raised["id"] == raised["alarm_id"] + ".raised"
    assert (raised["device"], raised["value"], raised["limit"]) == ("MRI 2", 63, 60)

    # restart while "oscillating" is active: no second raise, and the clear still comes
    assert worker.stop() == 0
    again = workers(env, "alarms-again")
    again.wait_for_log(READY, timeout=120)
    send(env, [("oscillating", "MRI 3", 600 + t, 62) for t in range(0, 100, 10)])
    send(env, [("oscillating", "MRI 3", 700 + t, 55) for t in range(0, 50, 10)])
    wait_events(env, "oscillating", [("HIGH", "raised"), ("HIGH", "cleared")])


def test_two_workers_each_logger_alarms_once(kafka, tmp_path, workers):
    env = alarm_env(tmp_path)
    helpers.two_ready_workers(workers, env, tmp_path, ("a1", "a2"))
    guids = [f"logger-{i}" for i in range(8)]
    send(env, [(g, f"PETCT{i}", t, 64) for t in range(0, 130, 10) for i, g in enumerate(guids)])
    for g in guids:
        wait_events(env, g, [("HIGH", "raised")])
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], lambda s: len(s["active_alarms"]) == 8,
                                       timeout=60)
    assert {a["guid"] for a in summary["active_alarms"]} == set(guids)
    all_judged(env, 13 * len(guids))
    assert all(events_of(env, g) == [("HIGH", "raised")] for g in guids)


def test_offline_after_a_short_timeout_and_back(kafka, tmp_path, workers):
    env = alarm_env(tmp_path, HUMIDITY_ALARMS_FILE=helpers.alarms_file(tmp_path, offline_timeout=3))
    worker = workers(env, "offline")
    worker.wait_for_log(READY, timeout=120)
    send(env, [("quiet-one", "MRI 9", 0, 45)])
    wait_events(env, "quiet-one", [("OFFLINE", "raised")], timeout=30)
    offline = [e for e in helpers.alerts(env["HUMIDITY_ALERTS_TOPIC"]) if e["guid"] == "quiet-one"][0]
    assert offline["limit"] == 3 and offline["value"] == 45
    send(env, [("quiet-one", "MRI 9", 60, 46)])
    wait_events(env, "quiet-one", [("OFFLINE", "raised"), ("OFFLINE", "cleared")], timeout=30)
    # back in the OFFLINE check: silent again, OFFLINE again
    wait_events(env, "quiet-one", [("OFFLINE", "raised"), ("OFFLINE", "cleared"), ("OFFLINE", "raised")], timeout=30)


def test_a_logger_that_keeps_reporting_goes_offline_only_once_it_stops(kafka, tmp_path, workers):
    """The OFFLINE check looks at a logger again some seconds after its
    timeout: a logger heard since is kept in the check, not raised."""
    env = alarm_env(tmp_path, HUMIDITY_ALARMS_FILE=helpers.alarms_file(tmp_path, offline_timeout=4))
    worker = workers(env, "chatty")
    worker.wait_for_log(READY, timeout=120)
    for step in range(24):  # 12 s, three times the timeout, a reading every 0.5 s
        send(env, [("chatty", "CT 2", step, 45)])
        time.sleep(0.5)  # the logger's pace, not a wait for the service
    last_sent = datetime.now(UTC)
    all_judged(env, 24)
    wait_events(env, "chatty", [("OFFLINE", "raised")], timeout=30)
    (offline,) = [e for e in helpers.alerts(env["HUMIDITY_ALERTS_TOPIC"]) if e["guid"] == "chatty"]
    assert datetime.fromisoformat(offline["wall_time"]) >= last_sent, "raised while it still reported"


def test_a_logger_moved_to_another_device_is_not_offline_while_it_reports_there(kafka, tmp_path, workers):
    """OFFLINE belongs to the logger: its old device's pair stops being
    watched when it reports for another, and once it falls silent it is
    OFFLINE on the device it last reported for."""
    env = alarm_env(tmp_path, HUMIDITY_ALARMS_FILE=helpers.alarms_file(tmp_path, offline_timeout=4))
    worker = workers(env, "moved")
    worker.wait_for_log(READY, timeout=120)
    for step in range(36):  # 6 s on MRI 1, then 12 s (three timeouts) on MRI 2, a reading every 0.5 s
        send(env, [("mover", "MRI 1" if step < 12 else "MRI 2", step, 45)])
        time.sleep(0.5)  # the logger's pace, not a wait for the service
    assert events_of(env, "mover") == []
    wait_events(env, "mover", [("OFFLINE", "raised")], timeout=30)
    (offline,) = [e for e in helpers.alerts(env["HUMIDITY_ALERTS_TOPIC"]) if e["guid"] == "mover"]
    assert offline["device"] == "MRI 2"


def test_a_fleet_wide_outage_lists_the_newest_alarms_and_counts_all_without_outgrowing_a_message(
        kafka, tmp_path, workers):
    from humidity.core.alarms import ALARMS_LISTED

    env = alarm_env(tmp_path, HUMIDITY_ALARMS_FILE=helpers.alarms_file(tmp_path, offline_timeout=3))
    worker = workers(env, "outage")
    worker.wait_for_log(READY, timeout=120)
    loggers = ALARMS_LISTED + 500
    send(env, [(f"logger-{i}", f"MRI {i % 40}", 0, 45) for i in range(loggers)])  # then every one goes silent
    summary = helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"],
                                       lambda s: s.get("active_alarm_count") == loggers, timeout=90)
    assert len(summary["active_alarms"]) == ALARMS_LISTED
    assert summary["active_alarms_by_kind"] == {"OFFLINE": loggers}
    assert sum(summary["active_alarms_by_device"].values()) == loggers
    body = orjson.loads(helpers.http_get(helpers.web_url(env, "/api/alarms"))[2])
    assert body["active_alarm_count"] == loggers and len(body["active_alarms"]) == ALARMS_LISTED
    metrics = helpers.http_get(helpers.web_url(env, "/metrics"))[2].decode()
    assert f'humidity_active_alarms{{kind="OFFLINE"}} {float(loggers)}' in metrics
    assert worker.running()
