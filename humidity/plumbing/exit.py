"""Ending the process at once, with one line and no traceback (plumbing).

Faust turns an exception in a worker into a traceback and carries on or
restarts; where carrying on could commit offsets the tables do not include,
or where the operator must act (a bad topic layout, refused credentials),
the process ends here instead, after the logs are flushed.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

log = logging.getLogger("humidity.plumbing")


def end_process(code: int) -> NoReturn:
    """Flush the logs and standard error, and end the process with ``code``."""
    logging.shutdown()
    sys.stderr.flush()
    os._exit(code)


def stop_worker(reason: str, *, traceback: bool = True) -> NoReturn:
    """Stop the process at once, before anything more is acknowledged or
    committed. ``traceback=False``: one line, where the reason says all there is."""
    log.critical("Stopping the worker: %s", reason, exc_info=traceback and sys.exc_info()[0] is not None)
    end_process(70)
