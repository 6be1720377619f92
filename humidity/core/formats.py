"""The format version of what the service stores and sends itself (pure).

Every table value and every message on an internal topic (bundles, end
marks, ticks, partials, acknowledgement commands, audit intake, the cut
header of a summary) is a JSON object whose first member is its format
version: ``{"v":1,...}``. A reader meets three kinds of value:

* version 1, what this code writes;
* no version: written before formats carried one (version 0). The readers
  that still accept older shapes take them only from such values
  (``version_of(doc) == 0``), never from a versioned one;
* a higher version: written by a newer release. Reading on would count
  with rules that are not its own, so the worker stops with one line
  (:class:`NewerFormat`); roll the upgrade forward instead.

Published output (summaries, alerts, the audit trail, dead letters) keeps
its documented shape, without this member.
"""

from __future__ import annotations

from typing import Any

import orjson

VERSION = 1

_STAMP = b'{"v":%d,' % VERSION
_STAMP_ONLY = b'{"v":%d}' % VERSION


class NewerFormat(ValueError):
    """A value written in a format version this code does not know."""

    def __init__(self, version: Any, where: str) -> None:
        super().__init__(f"{where} holds a value of format version {version!r}, newer than this "
                         f"worker's ({VERSION}): it was written by a newer release; upgrade this worker")


def dumps(doc: dict) -> bytes:
    """``doc`` as JSON, with the format version as its first member (an
    epoch stays the last one, where :func:`humidity.core.ownership.epoch_of`
    reads it). A value read, changed and written again keeps its place for it."""
    if "v" in doc:
        return orjson.dumps(doc if doc["v"] == VERSION else {**doc, "v": VERSION})
    raw = orjson.dumps(doc)
    return _STAMP + raw[1:] if len(raw) > 2 else _STAMP_ONLY


def body(doc: dict) -> dict:
    """``doc`` without its format version: what it passes on to published output."""
    return {k: v for k, v in doc.items() if k != "v"}


def version_of(doc: dict) -> int:
    """A decoded value's format version (0: written before versions)."""
    return doc.get("v", 0)


def known(doc: Any, where: str) -> Any:
    """``doc`` itself, if it is not a value of a newer format."""
    if isinstance(doc, dict) and doc.get("v", 0) > VERSION:
        raise NewerFormat(doc["v"], where)
    return doc


def loads(raw: bytes | None, where: str) -> Any:
    """A stored value or internal message, decoded (None stays None)."""
    return None if raw is None else known(orjson.loads(raw), where)


def check_raw(raw: bytes | None, where: str) -> None:
    """Refuse an encoded value of a newer format, reading as little of it as
    it takes: a value of this version starts with its stamp."""
    if raw is None or raw.startswith(_STAMP) or not raw.startswith(b'{"v":'):
        return
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return
    known(doc, where)
