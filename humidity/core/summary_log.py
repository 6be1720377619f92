"""A summary as the log shows it: four titled blocks, or one line (pure)."""

from __future__ import annotations

from humidity.core.alarms import ALARMS_LISTED

#: Active alarms listed in the log per summary; a fleet-wide outage (every
#: logger OFFLINE) would otherwise put thousands of lines in the log each interval.
LOGGED_ALARMS_MAX = 20
#: Devices listed in the log per block: with tens of thousands of devices a
#: full list every interval would be megabytes of log nobody reads (the
#: results topic and the API have every one).
LOGGED_DEVICES_MAX = 50


def _listed(rows: list, line, limit: int, where: str, total: int | None = None) -> list[str]:
    """``line(row)`` for the first ``limit`` rows, and how many more there
    are (of ``total``, where ``rows`` are only the first of them)."""
    total = len(rows) if total is None else total
    shown = [line(row) for row in rows[:limit]]
    if total > len(shown):
        shown.append(f"... and {total - len(shown):,} more (the newest {ALARMS_LISTED:,}: {where})"
                     if total > len(rows) else f"... and {total - len(shown):,} more (all of them: {where})")
    return shown


def render_text(summary: dict) -> str:
    """The four titled blocks of the old job's console output, each since the
    start and for this interval, for the log (at most LOGGED_DEVICES_MAX
    devices and LOGGED_ALARMS_MAX alarms each)."""
    rule = "-" * 43
    interval = summary["interval"]
    since = f"since {interval['since']}" if interval["since"] else "since the start"

    def listed(rows, line, sort):
        return _listed(rows, line, LOGGED_DEVICES_MAX, f"GET /api/summary/devices?sort={sort}")

    blocks = [
        ("Average humidity by device (highest first), since the start",
         listed(summary["average_humidity_by_device"], lambda row: f"({row['device']!r}, {row['average']})",
                "average")),
        (f"Average humidity by device (highest first), this interval ({since})",
         listed(interval["average_humidity_by_device"],
                lambda row: f"({row['device']!r}, {row['average']}, {row['count']} readings)",
                "interval_average")),
        ("Total messages processed",
         [f"Total number of messages: {summary['total_messages']} since the start, "
          f"{interval['messages']} this interval",
          f"Invalid messages (dead-lettered): {summary['invalid_messages']} since the start, "
          f"{interval['invalid_messages']} this interval"]),
        ("Number of sensors by device (devices ascending), since the start",
         listed(summary["sensors_by_device"], lambda row: f"({row['device']!r}, {row['sensors']})",
                "device")),
        ("Total number of sensors",
         [f"Total number of sensors: {summary['total_sensors']} since the start, "
          f"{interval['new_sensors']} new this interval"]),
    ]
    alarms = summary.get("active_alarms", [])
    count = summary.get("active_alarm_count", len(alarms))
    rows = _listed(alarms, lambda a: f"{a['kind']} {a['device']!r} {a['guid']!r} value={a['value']} "
                                     f"limit={a['limit']} since {a['since']}", LOGGED_ALARMS_MAX, "GET /api/alarms",
                   count)
    blocks.insert(0, (f"Active alarms ({count}, newest first)", rows))
    cut = ", ".join(f"{p}: {o}" for p, o in summary["as_of"].items())
    lines = [f"Readings at or below offsets {{{cut}}} of the input partitions"]
    for title, rows in blocks:
        lines += [rule, f"Time: {summary['time']}  {title}", rule]
        lines += rows or ["(none yet)"]
        lines.append("")
    return "\n".join(lines)


def as_of_text(as_of: dict) -> str:
    """A cut's ``as_of`` as the log shows it: ``0:6223,1:6278,...``."""
    return ",".join(f"{p}:{o}" for p, o in as_of.items())


def render_line(summary: dict) -> str:
    """The summary in one log line (HUMIDITY_LOG_FORMAT=line)."""
    alarms = summary.get("active_alarms", [])
    interval = summary["interval"]
    as_of = as_of_text(summary["as_of"])
    return (f"time={summary['time']} messages={summary['total_messages']} invalid={summary['invalid_messages']} "
            f"sensors={summary['total_sensors']} devices={len(summary['average_humidity_by_device'])} "
            f"active_alarms={summary.get('active_alarm_count', len(alarms))} interval_messages={interval['messages']} "
            f"interval_invalid={interval['invalid_messages']} new_sensors={interval['new_sensors']} as_of={as_of}")
