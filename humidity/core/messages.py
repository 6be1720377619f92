"""The internal messages between the flows, declared once (pure): what the
ingest sends on to the second hop, and how each receiver reads it.

The formats on the wire are JSON objects with one-letter keys
(:mod:`humidity.declare.topics`), each stamped with its format version
(:mod:`humidity.core.formats`):

* a *sightings bundle*, key ``s``: ``{"p": input partition, "round", "o":
  input offset, "s": [[guid, device], ...]}``, the first sightings of one
  batch of input partition ``p`` for one sightings partition;
* a *readings bundle*, key ``r``: the same with ``"r": [[guid, device,
  event time, humidity], ...]`` for one alarm partition;
* an *end mark*, key ``e``: ``{"p", "end": round, "o"}``, input partition
  ``p`` closed that round at input offset ``o``;
* a *tick*, key ``t``: ``{"tick": wall time}``, the OFFLINE check's clock;
* a *history bundle*, key ``r``: ``{"p", "o", "r": [[guid, device, event
  time, humidity, input offset], ...]}`` for one history partition.

The partials each partition shares are :mod:`humidity.core.partials`'.
"""

from __future__ import annotations

import orjson

from humidity.core import formats

SIGHTINGS, READINGS, END, TICK = b"s", b"r", b"e", b"t"


def sightings_bundle(source: dict, pairs: list) -> bytes:
    """``source``: ``{"p", "round", "o"}`` of the batch."""
    return formats.dumps({**source, "s": pairs})


def readings_bundle(source: dict, rows: list) -> bytes:
    return formats.dumps({**source, "r": rows})


def end_mark(partition: int, round_number: int, offset: int) -> bytes:
    return formats.dumps({"p": partition, "end": round_number, "o": offset})


def tick(wall: float) -> bytes:
    return formats.dumps({"tick": wall})


def history_bundle(partition: int, offset: int, rows: list) -> bytes:
    return formats.dumps({"p": partition, "o": offset, "r": rows})


def is_end(message: dict) -> bool:
    return "end" in message


def is_tick(message: dict) -> bool:
    return "tick" in message


def decode(value: bytes | None) -> dict | None:
    """A message as a dict, or None if it is not one (a malformed record is
    skipped, not fatal); one of a newer format raises :class:`formats.NewerFormat`."""
    if not value:
        return None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return formats.known(doc, "a second-hop topic") if isinstance(doc, dict) else None


def sightings_message(key: bytes | None, value: bytes | None) -> dict | None:
    """A sightings bundle or an end mark; a sighting of the earliest format
    (key guid, value device: not JSON, so written before format versions)
    as a bundle of one."""
    if value is None:
        return None
    doc = decode(value)
    if doc is not None:
        return doc
    if key is None:
        return None
    return {"s": [[key.decode("utf-8", "replace"), value.decode("utf-8", "replace")]]}


def history_rows(value: bytes | None) -> tuple[int, list] | None:
    """``(input partition, rows)`` of a history bundle, or None."""
    doc = decode(value)
    if doc is None or "r" not in doc:
        return None
    return int(doc["p"]), doc["r"]
