"""SASL/SCRAM-SHA-512 over TLS against a local broker with a SASL_SSL listener."""

import os
import subprocess

import pytest

from tests import helpers
from tests.reference import dataset, expected_summary, matches

pytestmark = [pytest.mark.kafka, pytest.mark.xdist_group("secured-broker")]  # one broker, in one process

USER, PASSWORD = "hospital-svc", "s3cret-Pa55word-never-logged"
KAFKA_SH = str(helpers.ROOT / "scripts" / "kafka.sh")


def make_certificates(directory):
    """A throwaway CA and a server certificate for 127.0.0.1, with openssl."""
    directory.mkdir()

    def ssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=60)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=humidity-test-ca")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    ssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out",
        "server.pem", "-days", "2", "-extfile", "san.ext")
    ssl("pkcs8", "-topk8", "-nocrypt", "-in", "server.key", "-out", "server.p8")
    (directory / "keystore.pem").write_bytes(b"".join((directory / n).read_bytes() for n in
                                                      ("server.p8", "server.pem", "ca.pem")))
    return directory / "ca.pem", directory / "keystore.pem"


@pytest.fixture(scope="module")
def secured_broker(tmp_path_factory):
    if helpers.kafka_port() is None:
        pytest.skip("needs the test set-up: run through `make test`")
    base = tmp_path_factory.mktemp("secured-kafka")
    ca, keystore = make_certificates(base / "tls")
    plain = helpers.free_port_pair()
    sasl = helpers.free_port()
    env = dict(os.environ, KAFKA_PORT=str(plain), KAFKA_DATA_DIR=str(base / "data"), KAFKA_SASL_SSL_PORT=str(sasl),
               KAFKA_SSL_KEYSTORE_PEM=str(keystore), KAFKA_SCRAM_USERS=f"{USER}:{PASSWORD}")
    subprocess.run([KAFKA_SH, "up"], env=env, check=True, timeout=180)
    try:
        yield {"plain": f"127.0.0.1:{plain}", "sasl": f"127.0.0.1:{sasl}", "ca": str(ca)}
    finally:
        subprocess.run([KAFKA_SH, "down"], env=env, timeout=120)


def secured_env(tmp_path, broker, password=PASSWORD):
    return helpers.service_env(
        tmp_path, HUMIDITY_BROKER=f"kafka://{broker['sasl']}", HUMIDITY_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        HUMIDITY_KAFKA_SASL_MECHANISM="SCRAM-SHA-512", HUMIDITY_KAFKA_SASL_USERNAME=USER,
        HUMIDITY_KAFKA_SASL_PASSWORD=password, HUMIDITY_KAFKA_CA_FILE=broker["ca"])


def test_worker_runs_over_sasl_ssl_and_never_logs_the_password(secured_broker, tmp_path, workers):
    env = secured_env(tmp_path, secured_broker)
    worker = workers(env, "secured")
    worker.wait_for_log(r"\[\^Worker\]: Ready", timeout=120)
    records = dataset(3_000, seed=61)
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in records],
                                bootstrap_servers=secured_broker["plain"]))
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], matches(expected_summary(records)), timeout=120,
                             bootstrap_servers=secured_broker["plain"])
    status, _, _ = helpers.http_get(helpers.web_url(env, "/api/summary"))
    assert status == 200  # the follower reads the results topic over SASL_SSL too
    worker.stop()
    assert PASSWORD not in worker.log()


def test_wrong_password_gives_one_clear_error(secured_broker, tmp_path, workers):
    env = secured_env(tmp_path, secured_broker, password="not-the-password-either")
    worker = workers(env, "rejected")
    helpers.wait_until(lambda: not worker.running(), timeout=90, what="the worker to stop")
    assert worker.proc.returncode == 77
    log = worker.log()
    lines = [line for line in log.splitlines() if "rejected the connection" in line]
    assert len(lines) == 1, lines
    assert "SaslAuthenticationFailed" in lines[0] and USER in lines[0]
    assert "not-the-password-either" not in log and "Traceback" not in log


def test_an_untrusted_certificate_is_refused(secured_broker, tmp_path, workers):
    env = secured_env(tmp_path, secured_broker)
    del env["HUMIDITY_KAFKA_CA_FILE"]  # the system CAs do not know the test CA
    worker = workers(env, "untrusted")
    helpers.wait_until(lambda: not worker.running(), timeout=90, what="the worker to stop")
    assert worker.proc.returncode == 77
    assert "CERTIFICATE_VERIFY_FAILED" in worker.log()
