"""What notifications say and to whom (pure)."""

from humidity.core import notify
from humidity.core.acks import escalation_event
from humidity.core.alarm_limits import parse_config
from humidity.core.alarms import LoggerState, active_alarm, apply_readings

CONFIG = parse_config('[types.MRI]\nlow = 40\nhigh = 60\n')


def raised(device="MRI 12"):
    state = LoggerState(device, "0-ZZZ12345678-08K")
    return apply_readings(state, CONFIG, [(t, 65.5) for t in range(0, 130, 10)], wall=1_800_000_000.0)[0]


def test_channels_take_alarm_events_or_escalations_and_have_stable_distinct_groups():
    channels = notify.channels(("https://a.example/hook",), ("ward@x.org", "biomed@x.org"),
                               ("https://pager.example/p",), ("boss@x.org",))
    assert [c.name for c in channels] == ["webhook", "email", "escalation-webhook", "escalation-email"]
    event = raised()
    assert [c.takes(event) for c in channels] == [True, True, False, False]
    escalated = escalation_event(active_alarm(event), "2027-01-01T00:15:00Z")
    assert [c.takes(escalated) for c in channels] == [False, False, True, True]
    keys = [c.key for c in channels]
    assert len(set(keys)) == 4 and keys == [c.key for c in notify.channels(
        ("https://a.example/hook",), ("ward@x.org", "biomed@x.org"), ("https://pager.example/p",), ("boss@x.org",))]


def test_logs_and_the_audit_trail_never_show_a_urls_credentials_or_query():
    assert notify.shown_url("https://user:pw@hooks.example:8443/x/y?token=abc#f") == "https://hooks.example:8443/x/y"
    channel = notify.Channel(notify.WEBHOOK, ("http://u:p@[::1]:9/h?k=v",), notify.ALARM_STATES)
    assert channel.shown == "http://[::1]:9/h"
    error = "InvalidURL: http://u:p@[::1]:9/h?k=v; smtp said pw-123 was wrong"
    assert notify.scrubbed(error, channel, "pw-123") == "InvalidURL: http://[::1]:9/h; smtp said *** was wrong"


def test_retries_back_off_up_to_a_bound():
    assert [notify.backoff(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_the_mail_is_readable_text_with_a_link_and_device_names_cannot_add_headers():
    event = raised("MRI 12\r\nBcc: everyone@example.org")
    message = notify.email_message(event, "humidity@x.org", ("ward@x.org",), "https://humidity.example.org/")
    assert message["Subject"] == "[humidity] HIGH raised: MRI 12 Bcc: everyone@example.org"
    assert message["Bcc"] is None and message["To"] == "ward@x.org"
    body = message.get_content()
    assert "Value:     65.5" in body and "Limit:     60.0" in body and "Logger:    0-ZZZ12345678-08K" in body
    assert "https://humidity.example.org/#/device/MRI%2012%0D%0ABcc%3A%20everyone%40example.org" in body
    assert message["Message-ID"] == f"<{event['id']}@humidity>"
    plain = notify.email_message(raised(), "humidity@x.org", ("ward@x.org",))
    assert "View:" not in plain.get_content()
    escalated = escalation_event(active_alarm(raised()), "2027-01-01T00:15:00Z")
    assert "not acknowledged" in notify.email_message(escalated, "h@x.org", ("boss@x.org",))["Subject"]
