"""docker-compose.yml and the Dockerfile agree with the app (no Docker engine
here, so the stack itself is not run; see README)."""

import re
import xml.etree.ElementTree as ET

import yaml

from humidity.core import GROUP
from humidity.core.settings import VARIABLES, Settings
from tests import helpers

ROOT = helpers.ROOT
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def kafka_version() -> str:
    pom = ET.parse(ROOT / "kafka" / "pom.xml")
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    return pom.getroot().find("m:properties/m:kafka.version", ns).text


BROKERS = sorted(name for name in COMPOSE["services"] if name.startswith("kafka-"))


def test_three_brokers_of_the_pinned_local_version_each_with_health_and_volume():
    assert BROKERS == ["kafka-0", "kafka-1", "kafka-2"]
    voters = []
    for n, name in enumerate(BROKERS):
        broker = COMPOSE["services"][name]
        assert broker["image"] == f"apache/kafka:{kafka_version()}"
        assert "healthcheck" in broker
        volume = broker["volumes"][0].split(":")[0]
        assert volume == f"{name}-data" and volume in COMPOSE["volumes"]
        env = broker["environment"]
        assert env["KAFKA_NODE_ID"] == n and env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert f"INTERNAL://{name}:19092" in env["KAFKA_ADVERTISED_LISTENERS"]
        voters.append(env["KAFKA_CONTROLLER_QUORUM_VOTERS"])
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 3 and env["KAFKA_MIN_INSYNC_REPLICAS"] == 2
    assert len({COMPOSE["services"][name]["environment"]["CLUSTER_ID"] for name in BROKERS}) == 1, "one cluster"
    assert set(voters) == {",".join(f"{n}@{name}:29093" for n, name in enumerate(BROKERS))}


def test_the_service_replicates_its_topics_over_every_broker():
    for service in ("worker", "simulator"):
        env = COMPOSE["services"][service]["environment"]
        assert env["HUMIDITY_BROKER"] == ",".join(f"kafka://{name}:19092" for name in BROKERS), service
        assert env["HUMIDITY_REPLICATION_FACTOR"] == str(len(BROKERS)), service
        assert set(COMPOSE["services"][service]["depends_on"]) == set(BROKERS), service


def test_worker_uses_only_real_settings_with_defaults_that_match():
    worker = COMPOSE["services"]["worker"]
    assert worker["command"] == ["faust", "-A", "app", "worker", "-l", "info"]
    assert "container_name" not in worker and "ports" not in worker, "must scale: no fixed name or host port"
    assert all(worker["depends_on"][name]["condition"] == "service_healthy" for name in BROKERS)
    env = worker["environment"]
    unknown = set(env) - set(VARIABLES)
    assert not unknown, f"not settings of the app: {unknown}"
    defaults = Settings()
    for variable, value in env.items():
        field = VARIABLES.get(variable)
        if field in ("input_topic", "results_topic", "invalid_topic", "alerts_topic", "app_id", "partitions",
                     "interval"):
            assert str(value) == str(getattr(defaults, field)), variable
    assert env["HUMIDITY_WEB_BIND"] == "0.0.0.0"
    assert str(env["HUMIDITY_WEB_PORT"]) in [str(p) for p in worker["expose"]]


def test_simulator_and_web_proxy():
    sim = COMPOSE["services"]["simulator"]
    assert sim["command"][:4] == ["faust", "-A", "app", "simulate"]
    worker_env = COMPOSE["services"]["worker"]["environment"]
    assert sim["environment"]["HUMIDITY_PARTITIONS"] == worker_env["HUMIDITY_PARTITIONS"]
    web = COMPOSE["services"]["web"]
    assert web["ports"] == ["127.0.0.1:8080:80"]
    port = COMPOSE["services"]["worker"]["environment"]["HUMIDITY_WEB_PORT"]
    assert f"http://worker:{port}" in (ROOT / "deploy" / "nginx.conf").read_text()


def test_dockerfile_matches_the_worker():
    assert re.search(r"^FROM python:3\.11", DOCKERFILE, re.M)
    assert 'CMD ["faust", "-A", "app", "worker", "-l", "info"]' in DOCKERFILE
    assert "HUMIDITY_WEB_BIND=0.0.0.0" in DOCKERFILE and "HUMIDITY_DATA_DIR=/data" in DOCKERFILE
    assert "EXPOSE 6066" in DOCKERFILE and "/health" in DOCKERFILE
    assert re.search(r"^USER \w+", DOCKERFILE, re.M), "the worker must not run as root"
    for path in ("requirements.txt", "app.py", "humidity", "tables"):
        assert f"COPY {path}" in DOCKERFILE
    assert "requirements-dev" not in DOCKERFILE, "the image installs what the service needs to run, no more"
    runtime = (ROOT / "requirements.txt").read_text().lower()
    for tool in ("pytest", "hypothesis", "playwright", "ruff", "pyyaml", "aiosmtpd"):
        assert f"\n{tool}" not in runtime, f"{tool} is a development tool"
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".venv", ".git", ".kafka-data", "data", "kafka/lib",
                 "build", "**/*.so", "humidity/core/compiled.json"):  # the image compiles its own core
        assert path in ignored


def test_the_image_runs_the_core_compiled_from_its_own_sources():
    assert "RUN python scripts/compile_core.py" in DOCKERFILE
    assert f"COPY --from=core /app/{GROUP}__mypyc." in DOCKERFILE
    build_stage = DOCKERFILE.split("\nFROM python:3.11-slim")[0]
    assert "requirements-build.txt" in build_stage, "the build tools stay in the build stage"
