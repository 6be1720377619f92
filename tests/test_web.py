"""HTTP endpoints of a worker fed through the real local Kafka."""

from datetime import UTC, datetime

import orjson
import pytest

from humidity.core.simulation import reading_doc
from tests import helpers
from tests.reference import expected_summary, matches

pytestmark = pytest.mark.kafka


def test_before_the_first_summary_the_api_says_503_and_faust_debug_routes_are_off(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path, HUMIDITY_INTERVAL="60")  # no summary for a minute
    workers(env)
    helpers.wait_for_web(env)

    status, headers, body = helpers.http_get(helpers.web_url(env, "/api/summary"))
    assert status == 503
    assert headers["Content-Type"].startswith("application/json")
    assert orjson.loads(body)["error"] == "no summary has been published yet"
    for path in ("/api/summary/totals", "/api/summary/devices"):
        assert helpers.http_get(helpers.web_url(env, path))[0] == 503, path
    status, _, body = helpers.http_get(helpers.web_url(env, "/health"))
    assert status == 503 and orjson.loads(body)["reasons"] == ["no summary has been published yet"]

    status, headers, body = helpers.http_get(helpers.web_url(env, "/"))
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert b"/static/vendor/chart-4.6.1.umd.min.js" in body and b"http" not in body.replace(b"http-equiv", b"")
    for asset in ("/static/dashboard.js", "/static/pager.js", "/static/dashboard.css",
                  "/static/vendor/chart-4.6.1.umd.min.js"):
        assert helpers.http_get(helpers.web_url(env, asset))[0] == 200, asset

    for path in (f"/table/{env['HUMIDITY_APP_ID']}-sensors/", "/table/sensors/", "/router/", "/stats/", "/graph/",
                 "/performance/", "/static/../app.py"):
        assert helpers.http_get(helpers.web_url(env, path))[0] == 404, path


def test_api_serves_exactly_the_published_summary(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    workers(env)
    helpers.wait_for_web(env)
    docs = [reading_doc(f"g{i}", f"MRI {i % 3}", datetime(2024, 1, 1, tzinfo=UTC), 40.0 + i)
            for i in range(30)]
    records = [(orjson.dumps(d), d) for d in docs]
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records]))
    expected = expected_summary(records)
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=90)

    def served_matches():
        status, headers, body = helpers.http_get(helpers.web_url(env, "/api/summary"))
        return status == 200 and matches(expected)(orjson.loads(body)) and (headers, body)

    headers, body = helpers.wait_until(served_matches, 30, what="/api/summary to show the data")
    assert headers["Content-Type"].startswith("application/json")
    published = {r.value for r in helpers.run(helpers.read_topic(env["HUMIDITY_RESULTS_TOPIC"]))}
    assert body in published, "the API must serve the bytes published on the results topic"


def test_the_summary_devices_come_a_page_at_a_time(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    workers(env)
    helpers.wait_for_web(env)
    docs = [reading_doc(f"g{i}", f"MRI {i % 120}", datetime(2024, 1, 1, tzinfo=UTC), 20.0 + i % 50)
            for i in range(600)]
    records = [(orjson.dumps(d), d) for d in docs]
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records]))
    expected = expected_summary(records)

    def get(path):
        status, _, body = helpers.http_get(helpers.web_url(env, path))
        return status, orjson.loads(body)

    def served():
        status, body = get("/api/summary/totals")
        return status == 200 and body["total_messages"] == 600 and body

    totals = helpers.wait_until(served, 90, what="the totals of every reading")
    assert totals["device_count"] == 120 and "average_humidity_by_device" not in totals
    averages = {r["device"]: r["average"] for r in expected["average_humidity_by_device"]}
    assert totals["outside_count"] == sum(not 30 <= a <= 60 for a in averages.values())
    _, first = get("/api/summary/devices?limit=50")
    assert first["total"] == 120 and len(first["devices"]) == 50
    assert [r["average"] for r in first["devices"]] == sorted(averages.values(), reverse=True)[:50]
    _, last = get("/api/summary/devices?offset=100&limit=50&sort=device")
    assert [r["device"] for r in last["devices"]] == sorted(averages)[100:]
    _, found = get("/api/summary/devices?q=mri%2011&band=outside")
    assert {r["device"] for r in found["devices"]} == {d for d in averages if d.startswith("MRI 11")
                                                        and not 30 <= averages[d] <= 60}
    status, error = get("/api/summary/devices?limit=5000")
    assert status == 400 and error == {"error": "limit is a whole number from 1 to 1000"}
