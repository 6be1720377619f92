"""The producer that tells each batch when what it sent is durable (plumbing).

Every message sent while a batch is handled (``send_soon``) is noted, with
its future, in the batch's transaction (:mod:`humidity.plumbing.transaction`),
so that an offset is committed only once everything its batch produced is
acknowledged by the broker."""

from __future__ import annotations

import asyncio

from aiokafka.errors import MessageSizeTooLargeError
from faust.exceptions import ProducerSendError
from faust.transport.drivers import aiokafka as aiokafka_driver

from humidity.plumbing import internals, transaction
from humidity.plumbing.changelogs import exact_size
from humidity.plumbing.exit import stop_worker


class Producer(aiokafka_driver.Producer):
    """Faust's aiokafka producer; tells the batch's transaction what it queues."""

    def send_soon(self, fut) -> None:
        value = fut.message.value
        if type(value) is bytes:
            # a message holds its value until it is acknowledged and its batch committed
            fut.message = fut.message._replace(value=exact_size(value))
        super().send_soon(fut)
        batch = transaction.current()
        if batch is not None:
            batch.sent(fut)

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
        return internals.aiokafka_producer(self).create_batch()

    async def send_batch(self, batch, topic: str, partition: int) -> asyncio.Future:
        """Queue ``batch`` for ``topic``'s ``partition``; the future completes
        with its first record's metadata once the broker has it."""
        return await internals.aiokafka_producer(self).send_batch(batch, topic, partition=partition)
