"""The alarms file: the limits per device type and the settings of the rules,
parsed and checked (pure; a bad file is refused with one line saying where)."""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path


class AlarmConfigError(ValueError):
    """The alarms file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Limits:
    low: float
    high: float
    max_change_per_hour: float | None = None


@dataclass(frozen=True)
class AlarmConfig:
    types: dict[str, Limits]
    default: Limits
    activation_delay: float = 60.0
    hysteresis: float = 2.0
    offline_timeout: float = 300.0
    rate_min_span: float = 900.0
    rate_bucket: float = 60.0  # readings are summed per minute for the slope

    def type_of(self, device: str) -> str:
        """Device type from the name's prefix: ``MRI 12`` -> MRI, ``PETCT10`` -> PETCT."""
        letters = re.sub(r"[^A-Z0-9]", "", device.upper())
        best = ""
        for name in self.types:
            if letters.startswith(name) and len(name) > len(best):
                best = name
        return best or "default"

    def limits_for(self, device: str) -> Limits:
        return self.types.get(self.type_of(device), self.default)


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
        raise AlarmConfigError(f"{source} is not valid TOML: {exc}") from None
    defaults = doc.get("defaults", {})
    types_doc = doc.get("types", {})
    if not isinstance(defaults, dict) or not isinstance(types_doc, dict):
        raise AlarmConfigError(f"{source}: [defaults] and [types.*] must be tables")
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
    default = types.pop("default", Limits(30.0, 60.0))
    return AlarmConfig(
        types=types,
        default=default,
        activation_delay=_setting(defaults, "activation_delay_seconds", 60.0),
        hysteresis=_setting(defaults, "hysteresis_percent", 2.0),
        offline_timeout=_setting(defaults, "offline_timeout_seconds", 300.0, positive=True),
        rate_min_span=_setting(defaults, "rate_min_span_seconds", 900.0, positive=True),
    )


def _setting(defaults: dict, key: str, default: float, positive: bool = False) -> float:
    value = _number(defaults, key, "defaults", default, positive)
    return default if value is None else value


def load_config(path: Path) -> AlarmConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AlarmConfigError(f"alarms file {str(path)!r} cannot be read: {exc.strerror}") from None
    return parse_config(text, f"alarms file {str(path)!r}")
