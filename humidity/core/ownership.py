"""Owner epochs: a late write from a worker that lost a partition never wins
over its new owner's (pure).

A worker paused for longer than the session timeout (a long GC, a frozen VM)
is thrown out of the group while it still holds fetched batches; when it
wakes up it may write their results to the changelogs after the new owner has
written newer ones. Kafka keeps the last record per key, so a restore would
take the stale value. Instead, every owner of a partition claims an epoch
higher than any before it, stamps it on every value it writes, and a restore
keeps, per key, the value of the highest epoch (the later record among
equals). Totals that roll back this way stay consistent, because a partition
resumes at its state's offset + 1 when that is below its committed offset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import orjson


def claimed_epoch(stored: int, generation: int) -> int:
    """The epoch of a new owner: above every epoch stored for the partition,
    and at least the consumer group's generation. The coordinator raises the
    generation at every rebalance, so a later owner's epoch is higher even if
    it never saw the earlier owner's writes; the stored epoch keeps epochs
    rising when generations start again from 1 (a group deleted after all its
    workers stayed away longer than the broker keeps its offsets)."""
    return max(stored + 1, generation)


def epoch_of(value: bytes | None) -> int:
    """The epoch stamped on a JSON table value (0: written before epochs existed)."""
    if not value:
        return 0
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return 0
    return int(doc.get("epoch", 0)) if isinstance(doc, dict) else 0


def newest_records(records: Iterable, stored_epoch: Callable[[int, bytes], int],
                   ceilings: dict[int, int] | None = None) -> tuple[list, int]:
    """Of changelog records (each with ``.message.partition/.key/.value``), in
    log order, those a restore should apply: a record whose epoch is below the
    value it would replace (stored, or applied earlier in ``records``) is left
    out. Returns (records to apply, number left out).

    ``ceilings``: per partition, where known, an epoch that no stored value
    exceeds. A record at or above it replaces whatever is stored, so its
    stored epoch is not looked up (a look-up per record was most of a
    restore into an empty data directory). Raised here to the epochs kept.
    """
    ceilings = {} if ceilings is None else ceilings
    winning: dict[tuple[int, bytes], int] = {}
    kept = []
    stale = 0
    for record in records:
        message = record.message
        where = (message.partition, message.key)
        epoch = epoch_of(message.value)
        ceiling = ceilings.get(message.partition)
        if where in winning:
            current = winning[where]
        elif ceiling is not None and epoch >= ceiling:
            current = epoch
        else:
            current = stored_epoch(message.partition, message.key)
        if message.value is not None and epoch < current:
            stale += 1
            continue
        winning[where] = epoch
        kept.append(record)
        if ceiling is not None and epoch > ceiling:
            ceilings[message.partition] = epoch
    return kept, stale
