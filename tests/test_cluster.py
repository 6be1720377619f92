"""On a 3-broker cluster (real Kafka): every topic replicated, a broker lost
mid-stream, the group coordinator lost and brought back; each exact."""

import pytest
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests import helpers
from tests.reference import dataset, expected_summary, matches

pytestmark = [pytest.mark.kafka, pytest.mark.xdist_group("cluster")]  # one cluster, in one process


def cluster_env(tmp_path):
    env = helpers.service_env(tmp_path, HUMIDITY_REPLICATION_FACTOR="3", HUMIDITY_STALL_SECONDS="12")
    return dict(env, HUMIDITY_ALERTS_TOPIC=f"{env['HUMIDITY_APP_ID']}-alerts")


async def layout(names):
    """topic -> (replica counts of its partitions, its min.insync.replicas)."""
    async with helpers.admin() as admin:
        described = {d["topic"]: sorted({len(p["replicas"]) for p in d["partitions"]})
                     for d in await admin.describe_topics(names)}
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    in_sync = {}
    for response in responses:
        for _error, _message, _type, name, configs in response.resources:
            in_sync[name] = next(value for key, value, *_ in configs if key == "min.insync.replicas")
    return {name: (described[name], in_sync[name]) for name in names}


async def topics_of(env):
    async with helpers.admin() as admin:
        names = await admin.list_topics()
    app_id = env["HUMIDITY_APP_ID"]
    return sorted(n for n in names if n.startswith(app_id))


def test_every_topic_the_service_creates_has_3_replicas_and_min_insync_2(on_cluster, tmp_path, workers):
    env = cluster_env(tmp_path)
    alerts = env["HUMIDITY_ALERTS_TOPIC"]
    helpers.run(helpers.create_topic(alerts, 4))  # one replica: used, and the log says so
    worker = workers(env)
    worker.wait_for_log(helpers.READY, timeout=120)
    names = helpers.run(topics_of(env))
    created = [n for n in names if n != alerts]
    assert len(created) >= 14, names  # input, results, dead letters, partials, 3 internal, 7 changelogs, leader
    found = helpers.run(layout(created))
    assert {name: figures for name, figures in found.items() if figures != ([3], "2")} == {}
    worker.wait_for_log(f"topic '{alerts}' has 1 replica\\(s\\) but HUMIDITY_REPLICATION_FACTOR=3", timeout=10)
    assert helpers.run(layout([alerts])) == {alerts: ([1], "1")}, "an existing topic is left as it is"


async def leaders(topic):
    """partition -> node id of its leader."""
    async with helpers.admin() as admin:
        (described,) = await admin.describe_topics([topic])
    return {p["partition"]: p["leader"] for p in described["partitions"]}


async def coordinator(group):
    async with helpers.admin() as admin:
        return await admin.find_coordinator(group)


def run_with_a_broker_lost(cluster, tmp_path, workers, choose, back: bool):
    """Two workers count a stream; midway the broker ``choose(env)`` names is
    killed (kill -9), and brought back if ``back``: each worker logs the
    broker leaving (and coming back), the final summary is exact."""
    env = cluster_env(tmp_path)
    first, second, _ = helpers.two_ready_workers(workers, env, tmp_path)
    records = dataset(24_000, seed=83)
    expected = expected_summary(records)
    feeder = helpers.Feeder(env["HUMIDITY_INPUT_TOPIC"], {None: records}, chunks=16, pause=0.5)
    feeder.start()
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], lambda s: s["total_messages"] >= 5_000, timeout=120)
    victim = choose(env)
    cluster.kill(victim)
    for worker in (first, second):
        worker.wait_for_log(f"Kafka: broker {victim} is no longer in the cluster", timeout=60)
    if back:
        cluster.up()
        first.wait_for_log(f"Kafka: broker {victim} is in the cluster again", timeout=60)
    feeder.finish()
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected), timeout=180)
    for worker in (first, second):
        log = worker.log()
        assert worker.running(), f"{worker.log_path.name} stopped"
        # aiokafka and Faust log a lost broker as warnings and retry; a few
        # tracebacks at most (a request cut off), never one per message
        assert log.count("Traceback") <= 3, f"{worker.log_path.name}: {log.count('Traceback')} tracebacks"
    return victim, expected


def test_kill_9_one_of_three_brokers_mid_stream_is_exact(on_cluster, tmp_path, workers):
    def a_partition_leader_not_the_coordinator(env):
        busy = set(helpers.run(leaders(env["HUMIDITY_INPUT_TOPIC"])).values())
        spare = busy - {helpers.run(coordinator(env["HUMIDITY_APP_ID"]))}
        return min(spare or busy)

    run_with_a_broker_lost(on_cluster, tmp_path, workers, a_partition_leader_not_the_coordinator, back=False)


def test_kill_9_the_group_coordinator_then_bring_it_back_is_exact(on_cluster, tmp_path, workers):
    run_with_a_broker_lost(on_cluster, tmp_path, workers,
                           lambda env: helpers.run(coordinator(env["HUMIDITY_APP_ID"])), back=True)
