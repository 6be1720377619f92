"""A summary that stops moving must not look healthy: a held agent on the
second hop and a paused peer, against real Kafka."""

import re
import time

import orjson
import pytest

from tests import helpers
from tests.reference import dataset, expected_summary, matches
from tests.test_browser import chromium
from tests.test_ops import metric

STALL_SECONDS = 5


def health_of(env) -> tuple[int, dict]:
    status, _, body = helpers.http_get(helpers.web_url(env, "/health"))
    return status, orjson.loads(body)


def cut_behind(env) -> tuple[float, float]:
    text = helpers.http_get(helpers.web_url(env, "/metrics"))[2].decode()
    return metric(text, "humidity_cut_behind_seconds"), metric(text, "humidity_cut_behind_readings")


@pytest.mark.kafka
@pytest.mark.parametrize("agent, topic", [("count_sensors", "sensor-sightings"), ("evaluate_alarms", "alarm-readings")])
def test_a_held_agent_turns_health_503_naming_its_topic_and_the_cut_falls_behind_until_released(
        kafka, tmp_path, workers, agent, topic):
    hold = tmp_path / "hold"
    env = helpers.service_env(tmp_path, HUMIDITY_STALL_SECONDS=str(STALL_SECONDS),
                              HUMIDITY_TEST_FAULT=f"hold-agent:{agent}:{hold}")
    held_topic = f"{env['HUMIDITY_APP_ID']}-{topic}"
    worker = workers(env, "held", app="tests.faulty_app")
    helpers.wait_for_web(env)
    records = dataset(3_000, seed=49)
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records[:1_000]]))
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected_summary(records[:1_000])), timeout=90)
    helpers.wait_until(lambda: health_of(env)[0] == 200, 30, what="/health 200 while readings flow")

    hold.touch()
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records[1_000:2_000]]))
    worker.wait_for_log(f"FAULT: {agent} batch held", timeout=30)
    # the stall limit, a check every second, and a few seconds more
    status, body = helpers.wait_until(lambda: (found := health_of(env))[0] == 503 and found, STALL_SECONDS + 15,
                                      what=f"/health 503 naming {held_topic}")
    assert any(reason.startswith(f"{held_topic} partition ") and "no progress for" in reason
               for reason in body["reasons"]), body["reasons"]
    behind = helpers.wait_until(lambda: (b := cut_behind(env))[0] > STALL_SECONDS and b, 30,
                                what="humidity_cut_behind_seconds past the stall limit")
    assert behind[1] > 0, "readings wait that the summary does not count"
    if agent == "count_sensors":
        page_says_how_old_the_counts_are(env)

    hold.unlink()
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records[2_000:]]))
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected_summary(records)), timeout=90)
    helpers.wait_until(lambda: health_of(env)[0] == 200, 30, what="/health 200 once the agent moves again")
    helpers.wait_until(lambda: cut_behind(env) == (0, 0), 30, what="the cut caught up with the input")


BANNER = re.compile(r"^counts as of \d\d:\d\d:\d\d, (\d+) readings not yet counted$")


def page_says_how_old_the_counts_are(env) -> None:
    """The page's banner, as text, while the cut stands still."""
    with chromium() as (_browser, page, dialogs):
        page.goto(helpers.web_url(env, "/"))
        page.wait_for_selector("#behind", state="visible", timeout=15000)
        text = page.inner_text("#behind").strip()
        found = BANNER.match(text)
        assert found and int(found[1]) > 0, text
        assert page.evaluate("() => document.getElementById('behind').children.length") == 0, "text only"
        summary = orjson.loads(helpers.http_get(helpers.web_url(env, "/api/summary/totals"))[2])
        assert summary["behind"]["seconds"] > STALL_SECONDS and summary["behind_limit_seconds"] == STALL_SECONDS
        page.screenshot(path=str(helpers.ARTIFACTS / "dashboard-behind.png"))
        assert dialogs == []


def behind_samples(env, seconds: float, every: float = 0.5) -> list[float]:
    """``humidity_cut_behind_seconds`` of one worker, sampled for ``seconds``."""
    samples, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(cut_behind(env)[0])
        time.sleep(every)
    return samples


@pytest.mark.kafka
@pytest.mark.alone
def test_under_steady_load_the_cut_stays_within_two_intervals_of_the_input(kafka, tmp_path, workers):
    interval = 3.0
    env = helpers.service_env(tmp_path, HUMIDITY_INTERVAL=str(interval))
    workers(env, "steady")
    helpers.wait_for_web(env)
    records = dataset(3_334 * 45, seed=4949)
    feeder = helpers.SteadyFeeder(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records], per_second=3_334)
    feeder.start()
    try:
        helpers.wait_until(lambda: cut_behind(env)[1] > 0 and helpers.published_summaries(
            env["HUMIDITY_RESULTS_TOPIC"]), 60, what="a summary while the load runs")
        samples = behind_samples(env, 20)
    finally:
        feeder.finish()
    print("cut behind, seconds, sampled every 0.5 s:", sorted(samples))
    assert max(samples) < 2 * interval, sorted(samples)[-10:]
    assert sum(s > 0 for s in samples) > len(samples) / 2, "readings arrive all the time: the cut trails them"
    sent = records[:feeder.sent]
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected_summary(sent)), timeout=120)
    last = helpers.published_summaries(env["HUMIDITY_RESULTS_TOPIC"])[-1]
    assert last["behind"]["seconds"] < 2 * interval and last["behind"]["readings"] >= 0


@pytest.mark.kafka
@pytest.mark.alone
def test_a_paused_peer_holds_the_cut_back_on_the_other_worker_whose_health_stays_200(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path, HUMIDITY_INTERVAL="1.0", HUMIDITY_STALL_SECONDS="30")
    first, second, env2 = helpers.two_ready_workers(workers, env, tmp_path)
    leader = helpers.leader_among(first, second)
    peer, watched = (second, env) if leader is first else (first, env2)
    records = dataset(300 * 80, seed=1414)
    feeder = helpers.SteadyFeeder(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records], per_second=300)
    feeder.start()
    try:
        helpers.wait_until(lambda: 0 < cut_behind(watched)[1] and cut_behind(watched)[0] < 5, 60,
                           what="the cut following the input on the watched worker")
        peer.pause()
        paused_until = time.monotonic() + 14
        during = []
        while time.monotonic() < paused_until:
            during.append((health_of(watched)[0], cut_behind(watched)[0]))
            time.sleep(0.5)
        peer.resume()
        assert all(status == 200 for status, _ in during), during
        assert max(seconds for _, seconds in during) > 5, during
        helpers.wait_until(lambda: cut_behind(watched)[0] < 5, 30, what="the cut back within 5 s after the resume")
    finally:
        feeder.finish()
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected_summary(records[:feeder.sent])),
                             timeout=120)
