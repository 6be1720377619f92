"""The real app with one fault injected, for tests (never used in production):
``faust -A tests.faulty_app worker``, the fault chosen by ``HUMIDITY_TEST_FAULT``:

* ``drop-batch:<partition>:<offset>[,<partition>:<offset>...]``: the first
  record batch fetched from that partition of the input topic that covers
  the offset never reaches the agent, although the consumer's position has
  moved past it (as when Faust clears its topic queues on resuming after a
  rebalance).
* ``slow-changelog:<seconds>``: every changelog write of the ingest totals
  (a record batch of them, or a single message) reaches the broker only that
  many seconds after it was handed to the producer (a slow or overloaded
  broker), while everything else flows.
* ``forget-read-offsets``: after every seek to the committed offsets, Faust's
  read offsets of the input partitions are forgotten, as when a batch fetched
  before a rebalance is delivered after it (Faust then records no gap and,
  on its own, would never commit past that batch).
* ``pause-input:<file>``: while the file exists, no record of the input
  partitions the worker owns reaches its agent; the worker stays in the
  group, its web server answers and its timers run (a consumer that silently
  stopped, as when Faust leaves a partition out of its active set). It logs
  ``FAULT: input partitions paused`` / ``resumed`` when that takes effect.
* ``max-request-size:<bytes>``: the producer's message size limit is that
  small (the limit a very large fleet would reach).
* ``hold-agent:<agent>:<file>``: while the file exists, agent
  ``count_sensors``, ``evaluate_alarms`` or ``audit_chain`` holds the batch
  it has just taken, before it handles it, logging ``FAULT: <agent> batch
  held`` (an agent that stopped: its consumer fetches on, nothing it
  fetched is committed).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from humidity.flow import audit as audit_flow

FAULT = os.environ.get("HUMIDITY_TEST_FAULT", "")
kind, _, arguments = FAULT.partition(":")

if kind == "hold-agent":  # before the app is built: the flow's agent is bound then
    from humidity.flow.alarms import AlarmsFlow
    from humidity.flow.sensors import SensorsFlow

    agent, _, held_by = arguments.partition(":")
    hold = Path(held_by)
    flow = {"count_sensors": SensorsFlow, "evaluate_alarms": AlarmsFlow, "audit_chain": audit_flow.AuditFlow}[agent]
    handle = flow.run

    async def _held_while_switched_on(consumer, taken):
        events = taken if isinstance(taken, list) else [taken]
        if events and hold.exists():
            # busy meanwhile, as an agent stuck in its work (no batch is read again)
            with consumer.working(events[0].message.topic):
                print(f"FAULT: {agent} batch held", flush=True)
                while hold.exists():
                    await asyncio.sleep(0.05)
        return taken

    class _Held:
        """The agent's stream, its batches held at the switch."""

        def __init__(self, stream) -> None:
            self.stream = stream

        def __getattr__(self, name):
            return getattr(self.stream, name)

        async def events(self):
            async for event in self.stream.events():
                yield await _held_while_switched_on(self.stream.app.consumer, event)

        async def take_events(self, *args, **kwargs):
            async for events in self.stream.take_events(*args, **kwargs):
                yield await _held_while_switched_on(self.stream.app.consumer, events)

    async def _holding(self, stream):
        await handle(self, _Held(stream))

    flow.run = _holding

from app import app, settings  # after the faults that patch a flow before it is built
from humidity.plumbing import batching

if kind == "drop-batch":
    to_drop = {int(p): int(o) for p, o in (spec.split(":") for spec in arguments.split(","))}
    fetch = batching.BatchingConsumerThread._fetch_records

    async def _dropping(self, *args, **kwargs):
        records = await fetch(self, *args, **kwargs)
        for tp in list(records):
            offset = to_drop.get(tp.partition) if tp.topic == settings.input_topic else None
            batch = records[tp][0].value
            if offset is not None and batch.start <= offset <= batch.end:
                print(f"FAULT: dropped batch {batch.start}-{batch.end} of partition {tp.partition}", flush=True)
                del records[tp], to_drop[tp.partition]
        return records

    batching.BatchingConsumerThread._fetch_records = _dropping

elif kind == "slow-changelog":
    delay = float(arguments)
    slow_topic = f"{settings.app_id}-ingest-totals-changelog"

    def delivered_later(send) -> asyncio.Future:
        """The delivery of ``send()`` (a send of the real producer), started ``delay`` s from now."""
        delivered = asyncio.get_running_loop().create_future()

        async def later():
            await asyncio.sleep(delay)
            try:
                delivered.set_result(await (await send()))
            except Exception as exc:  # noqa: BLE001
                delivered.set_exception(exc)

        asyncio.ensure_future(later())
        return delivered

    class SlowProducer(batching.Producer):
        async def send(self, topic, key, value, partition, timestamp, headers, *, transactional_id=None):
            if topic != slow_topic:
                return await super().send(topic, key, value, partition, timestamp, headers,
                                          transactional_id=transactional_id)
            return delivered_later(lambda: batching.Producer.send(self, topic, key, value, partition, timestamp,
                                                                  headers, transactional_id=transactional_id))

        async def send_batch(self, batch, topic, partition):
            if topic != slow_topic:
                return await super().send_batch(batch, topic, partition)
            return delivered_later(lambda: batching.Producer.send_batch(self, batch, topic, partition))

    batching.Transport.Producer = SlowProducer

elif kind == "forget-read-offsets":
    seek = batching.BatchingConsumer.perform_seek

    async def _forgetting(self):
        await seek(self)
        for tp in list(self._read_offset):
            if tp.topic == settings.input_topic:
                self._read_offset.pop(tp, None)

    batching.BatchingConsumer.perform_seek = _forgetting

elif kind == "pause-input":
    switch = Path(arguments)
    fetch = batching.BatchingConsumerThread._fetch_records

    paused = [False]

    async def _paused_while_switched_on(self, consumer, active_partitions, timeout=None, max_records=None):
        if switch.exists() != paused[0]:
            paused[0] = not paused[0]
            # From here on no fetch that began before the switch is in flight (Faust runs one at a time).
            print(f"FAULT: input partitions {'paused' if paused[0] else 'resumed'}", flush=True)
        if paused[0]:  # Faust passes no partitions for "all assigned"
            active_partitions = {tp for tp in (active_partitions or consumer.assignment())
                                 if tp.topic != settings.input_topic}
            if not active_partitions:  # aiokafka reads an empty set as "every partition" too
                await asyncio.sleep(timeout or 0)
                return {}
        return await fetch(self, consumer, active_partitions, timeout=timeout, max_records=max_records)

    batching.BatchingConsumerThread._fetch_records = _paused_while_switched_on

elif kind == "hold-agent":
    pass  # patched above

elif kind == "max-request-size":
    app.conf.producer_max_request_size = int(arguments)

elif FAULT:
    raise SystemExit(f"unknown HUMIDITY_TEST_FAULT {FAULT!r}")
