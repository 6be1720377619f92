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


#: How every big table's values end: their epoch, written last.
_EPOCH_KEY = b'"epoch":'


def epoch_of(value: bytes | None) -> int:
    """The epoch stamped on a JSON table value (0: written before epochs existed)."""
    if not value:
        return 0
    # A restore reads this for every record: where the top-level epoch is the
    # value's last member (``..."epoch":7}``, as the writers here put it), it
    # is read from the tail. A nested or non-integer epoch is no match there.
    at = value.rfind(_EPOCH_KEY)
    if at > 0 and value[-1] == 0x7D and value[at - 1] in b",{":
        digits = value[at + len(_EPOCH_KEY):-1]
        if digits.isdigit():
            return int(digits)
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return 0
    return int(doc.get("epoch", 0)) if isinstance(doc, dict) else 0


def newest_rows(rows: Iterable[tuple[int, bytes, bytes | None]], stored_epoch: Callable[[bytes], int],
                ceiling: int | None = None) -> tuple[list, int, int | None]:
    """Of one changelog partition's records ``(offset, key, value)``, in log
    order, those a restore should apply: a record whose epoch is below the
    value it would replace (stored, or applied earlier in ``rows``) is left
    out. Returns (records to apply, number left out, the ceiling after them).

    ``ceiling``: where known, an epoch that no stored value of the partition
    exceeds. A record at or above it replaces whatever is stored, so its
    stored epoch is not looked up (a look-up per record was most of a
    restore into an empty data directory). Raised to the epochs kept.
    """
    winning: dict[bytes, int] = {}
    kept = []
    stale = 0
    for row in rows:
        _offset, key, value = row
        epoch = epoch_of(value)
        current = winning.get(key)
        if current is None:
            current = epoch if ceiling is not None and epoch >= ceiling else stored_epoch(key)
        if value is not None and epoch < current:
            stale += 1
            continue
        winning[key] = epoch
        kept.append(row)
        if ceiling is not None and epoch > ceiling:
            ceiling = epoch
    return kept, stale, ceiling
