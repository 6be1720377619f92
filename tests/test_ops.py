"""Operations: /metrics (Faust's and the service's) and /health."""

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from humidity.core.cluster_changes import leadership_changes
from humidity.core.health import health
from humidity.core.stalls import AGENTS, Feed, StallWatch
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


IN = "humidityanalytics"


def feed(partition: int, topic: str = IN, reader: str = AGENTS) -> Feed:
    return Feed(topic, partition, reader)


def test_a_partition_with_readings_waiting_and_no_progress_for_the_limit_is_stalled():
    watch = StallWatch(limit=60)
    watch.observe({feed(0): (100, 40), feed(1): (50, 50)}, now=0)
    watch.observe({feed(0): (180, 90), feed(1): (50, 50)}, now=30)  # partition 0 progressed at 30
    assert watch.stalled(now=89) == {}
    watch.observe({feed(0): (250, 90), feed(1): (80, 50)}, now=89)  # readings wait in partition 1 from now on
    assert list(watch.stalled(now=90)) == [feed(0)], "no progress since 30, readings waiting"
    assert watch.describe(now=90) == [f"{IN} partition 0 has 160 record(s) waiting and no progress for 60 s "
                                      "(limit 60 s)"]
    assert list(watch.stalled(now=149)) == [feed(0), feed(1)]
    ok, body = health(NOW, stamp(1), 3.0, True, watch.describe(now=149))
    assert not ok and body["reasons"] == [
        f"{IN} partition 0 has 160 record(s) waiting and no progress for 119 s (limit 60 s)",
        f"{IN} partition 1 has 30 record(s) waiting and no progress for 60 s (limit 60 s)"]
    watch.observe({feed(0): (250, 250), feed(1): (80, 51)}, now=150)
    assert watch.stalled(now=150) == {}, "both moved"
    watch.observe({feed(1): (80, 51)}, now=200)
    assert set(watch.feeds) == {feed(1)}, "a partition given to another worker is forgotten"
    watch.observe({feed(1): (80, 51), feed(0): (300, 250)}, now=201)
    assert list(watch.stalled(now=230)) == [feed(1)], "a partition taken back starts a new wait"
    idle = StallWatch(limit=5)
    idle.observe({feed(0): (10, 10)}, now=0)
    idle.observe({feed(0): (10, 10)}, now=100)
    assert idle.stalled(now=100) == {}, "nothing waiting is not a stall"


def test_every_topic_and_reader_is_watched_and_a_busy_reader_is_not_stalled():
    sightings, alerts = feed(2, "sightings"), feed(2, "alerts", "notifications to webhook")
    partials = feed(2, "partials", "the partials/summaries reader")
    watch = StallWatch(limit=10)
    progress = {sightings: (50, 20), alerts: (9, 7), partials: (40, 40), feed(2): (100, 100)}
    watch.observe(progress, now=0)
    watch.observe({**progress, partials: (45, 40)}, now=5, busy=[alerts])
    watch.observe({**progress, partials: (45, 40)}, now=12, busy=[alerts])
    assert list(watch.stalled(now=14)) == [sightings], "the channel retrying its receiver is busy, not stalled"
    assert list(watch.stalled(now=16)) == [partials, sightings], "waiting since its end moved at 5"
    assert watch.describe(now=16)[0] == ("partials partition 2 (the partials/summaries reader) has 5 record(s) "
                                         "waiting and no progress for 11 s (limit 10 s)")
    watch.observe(progress, now=20)  # the channel's delivery ended, its offset not committed
    watch.observe(progress, now=31)
    assert alerts in watch.stalled(now=31)
    shared = feed(2, "alerts", "notifications to email")
    watch.observe({alerts: (9, 7), shared: (9, 9)}, now=32)
    assert watch.by_partition(now=32) == {("alerts", 2): (2, True)}, "the worst reader of a partition is shown"


def metric(text: str, name: str, topic: str | None = None) -> float:
    """The sum of a metric's samples (of one topic's partitions)."""
    total = 0.0
    found = False
    for line in text.splitlines():
        if topic is not None and f'topic="{topic}"' not in line:
            continue
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
    helpers.wait_until(lambda: 0 <= metric(helpers.http_get(helpers.web_url(env, "/metrics"))[2].decode(),
                                           "humidity_last_summary_age_seconds") < 3, 30,
                       what="the last summary's age within the interval and a little")
    assert "faust_" in text, "Faust's own metrics are exported too"
    app_id = env["HUMIDITY_APP_ID"]
    watched = {f"{app_id}-{name}" for name in ("partials", "alarm-acks-changelog", "sensor-sightings")} | {
        env["HUMIDITY_INPUT_TOPIC"], env["HUMIDITY_RESULTS_TOPIC"]}
    helpers.wait_until(  # the agents' topics and the group-less readers' alike, after a check or two
        lambda: all(f'topic="{topic}"' in helpers.http_get(helpers.web_url(env, "/metrics"))[2].decode()
                    for topic in watched), 30, what=f"a lag gauge for every partition of {sorted(watched)}")
    assert metric(text, 'faust_table_operations_total{operation="keys_updated",table="table.ingest-totals"}') >= 1, \
        "the table counters count this worker's writes"


@pytest.mark.kafka
def test_health_turns_503_when_an_owned_input_partition_stops_moving_and_200_when_it_moves_again(
        kafka, tmp_path, workers):
    switch = tmp_path / "pause"
    env = helpers.service_env(tmp_path, HUMIDITY_STALL_SECONDS="5", HUMIDITY_INTERVAL="1",
                              HUMIDITY_TEST_FAULT=f"pause-input:{switch}")
    worker = workers(env, "paused", app="tests.faulty_app")
    helpers.wait_for_web(env)
    records = dataset(2_000, seed=72)
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records[:1_000]]))

    def health_now():
        status, _, body = helpers.http_get(helpers.web_url(env, "/health"))
        return status, orjson.loads(body)

    helpers.wait_until(lambda: health_now()[0] == 200, 90, what="/health 200 while readings flow")
    switch.touch()
    worker.wait_for_log("FAULT: input partitions paused", timeout=10)
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records[1_000:1_500]]))
    # 5 s without progress, seen by a check every second, and a few seconds more
    status, body = helpers.wait_until(lambda: (found := health_now())[0] == 503 and found, 5 + 1 + 5,
                                      what="/health 503 for the stalled partitions, within the stall limit")
    stalls = [r for r in body["reasons"] if r.startswith(env["HUMIDITY_INPUT_TOPIC"] + " partition ")]
    assert stalls and all("no progress for" in r and "limit 5 s" in r for r in stalls), body
    assert len(body["reasons"]) == len(stalls), "the summaries stay fresh: only the stall is reported"
    source = env["HUMIDITY_INPUT_TOPIC"]
    text = helpers.wait_until(  # the gauges follow at the next check
        lambda: (t := helpers.http_get(helpers.web_url(env, "/metrics"))[2].decode()) and
        metric(t, "humidity_partition_stalled", topic=source) == len(stalls) and t, 10, what="the stalled gauges")
    assert metric(text, "humidity_partition_lag", topic=source) > 0

    switch.unlink()
    worker.wait_for_log("FAULT: input partitions resumed", timeout=10)
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records[1_500:]]))
    helpers.wait_until(lambda: health_now()[0] == 200, 30, what="/health 200 once the partitions move again")
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected_summary(records)), timeout=60)
    text = helpers.wait_until(
        lambda: (t := helpers.http_get(helpers.web_url(env, "/metrics"))[2].decode()) and
        metric(t, "humidity_partition_lag", topic=source) == 0 and t, 30,
        what="the input's lag gauges back at 0 (the second hop's move with every round's marks)")
    assert metric(text, "humidity_partition_stalled") == 0


def test_a_lost_broker_and_moved_leaders_are_one_line_each():
    assert leadership_changes("in", {0: 1, 1: 1, 2: 2}, {0: 0, 1: 0, 2: -1}, {0, 1, 2}, {0, 2}) == [
        "Kafka: broker 1 is no longer in the cluster",
        "Kafka: the leader of in partitions 0, 1 moved from broker 1 to broker 0",
        "Kafka: the leader of in partition 2 moved from broker 2 to none (not available)"]
    assert leadership_changes("in", {0: 0}, {0: 0}, {0, 2}, {0, 1, 2}) == ["Kafka: broker 1 is in the cluster again"]
    assert leadership_changes("in", {}, {0: 0}, set(), {0, 1, 2}) == [], "the first look is no change"
