"""The pure domain: parsing, counting, rounds, windows, summaries, alarm rules.

`make` compiles every module here with mypyc (scripts/compile_core.py) from
these same sources. The compiled modules are imported only while
``compiled.json`` holds the SHA-256 of every source as it is now; a source
edited since the build, a failed build, or ``HUMIDITY_CORE=interpreted`` runs
the whole package interpreted, so a stale build never runs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from importlib.machinery import EXTENSION_SUFFIXES, SOURCE_SUFFIXES, FileFinder, SourceFileLoader
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAMP = HERE / "compiled.json"
GROUP = "humidity_core"  # mypyc's shared library is the top-level module humidity_core__mypyc
CHOICE = "HUMIDITY_CORE"  # "interpreted": run the sources even where the build is current


def compiled_sources() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if p.name != "__init__.py")


def source_hashes(paths: list[Path]) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _build_is_current() -> bool:
    try:
        stamp = json.loads(STAMP.read_text())
    except (OSError, ValueError):
        return False
    return stamp.get("sources") == source_hashes(compiled_sources())


def _run_interpreted() -> None:
    """Import this package's modules from their sources, even where a build is."""
    for entry in __path__:
        sys.path_importer_cache[entry] = FileFinder(entry, (SourceFileLoader, SOURCE_SUFFIXES))


_ASKED_INTERPRETED = os.environ.get(CHOICE) == "interpreted"
COMPILED = not _ASKED_INTERPRETED and _build_is_current()
if not COMPILED:
    if not _ASKED_INTERPRETED and any(HERE.glob(f"*{suffix}") for suffix in EXTENSION_SUFFIXES):
        logging.getLogger(__name__).warning(
            "humidity.core: the compiled build does not match the sources; running interpreted (make compile)")
    _run_interpreted()
