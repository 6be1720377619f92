"""Service configuration, parsed from an environment mapping.

Pure: ``from_environ`` takes the mapping as an argument. ``app.py`` is the one
place that passes ``os.environ`` in; nothing else reads the environment.
Every setting is optional; a bad value raises :class:`ConfigError` whose
message names the variable, so the worker can stop with one line.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

#: The alarm limits shipped with the project (see the file's comments).
DEFAULT_ALARMS_FILE = Path(__file__).resolve().parent / "alarms.toml"

_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,200}$")


class ConfigError(ValueError):
    """A setting has a value the service cannot use."""


@dataclass(frozen=True)
class Settings:
    broker: str = "kafka://127.0.0.1:9092"
    app_id: str = "humidity"
    input_topic: str = "humidityanalytics"
    results_topic: str = "humidity-summaries"
    invalid_topic: str = "humidityanalytics-invalid"
    partitions: int = 4
    interval: float = 3.0
    data_dir: Path = Path("./data")
    web_port: int = 6066
    web_bind: str = "127.0.0.1"
    # Secured clusters (see README "Secured Kafka")
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ca_file: str = ""
    # Alarms
    alerts_topic: str = "humidity-alerts"
    alarms_file: Path = DEFAULT_ALARMS_FILE
    faust_metrics: bool = True  # Faust's own per-event Prometheus metrics at /metrics
    log_format: str = "blocks"  # "blocks": the summary as four titled blocks; "line": one line per event

    @property
    def sightings_topic(self) -> str:
        """Internal: first sighting of a (device, sensor) pair, keyed by guid."""
        return f"{self.app_id}-sensor-sightings"

    @property
    def alarm_readings_topic(self) -> str:
        """Internal: valid readings bundled per alarm partition (by guid)."""
        return f"{self.app_id}-alarm-readings"

    @property
    def partials_topic(self) -> str:
        """Internal: per-partition totals that workers share (compacted)."""
        return f"{self.app_id}-partials"

    @property
    def bootstrap_servers(self) -> list[str]:
        """``host:port`` strings for plain Kafka clients (aiokafka)."""
        return [_host_port(url) for url in self.broker.split(",")]


# name of the environment variable -> (field, parser)
VARIABLES: dict[str, str] = {
    "HUMIDITY_BROKER": "broker",
    "HUMIDITY_APP_ID": "app_id",
    "HUMIDITY_INPUT_TOPIC": "input_topic",
    "HUMIDITY_RESULTS_TOPIC": "results_topic",
    "HUMIDITY_INVALID_TOPIC": "invalid_topic",
    "HUMIDITY_PARTITIONS": "partitions",
    "HUMIDITY_INTERVAL": "interval",
    "HUMIDITY_DATA_DIR": "data_dir",
    "HUMIDITY_WEB_PORT": "web_port",
    "HUMIDITY_WEB_BIND": "web_bind",
    "HUMIDITY_KAFKA_SECURITY_PROTOCOL": "security_protocol",
    "HUMIDITY_KAFKA_SASL_MECHANISM": "sasl_mechanism",
    "HUMIDITY_KAFKA_SASL_USERNAME": "sasl_username",
    "HUMIDITY_KAFKA_SASL_PASSWORD": "sasl_password",
    "HUMIDITY_KAFKA_CA_FILE": "ca_file",
    "HUMIDITY_ALERTS_TOPIC": "alerts_topic",
    "HUMIDITY_ALARMS_FILE": "alarms_file",
    "HUMIDITY_LOG_FORMAT": "log_format",
    "HUMIDITY_FAUST_METRICS": "faust_metrics",
}

#: Variables whose value must never be echoed (in errors or logs).
SECRET_VARIABLES = {"HUMIDITY_KAFKA_SASL_PASSWORD"}
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


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


PARSERS: dict[str, Callable[[str], object]] = {
    "broker": _broker,
    "app_id": _name,
    "input_topic": _name,
    "results_topic": _name,
    "invalid_topic": _name,
    "partitions": _int_between(1, 1000),
    "interval": _interval,
    "data_dir": _path,
    "web_port": _int_between(1, 65535),
    "web_bind": _bind,
    "security_protocol": _one_of(PROTOCOLS),
    "sasl_mechanism": _one_of(MECHANISMS),
    "sasl_username": str,
    "sasl_password": str,
    "ca_file": _readable_file,
    "alerts_topic": _name,
    "alarms_file": lambda text: Path(_readable_file(text)),
    "log_format": lambda text: _one_of(("BLOCKS", "LINE"))(text).lower(),
    "faust_metrics": lambda text: _one_of(("ON", "OFF"))(text) == "ON",
}


def from_environ(environ: Mapping[str, str]) -> Settings:
    """Build :class:`Settings` from ``HUMIDITY_*`` variables; unset means default."""
    values: dict[str, object] = {}
    for variable, field in VARIABLES.items():
        raw = environ.get(variable)
        if raw is None or raw == "":
            continue
        try:
            values[field] = PARSERS[field](raw)
        except ValueError as exc:
            detail = str(exc) if not str(exc).startswith(("invalid literal", "could not convert")) else "not a number"
            shown = variable if variable in SECRET_VARIABLES else f"{variable}={raw!r}"
            raise ConfigError(f"{shown} is not valid: {detail}") from None
    password_file = environ.get("HUMIDITY_KAFKA_SASL_PASSWORD_FILE")
    if password_file and "sasl_password" not in values:
        try:
            values["sasl_password"] = Path(password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"HUMIDITY_KAFKA_SASL_PASSWORD_FILE={password_file!r} cannot be read: "
                              f"{getattr(exc, 'strerror', None) or type(exc).__name__}") from None
    settings = Settings(**values)  # type: ignore[arg-type]
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
    topics = [settings.input_topic, settings.results_topic, settings.invalid_topic, settings.alerts_topic]
    if len(set(topics)) != len(topics):
        raise ConfigError("HUMIDITY_INPUT_TOPIC, HUMIDITY_RESULTS_TOPIC, HUMIDITY_INVALID_TOPIC and "
                          "HUMIDITY_ALERTS_TOPIC must all differ")
    return settings
