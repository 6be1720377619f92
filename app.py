"""``faust -A app worker``: the service, configured from the environment.

This is the one module that reads ``os.environ`` (``HUMIDITY_*``, see the
README's configuration table); a bad value stops the process with one line.
Everything else is built by :func:`humidity.service.compose`.
"""

from __future__ import annotations

import os
import sys

from humidity.core.alarm_limits import AlarmConfigError, load_config
from humidity.core.settings import ConfigError, from_environ
from humidity.service import compose

try:
    settings = from_environ(os.environ)
    alarm_config = load_config(settings.alarms_file)
except (ConfigError, AlarmConfigError) as exc:
    sys.exit(f"humidity: configuration error: {exc}")

service = compose(settings, alarm_config)
app = service.app
