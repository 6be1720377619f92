"""A worker paused past the session timeout (SIGSTOP, as a frozen VM or a
long GC) wakes up believing it still leads, or still chains the audit trail:
whatever it writes then is fenced, against real Kafka."""

import threading
import time

import pytest

from tests import helpers
from tests.reference import dataset
from tests.test_alarms_kafka import send
from tests.test_cuts import check_every_summary, split
from tests.test_notify_kafka import audit_records, back_inside, breach, faust

pytestmark = pytest.mark.kafka

PAUSE = helpers.PAUSE
HELD = "FAULT: audit_chain batch held"


def pause_the_leader(results, leader, other):
    """Freeze ``leader`` until ``other`` leads and has published past it; wake it up."""
    published_before = other.log().count(helpers.PUBLISHED)
    counted = helpers.wait_until(lambda: (helpers.published_summaries(results) or [None])[-1], 60,
                                 what="a summary")["total_messages"]
    leader.pause()
    paused = time.monotonic()
    try:
        helpers.wait_until(lambda: other.log().count(helpers.PUBLISHED) > published_before, 60, what="a new leader")
        helpers.wait_until(lambda: helpers.published_summaries(results)[-1]["total_messages"] > counted, 60,
                           what="the new leader's summary past the paused leader's")
        time.sleep(max(0.0, paused + PAUSE - time.monotonic()))  # the fault: frozen at least this long
        logged = len(leader.log())
    finally:
        leader.resume()  # its timer fires at once: it still believes it leads
    helpers.wait_until(lambda: "(Re-)joining group" in leader.log()[logged:], 60,
                       what="the woken worker noticing it left the group")


@pytest.mark.alone  # a starved machine turns the one pause into several, with other timings
def test_a_leader_paused_past_the_session_timeout_publishes_nothing_older_when_it_wakes(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    results = env["HUMIDITY_RESULTS_TOPIC"]
    by_partition = split(dataset(24_000, seed=47))
    first, second, _ = helpers.two_ready_workers(workers, env, tmp_path)
    feeder = helpers.Feeder(env["HUMIDITY_INPUT_TOPIC"], by_partition, chunks=80, pause=0.5)
    feeder.start()
    for _ in range(2):  # paused while it leads, twice
        leader = helpers.leader_among(first, second)
        pause_the_leader(results, leader, second if leader is first else first)
    feeder.finish()
    everything = sum(len(records) for records in by_partition.values())
    helpers.wait_for_summary(results, lambda s: s["total_messages"] + s["invalid_messages"] == everything, 180)
    published = helpers.published_summaries(results)
    helpers.assert_never_back(published)
    check_every_summary(published, by_partition)  # each one cut, exact against the reference


def test_the_audit_chain_holds_when_its_chainer_is_paused_with_entries_in_hand_and_wakes_up(
        kafka, tmp_path, workers):
    hold = tmp_path / "hold-audit"
    env = helpers.service_env(tmp_path, HUMIDITY_TEST_FAULT=f"hold-agent:audit_chain:{hold}")
    env2 = helpers.another_worker(env, tmp_path)
    first, second = (workers(e, name, app="tests.faulty_app") for e, name in ((env, "w1"), (env2, "w2")))
    for worker in (first, second):
        worker.wait_for_log(helpers.READY, timeout=120)
    done, sent = threading.Event(), []

    def alarms_flowing():  # a raise and a clear every half second: entries for the chain all along
        while not done.is_set():
            guid = f"0-PAUSE-{len(sent):04d}"
            send(env, breach(guid, seconds=80) + back_inside(guid, start=90))
            sent.append(guid)
            done.wait(0.5)

    flow = threading.Thread(target=alarms_flowing, daemon=True)
    flow.start()
    try:
        helpers.wait_until(lambda: len(audit_records(env)) >= 10, 90, what="the chain moving")
        hold.touch()  # the chainer's next batch stays in its hands
        chainer = helpers.wait_until(lambda: next((w for w in (first, second) if HELD in w.log()), None), 60,
                                     what="the chainer holding a batch")
        chainer.pause()
        paused = time.monotonic()
        try:
            hold.unlink()
            chained = len(audit_records(env))
            helpers.wait_until(lambda: len(audit_records(env)) > chained + 4, 60, what="another worker chaining")
            time.sleep(max(0.0, paused + PAUSE - time.monotonic()))  # the fault: frozen at least this long
            logged = len(chainer.log())
        finally:
            chainer.resume()  # it links what it holds to the chain's end it knew
        helpers.wait_until(lambda: "(Re-)joining group" in chainer.log()[logged:], 60,
                           what="the woken worker noticing it left the group")
        done.wait(3.0)  # entries keep coming after the rebalance
    finally:
        done.set()
        flow.join(30)
    alarm_ids = {e["id"] for e in helpers.alerts(env["HUMIDITY_ALERTS_TOPIC"])}
    helpers.wait_until(lambda: alarm_ids <= {r["id"] for r in audit_records(env)}, 120,
                       what="every alarm event in the audit trail")
    chained = [r["id"] for r in audit_records(env)]
    assert len(chained) == len(set(chained)), "an entry chained twice"
    verdict = faust(env, "audit", "verify")
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
