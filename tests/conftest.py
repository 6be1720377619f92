import pytest

from tests import helpers


@pytest.fixture
def kafka():
    """The throwaway broker `make test` started (tests using it are skipped otherwise)."""
    if helpers.kafka_port() is None:
        pytest.skip("needs the test broker: run through `make test`")
    return helpers.bootstrap()


@pytest.fixture
def workers(tmp_path):
    """Start workers with ``workers(env)``; all are killed at the end, pass or
    fail (what they leave goes with the test's directory: a graceful stop
    would only cost seconds per worker)."""
    started: list[helpers.Worker] = []

    def start(env: dict, name: str = "worker", args=("worker", "-l", "info"), **kwargs) -> helpers.Worker:
        worker = helpers.Worker(env, tmp_path / f"{name}-{len(started)}.log", args, **kwargs).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A 3-broker cluster for the tests of one module, discarded at its end."""
    if helpers.kafka_port() is None:
        pytest.skip("needs the test broker: run through `make test`")
    started = helpers.Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield started.up()
    finally:
        started.discard()


@pytest.fixture
def on_cluster(cluster, monkeypatch):
    """Helpers and workers use the cluster; every broker runs when the test starts."""
    monkeypatch.setenv("HUMIDITY_TEST_KAFKA_BOOTSTRAP", cluster.bootstrap)
    return cluster.up()
