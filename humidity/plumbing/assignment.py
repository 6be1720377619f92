"""What this worker owns now (plumbing).

While the group rebalances, or the worker restores its tables, nothing it
owns can progress: timers and checks wait until it is settled again.
"""

from __future__ import annotations


def settled(app) -> bool:
    """Neither rebalancing nor restoring tables."""
    return not app.rebalancing and app.tables.recovery.completed.is_set()


def owned(app, topics: set[str] | frozenset[str]) -> list[tuple[str, int]]:
    """``(topic, partition)`` of ``topics`` this worker owns now: none while it is not settled."""
    if not settled(app):
        return []
    return sorted((tp.topic, tp.partition) for tp in app.assignor.assigned_actives() if tp.topic in topics)


def owned_partitions(app, topic: str) -> list[int]:
    """The partitions of ``topic`` this worker owns now: none while it is not settled."""
    return [partition for _topic, partition in owned(app, {topic})]
