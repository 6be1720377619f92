"""Maintenance silences: created and ended by operators, expired by the leader (a flow).

* The web API sends a command per creation or early end to the silences
  topic, keyed by silence id; the leader sends an end, by ``expired``, for
  each silence whose time ran out (:meth:`SilencesFlow.expire`).
* Agent ``silences`` applies them in order per silence
  (:mod:`humidity.core.maintenance`) to table ``silences`` and reports
  ``silence-created`` and ``silence-ended`` to the audit trail's intake.
* Every worker reads that table's changelog (:attr:`SilencesFlow.entries`):
  the alarm flow marks the alarms an active silence covers, the channels
  hold back their events, and ``/api/silences`` lists them on every worker.
"""

from __future__ import annotations

import time

from humidity.application import HumidityApp
from humidity.core import formats, maintenance
from humidity.core.maintenance import Silence
from humidity.declare.topics import Topics
from humidity.plumbing.follow import ALL, Follower
from humidity.plumbing.record_batches import batched
from humidity.plumbing.stream import per_batch, resume_from
from tables import Tables

ENTRY_PREFIX = "silence/"
SILENCES_TABLE = "table silences"
#: Seconds between the leader's looks for silences whose time ran out.
EXPIRE_CHECK_EVERY = 1.0


class SilencesFlow:
    def __init__(self, app: HumidityApp, topics: Topics, tables: Tables) -> None:
        self.app, self.settings, self.topics, self.tables = app, app.settings, topics, tables
        self.entries: dict[str, Silence] = {}  # silence id -> silence, from the changelog
        self._not_ended: list[Silence] | None = None  # of the entries, made again when they change
        self.asked: set[str] = set()  # expiries this leader asked for
        batched(app).resume_at[topics.silences.get_topic_name()] = resume_from(tables.silences)
        self.agent = app.agent(topics.silences, name="silences")(self.run)
        self.reader = Follower(self.settings, {tables.silences.changelog_topic.get_topic_name(): ALL},
                               self._on_record, "silences")
        app.task(self.reader.run)
        app.timer(EXPIRE_CHECK_EVERY, on_leader=True)(self.expire)

    def _on_record(self, _topic, key: bytes | None, value: bytes | None, _headers) -> None:
        name = (key or b"").decode()
        if name.startswith(ENTRY_PREFIX):
            self._not_ended = None
            if value is None:
                self.entries.pop(name[len(ENTRY_PREFIX):], None)
            else:
                silence = Silence.from_json(formats.loads(value, SILENCES_TABLE))
                self.entries[silence.id] = silence

    def not_ended(self) -> list[Silence]:
        """The silences this worker has read whose end is not recorded (the
        alarm flow judges which are active when): ended ones cover nothing."""
        if self._not_ended is None:
            self._not_ended = [s for s in self.entries.values() if s.ended_at is None]
        return self._not_ended

    def active(self, wall: float) -> list[Silence]:
        """The silences active at ``wall``, the soonest to end first."""
        return sorted((s for s in self.entries.values() if s.active_at(wall)), key=lambda s: (s.until, s.id))

    def request(self, command: dict) -> None:
        """Send a command (create or end) to the agent."""
        silence_id = maintenance.command_id(command)
        self.topics.silences.send_soon(key=silence_id.encode(), value=formats.dumps(command))

    async def expire(self) -> None:
        """Leader: record the end of every silence whose time ran out."""
        if not self.reader.caught_up.is_set():
            return
        now = time.time()
        due = maintenance.expired(self.entries.values(), now)
        self.asked &= {s.id for s in due}
        for silence in due:
            if silence.id not in self.asked:
                self.request(maintenance.end_command(silence.id, maintenance.EXPIRED, now))
                self.asked.add(silence.id)

    async def run(self, stream) -> None:
        """Apply the commands per silence."""
        await per_batch(stream, self.silences_partition)

    def silences_partition(self, work) -> None:
        table = self.tables.silences
        records: list[dict] = []
        with work.current():
            header = formats.loads(table.get(str(work.partition)), SILENCES_TABLE) or {"offset": -1, "epoch": 0}
            rows = work.follow(int(header["offset"]))
            if rows is None:
                return
            epoch = work.epoch(int(header.get("epoch", 0)))
            changed: dict[str, Silence] = {}
            for offset, _key, value in rows:
                command = formats.loads(value, "the silences topic")
                silence_id = maintenance.command_id(command)
                current = changed.get(silence_id) or self._stored(silence_id)
                entry, audit = maintenance.apply(current, command, offset)
                if entry is not None:
                    changed[silence_id] = entry
                records += audit
            for silence_id, entry in changed.items():
                table[ENTRY_PREFIX + silence_id] = formats.dumps({**entry.to_stored(), "epoch": epoch})
            table[str(work.partition)] = formats.dumps({"offset": work.through, "epoch": epoch})
        for record in records:
            self.topics.audit_intake.send_soon(key=record["id"].encode(), value=formats.dumps(record), partition=0)

    def _stored(self, silence_id: str) -> Silence | None:
        doc = formats.loads(self.tables.silences.get(ENTRY_PREFIX + silence_id), SILENCES_TABLE)
        return None if doc is None else Silence.from_json(doc)
