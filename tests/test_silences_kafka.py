"""Limits per device and maintenance silences end to end: real Kafka, a
real HTTP receiver and a real SMTP server, two workers."""

import base64
import hashlib
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime

import orjson
import pytest

from tests import helpers
from tests.receivers import Mailbox, Webhook
from tests.test_acks_kafka import OPERATOR_PASSWORD, VIEWER_PASSWORD, add_users, post
from tests.test_alarms_kafka import send
from tests.test_notify_kafka import audit_records, breach, faust

pytestmark = pytest.mark.kafka

SHIPPED = (helpers.ROOT / "humidity" / "core" / "alarms.toml").read_text()
OVERRIDE = '[devices."MRI 12"]\nhigh = 55\n[devices."Ghost 1"]\nlow = 35\n'
GHOST = r'Alarms file: \[devices."Ghost 1"\] names a device that has not reported'
#: Seconds the spare logger's silence lasts before it runs out by itself.
SHORT_SECONDS = 8


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def delete(env, path, user, password):
    request = urllib.request.Request(helpers.web_url(env, path), data=b"{}", method="DELETE",
                                     headers={"Content-Type": "application/json"})
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read() or b"{}")


def get(env, path):
    status, _, body = helpers.http_get(helpers.web_url(env, path))
    return status, orjson.loads(body) if body else None


def listed(env) -> set[str]:
    return {s["id"] for s in get(env, "/api/silences")[1]["silences"]}


def active(env) -> dict:
    status, body = get(env, "/api/alarms")
    return {a["guid"]: a for a in body["active_alarms"]} if status == 200 else {}


def audited(env, kind) -> list[dict]:
    return [r for r in audit_records(env) if r["type"] == kind]


def count(hook, event) -> int:
    return hook.events().count(event)


def test_device_limits_silences_on_two_workers_notified_once_at_their_end_through_kill_9_and_limits_read_again(
        kafka, tmp_path, workers):
    hook, escalation, mailbox = Webhook().start(), Webhook().start(), Mailbox().start()
    try:
        alarms_file = tmp_path / "alarms.toml"
        alarms_file.write_text(SHIPPED + "\n" + OVERRIDE)
        env = add_users(helpers.service_env(
            tmp_path, HUMIDITY_ALARMS_FILE=str(alarms_file), HUMIDITY_NOTIFY_WEBHOOKS=hook.url,
            HUMIDITY_NOTIFY_EMAILS="biomed@example.org", HUMIDITY_SMTP_HOST="127.0.0.1",
            HUMIDITY_SMTP_PORT=str(mailbox.port), HUMIDITY_SMTP_USER=mailbox.user,
            HUMIDITY_SMTP_PASSWORD=mailbox.password, HUMIDITY_SMTP_FROM="humidity@example.org",
            HUMIDITY_ESCALATE_AFTER="12", HUMIDITY_ESCALATE_WEBHOOKS=escalation.url), tmp_path / "users.toml")
        first, second, env2 = helpers.two_ready_workers(workers, env, tmp_path)

        # Who may silence: an operator only; a silence needs an end within 7 days and a reason.
        body = {"device": "CT 3", "until": iso(time.time() + 3600), "reason": "annual service, ticket 4711"}
        assert post(env, "/api/silences", body)[0] == 401
        status, refused = post(env, "/api/silences", body, "victor", VIEWER_PASSWORD)
        assert status == 403 and "viewer" in refused["error"]
        assert post(env, "/api/silences", {**body, "until": iso(time.time() + 8 * 86400)}, "olivia",
                    OPERATOR_PASSWORD) == (400, {"error": "until must be at most 7 days ahead"})
        assert post(env, "/api/silences", {**body, "reason": ""}, "olivia", OPERATOR_PASSWORD)[0] == 400

        # A silence made on one worker is listed by both; a short one on a spare logger runs out by itself.
        status, silence = post(env, "/api/silences", body, "olivia", OPERATOR_PASSWORD)
        assert status == 201 and (silence["device"], silence["guid"], silence["kinds"], silence["created_by"]) == (
            "CT 3", None, [], "olivia") and silence["reason"] == body["reason"]
        status, short = post(env, "/api/silences", {"guid": "spare-logger", "kinds": ["OFFLINE"],
                                                    "until": iso(time.time() + SHORT_SECONDS), "reason": "spare"},
                             "olivia", OPERATOR_PASSWORD)
        assert status == 201 and short["kinds"] == ["OFFLINE"]
        for e in (env, env2):
            helpers.wait_until(lambda e=e: silence["id"] in listed(e), 30, what="the silence on both workers")

        # The override raises HIGH on MRI 12 at 57 %; MRI 13 at 57 % stays quiet; CT 3's breach is held.
        send(env, breach("mri12", "MRI 12", value=57.0) + breach("mri13", "MRI 13", value=57.0)
             + breach("ct3", "CT 3", value=75.0))
        helpers.wait_until(lambda: count(hook, ("mri12", "HIGH", "raised")) == 1, 90, what="MRI 12's raise")
        assert next(e for e in hook.received if e["guid"] == "mri12")["limit"] == 55.0
        for e in (env, env2):
            helpers.wait_until(lambda e=e: active(e).get("ct3", {}).get("silenced", {}).get("id") == silence["id"],
                               60, what="CT 3's alarm shown as silenced")
        helpers.wait_until(lambda: {r["channel"] for r in audited(env, "notified") if r["guid"] == "ct3"
                                    and r["outcome"] == "held"} == {"webhook", "email"}, 60, what="held, audited")
        assert [e for e in hook.events() if e[0] in ("ct3", "mri13")] == []
        assert not [s for s in mailbox.subjects() if "CT 3" in s] and "mri13" not in active(env)
        assert next(a for a in helpers.alerts(env["HUMIDITY_ALERTS_TOPIC"]) if a["guid"] == "ct3")["silenced"] == {
            "id": silence["id"], "until": silence["until"].replace("+00:00", "Z")}

        # An operator on the other worker ends it early (not a viewer, not twice): the raise goes out once,
        # and escalation counts from then.
        assert delete(env2, f"/api/silences/{silence['id']}", "victor", VIEWER_PASSWORD)[0] == 403
        status, ended = delete(env2, f"/api/silences/{silence['id']}", "olivia", OPERATOR_PASSWORD)
        assert status == 200 and ended["ended_by"] == "olivia"
        ended_at = time.time()
        helpers.wait_until(lambda: count(hook, ("ct3", "HIGH", "raised")) == 1, 60,
                           what="CT 3's raise when the silence ends")
        notified = next(e for e in hook.received if e["guid"] == "ct3")
        assert notified["after_silence"] == silence["id"] and "silenced" not in notified
        helpers.wait_until(lambda: ("ct3", "HIGH", "escalated") in escalation.events(), 60, what="the escalation")
        escalated = next(e for e in escalation.received if e["guid"] == "ct3")
        assert helpers.parse_time(escalated["wall_time"]) >= ended_at - 1 + 12
        helpers.wait_until(lambda: [s for s in mailbox.subjects() if "CT 3" in s] == ["[humidity] HIGH raised: CT 3"],
                           30, what="CT 3's mail")
        assert count(hook, ("ct3", "HIGH", "raised")) == 1, "notified once"
        assert silence["id"] not in listed(env) | listed(env2)
        assert delete(env2, f"/api/silences/{silence['id']}", "olivia", OPERATOR_PASSWORD)[0] == 404

        # The audit trail has who silenced, why, who ended it (or that it expired); the chain holds.
        helpers.wait_until(lambda: len(audited(env, "silence-ended")) == 2, 30, what="both ends audited")
        created = {r["silence"]: r for r in audited(env, "silence-created")}
        assert (created[silence["id"]]["user"], created[silence["id"]]["comment"]) == ("olivia", body["reason"])
        assert {(r["silence"], r["user"]) for r in audited(env, "silence-ended")} == {
            (silence["id"], "olivia"), (short["id"], "expired")}
        verified = faust(env, "audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr

        # A new file lowers MRI 13's limit: its next reading raises, without a restart.
        lower = '[devices."MRI 13"]\nhigh = 50\nactivation_delay_seconds = 0\n'
        alarms_file.write_text(SHIPPED + "\n" + OVERRIDE + lower)
        for worker in (first, second):
            worker.wait_for_log(r'Alarms file .* read again \(sha256 \w+\): \[devices."MRI 13"\] none -> '
                                r'low 30 high 50 max_change_per_hour 5 activation_delay_seconds 0', timeout=30)
        send(env, [("mri13", "MRI 13", 400, 57.0)])
        helpers.wait_until(lambda: count(hook, ("mri13", "HIGH", "raised")) == 1, 60, what="MRI 13's raise")
        sha = hashlib.sha256(alarms_file.read_bytes()).hexdigest()
        helpers.wait_until(lambda: [r["sha256"] for r in audited(env, "limits-changed")] == [sha], 30,
                           what="the change audited once")
        status, device = get(env2, "/api/devices/" + urllib.parse.quote("MRI 13"))
        assert status == 200 and device["limits"] == {"low": 30.0, "high": 50.0, "max_change_per_hour": 5.0,
                                                      "activation_delay_seconds": 0.0, "source": "device"}

        # A broken file is refused: the limits before it stay, the workers stay healthy.
        alarms_file.write_text(SHIPPED + '\n[devices."MRI 13"]\nhigh = "fifty"\n')
        for worker, e in ((first, env), (second, env2)):
            worker.wait_for_log(r'devices."MRI 13".high must be a number; the limits read before stay in force',
                                timeout=30)
            metrics = helpers.http_get(helpers.web_url(e, "/metrics"))[2].decode()
            assert 'humidity_limits_reload_total{outcome="applied"} 1.0' in metrics
            assert 'humidity_limits_reload_total{outcome="refused"} 1.0' in metrics
            assert get(e, "/api/devices/" + urllib.parse.quote("MRI 13"))[1]["limits"]["high"] == 50.0
            assert helpers.http_get(helpers.web_url(e, "/health"))[0] == 200
            assert len(re.findall(GHOST, worker.log())) == 1, "a section for a device never seen: logged once"

        # A silence outlives kill -9 of every worker: the next one reads it back and it still holds.
        status, lasting = post(env, "/api/silences", {"device": "SPECT 6", "until": iso(time.time() + 3600),
                                                      "reason": "detector swap"}, "olivia", OPERATOR_PASSWORD)
        helpers.wait_until(lambda: lasting["id"] in listed(env) & listed(env2), 30, what="the lasting silence")
        first.kill()
        second.kill()
        alarms_file.write_text(SHIPPED + "\n" + OVERRIDE)  # a file the next worker can start with
        third = workers(env, "third")
        third.wait_for_log(helpers.READY, timeout=120)
        helpers.wait_until(lambda: lasting["id"] in listed(env), 60, what="the silence after kill -9")
        send(env, breach("spect6", "SPECT 6", value=75.0))
        helpers.wait_until(lambda: {r["channel"] for r in audited(env, "notified") if r["guid"] == "spect6"
                                    and r["outcome"] == "held"} == {"webhook", "email"}, 90, what="SPECT 6 held")
        assert [e for e in hook.events() if e[0] == "spect6"] == []
    finally:
        hook.stop()
        escalation.stop()
        mailbox.stop()
