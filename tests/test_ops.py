"""Operations: /metrics (Faust's and the service's) and /health."""

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from humidity.core.health import health
from tests import helpers
from tests.reference import dataset, expected_summary, matches

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def stamp(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).isoformat().replace("+00:00", "Z")


def test_health_rules():
    assert health(NOW, stamp(2), 3.0, True)[0] is True
    ok, body = health(NOW, stamp(7), 3.0, True)
    assert not ok and body["reasons"] == ["the last summary is 7.0 s old (limit 6.0 s)"]
    ok, body = health(NOW, None, 3.0, True)
    assert not ok and body["reasons"] == ["no summary has been published yet"]
    ok, body = health(NOW, stamp(1), 3.0, False)
    assert not ok and body["reasons"] == ["the Kafka consumer is not running"]


def metric(text: str, name: str) -> float:
    total = 0.0
    found = False
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
            found = True
    assert found, f"{name} not in /metrics"
    return total


@pytest.mark.kafka
def test_metrics_and_health_of_a_live_worker(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    workers(env)
    helpers.wait_for_web(env)
    records = dataset(3_000, seed=71)
    expected = expected_summary(records)
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records]))
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=90)

    status, headers, body = helpers.http_get(helpers.web_url(env, "/health"))
    assert status == 200, body
    assert orjson.loads(body)["status"] == "ok"

    def scraped():
        status, _, body = helpers.http_get(helpers.web_url(env, "/metrics"))
        text = body.decode()
        return status == 200 and metric(text, 'humidity_readings_processed_total{result="valid"}') == \
            expected["total_messages"] and text

    text = helpers.wait_until(scraped, 30, what="/metrics to count every reading")
    assert metric(text, 'humidity_readings_processed_total{result="invalid"}') == expected["invalid_messages"]
    assert metric(text, "humidity_summaries_published_total") >= 1
    assert metric(text, 'humidity_active_alarms{kind="HIGH"}') == 0
    assert 0 <= metric(text, "humidity_last_summary_age_seconds") < 3
    assert "faust_" in text, "Faust's own metrics are exported too"
