"""Exit 0 once a Kafka broker answers a real request (cluster metadata).

An open port is not enough: a KRaft broker accepts connections before it
can serve metadata (and, in a cluster, before the others have registered).
Used by scripts/kafka.sh; bounded by --timeout.
"""

import argparse
import asyncio
import sys
import time

from aiokafka.admin import AIOKafkaAdminClient


async def answers(bootstrap: str, timeout: float, brokers: int = 1) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await asyncio.wait_for(client.start(), timeout=max(0.5, deadline - time.monotonic()))
            cluster = await asyncio.wait_for(client.describe_cluster(), timeout=3)
            if len(cluster.get("brokers") or []) >= brokers:
                return True
        except Exception:  # noqa: BLE001 - not answering yet, whatever the reason
            pass
        finally:
            try:
                await client.close()
            except Exception:  # noqa: BLE001 - closing a client that never connected
                pass
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--brokers", type=int, default=1, help="wait until the cluster has this many brokers")
    args = parser.parse_args()
    return 0 if asyncio.run(answers(args.bootstrap, args.timeout, args.brokers)) else 1


if __name__ == "__main__":
    sys.exit(main())
