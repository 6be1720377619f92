"""History over time against real Kafka with two workers (issue 15): every
window at steps of a minute and an hour equals an independent reference,
asked of either worker, also after a kill -9 mid-stream; each device's newest
reading is the newest by event time; retention."""

from __future__ import annotations

import random
import re
import time
import urllib.parse
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction

import orjson
import pytest

from humidity.core.simulation import reading_doc
from tests import helpers

pytestmark = pytest.mark.kafka

DEVICES = ["MRI 12", "CT <b>1</b> & co", "PET-CT Ω 3", "SPECT\u00a02", "MRI/2 'north'"]
LOGGERS = 30
EVERY = 20  # seconds between a logger's readings
HOURS = 3
LATE = 1800  # readings arrive up to this many seconds out of order
MOVE_EVERY = 2400  # seconds a moving logger stays on a device


def history_dataset(now: float, seed: int = 15) -> list[tuple[bytes, tuple]]:
    """(message, (guid, device, event time, humidity)) in arrival order. One
    logger in five moves to the next device every 40 minutes and back."""
    rng = random.Random(seed)
    out = []
    start = now - HOURS * 3600
    for index in range(LOGGERS):
        guid = f"0-ZZZ{index:08d}-H{index % 7}"
        t = start + rng.uniform(0, EVERY)
        while t < now:
            moved = index % 5 == 0 and int((t - start) // MOVE_EVERY) % 2 == 1
            device = DEVICES[(index + moved) % len(DEVICES)]
            humidity = round(rng.uniform(25.0, 75.0), 2)
            doc = reading_doc(guid, device, datetime.fromtimestamp(t, UTC), humidity)
            if rng.random() < 0.5:  # the other time-zone form: an offset
                doc["eventTime"] = datetime.fromtimestamp(t, timezone(timedelta(hours=2))).isoformat()
            # the time as the service reads it back from the text
            seen = datetime.fromisoformat(doc["eventTime"].replace("Z", "+00:00")).timestamp()
            out.append((orjson.dumps(doc), (guid, device, seen, humidity), t + rng.uniform(0, LATE)))
            t += EVERY
    out.sort(key=lambda item: item[2])  # arrival order: event time late by up to LATE
    return [(raw, reading) for raw, reading, _arrival in out]


def reference_windows(readings, index: int, name: str, step: int) -> dict[int, tuple]:
    groups: dict[int, list] = {}
    for reading in readings:
        if reading[index] == name:
            groups.setdefault(int(reading[2] // step) * step, []).append(reading[3])
    return {s: (len(v), float(sum(map(Fraction, v)) / len(v)), min(v), max(v)) for s, v in groups.items()}


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def get_json(env, path, **query):
    url = helpers.web_url(env, path + ("?" + urllib.parse.urlencode(query) if query else ""))
    status, _headers, body = helpers.http_get(url)
    return status, orjson.loads(body)


def history_path(kind: str, name: str) -> str:
    return f"/api/{kind}/{urllib.parse.quote(name, safe='')}/history"


def points(env, kind, name, step, start, end):
    status, body = get_json(env, history_path(kind, name), **{"from": iso(start), "to": iso(end), "step": step})
    assert status == 200, body
    return {int(datetime.fromisoformat(p["start"].replace("Z", "+00:00")).timestamp()): p for p in body["points"]}


def assert_windows(env, kind, name, readings, index, start, end):
    for step in (60, 3600):
        got = points(env, kind, name, step, start, end)
        want = {s: w for s, w in reference_windows(readings, index, name, step).items() if start <= s < end}
        assert sorted(got) == sorted(want), (kind, name, step)
        for s, (count, average, low, high) in want.items():
            p = got[s]
            assert (p["count"], p["min"], p["max"]) == (count, low, high), (kind, name, step, s)
            assert abs(p["average"] - average) <= 1e-9, (kind, name, step, s)


def wait_until_counted(env, readings, start, end, timeout=180):
    """Until each device's history holds as many readings as were sent to it."""
    want = {device: sum(1 for r in readings if r[1] == device) for device in DEVICES}
    seen = {}

    def complete():
        for device in DEVICES:
            status, body = get_json(env, history_path("devices", device),
                                    **{"from": iso(start), "to": iso(end), "step": 3600})
            seen[device] = sum(p["count"] for p in body["points"]) if status == 200 else (status, body)
            if isinstance(seen[device], int) and seen[device] > want[device]:
                raise AssertionError(f"{device!r}: {seen[device]} readings counted, {want[device]} sent")
        return seen == want

    try:
        helpers.wait_until(complete, timeout, interval=1.0, what="every reading in the history")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: counted {seen}, sent {want}") from None


def check_everything(envs, readings, start, end):
    wait_until_counted(envs[0], readings, start, end)
    for n, device in enumerate(DEVICES):
        assert_windows(envs[n % 2], "devices", device, readings, 1, start, end)
    for n, guid in enumerate(sorted({r[0] for r in readings})):
        assert_windows(envs[n % 2], "loggers", guid, readings, 0, start, end)
        newest = max((r for r in readings if r[0] == guid), key=lambda r: (r[2], r[3], r[1]))
        status, body = get_json(envs[(n + 1) % 2], f"/api/loggers/{urllib.parse.quote(guid, safe='')}")
        assert status == 200 and body["latest"] == {"humidity": newest[3], "event_time": iso(newest[2]),
                                                    "device": newest[1]}, body
    for env in envs:
        status, body = get_json(env, "/api/devices")
        assert status == 200
        assert [d["device"] for d in body["devices"]] == sorted(DEVICES)
        for entry in body["devices"]:
            mine = [r for r in readings if r[1] == entry["device"]]
            newest = max(mine, key=lambda r: (r[2], r[0]))
            assert entry["latest"]["guid"] == newest[0]
            assert entry["latest"]["humidity"] == newest[3]
            assert entry["latest"]["event_time"] == iso(newest[2])
            assert entry["loggers"] == len({r[0] for r in mine})
    for n, device in enumerate(DEVICES):
        status, body = get_json(envs[n % 2], f"/api/devices/{urllib.parse.quote(device, safe='')}")
        assert status == 200, body
        newest = {}
        for guid, on, t, humidity in readings:
            if on == device:
                newest[guid] = max(newest.get(guid, (t, humidity)), (t, humidity))
        assert body["logger_readings"] == [{"guid": g, "humidity": h, "event_time": iso(t)}
                                           for g, (t, h) in sorted(newest.items())], device


def run_history(tmp_path, workers, disrupt):
    """Two workers; the stream arrives over about 10 s while ``disrupt`` acts on the second."""
    now = time.time()
    dataset = history_dataset(now)
    readings = [reading for _raw, reading in dataset]
    by_partition = {p: [(raw, None) for raw, _reading in dataset[p::4]] for p in range(4)}
    env = helpers.service_env(tmp_path)
    first, second, env2 = helpers.two_ready_workers(workers, env, tmp_path)
    feeder = helpers.Feeder(env["HUMIDITY_INPUT_TOPIC"], by_partition, chunks=30, pause=0.3)
    feeder.start()
    time.sleep(2.5)
    disrupt(workers, second, env2)
    feeder.finish()
    start, end = now - (HOURS + 1) * 3600, now + 3600
    check_everything([env, env2], readings, start, end)


def test_windows_equal_the_reference_on_either_worker(kafka, tmp_path, workers):
    run_history(tmp_path, workers, lambda start, worker, env2: None)


def test_no_window_counted_twice_after_kill_9(kafka, tmp_path, workers):
    def kill_and_replace(start, worker, env2):
        worker.kill()  # mid-stream: its partitions move, are read again from their state and sent again
        start(env2, "again").wait_for_log(helpers.READY, timeout=120)

    run_history(tmp_path, workers, kill_and_replace)


def test_bad_queries_get_a_one_line_json_error(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    workers(env).wait_for_log(helpers.READY, timeout=120)
    now = time.time()
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [orjson.dumps(
        reading_doc("g-1", "MRI 1", datetime.fromtimestamp(now - 30, UTC), 44.0))], partition=0))
    span = {"from": iso(now - 3600), "to": iso(now + 60)}
    helpers.wait_until(lambda: get_json(env, history_path("devices", "MRI 1"), **span, step=60)[0] == 200, 90,
                       what="the device's history")
    cases = [(history_path("devices", "no such device"), {**span, "step": 60}, 404),
             (history_path("loggers", "no-such-logger"), {**span, "step": 60}, 404),
             (history_path("devices", "MRI 1"), {**span, "step": 7}, 400),
             (history_path("devices", "MRI 1"), {"from": "soon", "to": span["to"]}, 400),
             (history_path("devices", "MRI 1"), {"from": span["to"], "to": span["from"]}, 400)]
    for path, query, status in cases:
        got, body = get_json(env, path, **query)
        assert got == status and set(body) == {"error"} and "\n" not in body["error"], (path, query, body)
    status, headers, body = helpers.http_get(helpers.web_url(env, history_path("devices", "MRI 1") + ".csv?" +
                                                             urllib.parse.urlencode({**span, "step": 60})))
    assert status == 200 and headers["Content-Type"].startswith("text/csv")
    lines = body.decode().splitlines()
    assert lines[0] == "device,start,step_seconds,count,average,min,max"
    assert lines[1].startswith("MRI 1,") and lines[1].endswith(",1,44.0,44.0,44.0")


def test_retention_drops_old_readings_and_expires_windows(kafka, tmp_path, workers):
    keep_minutes = 120.0  # seconds of minute windows
    env = helpers.service_env(tmp_path, HUMIDITY_HISTORY_MINUTE_DAYS=str(keep_minutes / 86400),
                              HUMIDITY_HISTORY_HOUR_DAYS=str(2 * 3600 / 86400))
    worker = workers(env)
    worker.wait_for_log(helpers.READY, timeout=120)
    now = time.time()
    oldest_kept = -(-(now - keep_minutes) // 60) * 60
    edge = oldest_kept if oldest_kept + keep_minutes - now >= 20 else oldest_kept + 60  # expires 20 to 80 s from now
    rows = [(edge + 1, 41.0),               # a minute window that expires soon
            (now - 30 * 60, 42.0),          # too old for minutes, kept in hours
            (now - 3 * 3600, 43.0), (now - 30 * 86400, 44.0)]  # too old for both: counted only
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [
        orjson.dumps(reading_doc("g-r", "MRI 9", datetime.fromtimestamp(t, UTC), h)) for t, h in rows], partition=1))
    span = {"from": iso(now - 40 * 86400), "to": iso(now + 60)}

    def minutes():
        status, body = get_json(env, history_path("devices", "MRI 9"), **span, step=60)
        return [p["average"] for p in body["points"]] if status == 200 else None

    assert helpers.wait_until(minutes, 90, what="the minute window") == [41.0]
    status, body = get_json(env, history_path("devices", "MRI 9"), **span, step=3600)
    assert sum(p["count"] for p in body["points"]) == 2
    assert (min(p["min"] for p in body["points"]), max(p["max"] for p in body["points"])) == (41.0, 42.0)

    def too_old_counted():
        _s, _h, text = helpers.http_get(helpers.web_url(env, "/metrics"))
        found = re.search(rb"^humidity_history_too_old_total (\S+)$", text, re.M)
        return found and float(found.group(1)) == 2

    helpers.wait_until(too_old_counted, 30, what="the too-old readings in /metrics")
    worker.wait_for_log(r"history: 2 reading\(s\) older than", timeout=30)
    helpers.wait_until(lambda: minutes() == [], edge + keep_minutes - time.time() + 30, what="the minute to expire")
