"""Notifications and the audit trail end to end: real Kafka, a real HTTP
receiver and a real SMTP server (aiosmtpd) started by the test."""

import subprocess

import orjson
import pytest

from tests import helpers
from tests.receivers import Mailbox, Webhook
from tests.test_alarms_kafka import send

pytestmark = pytest.mark.kafka

READY = helpers.READY


def breach(guid, device="MRI 1", start=0, seconds=150, value=65.0):
    """A sustained breach of an MRI's 60 % RH limit (raised after 60 s of event time)."""
    return [(guid, device, t, value) for t in range(start, start + seconds, 10)]


def back_inside(guid, device="MRI 1", start=200):
    return [(guid, device, t, 50.0) for t in range(start, start + 30, 10)]


def faust(env, *args, stdin: str | None = None):
    return subprocess.run([helpers.FAUST, "-A", "app", *args], cwd=helpers.ROOT, env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def audit_records(env):
    return [orjson.loads(r.value) for r in helpers.run(helpers.read_topic(env["HUMIDITY_AUDIT_TOPIC"]))]


def test_webhook_and_mail_get_raise_and_clear_after_the_receiver_was_down_and_the_audit_chain_holds(
        kafka, tmp_path, workers):
    hook, mailbox = Webhook(), Mailbox().start()  # the webhook receiver starts down
    try:
        env = helpers.service_env(
            tmp_path, HUMIDITY_NOTIFY_WEBHOOKS=hook.url, HUMIDITY_NOTIFY_EMAILS="ward@example.org,biomed@example.org",
            HUMIDITY_SMTP_HOST="127.0.0.1", HUMIDITY_SMTP_PORT=str(mailbox.port), HUMIDITY_SMTP_USER=mailbox.user,
            HUMIDITY_SMTP_PASSWORD=mailbox.password, HUMIDITY_SMTP_FROM="humidity@example.org",
            HUMIDITY_PUBLIC_URL="https://humidity.example.org")
        worker = workers(env, "notify")
        worker.wait_for_log(READY, timeout=120)
        send(env, breach("mri-hook"))

        # The raise is mailed while the webhook receiver is down; the webhook's failures are counted and logged.
        helpers.wait_until(lambda: mailbox.subjects() == ["[humidity] HIGH raised: MRI 1"], 90, what="the raise mail")
        worker.wait_for_log(r"Notification to webhook http://127\.0\.0\.1:\d+/hook failed", timeout=60)
        metrics = helpers.http_get(helpers.web_url(env, "/metrics"))[2].decode()
        assert 'humidity_notifications_total{channel="webhook",outcome="failed"}' in metrics
        # Counting and publishing go on meanwhile: a summary with every reading and the alarm.
        helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], lambda s: s["total_messages"] == len(breach("x"))
                                 and len(s["active_alarms"]) == 1, timeout=30)
        hook.start()
        helpers.wait_until(lambda: hook.events() == [("mri-hook", "HIGH", "raised")], 90,
                           what=f"the raise at the webhook once it is back (have {hook.events()})")

        send(env, back_inside("mri-hook"))
        helpers.wait_until(lambda: hook.events()[-1:] == [("mri-hook", "HIGH", "cleared")], 90,
                           what=f"the clear at the webhook (have {hook.events()})")
        helpers.wait_until(lambda: len(mailbox.subjects()) == 2, 60, what="the clear mail")

        raised, cleared = hook.received[0], hook.received[-1]
        assert raised["id"] == raised["alarm_id"] + ".raised" and cleared["id"] == raised["alarm_id"] + ".cleared"
        assert {"time", "device", "guid", "kind", "state", "value", "limit", "since"} <= set(raised)
        assert hook.headers[0]["Idempotency-Key"] == raised["id"]
        to, message = mailbox.messages[0]
        assert sorted(to) == ["biomed@example.org", "ward@example.org"] and mailbox.logins
        body = message.get_content()
        for text in ("Device:    MRI 1", "Logger:    mri-hook", "Kind:      HIGH", "Value:     65.0",
                     "Limit:     60.0", "https://humidity.example.org/#/device/MRI%201", raised["id"]):
            assert text in body, text
        assert mailbox.password not in worker.log() and "secret-token" not in worker.log()

        # The audit trail: raise, notifications (the webhook's first failure too), clear; the chain holds.
        def audited():
            return [(r["type"], r.get("channel"), r.get("outcome")) for r in audit_records(env)]

        helpers.wait_until(lambda: audited().count(("notified", "email", "delivered")) == 2
                           and audited().count(("notified", "webhook", "delivered")) == 2, 60,
                           what=f"the deliveries in the audit trail (have {audited()})")
        trail = audited()
        assert trail.index(("raised", None, None)) < trail.index(("notified", "webhook", "failing")) \
            < trail.index(("cleared", None, None))
        records = audit_records(env)
        assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
        assert all("secret-token" not in orjson.dumps(r).decode() and mailbox.password not in orjson.dumps(r).decode()
                   for r in records)
        ok = faust(env, "audit", "verify")
        assert ok.returncode == 0 and f"{len(records)} record(s), the chain holds" in ok.stdout, ok.stdout + ok.stderr

        export = faust(env, "audit", "export", "--from", "2000-01-01")
        lines = export.stdout.splitlines()
        assert lines[0].startswith("seq,time,type,id,alarm_id,device") and len(lines) == len(records) + 1
        assert faust(env, "audit", "export", "--from", "2999-01-01").stdout.count("\n") == 1  # the header only

        # A forged record appended (made to look like an acknowledgement) breaks the chain there.
        forged = {**records[-1], "type": "acknowledged", "user": "mallory", "seq": len(records) + 1,
                  "prev": records[-1]["hash"], "id": "forged"}
        at = helpers.run(helpers.end_offsets(env["HUMIDITY_AUDIT_TOPIC"], 1))[0]  # after the transactions' markers
        helpers.run(helpers.produce_to_partition(env["HUMIDITY_AUDIT_TOPIC"], 0, b"forged", orjson.dumps(forged)))
        bad = faust(env, "audit", "verify")
        assert bad.returncode != 0
        assert f"offset {at} (seq {len(records) + 1}, id 'forged'): hash does not match" in bad.stderr
    finally:
        hook.stop()
        mailbox.stop()


def test_an_event_the_worker_died_before_delivering_is_delivered_by_the_next_one_with_the_same_id(
        kafka, tmp_path, workers):
    hook = Webhook()  # down while the first worker runs
    try:
        env = helpers.service_env(tmp_path, HUMIDITY_NOTIFY_WEBHOOKS=hook.url)
        first = workers(env, "first")
        first.wait_for_log(READY, timeout=120)
        send(env, breach("mri-crash"))
        helpers.wait_until(lambda: [e["state"] for e in helpers.alerts(env["HUMIDITY_ALERTS_TOPIC"])] == ["raised"],
                           90, what="the raise on the alerts topic")
        first.wait_for_log(r"Notification to webhook .* failed", timeout=60)
        first.kill()  # kill -9 between the raise and its delivery

        hook.start()
        second = workers(helpers.another_worker(env, tmp_path), "second")
        second.wait_for_log(READY, timeout=120)
        helpers.wait_until(lambda: ("mri-crash", "HIGH", "raised") in hook.events(), 90,
                           what="the raise delivered by the next worker")
        alert = helpers.alerts(env["HUMIDITY_ALERTS_TOPIC"])[0]
        assert {e["id"] for e in hook.received} == {alert["id"]}  # duplicates, if any, carry the same id
        # The next worker took over the audit trail where the dead one left it: one chain, the raise once.
        helpers.wait_until(lambda: ("notified", "delivered") in [(r["type"], r.get("outcome"))
                                                                for r in audit_records(env)], 60,
                           what="the delivery in the audit trail")
        assert [r["type"] for r in audit_records(env)].count("raised") == 1
        verified = faust(env, "audit", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
    finally:
        hook.stop()
