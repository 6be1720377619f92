"""The Faust app: settings from the environment, and the data flow's wiring.

Start a worker with ``faust -A app worker -l info``. Configuration comes from
``HUMIDITY_*`` environment variables (see README); this is the only module
that reads the environment.
"""

from __future__ import annotations

import gc
import logging
import os
import sys

import faust
from faust.web import drivers as web_drivers

from humidity.alarms import AlarmConfigError, load_config
from humidity.kafka_admin import CredentialsRejected, TopicMismatch, faust_credentials
from humidity.logs import install as limit_repeated_log_lines
from humidity.settings import ConfigError, from_environ

try:
    settings = from_environ(os.environ)
    alarm_config = load_config(settings.alarms_file)
except (ConfigError, AlarmConfigError) as exc:
    sys.exit(f"humidity: configuration error: {exc}")

log = logging.getLogger("humidity")


def tune_garbage_collector() -> None:
    """Fewer, cheaper garbage collections while batches are processed.

    A batch of a few thousand readings allocates tens of thousands of
    short-lived objects; CPython's default collects the youngest generation
    every 700 allocations, and each collection also walks everything that
    survived, which here is long-lived (modules, Faust's objects, caches).
    Measured with ``make bench``: about 15 % more readings per second.
    """
    gc.freeze()  # what exists at start-up lives as long as the worker
    gc.set_threshold(50_000, 20, 100)


class HumidityApp(faust.App):
    """faust.App that checks and creates its topics before it consumes."""

    async def on_first_start(self) -> None:
        await super().on_first_start()
        if self.producer_only or self.client_only:
            return
        limit_repeated_log_lines()
        tune_garbage_collector()
        from humidity.topics import ensure_all_topics  # it imports this module: late

        try:
            await ensure_all_topics()
        except TopicMismatch as exc:
            # One line, no traceback, no restart loop: the operator must act.
            self._stop_at_start(f"humidity: {exc}", 78)  # EX_CONFIG
        except CredentialsRejected as exc:
            self._stop_at_start(
                f"humidity: Kafka rejected the connection as user {settings.sasl_username!r} "
                f"({settings.security_protocol}, {settings.sasl_mechanism}): {exc}; check "
                "HUMIDITY_KAFKA_SASL_USERNAME, HUMIDITY_KAFKA_SASL_PASSWORD and HUMIDITY_KAFKA_CA_FILE", 77)

    @staticmethod
    def _stop_at_start(line: str, code: int) -> None:
        log.error("%s", line)
        logging.shutdown()
        os._exit(code)

    def _new_transport(self):
        # The topics declared with humidity.batching.batched_topic (readings,
        # sightings) reach their agents one fetched batch at a time.
        from humidity.batching import Transport

        return Transport(self.conf.broker_consumer, self)

    def _new_web(self):
        driver = web_drivers.by_url(self.conf.web)

        class Web(driver):  # type: ignore[misc, valid-type]
            # Faust's production index would answer "/" instead of the dashboard.
            production_blueprints: list = []

        return Web(self)

    def on_webserver_init(self, web) -> None:
        from humidity.views import add_static_files

        add_static_files(web)


app = HumidityApp(
    settings.app_id,
    broker=settings.broker,
    broker_credentials=faust_credentials(settings),
    store="rocksdb://",
    datadir=str(settings.data_dir),
    topic_partitions=settings.partitions,
    topic_replication_factor=1,
    web_port=settings.web_port,
    web_bind=settings.web_bind,
    **({"web_host": settings.web_bind} if settings.web_bind not in ("0.0.0.0", "::") else {}),
    processing_guarantee="at_least_once",
    # Table writes and forwards are many small messages and aiokafka keeps one
    # produce request in flight per broker: waiting 5 ms lets each request
    # carry more of them (make bench: one worker ~20 % faster, two ~50 %).
    producer_linger=0.005,
    consumer_auto_offset_reset="earliest",
    # Tables are read and written per partition in batches (humidity.agents);
    # finish in-flight batches before a partition is handed to another worker.
    stream_wait_empty=True,
    # No standby copies of other workers' tables: on 2 cores they cost CPU, and
    # a partition that moves is rebuilt from its (compacted) changelog.
    table_standby_replicas=0,
    # A worker that died (kill -9, lost host) leaves the group after 10 s, not
    # Faust's default 60 s, so its partitions move to the others quickly.
    broker_session_timeout=10.0,
    broker_heartbeat_interval=2.0,
    # Faust's own pages would expose table contents, assignments and debug data.
    web_tables_enabled=False,
    web_router_enabled=False,
    web_stats_enabled=False,
    web_graph_enabled=False,
    web_metrics_enabled=False,
)

# The data flow, in order: metrics, topics, tables, agents, the publisher, views, commands.
import humidity.metrics  # noqa: E402,F401  (Faust's Prometheus monitor must be set before start)
import humidity.topics  # noqa: E402,F401
import tables  # noqa: E402,F401
import humidity.agents  # noqa: E402,F401
import humidity.alarm_agents  # noqa: E402,F401
import humidity.publisher  # noqa: E402,F401
import humidity.views  # noqa: E402,F401
import humidity.commands  # noqa: E402,F401
