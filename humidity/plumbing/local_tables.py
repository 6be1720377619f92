"""Whether a worker's local copies of its tables can be trusted at start (plumbing).

A batch's table writes go into RocksDB when the batch ends and reach the
changelog after (:mod:`humidity.plumbing.changelogs`). A worker that dies in
between (kill -9, an out-of-memory kill, a lost host) leaves in RocksDB
writes the changelog never got. Restored over later, from the changelog
records other owners wrote meanwhile, such a store mixes two histories: a
sensor-totals device entry written two batches past the header the restore
brings back counts its sensors twice. So a worker trusts its tables directory
only when the worker before it on that directory stopped cleanly, with every
changelog write acknowledged, and left a mark saying so; without the mark the
directory is emptied and every partition is restored from its changelog, as
Kafka Streams does after an unclean shutdown under exactly-once.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

#: The file a clean stop leaves in the tables directory.
CLEAN_STOP_MARK = "stopped-cleanly"


def trust_or_discard(tabledir: Path) -> bool:
    """At start: whether the tables in ``tabledir`` were left by a clean
    stop; if not, empty the directory. The mark goes either way, so a worker
    that dies from now on leaves none."""
    mark = tabledir / CLEAN_STOP_MARK
    if mark.exists():
        mark.unlink()
        return True
    if not tabledir.exists() or not any(tabledir.iterdir()):
        return True
    shutil.rmtree(tabledir)
    tabledir.mkdir(parents=True)
    log.warning("Local tables in %s discarded: the last worker on this directory did not stop cleanly "
                "(some of its writes may never have reached the changelogs); restoring from the changelogs",
                tabledir)
    return False


def mark_clean_stop(tabledir: Path) -> None:
    """At the end of a stop whose every changelog write was acknowledged."""
    if tabledir.exists():
        (tabledir / CLEAN_STOP_MARK).touch()
