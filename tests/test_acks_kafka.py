"""Acknowledging alarms end to end on real Kafka: users written by
``add-user``, HTTP Basic, roles, two workers, a restart, escalation."""

import base64
import urllib.error
import urllib.request

import orjson
import pytest

from tests import helpers
from tests.receivers import Webhook
from tests.test_alarms_kafka import send
from tests.test_notify_kafka import audit_records, breach, faust

pytestmark = pytest.mark.kafka

READY = helpers.READY
OPERATOR_PASSWORD = "correct horse battery"
VIEWER_PASSWORD = "viewer-pass-123"


def add_users(env, path):
    env = dict(env, HUMIDITY_USERS_FILE=str(path))
    for name, role, password in (("olivia", "operator", OPERATOR_PASSWORD), ("victor", "viewer", VIEWER_PASSWORD)):
        done = faust(env, "add-user", name, "--role", role, stdin=password + "\n")
        assert done.returncode == 0, done.stderr
    text = path.read_text()
    assert OPERATOR_PASSWORD not in text and VIEWER_PASSWORD not in text and "$argon2id$" in text
    return env


def post(env, path, body, user=None, password=None, headers=None):
    """(status, JSON body) of a POST of JSON."""
    request = urllib.request.Request(helpers.web_url(env, path), data=orjson.dumps(body), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read() or b"{}")


def login_cookie(env, user, password) -> str:
    request = urllib.request.Request(helpers.web_url(env, "/api/login"), method="POST",
                                     data=orjson.dumps({"user": user, "password": password}),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        set_cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie
    return set_cookie.split(";")[0]


def active(env):
    status, _, body = helpers.http_get(helpers.web_url(env, "/api/alarms"))
    return {a["guid"]: a for a in orjson.loads(body)["active_alarms"]} if status == 200 else {}


def test_operators_acknowledge_on_every_worker_viewers_cannot_and_unacknowledged_alarms_escalate(
        kafka, tmp_path, workers):
    escalation = Webhook().start()
    try:
        env = add_users(helpers.service_env(tmp_path, HUMIDITY_ESCALATE_AFTER="12",
                                            HUMIDITY_ESCALATE_WEBHOOKS=escalation.url,
                                            HUMIDITY_SESSION_SECRET="one-secret-for-every-worker"),
                        tmp_path / "users.toml")
        first, second, env2 = helpers.two_ready_workers(workers, env, tmp_path)
        send(env, breach("acked", "MRI 1") + breach("ignored", "MRI 2"))
        helpers.wait_until(lambda: {"acked", "ignored"} <= set(active(env)), 90, what="both alarms active")
        alarm_id = active(env)["acked"]["id"]
        path = f"/api/alarms/{alarm_id}/ack"

        assert post(env, path, {"comment": "x"})[0] == 401
        assert post(env, path, {"comment": "x"}, "olivia", "wrong password")[0] == 401
        assert post(env, path, {"comment": "x"}, "nobody", OPERATOR_PASSWORD)[0] == 401
        status, body = post(env, path, {"comment": "x"}, "victor", VIEWER_PASSWORD)
        assert status == 403 and "viewer" in body["error"]
        assert post(env, "/api/alarms/no-such-alarm/ack", {"comment": "x"}, "olivia", OPERATOR_PASSWORD)[0] == 404
        assert post(env, path, {"comment": "x"}, "olivia", OPERATOR_PASSWORD,
                    headers={"Origin": "http://evil.example"})[0] == 403
        status, body = post(env, path, {"comment": "Door closed, dehumidifier on"}, "olivia", OPERATOR_PASSWORD)
        assert status == 202 and body["acknowledged_by"] == "olivia"

        def acknowledged(e):
            alarm = active(e).get("acked", {})
            return alarm.get("acknowledged_by") == "olivia" and alarm.get("comment") == "Door closed, dehumidifier on"

        for e in (env, env2):  # on both workers
            helpers.wait_until(lambda e=e: acknowledged(e), 60, what=f"the ack on worker {e['HUMIDITY_WEB_PORT']}")
        assert active(env)["ignored"]["acknowledged_by"] is None
        assert post(env, path, {"comment": "again"}, "olivia", OPERATOR_PASSWORD)[0] == 409

        # A page session made on one worker holds on the other (one secret), as behind a proxy.
        cookie = login_cookie(env, "olivia", OPERATOR_PASSWORD)
        request = urllib.request.Request(helpers.web_url(env2, "/api/session"), headers={"Cookie": cookie})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert orjson.loads(response.read())["user"] == "olivia"

        # Nobody acknowledged MRI 2: it is escalated, once; MRI 1 is not.
        helpers.wait_until(lambda: escalation.events() == [("ignored", "HIGH", "escalated")], 90,
                           what=f"the escalation of the unacknowledged alarm (have {escalation.events()})")
        assert escalation.received[0]["id"] == active(env)["ignored"]["id"] + ".escalated"
        helpers.wait_until(lambda: active(env)["ignored"].get("escalated_at"), 30, what="escalated_at shown")
        assert escalation.events() == [("ignored", "HIGH", "escalated")]

        # Brute force: after five wrong passwords the name is locked, even for the right one.
        for _ in range(5):
            assert post(env2, path, {"comment": "x"}, "victor", "guess")[0] == 401
        assert post(env2, path, {"comment": "x"}, "victor", VIEWER_PASSWORD)[0] == 429

        # The audit trail has the acknowledgement (who, comment) and the escalation; no password anywhere.
        def audited(kind):
            return [r for r in audit_records(env) if r["type"] == kind]

        helpers.wait_until(lambda: audited("acknowledged") and audited("escalated"), 60, what="audit of ack")
        ack = audited("acknowledged")[0]
        assert (ack["user"], ack["comment"], ack["alarm_id"]) == ("olivia", "Door closed, dehumidifier on", alarm_id)
        trail = orjson.dumps(audit_records(env)).decode()
        assert OPERATOR_PASSWORD not in trail and VIEWER_PASSWORD not in trail
        for worker in (first, second):
            assert OPERATOR_PASSWORD not in worker.log() and "guess" not in worker.log()

        # After a restart of the whole service the acknowledgement is still there (a table, not memory).
        first.stop()
        second.stop()
        third = workers(env, "third")
        third.wait_for_log(READY, timeout=120)
        helpers.wait_until(lambda: acknowledged(env), 90, what="the ack after a restart")
        assert faust(env, "audit", "verify").returncode == 0
    finally:
        escalation.stop()


def test_without_a_users_file_the_service_stays_read_only(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    workers(env)
    helpers.wait_for_web(env)
    status, body = post(env, "/api/alarms/any/ack", {"comment": "x"}, "olivia", OPERATOR_PASSWORD)
    assert status == 403 and "read-only" in body["error"]
    assert orjson.loads(helpers.http_get(helpers.web_url(env, "/api/session"))[2])["users"] is False
