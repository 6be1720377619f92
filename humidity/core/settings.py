"""Service configuration: one row per setting, parsed from an environment mapping.

Pure: :func:`from_environ` takes the mapping as an argument; ``app.py`` is
the one place that passes ``os.environ`` in. Each field of :class:`Settings`
is declared with :func:`setting`: its environment variable, default, parser
and documentation, in one row; the README's configuration table is checked
against these rows (``tests/test_settings.py``). Every setting is optional; a
bad value raises :class:`ConfigError` whose message names the variable, so
the worker can stop with one line.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

#: The alarm limits shipped with the project (see the file's comments).
DEFAULT_ALARMS_FILE = Path(__file__).resolve().parent / "alarms.toml"

_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


class ConfigError(ValueError):
    """A setting has a value the service cannot use."""


# -- parsers: text -> value, or ValueError with a short reason ------------------

def _host_port(url: str) -> str:
    url = url.strip()
    if "://" not in url:
        url = "kafka://" + url
    parts = urlsplit(url)
    if parts.scheme != "kafka" or not parts.hostname:
        raise ValueError(f"not a Kafka address: {url!r}")
    port = parts.port or 9092
    host = parts.hostname
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _broker(text: str) -> str:
    urls = [u.strip() for u in text.split(",") if u.strip()]
    if not urls:
        raise ValueError("empty")
    for url in urls:
        _host_port(url)  # validates
    return ",".join(u if "://" in u else "kafka://" + u for u in urls)


def _name(text: str) -> str:
    if not _TOPIC_RE.match(text) or text in {".", ".."}:
        raise ValueError("use 1 to 200 of the characters A-Z a-z 0-9 . _ -")
    return text


def _int_between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text.strip())
        if not low <= value <= high:
            raise ValueError(f"must be from {low} to {high}")
        return value

    return parse


def _interval(text: str) -> float:
    value = float(text.strip())
    if not math.isfinite(value) or not 0.1 <= value <= 3600:
        raise ValueError("must be a number of seconds from 0.1 to 3600")
    return value


def _stall(text: str) -> float:
    value = float(text.strip())
    if not math.isfinite(value) or not 5 <= value <= 86400:
        raise ValueError("must be a number of seconds from 5 to 86400")
    return value


def _days(text: str) -> float:
    value = float(text.strip())
    if not math.isfinite(value) or not 0 < value <= 36600:
        raise ValueError("must be a number of days above 0 (fractions allowed) up to 36600")
    return value


def _path(text: str) -> Path:
    if not text.strip():
        raise ValueError("empty")
    return Path(text)


def _bind(text: str) -> str:
    if not text.strip() or any(c.isspace() for c in text):
        raise ValueError("must be a host name or address")
    return text


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().upper()
        if value not in choices:
            raise ValueError("use one of " + ", ".join(choices))
        return value

    return parse


def _readable_file(text: str) -> str:
    path = Path(text)
    if not path.is_file():
        raise ValueError("no such file")
    try:
        path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot be read ({exc.strerror})") from None
    return text


def _on_off(text: str) -> bool:
    return _one_of(("ON", "OFF"))(text) == "ON"


def _log_format(text: str) -> str:
    return _one_of(("BLOCKS", "LINE"))(text).lower()


def _urls(text: str) -> tuple[str, ...]:
    urls = tuple(u.strip() for u in text.split(",") if u.strip())
    for url in urls:
        _http_url(url)
    return urls


def _http_url(text: str) -> str:
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be http:// or https:// URLs")
    return text.strip()


_EMAIL_RE = re.compile(r"^[^@\s,<>\"]+@[^@\s,<>\"]+$")


def _emails(text: str) -> tuple[str, ...]:
    addresses = tuple(a.strip() for a in text.split(",") if a.strip())
    for address in addresses:
        if not _EMAIL_RE.match(address):
            raise ValueError(f"{address!r} is not an e-mail address")
    return addresses


def _email(text: str) -> str:
    addresses = _emails(text)
    if len(addresses) != 1:
        raise ValueError("must be one e-mail address")
    return addresses[0]


def _seconds(low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text.strip())
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(f"must be a number of seconds from {low:g} to {high:g}")
        return value

    return parse


def setting(variable: str, default: Any, parse: Callable[[str], Any], doc: str, *, shown: str = "",
            secret: bool = False) -> Any:
    """One setting: its environment variable, default, parser and meaning.

    ``shown``: the default as the README shows it, where that is not the value
    itself. ``secret``: the value never appears in errors, logs or ``repr``."""
    return dataclasses.field(default=default, repr=not secret, metadata={
        "variable": variable, "parse": parse, "doc": doc, "shown": shown or str(default), "secret": secret})


@dataclass(frozen=True)
class Settings:
    broker: str = setting("HUMIDITY_BROKER", "kafka://127.0.0.1:9092", _broker,
                          "Kafka bootstrap servers (comma-separated for several)")
    app_id: str = setting("HUMIDITY_APP_ID", "humidity", _name,
                          "Faust app id (consumer group, changelog and internal topic prefix)")
    input_topic: str = setting("HUMIDITY_INPUT_TOPIC", "humidityanalytics", _name, "the dataloggers' topic")
    results_topic: str = setting("HUMIDITY_RESULTS_TOPIC", "humidity-summaries", _name,
                                 "where summaries are published")
    invalid_topic: str = setting("HUMIDITY_INVALID_TOPIC", "humidityanalytics-invalid", _name, "dead letters")
    alerts_topic: str = setting("HUMIDITY_ALERTS_TOPIC", "humidity-alerts", _name, "alarm raises and clears")
    partitions: int = setting("HUMIDITY_PARTITIONS", 4, _int_between(1, 1000),
                              "partitions of the input topic and of every topic/table the app creates (1 to 1000)")
    replication_factor: int = setting("HUMIDITY_REPLICATION_FACTOR", 1, _int_between(1, 100),
                                      "replicas of every topic the service creates (3 on a production cluster); "
                                      "`min.insync.replicas` is set to min(2, factor)")
    interval: float = setting("HUMIDITY_INTERVAL", 3.0, _interval, "seconds between summaries (0.1 to 3600)")
    stall_seconds: float = setting("HUMIDITY_STALL_SECONDS", 60.0, _stall,
                                   "`/health` answers 503 when a partition this worker consumes has had records "
                                   "waiting and no progress for this long, and the page says how old the counts are "
                                   "when the summary has been behind the input for this long (5 to 86400)",
                                   shown="60")
    data_dir: Path = setting("HUMIDITY_DATA_DIR", Path("./data"), _path, "RocksDB data directory of this worker",
                             shown="./data")
    web_port: int = setting("HUMIDITY_WEB_PORT", 6066, _int_between(1, 65535), "Faust web server port")
    web_bind: str = setting("HUMIDITY_WEB_BIND", "127.0.0.1", _bind, "Faust web server bind address")
    alarms_file: Path = setting("HUMIDITY_ALARMS_FILE", DEFAULT_ALARMS_FILE, lambda text: Path(_readable_file(text)),
                                "alarm limits per device type and per device (TOML), read again when it changes",
                                shown="humidity/core/alarms.toml")
    log_format: str = setting("HUMIDITY_LOG_FORMAT", "blocks", _log_format,
                              "`blocks`: each summary in the log as four titled blocks (like the old job); "
                              "`line`: one line per event (used in containers)")
    faust_metrics: bool = setting("HUMIDITY_FAUST_METRICS", True, _on_off,
                                  "`off` leaves Faust's Prometheus monitor out of `/metrics` (more throughput, see "
                                  "Performance; the service's own metrics stay)", shown="on")
    history_minute_days: float = setting("HUMIDITY_HISTORY_MINUTE_DAYS", 2.0, _days,
                                         "days the 1-minute history windows are kept (from wall-clock now)",
                                         shown="2")
    history_hour_days: float = setting("HUMIDITY_HISTORY_HOUR_DAYS", 400.0, _days,
                                       "days the 1-hour history windows are kept; older readings are only counted",
                                       shown="400")
    security_protocol: str = setting("HUMIDITY_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", _one_of(PROTOCOLS),
                                     "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    sasl_mechanism: str = setting("HUMIDITY_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512", _one_of(MECHANISMS),
                                  "SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN (with SASL_*)")
    sasl_username: str = setting("HUMIDITY_KAFKA_SASL_USERNAME", "", str, "required with SASL_*", shown="(none)")
    sasl_password: str = setting("HUMIDITY_KAFKA_SASL_PASSWORD", "", str,
                                 "required with SASL_* (or the next one); never logged or echoed", shown="(none)",
                                 secret=True)
    sasl_password_file: str = setting("HUMIDITY_KAFKA_SASL_PASSWORD_FILE", "", str,
                                      "read the password from this file instead (Docker/Kubernetes secrets)",
                                      shown="(none)")
    audit_topic: str = setting("HUMIDITY_AUDIT_TOPIC", "humidity-audit", _name,
                               "the audit trail: alarms raised, cleared, notified, escalated, acknowledged (one "
                               "partition, kept forever, hash-chained)")
    notify_webhooks: tuple = setting("HUMIDITY_NOTIFY_WEBHOOKS", (), _urls,
                                     "URLs (comma-separated) that get an HTTP POST of each alarm raise and clear",
                                     shown="(none)")
    notify_emails: tuple = setting("HUMIDITY_NOTIFY_EMAILS", (), _emails,
                                   "addresses (comma-separated) that get an e-mail of each alarm raise and clear",
                                   shown="(none)")
    smtp_host: str = setting("HUMIDITY_SMTP_HOST", "", _bind, "mail server for the e-mails", shown="(none)")
    smtp_port: int = setting("HUMIDITY_SMTP_PORT", 25, _int_between(1, 65535), "its port")
    smtp_user: str = setting("HUMIDITY_SMTP_USER", "", str, "log in to it as this user (needs STARTTLS unless "
                             "the server is on this host)", shown="(none)")
    smtp_password: str = setting("HUMIDITY_SMTP_PASSWORD", "", str, "with that user; never logged or echoed",
                                 shown="(none)", secret=True)
    smtp_password_file: str = setting("HUMIDITY_SMTP_PASSWORD_FILE", "", str,
                                      "read the SMTP password from this file instead", shown="(none)")
    smtp_from: str = setting("HUMIDITY_SMTP_FROM", "humidity@localhost", _email, "sender address of the e-mails")
    smtp_starttls: bool = setting("HUMIDITY_SMTP_STARTTLS", False, _on_off,
                                  "`on`: upgrade the connection with STARTTLS (verified against the system CAs) "
                                  "before logging in and sending", shown="off")
    public_url: str = setting("HUMIDITY_PUBLIC_URL", "", _http_url,
                              "the page's address as people reach it: e-mails link to the device's view",
                              shown="(none)")
    escalate_after: float = setting("HUMIDITY_ESCALATE_AFTER", 900.0, _seconds(1, 604800),
                                    "seconds a raised alarm may stay unacknowledged before it is escalated",
                                    shown="900")
    escalate_webhooks: tuple = setting("HUMIDITY_ESCALATE_WEBHOOKS", (), _urls,
                                       "URLs that get an HTTP POST of each escalation", shown="(none)")
    escalate_emails: tuple = setting("HUMIDITY_ESCALATE_EMAILS", (), _emails,
                                     "addresses that get an e-mail of each escalation", shown="(none)")
    users_file: Path | None = setting("HUMIDITY_USERS_FILE", None, _path,
                                      "users who may log in (TOML, written by `faust -A app add-user`); "
                                      "without it the page is read-only", shown="(none)")
    session_secret: str = setting("HUMIDITY_SESSION_SECRET", "", str,
                                  "signs the page's login sessions; give every worker behind one address the same "
                                  "one (32+ random characters), or a login holds only on the worker that made it",
                                  shown="(none)", secret=True)
    ca_file: str = setting("HUMIDITY_KAFKA_CA_FILE", "", _readable_file,
                           "PEM bundle to verify the brokers' TLS certificates (SSL, SASL_SSL)", shown="system CAs")

    @property
    def sightings_topic(self) -> str:
        """Internal: first sighting of a (device, sensor) pair, keyed by guid."""
        return f"{self.app_id}-sensor-sightings"

    @property
    def alarm_readings_topic(self) -> str:
        """Internal: valid readings bundled per alarm partition (by guid)."""
        return f"{self.app_id}-alarm-readings"

    @property
    def history_topic(self) -> str:
        """Internal: valid readings bundled per device partition, for the history."""
        return f"{self.app_id}-history-readings"

    @property
    def partials_topic(self) -> str:
        """Internal: per-partition totals that workers share (compacted)."""
        return f"{self.app_id}-partials"

    @property
    def acks_topic(self) -> str:
        """Internal: acknowledgements and escalations of alarms, keyed by alarm id."""
        return f"{self.app_id}-alarm-acks"

    @property
    def silences_topic(self) -> str:
        """Internal: commands that create and end maintenance silences, keyed by silence id."""
        return f"{self.app_id}-silences"

    @property
    def audit_intake_topic(self) -> str:
        """Internal: what the audit trail is to record, in arrival order (its partition 0)."""
        return f"{self.app_id}-audit-intake"

    @property
    def bootstrap_servers(self) -> list[str]:
        """``host:port`` strings for plain Kafka clients (aiokafka)."""
        return [_host_port(url) for url in self.broker.split(",")]


#: Every setting, in the order of the README's configuration table.
SETTINGS: tuple[dataclasses.Field, ...] = dataclasses.fields(Settings)
#: Environment variable -> field name.
VARIABLES: dict[str, str] = {f.metadata["variable"]: f.name for f in SETTINGS}
SETTINGS_BY_NAME: dict[str, dataclasses.Field] = {f.name: f for f in SETTINGS}


def markdown_table() -> str:
    """The README's configuration table, from the rows above."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| {f.metadata['variable']} | {f.metadata['shown']} | {f.metadata['doc']} |" for f in SETTINGS]
    return "\n".join(lines)


def _secret_from_file(values: dict, name: str) -> None:
    """Read setting ``name`` from the file its ``<name>_file`` setting names,
    unless it was given itself (Docker/Kubernetes secrets)."""
    path = values.get(f"{name}_file")
    if not path or name in values:
        return
    try:
        values[name] = Path(str(path)).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        variable = SETTINGS_BY_NAME[f"{name}_file"].metadata["variable"]
        raise ConfigError(f"{variable}={path!r} cannot be read: "
                          f"{getattr(exc, 'strerror', None) or type(exc).__name__}") from None


def from_environ(environ: Mapping[str, str]) -> Settings:
    """Build :class:`Settings` from ``HUMIDITY_*`` variables; unset means default."""
    values: dict[str, object] = {}
    for f in SETTINGS:
        variable = f.metadata["variable"]
        raw = environ.get(variable)
        if raw is None or raw == "":
            continue
        try:
            values[f.name] = f.metadata["parse"](raw)
        except ValueError as exc:
            detail = str(exc) if not str(exc).startswith(("invalid literal", "could not convert")) else "not a number"
            shown = variable if f.metadata["secret"] else f"{variable}={raw!r}"
            raise ConfigError(f"{shown} is not valid: {detail}") from None
    for secret in ("sasl_password", "smtp_password"):
        _secret_from_file(values, secret)
    settings = Settings(**values)  # type: ignore[arg-type]
    if (settings.notify_emails or settings.escalate_emails) and not settings.smtp_host:
        raise ConfigError("HUMIDITY_NOTIFY_EMAILS / HUMIDITY_ESCALATE_EMAILS need HUMIDITY_SMTP_HOST")
    if settings.smtp_user and not settings.smtp_starttls and settings.smtp_host not in ("localhost", "127.0.0.1",
                                                                                         "::1"):
        raise ConfigError("HUMIDITY_SMTP_USER is set but HUMIDITY_SMTP_STARTTLS is off: the password would cross "
                          "the network in clear; set HUMIDITY_SMTP_STARTTLS=on")
    if settings.security_protocol.startswith("SASL"):
        if not settings.sasl_username:
            raise ConfigError(f"HUMIDITY_KAFKA_SASL_USERNAME is required with "
                              f"HUMIDITY_KAFKA_SECURITY_PROTOCOL={settings.security_protocol}")
        if not settings.sasl_password:
            raise ConfigError(f"HUMIDITY_KAFKA_SASL_PASSWORD (or HUMIDITY_KAFKA_SASL_PASSWORD_FILE) is required with "
                              f"HUMIDITY_KAFKA_SECURITY_PROTOCOL={settings.security_protocol}")
    elif settings.sasl_username or settings.sasl_password:
        raise ConfigError("HUMIDITY_KAFKA_SASL_USERNAME/PASSWORD are set but HUMIDITY_KAFKA_SECURITY_PROTOCOL="
                          f"{settings.security_protocol} does not use them; set SASL_SSL or SASL_PLAINTEXT")
    topics = [settings.input_topic, settings.results_topic, settings.invalid_topic, settings.alerts_topic,
              settings.audit_topic]
    if len(set(topics)) != len(topics):
        raise ConfigError("HUMIDITY_INPUT_TOPIC, HUMIDITY_RESULTS_TOPIC, HUMIDITY_INVALID_TOPIC, "
                          "HUMIDITY_ALERTS_TOPIC and HUMIDITY_AUDIT_TOPIC must all differ")
    return settings
