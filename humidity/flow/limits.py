"""The alarms file in force, read again when it changes (a flow).

Every worker looks at HUMIDITY_ALARMS_FILE every few seconds, as the page's
access looks at the users file. A valid new file takes effect for the
readings that follow (:mod:`humidity.core.alarms`: nothing is raised or
cleared for readings judged before); the change is logged in one line,
counted in ``humidity_limits_reload_total{outcome="applied"}`` and reported
to the audit trail (``limits-changed``, with the file's SHA-256). An invalid
file is refused in one line and counted (``outcome="refused"``): the limits
before it stay in force. A ``[devices."X"]`` section for a device the
latest summary does not list is allowed, and logged once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from humidity.application import HumidityApp
from humidity.core import audit, formats
from humidity.core.alarm_limits import AlarmConfig, AlarmConfigError, changed_limits, load_config, section
from humidity.core.readings import now_iso
from humidity.declare.metrics import Metrics
from humidity.declare.topics import Topics

log = logging.getLogger(__name__)

#: Seconds between looks at the alarms file.
RELOAD_CHECK_EVERY = 2.0


def file_stamp(path: Path) -> tuple:
    """What tells a changed file: modification time and size (or why it cannot be read)."""
    try:
        info = os.stat(path)
        return info.st_mtime_ns, info.st_size
    except OSError as exc:
        return "unreadable", exc.strerror


class AlarmLimits:
    def __init__(self, app: HumidityApp, config: AlarmConfig, topics: Topics, metrics: Metrics,
                 reported: Callable[[], Iterable[str] | None]) -> None:
        self.path: Path = app.settings.alarms_file
        self.config = config
        self.topics, self.metrics, self.reported = topics, metrics, reported
        self.stamp = file_stamp(self.path)
        self.unreported_logged: set[str] = set()
        app.timer(RELOAD_CHECK_EVERY)(self.check)

    async def check(self) -> None:
        self.reload()
        self.log_unreported()

    def reload(self) -> bool:
        """Read the file again if it changed; True if new limits are in force."""
        stamp = file_stamp(self.path)
        if stamp == self.stamp:
            return False
        self.stamp = stamp
        try:
            new = load_config(self.path)
        except AlarmConfigError as exc:
            log.error("%s; the limits read before stay in force (sha256 %s)", exc, self.config.sha256)
            self.metrics.limits_reloads.labels(outcome="refused").inc()
            return False
        if new.sha256 == self.config.sha256:
            return False
        changes = changed_limits(self.config, new)
        log.info("Alarms file %s read again (sha256 %s): %s", self.path, new.sha256,
                 "; ".join(changes) or "no limit changed")
        entry = audit.limits_changed(new.sha256, self.config.sha256, changes, now_iso(), str(stamp[0]))
        self.config = new
        self.metrics.limits_reloads.labels(outcome="applied").inc()
        self.topics.audit_intake.send_soon(key=entry["id"].encode(), value=formats.dumps(entry), partition=0)
        return True

    def log_unreported(self) -> None:
        """Log, once each, the device sections naming a device the latest summary does not list."""
        devices = self.config.devices.keys() - self.unreported_logged
        if not devices:
            return
        reported = self.reported()
        if reported is None:
            return
        for name in sorted(devices - set(reported)):
            log.info("Alarms file: [%s] names a device that has not reported; its limits apply once it does",
                     section(name))
        self.unreported_logged |= devices
