"""The feeding commands: `faust -A app replay FILE` and `faust -A app simulate`."""

import subprocess

import orjson
import pytest

from humidity.core.readings import Invalid, parse_reading
from tests import helpers

pytestmark = pytest.mark.kafka


def faust(env, *args, timeout=120):
    return subprocess.run([helpers.FAUST, "-A", "app", *args], cwd=helpers.ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_help_lists_both_commands(tmp_path):
    env = helpers.service_env(tmp_path) if helpers.kafka_port() else None
    out = faust(env, "--help").stdout
    assert "replay" in out and "simulate" in out


def test_replay_sends_every_line_as_is(kafka, tmp_path):
    env = helpers.service_env(tmp_path)
    good = orjson.dumps({"guid": "0-ZZZ1-01A", "medicalImagingdevice": "MRI 1", "eventTime": "2024-01-01T00:00:00Z",
                         "payload": {"format": "urn:example:sensor:humidity", "data": {"humidity": 51.5}}})
    lines = [good, b"not json", good.replace(b"MRI 1", b"CT 2"), b"", b"\xff\xfe", good]
    path = tmp_path / "midata.txt"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = faust(env, "replay", str(path))
    assert result.returncode == 0, result.stderr
    assert f"sent {len(lines)} messages from {path}" in result.stdout and "msg/s" in result.stdout

    def replayed():  # a topic just created may answer NotLeaderForPartition for a moment
        return sorted(r.value for r in helpers.run(helpers.read_topic(env["HUMIDITY_INPUT_TOPIC"])))

    helpers.wait_until(lambda: replayed() == sorted(lines), 60, what="every replayed line on the input topic")


def test_simulate_sends_realistic_and_malformed_readings(kafka, tmp_path):
    env = helpers.service_env(tmp_path)
    result = faust(env, "simulate", "--rate", "400", "--duration", "2", "--loggers", "50", "--devices", "5",
                   "--invalid-ratio", "0.2", "--seed", "3")
    assert result.returncode == 0, result.stderr
    records = helpers.run(helpers.read_topic(env["HUMIDITY_INPUT_TOPIC"]))
    assert len(records) >= 200, "about 400 a second for 2 s (paced by the clock: no tighter bound)"
    parsed = [parse_reading(r.value) for r in records]
    invalid = sum(isinstance(p, Invalid) for p in parsed)
    assert 0.1 < invalid / len(records) < 0.3
    valid = [p for p in parsed if not isinstance(p, Invalid)]
    assert len({p.device for p in valid}) == 5 and len({p.guid for p in valid}) <= 50
    mostly = sum(30 <= p.humidity <= 70 for p in valid) / len(valid)
    assert mostly >= 0.95, "humidity mostly 35 to 65 % with noise, rare excursions"
