"""Who is told about alarm events, and what they are told (pure).

A :class:`Channel` is one receiver: a webhook URL, or the e-mail recipients
together; the escalation channels take only escalations. Each channel reads
the alerts topic on its own (its own consumer group, :attr:`Channel.group`),
so a receiver that is down holds back only itself.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import quote, urlsplit

import orjson

WEBHOOK, EMAIL = "webhook", "email"
ALARM_STATES = ("raised", "cleared")
ESCALATION_STATES = ("escalated",)
#: Seconds between attempts: 1, 2, 4, ... up to this.
BACKOFF_MAX = 30.0

_KIND_TEXT = {"HIGH": "humidity above the limit", "LOW": "humidity below the limit",
              "RATE": "humidity changing faster than allowed (% RH per hour)",
              "OFFLINE": "no reading for longer than the limit (seconds)"}


def shown_url(url: str) -> str:
    """A URL as logs and the audit trail show it: no user, password, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


@dataclass(frozen=True)
class Channel:
    kind: str  # WEBHOOK or EMAIL
    targets: tuple[str, ...]  # the URL, or the recipients
    states: tuple[str, ...]  # the event states it takes

    @property
    def name(self) -> str:
        """``webhook``, ``email``, ``escalation-webhook`` or ``escalation-email``."""
        return ("escalation-" if self.states == ESCALATION_STATES else "") + self.kind

    @property
    def shown(self) -> str:
        return shown_url(self.targets[0]) if self.kind == WEBHOOK else ", ".join(self.targets)

    @property
    def key(self) -> str:
        """Stable for the same receiver and states; names its consumer group."""
        text = orjson.dumps([self.kind, list(self.targets), list(self.states)])
        return f"{self.name}-{hashlib.sha256(text).hexdigest()[:12]}"

    def takes(self, event: dict) -> bool:
        return event.get("state") in self.states


def scrubbed(text: str, channel: Channel, password: str = "") -> str:
    """``text`` (an error message) without the channel's full URL or the SMTP
    password, for the log and the audit trail."""
    for target in channel.targets:
        text = text.replace(target, channel.shown)
    return text.replace(password, "***") if password else text


def channels(webhooks: tuple[str, ...], emails: tuple[str, ...], escalate_webhooks: tuple[str, ...],
             escalate_emails: tuple[str, ...]) -> list[Channel]:
    out = [Channel(WEBHOOK, (url,), ALARM_STATES) for url in webhooks]
    if emails:
        out.append(Channel(EMAIL, tuple(emails), ALARM_STATES))
    out += [Channel(WEBHOOK, (url,), ESCALATION_STATES) for url in escalate_webhooks]
    if escalate_emails:
        out.append(Channel(EMAIL, tuple(escalate_emails), ESCALATION_STATES))
    return out


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...)."""
    return min(BACKOFF_MAX, 2.0 ** (attempt - 1))


def webhook_body(event: dict) -> bytes:
    """The event as on the alerts topic (with its ``id``)."""
    return orjson.dumps(event)


def _one_line(text) -> str:
    return re.sub(r"[\x00-\x1f\x7f]+", " ", str(text))


def device_link(public_url: str, device: str) -> str:
    return f"{public_url.rstrip('/')}/#/device/{quote(device, safe='')}"


def email_message(event: dict, sender: str, recipients: tuple[str, ...], public_url: str = "") -> EmailMessage:
    """A plain-text e-mail of the event. Device names come from the
    dataloggers: control characters never reach a header."""
    kind, state, device = event["kind"], event["state"], _one_line(event["device"])
    subject = f"[humidity] {kind} {state}: {device}"
    if state == "escalated":
        subject = f"[humidity] ESCALATED, not acknowledged: {kind} on {device}"
    lines = [
        f"{kind} alarm {state} on {device}",
        "",
        f"Device:    {device}",
        f"Logger:    {_one_line(event['guid'])}",
        f"Kind:      {kind} ({_KIND_TEXT.get(kind, kind)})",
        f"State:     {state}",
        f"Value:     {event['value']}",
        f"Limit:     {event['limit']}",
        f"Since:     {event['since']}",
        f"Reading:   {event['time']}",
        f"Alarm id:  {event['alarm_id']}",
        f"Event id:  {event['id']}",
    ]
    if state == "escalated":
        lines[2:2] = ["Nobody has acknowledged this alarm; it is sent to the escalation list.", ""]
    elif event.get("after_silence"):
        lines[2:2] = ["The maintenance silence over this alarm has ended, and the alarm is still active.", ""]
    if public_url:
        lines.append(f"View:      {device_link(public_url, event['device'])}")
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Message-ID"] = f"<{event['id']}@humidity>"
    message.set_content("\n".join(lines) + "\n")
    return message
