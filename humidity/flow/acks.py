"""Acknowledgements and escalations (a flow).

* The web page sends a command per acknowledgement to the acks topic, keyed
  by alarm id; the leader sends one per alarm due for escalation
  (:meth:`AcksFlow.escalate`, every few seconds).
* Agent ``alarm_acks`` applies them in order per alarm
  (:mod:`humidity.core.acks`) to table ``alarm-acks``, sends escalations to
  the alerts topic (for the escalation channels) and what happened to the
  audit trail's intake.
* Every worker reads that table's changelog (:attr:`AcksFlow.entries`), so
  ``/api/alarms`` shows an acknowledgement on every worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson

from humidity.application import HumidityApp
from humidity.core import acks, formats
from humidity.core.readings import now_iso
from humidity.declare.topics import Topics
from humidity.plumbing.follow import ALL, Follower
from humidity.plumbing.record_batches import batched
from humidity.plumbing.stream import per_batch, resume_from
from tables import Tables

ENTRY_PREFIX = "ack/"
ACKS_TABLE = "table alarm-acks"
#: Seconds between the leader's looks for alarms due for escalation.
ESCALATE_CHECK_EVERY = 2.0


class AcksFlow:
    def __init__(self, app: HumidityApp, topics: Topics, tables: Tables,
                 active_alarms: Callable[[], list[dict] | None]) -> None:
        self.app, self.settings, self.topics, self.tables = app, app.settings, topics, tables
        self.active_alarms = active_alarms
        self.entries: dict[str, dict] = {}  # alarm id -> entry, from the changelog
        self.asked: set[str] = set()  # escalations this leader asked for
        batched(app).resume_at[topics.acks.get_topic_name()] = resume_from(tables.alarm_acks)
        self.agent = app.agent(topics.acks, name="alarm_acks")(self.run)
        self.reader = Follower(self.settings, {tables.alarm_acks.changelog_topic.get_topic_name(): ALL},
                               self._on_record, "acknowledgements")
        app.task(self.reader.run)
        if self.settings.escalate_webhooks or self.settings.escalate_emails:
            app.timer(ESCALATE_CHECK_EVERY, on_leader=True)(self.escalate)

    def _on_record(self, _topic, key: bytes | None, value: bytes | None, _headers) -> None:
        name = (key or b"").decode()
        if name.startswith(ENTRY_PREFIX):
            if value is None:
                self.entries.pop(name[len(ENTRY_PREFIX):], None)
            else:
                self.entries[name[len(ENTRY_PREFIX):]] = formats.loads(value, ACKS_TABLE)

    def request(self, command: dict) -> None:
        """Send a command (acknowledge or escalate) to the agent."""
        alarm_id = command.get("ack") or command["escalate"]
        self.topics.acks.send_soon(key=alarm_id.encode(), value=formats.dumps(command))

    async def escalate(self) -> None:
        """Leader: ask for the escalation of every alarm due for it."""
        active = self.active_alarms()
        if active is None or not self.reader.caught_up.is_set():
            return
        self.asked &= {alarm["id"] for alarm in active}
        for alarm in acks.due_for_escalation(active, self.entries, time.time(), self.settings.escalate_after,
                                             self.asked):
            self.request(acks.escalate_command(alarm, now_iso()))
            self.asked.add(alarm["id"])

    async def run(self, stream) -> None:
        """Apply acknowledgements and escalations per alarm."""
        await per_batch(stream, self.acks_partition)

    def acks_partition(self, work) -> None:
        table = self.tables.alarm_acks
        sends: list[tuple] = []
        with work.current():
            header = formats.loads(table.get(str(work.partition)), ACKS_TABLE) or {"offset": -1, "epoch": 0}
            rows = work.follow(int(header["offset"]))
            if rows is None:
                return
            epoch = work.epoch(int(header.get("epoch", 0)))
            changed: dict[str, dict] = {}
            for offset, _key, value in rows:
                command = formats.loads(value, "the acks topic")
                alarm_id = command.get("ack") or command["escalate"]
                current = changed.get(alarm_id) or formats.loads(table.get(ENTRY_PREFIX + alarm_id), ACKS_TABLE)
                entry, effects = acks.apply(current, command, offset)
                if entry is not None:
                    changed[alarm_id] = entry
                sends += [(self.topics.alerts, event["guid"].encode(), orjson.dumps(event), None)
                          for event in effects.alerts]
                sends += [(self.topics.audit_intake, alarm_id.encode(), formats.dumps(entry), 0)
                          for entry in effects.audit]
            for alarm_id, entry in changed.items():
                table[ENTRY_PREFIX + alarm_id] = formats.dumps({**entry, "epoch": epoch})
            table[str(work.partition)] = formats.dumps({"offset": work.through, "epoch": epoch})
        for topic, key, value, partition in sends:
            topic.send_soon(key=key, value=value, partition=partition)
