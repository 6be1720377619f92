"""The service composed from its layers (the top of the import graph).

``app.py`` reads the environment and calls :func:`compose`; tests call it
with explicit settings. Each layer only imports the ones below it:

    core       humidity/core/       pure: readings, aggregate, summary, alarms, settings, ...
    plumbing   humidity/plumbing/   record batches, commits, the agent loop, Kafka admin, tables
    app        humidity/application.py   the faust.App built from settings
    declare    humidity/declare/, tables/   topics, tables, metrics
    flows      humidity/flow/       ingest, sensors, alarms, limits, history, publisher, behind, stalls,
                                    acks, silences, audit, notifications
    edge       humidity/web/, humidity/cli/   web views, commands
"""

from __future__ import annotations

from dataclasses import dataclass

from humidity.application import HumidityApp, create_app
from humidity.cli import commands
from humidity.core.alarm_limits import AlarmConfig
from humidity.core.settings import Settings
from humidity.declare.metrics import Metrics
from humidity.declare.topics import Topics, declare_topics
from humidity.flow.acks import AcksFlow
from humidity.flow.alarms import AlarmsFlow
from humidity.flow.audit import AuditFlow
from humidity.flow.behind import CutBehind
from humidity.flow.history import HistoryFlow
from humidity.flow.ingest import IngestFlow
from humidity.flow.limits import AlarmLimits
from humidity.flow.notifications import Notifier
from humidity.flow.publisher import Publisher
from humidity.flow.sensors import SensorsFlow
from humidity.flow.silences import SilencesFlow
from humidity.flow.stalls import StallMonitor
from humidity.plumbing.kafka_admin import KafkaOffsets, client_security
from humidity.web import history as history_api
from humidity.web import views
from humidity.web.access import Access
from tables import Tables, declare_tables


@dataclass(frozen=True)
class Service:
    app: HumidityApp
    topics: Topics
    tables: Tables
    metrics: Metrics
    ingest: IngestFlow
    sensors: SensorsFlow
    alarms: AlarmsFlow
    history: HistoryFlow
    publisher: Publisher
    behind: CutBehind
    stalls: StallMonitor
    acks: AcksFlow
    silences: SilencesFlow
    limits: AlarmLimits
    audit: AuditFlow
    notifier: Notifier


def compose(settings: Settings, alarm_config: AlarmConfig) -> Service:
    app = create_app(settings)
    topics = declare_topics(app)
    tables = declare_tables(app)
    metrics = Metrics(app)
    # one set of offset clients per worker, for the stall watch and the cut's lag
    offsets = KafkaOffsets(settings.bootstrap_servers, client_security(settings))
    app.on_before_shutdown.connect(offsets.on_shutdown)
    behind = CutBehind(app, offsets)
    publisher = Publisher(app, topics, metrics, behind)
    acks = AcksFlow(app, topics, tables, lambda: (publisher.latest.summary or {}).get("active_alarms"))
    notifier = Notifier(app, topics, metrics)
    silences = SilencesFlow(app, topics, tables)
    limits = AlarmLimits(app, alarm_config, topics, metrics, lambda: [
        row["device"] for row in (publisher.latest.summary or {}).get("sensors_by_device", ())]
        if publisher.latest.summary else None)

    async def other_readers():
        """The readers beside the agents, for the stall watch."""
        return [await publisher.reader.reader(), await acks.reader.reader(), await silences.reader.reader(),
                *notifier.readers()]

    service = Service(
        app=app, topics=topics, tables=tables, metrics=metrics,
        ingest=IngestFlow(app, topics, tables, metrics),
        sensors=SensorsFlow(app, topics, tables),
        alarms=AlarmsFlow(app, limits, topics, tables, silences.not_ended),
        history=HistoryFlow(app, topics, tables, metrics),
        publisher=publisher,
        behind=behind,
        stalls=StallMonitor(app, metrics, offsets, other_readers),
        acks=acks,
        silences=silences,
        limits=limits,
        audit=AuditFlow(app, topics),
        notifier=notifier,
    )
    views.register(app, publisher, metrics, service.stalls, acks, silences, Access(settings))
    history_api.register(app, history_api.HistoryApi(app, service.history, publisher, limits))
    commands.register(app, topics)
    return service
