"""The Faust app, built from settings (the app layer).

It knows no topic, table or agent by name: declarations register themselves
on it (:meth:`HumidityApp.declare_topic`, ``tables/``), and the flows and the
edge are attached by :func:`humidity.service.compose`. From what was
declared it creates every topic the service needs before it consumes.
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import faust
from faust.web import drivers as web_drivers

from humidity import core
from humidity.core.logs import install as limit_repeated_log_lines
from humidity.core.settings import Settings
from humidity.plumbing import internals
from humidity.plumbing.batching import Transport
from humidity.plumbing.changelogs import sender_of
from humidity.plumbing.exit import end_process
from humidity.plumbing.kafka_admin import (
    MAX_MESSAGE_BYTES,
    CredentialsRejected,
    TopicMismatch,
    TopicSpec,
    client_security,
    ensure_topics,
    faust_credentials,
)
from humidity.plumbing.local_tables import mark_clean_stop, trust_or_discard
from humidity.plumbing.record_batches import batched_topic

log = logging.getLogger("humidity")

#: Table changelogs are compacted: only the latest value of each key matters.
CHANGELOG_CONFIG = {"cleanup.policy": "compact"}


def tune_garbage_collector() -> None:
    """Fewer, cheaper garbage collections while batches are processed.

    A batch of a few thousand readings allocates tens of thousands of
    short-lived objects; CPython's default collects the youngest generation
    every 700 allocations, and each collection also walks everything that
    survived, which here is long-lived (modules, Faust's objects, caches).
    """
    gc.freeze()  # what exists at start-up lives as long as the worker
    gc.set_threshold(50_000, 20, 100)


class HumidityApp(faust.App):
    """faust.App that creates and checks its declared topics before it consumes."""

    def __init__(self, settings: Settings, **options) -> None:
        self.settings = settings
        self.declared_topics: list[TopicSpec] = []
        self.static_routes: list[tuple[str, Path]] = []
        super().__init__(settings.app_id, **options)

    def declare_topic(self, name: str, *, config: dict | None = None, batched: bool = False,
                      partitions: int | None = None, **options):
        """A topic of the service with HUMIDITY_PARTITIONS partitions (or
        ``partitions``, for a topic no agent reads) and raw keys and values,
        created (with ``config``) before the worker consumes.
        ``batched``: its agent reads it in record batches."""
        partitions = partitions or self.settings.partitions
        self.declared_topics.append(TopicSpec(name, partitions, dict(config or {})))
        options = {"partitions": partitions, "key_serializer": "raw", "value_serializer": "raw", **options}
        return batched_topic(self, name, **options) if batched else self.topic(name, **options)

    def topic_specs(self) -> list[TopicSpec]:
        """Every topic to create: the declared ones, the tables' changelogs
        (compacted, as Faust would create them) and Faust's leader topic, all
        replicated alike and created here, so that they are in the metadata
        before the consumer joins; another partition count is fatal."""
        changelogs = [TopicSpec(table.changelog_topic.get_topic_name(), self.settings.partitions, CHANGELOG_CONFIG)
                      for table in self.tables.values()]
        leader = TopicSpec(internals.leader_topic_name(self), 1)
        return [*self.declared_topics, *changelogs, leader]

    async def ensure_topics(self) -> None:
        await ensure_topics(self.settings.bootstrap_servers, self.topic_specs(),
                            client_kwargs=client_security(self.settings),
                            replication=self.settings.replication_factor)

    async def on_first_start(self) -> None:
        await super().on_first_start()
        if self.producer_only or self.client_only:
            return
        limit_repeated_log_lines()
        internals.check_pins()
        log.info("Core: %s", "compiled with mypyc" if core.COMPILED else "interpreted")
        trust_or_discard(self.conf.tabledir)  # before any partition's store is opened
        tune_garbage_collector()
        settings = self.settings
        try:
            await self.ensure_topics()
        except TopicMismatch as exc:
            # One line, no traceback, no restart loop: the operator must act.
            self._stop_at_start(f"humidity: {exc}", 78)  # EX_CONFIG
        except CredentialsRejected as exc:
            self._stop_at_start(
                f"humidity: Kafka rejected the connection as user {settings.sasl_username!r} "
                f"({settings.security_protocol}, {settings.sasl_mechanism}): {exc}; check "
                "HUMIDITY_KAFKA_SASL_USERNAME, HUMIDITY_KAFKA_SASL_PASSWORD and HUMIDITY_KAFKA_CA_FILE", 77)

    async def on_shutdown(self) -> None:
        await super().on_shutdown()
        if not (self.producer_only or self.client_only) and sender_of(self).all_acknowledged:
            mark_clean_stop(self.conf.tabledir)

    @staticmethod
    def _stop_at_start(line: str, code: int) -> None:
        log.error("%s", line)
        end_process(code)

    def _new_transport(self):
        # The batched topics reach their agents one fetched batch at a time.
        return Transport(self.conf.broker_consumer, self)

    def _new_web(self):
        driver = web_drivers.by_url(self.conf.web)

        class Web(driver):  # type: ignore[misc, valid-type]
            # Faust's production index would answer "/" instead of the dashboard.
            production_blueprints: list = []

        return Web(self)

    def on_webserver_init(self, web) -> None:
        for prefix, directory in self.static_routes:
            web.add_static(prefix, directory)


def create_app(settings: Settings) -> HumidityApp:
    """The app configured from ``settings``; nothing declared on it yet."""
    return HumidityApp(
        settings,
        broker=settings.broker,
        broker_credentials=faust_credentials(settings),
        store="rocksdb://",
        datadir=str(settings.data_dir),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        # Every write waits for all in-sync replicas (at least min.insync.replicas):
        # what was acknowledged survives the loss of a broker.
        producer_acks=-1,
        producer_max_request_size=MAX_MESSAGE_BYTES,
        web_port=settings.web_port,
        web_bind=settings.web_bind,
        **({"web_host": settings.web_bind} if settings.web_bind not in ("0.0.0.0", "::") else {}),
        processing_guarantee="at_least_once",
        # Table writes and forwards are many small messages and aiokafka keeps
        # one produce request in flight per broker: waiting 5 ms lets each
        # request carry more of them.
        producer_linger=0.005,
        # aiokafka puts one record batch per partition in a produce request:
        # a batch of readings writes far more changelog rows to a partition
        # than a 16 KiB batch (Faust's default) holds, and the rest would
        # wait for later round trips while the agents stand at the backlog gate.
        producer_max_batch_size=512 * 1024,
        consumer_auto_offset_reset="earliest",
        # Tables are read and written per partition in batches; finish
        # in-flight batches before a partition is handed to another worker.
        stream_wait_empty=True,
        # No standby copies of other workers' tables: on 2 cores they cost CPU,
        # and a partition that moves is rebuilt from its (compacted) changelog.
        table_standby_replicas=0,
        # A worker that died (kill -9, lost host) leaves the group after 10 s,
        # not Faust's default 60 s, so its partitions move to the others quickly.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=2.0,
        # Faust's own pages would expose table contents, assignments and debug data.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
    )
