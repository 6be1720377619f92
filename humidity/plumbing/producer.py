"""The producer that tells each batch when what it produced is durable (plumbing).

:func:`producing` collects the futures of every message produced inside
the block (``send_soon``, and the table changelogs, sent as record batches
when the block ends: :mod:`humidity.plumbing.changelogs`), so that an
offset is committed only once everything its batch produced is
acknowledged by the broker."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from aiokafka.errors import MessageSizeTooLargeError
from faust.exceptions import ProducerSendError
from faust.transport.drivers import aiokafka as aiokafka_driver

from humidity.plumbing import changelogs
from humidity.plumbing.exit import stop_worker

_produced: ContextVar[list | None] = ContextVar("humidity_produced", default=None)


@contextmanager
def producing() -> Iterator[list]:
    """Collect the futures of every message produced inside the block
    (``send_soon``, and the table changelogs, sent as record batches when
    the block ends: :mod:`humidity.plumbing.changelogs`), to know when they
    are durable."""
    produced: list = []
    token = _produced.set(produced)
    writes, writes_token = changelogs.collect()
    try:
        yield produced
    finally:
        _produced.reset(token)
        produced += changelogs.submit_collected(writes, writes_token)


class Producer(aiokafka_driver.Producer):
    """Faust's aiokafka producer; tells :func:`producing` what it queues."""

    def send_soon(self, fut) -> None:
        value = fut.message.value
        if type(value) is bytes:
            # a message holds its value until it is acknowledged and its batch committed
            fut.message = fut.message._replace(value=changelogs.exact_size(value))
        super().send_soon(fut)
        produced = _produced.get()
        if produced is not None:
            produced.append(fut)

    async def send(self, topic, key, value, partition, timestamp, headers, *, transactional_id=None):
        try:
            return await super().send(topic, key, value, partition, timestamp, headers,
                                      transactional_id=transactional_id)
        except ProducerSendError as exc:
            if isinstance(exc.__cause__, MessageSizeTooLargeError):
                size = len(value or b"") + len(key or b"") + sum(len(v or b"") for _, v in headers or ())
                self.too_large(topic, size)
            raise

    def too_large(self, topic: str, size: int) -> None:
        # Nothing after it may be acknowledged, or offsets would pass state that was never written.
        stop_worker(f"a message to {topic!r} of about {size} bytes is over the limit of "
                    f"{self.max_request_size} bytes; nothing after it was sent", traceback=False)

    # -- record batches (:mod:`humidity.plumbing.changelogs`)

    def create_batch(self):
        """An empty aiokafka record batch."""
        return self._ensure_producer().create_batch()

    async def send_batch(self, batch, topic: str, partition: int) -> asyncio.Future:
        """Queue ``batch`` for ``topic``'s ``partition``; the future completes
        with its first record's metadata once the broker has it."""
        return await self._ensure_producer().send_batch(batch, topic, partition=partition)
