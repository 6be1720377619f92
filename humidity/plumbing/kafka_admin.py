"""Topic set-up and client security, with plain aiokafka clients (plumbing).

The worker and the feeding commands call :func:`ensure_topics` before they
start: missing topics are created with the configured partition count, and an
existing topic with another count stops the start with one line, because
co-partitioned topics and table changelogs must agree.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAlreadyExistsError,
)
from aiokafka.helpers import create_ssl_context
from aiokafka.partitioner import murmur2

log = logging.getLogger(__name__)

#: Seconds between attempts while the broker cannot be reached.
RETRY_EVERY = 5.0
#: The largest message the service sends, and the limit set on every topic it
#: creates: per-partition totals, partials and summaries grow with the fleet
#: (about 70 bytes a device), past Kafka's 1 MB default at some tens of
#: thousands of devices. Kafka returns a batch larger than a consumer's fetch
#: size whole (KIP-74), so readers need no change.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict = field(default_factory=dict)


class CredentialsRejected(Exception):
    """The broker refused the SASL credentials (or the TLS handshake)."""


def client_security(settings) -> dict:
    """aiokafka keyword arguments for the configured security (no secrets logged)."""
    protocol = settings.security_protocol
    kwargs: dict = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        kwargs["ssl_context"] = create_ssl_context(cafile=settings.ca_file or None)
    if protocol.startswith("SASL"):
        kwargs.update(sasl_mechanism=settings.sasl_mechanism, sasl_plain_username=settings.sasl_username,
                      sasl_plain_password=settings.sasl_password)
    return kwargs


def faust_credentials(settings):
    """The same security as Faust ``broker_credentials`` (None for PLAINTEXT)."""
    import faust

    kwargs = client_security(settings)
    if settings.security_protocol.startswith("SASL"):
        return faust.SASLCredentials(username=settings.sasl_username, password=settings.sasl_password,
                                     ssl_context=kwargs.get("ssl_context"), mechanism=settings.sasl_mechanism)
    if settings.security_protocol == "SSL":
        return faust.SSLCredentials(kwargs["ssl_context"])
    return None


AUTH_ERRORS = (SaslAuthenticationFailed, AuthenticationFailedError, AuthenticationMethodNotSupported,
               IllegalSaslStateError, ssl.SSLError)


async def check_credentials(bootstrap: list[str], client_kwargs: dict) -> None:
    """Raise CredentialsRejected if a reachable broker refuses our TLS or SASL.

    aiokafka's clients report a refused login only as "Unable to bootstrap";
    one direct connection tells a wrong password from a broker that is down.
    """
    if client_kwargs.get("security_protocol", "PLAINTEXT") == "PLAINTEXT":
        return
    for address in bootstrap:
        host, _, port = address.rpartition(":")
        try:
            conn = await create_conn(host.strip("[]"), int(port), request_timeout_ms=10000, **client_kwargs)
        except AUTH_ERRORS as exc:
            raise CredentialsRejected(f"{type(exc).__name__}: {exc}") from None
        except (TimeoutError, KafkaError, OSError):
            continue  # not reachable: the caller retries
        else:
            conn.close()
            return


class TopicMismatch(Exception):
    """An existing topic has a partition count other than the configured one."""


def mismatch_message(topic: str, actual: int, wanted: int, variable: str) -> str:
    return (
        f"topic {topic!r} has {actual} partitions but {variable}={wanted}; "
        f"set {variable}={actual} to use it, or delete and recreate the topic"
    )


async def _admin(bootstrap: list[str], client_kwargs: dict) -> AIOKafkaAdminClient:
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000, **client_kwargs)
    try:
        await client.start()
    except BaseException:
        await client.close()
        raise
    return client


async def partitions_ready(client: AIOKafkaAdminClient, names: list[str]) -> bool:
    """Every topic is known to the broker's metadata, each partition with a leader."""
    for desc in await client.describe_topics(names):
        if desc.get("error_code", 0) != 0 or not desc["partitions"]:
            return False
        if any(p.get("leader", -1) < 0 for p in desc["partitions"]):
            return False
    return True


@dataclass(frozen=True)
class Layout:
    partitions: int
    replicas: int  # of its least replicated partition
    max_message_bytes: int


async def topic_layouts(client: AIOKafkaAdminClient, names: Iterable[str]) -> dict[str, Layout]:
    """The layout of each existing topic in ``names``."""
    existing = set(await client.list_topics())
    wanted = [n for n in names if n in existing]
    layouts: dict[str, Layout] = {}
    if not wanted:
        return layouts
    limits = {}
    for response in await client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in wanted]):
        for _error, _message, _type, name, configs in response.resources:
            limits[name] = next((int(value) for key, value, *_ in configs if key == "max.message.bytes"), 0)
    for desc in await client.describe_topics(wanted):
        if desc.get("error_code", 0) == 0:
            partitions = desc["partitions"]
            layouts[desc["topic"]] = Layout(len(partitions), min((len(p["replicas"]) for p in partitions), default=0),
                                            limits.get(desc["topic"], 0))
    return layouts


def min_insync_replicas(replication: int) -> int:
    """Acknowledged by two replicas where there are two: one broker lost loses nothing acknowledged."""
    return min(2, replication)


async def ensure_topics(
    bootstrap: list[str],
    specs: list[TopicSpec],
    *,
    client_kwargs: dict | None = None,
    replication: int = 1,
) -> None:
    """Create missing topics with ``replication`` replicas each and
    ``min.insync.replicas`` to match; raise TopicMismatch naming the first
    bad partition count; warn (once per topic) about an existing topic with
    fewer replicas than ``replication`` or a lower message size limit.

    While the broker cannot be reached it logs one line per RETRY_EVERY
    seconds and tries again, for as long as it takes.
    """
    while True:
        try:
            await check_credentials(bootstrap, client_kwargs or {})
            client = await _admin(bootstrap, client_kwargs or {})
        except (KafkaError, OSError) as exc:
            log.warning("Kafka at %s not reachable (%s); retrying in %.0f s", ",".join(bootstrap),
                        type(exc).__name__, RETRY_EVERY)
            await asyncio.sleep(RETRY_EVERY)
            continue
        try:
            layouts = await topic_layouts(client, [s.name for s in specs])
            _check_layouts(specs, layouts, replication)
            missing = [s for s in specs if s.name not in layouts]
            if missing:
                await _create(client, missing, replication)
            return
        except KafkaConnectionError as exc:
            log.warning("Kafka connection lost while creating topics (%s); retrying", exc)
            await asyncio.sleep(RETRY_EVERY)
        finally:
            await client.close()


def _check_layouts(specs: list[TopicSpec], layouts: dict[str, Layout], replication: int) -> None:
    """Raise TopicMismatch for another partition count; warn about fewer replicas or a lower size limit."""
    for spec in specs:
        layout = layouts.get(spec.name)
        if layout is None:
            continue
        if layout.partitions != spec.partitions:
            raise TopicMismatch(mismatch_message(spec.name, layout.partitions, spec.partitions, "HUMIDITY_PARTITIONS"))
        if layout.replicas < replication:
            log.warning("topic %r has %d replica(s) but HUMIDITY_REPLICATION_FACTOR=%d: losing a broker "
                        "can lose its data; raise it with kafka-reassign-partitions", spec.name,
                        layout.replicas, replication)
        if layout.max_message_bytes < MAX_MESSAGE_BYTES:
            log.warning("topic %r takes messages up to %d bytes, the service may send up to %d (large "
                        "fleets); raise it with kafka-configs --alter --add-config max.message.bytes=%d",
                        spec.name, layout.max_message_bytes, MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES)


async def _create(client: AIOKafkaAdminClient, missing: list[TopicSpec], replication: int) -> None:
    """Create the missing topics and wait until they are in the metadata: a
    consumer that joins before new topics show there is assigned without
    them (Faust: "Ignoring missing topic"), and would wait for them until
    the next rebalance."""
    limits = {"min.insync.replicas": str(min_insync_replicas(replication)), "max.message.bytes": str(MAX_MESSAGE_BYTES)}
    new = [NewTopic(s.name, s.partitions, replication, topic_configs={**limits, **s.config}) for s in missing]
    try:
        await client.create_topics(new, timeout_ms=15000)
    except TopicAlreadyExistsError:
        pass  # another worker created it at the same moment
    for s in missing:
        log.info("Created topic %r with %d partitions", s.name, s.partitions)
    names = [s.name for s in missing]
    loop = asyncio.get_running_loop()
    ready_by = loop.time() + 30
    while not await partitions_ready(client, names):
        if loop.time() > ready_by:
            log.warning("New topics are not in the metadata yet: %s", ", ".join(names))
            break
        await asyncio.sleep(0.2)


class KafkaOffsets:
    """End offsets, consumer groups' committed offsets and partition leaders,
    read with clients of their own (so they answer even when the worker's
    consumers are stuck), created at the first reading (they need the
    running event loop). End offsets are the last stable ones: a record of
    an open transaction has not arrived yet for a reader of committed data."""

    def __init__(self, bootstrap: list[str], client_kwargs: dict) -> None:
        self.bootstrap, self.client_kwargs = bootstrap, client_kwargs
        self._clients: tuple[AIOKafkaAdminClient, AIOKafkaConsumer] | None = None

    async def ends(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """``(topic, partition) -> end offset``."""
        tps = [TopicPartition(topic, p) for topic, p in partitions]
        if not tps:
            return {}
        _, consumer = await self._started()
        return {(tp.topic, tp.partition): offset for tp, offset in (await consumer.end_offsets(tps)).items()}

    async def committed(self, group: str, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """``(topic, partition) -> where the group resumes``: its committed
        offset, or where the partition begins if it has none."""
        tps = [TopicPartition(topic, p) for topic, p in partitions]
        if not tps:
            return {}
        admin, consumer = await self._started()
        found = await admin.list_consumer_group_offsets(group, partitions=tps)
        offsets = {tp: found[tp].offset for tp in tps if tp in found and found[tp].offset >= 0}
        if len(offsets) < len(tps):
            offsets.update(await consumer.beginning_offsets([tp for tp in tps if tp not in offsets]))
        return {(tp.topic, tp.partition): offset for tp, offset in offsets.items()}

    async def leaders(self, topic: str) -> tuple[set[int], dict[int, int]]:
        """The brokers in the cluster, and the leader of each partition of ``topic`` (-1: none)."""
        admin, _ = await self._started()
        cluster = await admin.describe_cluster()
        (described,) = await admin.describe_topics([topic])
        return ({b["node_id"] for b in cluster["brokers"]},
                {p["partition"]: p["leader"] for p in described["partitions"]})

    async def _started(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._clients is None:
            admin = await _admin(self.bootstrap, self.client_kwargs)
            ends = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                    request_timeout_ms=10000, isolation_level="read_committed",
                                    **self.client_kwargs)
            try:
                await ends.start()
            except BaseException:
                await ends.stop()
                await admin.close()
                raise
            self._clients = admin, ends  # only once both started: a failed start is tried again next time
        return self._clients

    async def on_shutdown(self, sender, **_) -> None:
        """For ``app.on_before_shutdown``."""
        await self.close()

    async def close(self) -> None:
        if self._clients is not None:
            admin, ends = self._clients
            self._clients = None
            await ends.stop()
            await admin.close()


def key_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (and Faust's) gives ``key``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
