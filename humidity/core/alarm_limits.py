"""The alarms file: the limits per device type, the overrides per device and
the settings of the rules, parsed and checked (pure; a bad file is refused
with one line saying where)."""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

#: What a ``[devices."X"]`` section may set; each overrides the device's type.
DEVICE_KEYS = ("low", "high", "max_change_per_hour", "activation_delay_seconds")
#: Where a device's limits come from.
FROM_DEVICE, FROM_TYPE = "device", "type"


class AlarmConfigError(ValueError):
    """The alarms file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Limits:
    low: float
    high: float
    max_change_per_hour: float | None = None
    activation_delay: float | None = None  # seconds; None: the file's default
    source: str = FROM_TYPE


@dataclass(frozen=True)
class AlarmConfig:
    types: dict[str, Limits]
    default: Limits
    activation_delay: float = 60.0
    hysteresis: float = 2.0
    offline_timeout: float = 300.0
    rate_min_span: float = 900.0
    rate_bucket: float = 60.0  # readings are summed per minute for the slope
    devices: dict[str, Limits] = field(default_factory=dict)  # by exact device name
    sha256: str = ""  # of the file's bytes

    def type_of(self, device: str) -> str:
        """Device type from the name's prefix: ``MRI 12`` -> MRI, ``PETCT10`` -> PETCT."""
        return type_of(self.types, device)

    def limits_for(self, device: str) -> Limits:
        """The device's own section, else its type's, else the default."""
        own = self.devices.get(device)
        return own if own is not None else self.types.get(self.type_of(device), self.default)

    def delay_for(self, limits: Limits) -> float:
        """Seconds a breach lasts before HIGH/LOW is raised under ``limits``."""
        return self.activation_delay if limits.activation_delay is None else limits.activation_delay

    def shown(self, device: str) -> dict:
        """The limits in force for a device, as the API and the page show them."""
        limits = self.limits_for(device)
        return {"low": limits.low, "high": limits.high, "max_change_per_hour": limits.max_change_per_hour,
                "activation_delay_seconds": self.delay_for(limits), "source": limits.source}


def type_of(types: dict[str, Limits], device: str) -> str:
    letters = re.sub(r"[^A-Z0-9]", "", device.upper())
    best = ""
    for name in types:
        if letters.startswith(name) and len(name) > len(best):
            best = name
    return best or "default"


def _number(table: dict, key: str, where: str, default: float | None = None, positive: bool = False) -> float | None:
    value = table.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AlarmConfigError(f"{where}.{key} must be a number")
    if positive and value <= 0:
        raise AlarmConfigError(f"{where}.{key} must be positive")
    return float(value)


def parse_config(text: str, source: str = "alarms file") -> AlarmConfig:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise AlarmConfigError(f"{source} is not valid TOML: {' '.join(str(exc).split())}") from None
    defaults = doc.get("defaults", {})
    types_doc = doc.get("types", {})
    devices_doc = doc.get("devices", {})
    if not all(isinstance(part, dict) for part in (defaults, types_doc, devices_doc)):
        raise AlarmConfigError(f"{source}: [defaults], [types.*] and [devices.*] must be tables")
    types = _types(types_doc, source)
    default = types.pop("default", Limits(30.0, 60.0))
    return AlarmConfig(
        types=types,
        default=default,
        activation_delay=_setting(defaults, "activation_delay_seconds", 60.0),
        hysteresis=_setting(defaults, "hysteresis_percent", 2.0),
        offline_timeout=_setting(defaults, "offline_timeout_seconds", 300.0, positive=True),
        rate_min_span=_setting(defaults, "rate_min_span_seconds", 900.0, positive=True),
        devices=_devices(devices_doc, types, default, source),
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def _types(types_doc: dict, source: str) -> dict[str, Limits]:
    types: dict[str, Limits] = {}
    for name, table in types_doc.items():
        where = f"types.{name}"
        if not isinstance(table, dict):
            raise AlarmConfigError(f"{source}: [{where}] must be a table")
        low = _number(table, "low", where)
        high = _number(table, "high", where)
        if low is None or high is None:
            raise AlarmConfigError(f"{source}: [{where}] needs low and high")
        if not 0 <= low < high <= 100:
            raise AlarmConfigError(f"{source}: [{where}] needs 0 <= low < high <= 100")
        rate = _number(table, "max_change_per_hour", where, positive=True)
        types[re.sub(r"[^A-Z0-9]", "", name.upper()) if name != "default" else "default"] = Limits(low, high, rate)
    return types


def section(device: str) -> str:
    """A device's section as the file spells it, on one line whatever the name holds."""
    return f"devices.{json.dumps(device, ensure_ascii=False)}"


def _devices(devices_doc: dict, types: dict[str, Limits], default: Limits, source: str) -> dict[str, Limits]:
    """Each ``[devices."X"]`` section over the limits of X's type."""
    devices: dict[str, Limits] = {}
    for name, table in devices_doc.items():
        where = section(name)
        if not isinstance(table, dict):
            raise AlarmConfigError(f"{source}: [{where}] must be a table")
        for key in table:
            if key not in DEVICE_KEYS:
                raise AlarmConfigError(f"{source}: [{where}] {key}: unknown key (allowed: {', '.join(DEVICE_KEYS)})")
        base = types.get(type_of(types, name), default)
        try:
            low = _number(table, "low", where, base.low)
            high = _number(table, "high", where, base.high)
            rate = _number(table, "max_change_per_hour", where, base.max_change_per_hour, positive=True)
            delay = _number(table, "activation_delay_seconds", where)
        except AlarmConfigError as exc:
            raise AlarmConfigError(f"{source}: {exc}") from None
        if low is None or high is None or not 0 <= low < high <= 100:
            key = "low" if "low" in table else "high"
            raise AlarmConfigError(f"{source}: [{where}] {key}: needs 0 <= low < high <= 100 (low {low}, high {high})")
        if delay is not None and delay < 0:
            raise AlarmConfigError(f"{source}: [{where}] activation_delay_seconds: must not be negative")
        devices[name] = Limits(low, high, rate, delay, FROM_DEVICE)
    return devices


def _setting(defaults: dict, key: str, default: float, positive: bool = False) -> float:
    value = _number(defaults, key, "defaults", default, positive)
    return default if value is None else value


def load_config(path: Path) -> AlarmConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AlarmConfigError(f"alarms file {str(path)!r} cannot be read: {exc.strerror}") from None
    return parse_config(text, f"alarms file {str(path)!r}")


def _limits_text(limits: Limits | None) -> str:
    if limits is None:
        return "none"
    parts = [f"low {limits.low:g}", f"high {limits.high:g}"]
    if limits.max_change_per_hour is not None:
        parts.append(f"max_change_per_hour {limits.max_change_per_hour:g}")
    if limits.activation_delay is not None:
        parts.append(f"activation_delay_seconds {limits.activation_delay:g}")
    return " ".join(parts)


def changed_limits(old: AlarmConfig, new: AlarmConfig) -> list[str]:
    """What a new alarms file changes, one phrase per section or setting (for the log and the audit trail)."""
    changes = []
    sections = [(f"types.{name}", old.types.get(name), new.types.get(name))
                for name in sorted(old.types.keys() | new.types.keys())]
    sections.append(("types.default", old.default, new.default))
    sections += [(section(name), old.devices.get(name), new.devices.get(name))
                 for name in sorted(old.devices.keys() | new.devices.keys())]
    for where, before, after in sections:
        if before != after:
            changes.append(f"[{where}] {_limits_text(before)} -> {_limits_text(after)}")
    for name in ("activation_delay", "hysteresis", "offline_timeout", "rate_min_span"):
        before_value, after_value = getattr(old, name), getattr(new, name)
        if before_value != after_value:
            changes.append(f"[defaults] {name} {before_value:g} -> {after_value:g}")
    return changes
