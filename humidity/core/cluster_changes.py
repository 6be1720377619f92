"""What changed in the Kafka cluster between two looks, as log lines (pure)."""

from __future__ import annotations


def leadership_changes(topic: str, before: dict[int, int], after: dict[int, int],
                       brokers_before: set[int], brokers_after: set[int]) -> list[str]:
    """Log lines for brokers gone or back, and partitions of ``topic`` whose
    leader moved (-1: none)."""
    lines = [f"Kafka: broker {b} is no longer in the cluster" for b in sorted(brokers_before - brokers_after)]
    lines += [f"Kafka: broker {b} is in the cluster again" for b in sorted(brokers_after - brokers_before)
              if brokers_before]
    moves: dict[tuple[int, int], list[int]] = {}
    for partition, leader in sorted(after.items()):
        if partition in before and before[partition] != leader:
            moves.setdefault((before[partition], leader), []).append(partition)
    for (old, new), partitions in moves.items():
        where = f"{topic} partition{'s' if len(partitions) > 1 else ''} {', '.join(map(str, partitions))}"
        lines.append(f"Kafka: the leader of {where} moved from broker {old} to "
                     + ("none (not available)" if new < 0 else f"broker {new}"))
    return lines
