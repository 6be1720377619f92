"""Readings over time: windows per device and per datalogger (a flow).

Agent ``history`` reads the bundles that ``ingest`` sends to the partition
each device's name hashes to (Kafka's key hash, so Faust's router agrees on
the owner): all of a device's windows live in one partition. For the
batches of up to two seconds it writes each window they touched once
(:func:`humidity.core.history.apply_bundles`), each (logger, device) pair
the first time it is seen, then the partition's offset. The windows of the
current minutes and hours are kept in memory too, so that most batches read
nothing from RocksDB. Now and then it removes windows past their retention.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time

import orjson

from humidity.application import HumidityApp
from humidity.core import formats, history, messages
from humidity.core.history_query import last_full_minute
from humidity.declare.metrics import Metrics
from humidity.declare.topics import Topics
from humidity.plumbing.assignment import owned_partitions
from humidity.plumbing.record_batches import batched
from humidity.plumbing.stream import (
    GenerationCache,
    PartitionWork,
    load_json,
    per_batch,
    resume_from,
)
from humidity.plumbing.tables import PartitionMoved, partition_get, partition_range, partition_slice, partition_steps
from tables import Tables

log = logging.getLogger(__name__)

#: Seconds of fetched batches taken together: the windows of the current
#: minute and hour are written once per take, not once per fetched batch.
HISTORY_WITHIN = 2.0
#: Fetched batches (up to a MiB each) taken together at most: a backlog does
#: not pile up in memory while a take waits for its two seconds.
HISTORY_EVENTS_MAX = 16
#: Windows written per call, about: a backlog (a backfill, a worker catching
#: up) is worked off in steps, with the event loop free in between. Each step
#: writes every window it touched, and with a large fleet nearly every step
#: touches every device's current windows: larger steps write them once for
#: more readings.
WINDOWS_PER_CALL = 16_000
#: Windows (and known pairs) kept in memory per partition, at most.
CACHED_MAX = 20_000
#: Seconds from the end of one pass that removes a partition's expired
#: windows to the start of the next.
SWEEP_EVERY = 60.0
#: Loggers whose expired windows one batch removes, at most: a pass over a
#: large fleet (a range seek per logger and resolution) is spread over many
#: batches, so that it never holds the event loop for long.
SWEEP_LOGGERS = 2_000
#: Keys read, or devices looked up, between pauses while answering for the
#: device list: with a large fleet an answer takes many of them.
ANSWER_STEP = 1_000


class HistoryFlow:
    def __init__(self, app: HumidityApp, topics: Topics, tables: Tables, metrics: Metrics) -> None:
        self.app, self.topics, self.tables, self.metrics = app, topics, tables, metrics
        self.retention = history.Retention(app.settings.history_minute_days, app.settings.history_hour_days)
        #: Per partition: window key -> the window as stored (a StoredWindow).
        self.windows = GenerationCache()
        #: Per partition: (logger, device) pairs known to be in the table.
        self.pairs = GenerationCache()
        #: Per partition: the pass removing expired windows, while one is under way.
        self.sweeps = GenerationCache()
        self.too_old_unlogged = 0
        batched(app).resume_at[topics.history_readings.get_topic_name()] = resume_from(tables.history_windows)
        self.agent = app.agent(topics.history_readings, name="history")(self.run)
        app.timer(app.settings.interval)(self.log_too_old)

    async def run(self, stream) -> None:
        """Fold readings into the windows of their devices and loggers."""
        await per_batch(stream, self.history_partition, within=HISTORY_WITHIN, events_max=HISTORY_EVENTS_MAX)

    def history_partition(self, work: PartitionWork) -> None:
        table = self.tables.history_windows
        with work.current():
            state = history.HistoryPartition.from_json(load_json(table.get(str(work.partition))))
            rows = work.follow(state.offset)
            if rows is None:
                return
            state.epoch = epoch = work.epoch(state.epoch)
            now = time.time()
            bundles = self.bundles(rows, state.offset)
            cached = self.windows.for_partition(work.partition, work.generation)
            if len(cached) > CACHED_MAX:
                cached.clear()

            def stored(key: bytes) -> history.StoredWindow:
                window = cached.get(key)
                if window is None:
                    doc = load_json(partition_get(table, work.partition, key))
                    window = cached[key] = history.StoredWindow.from_json(doc)
                return window

            applied = history.apply_bundles(bundles, now, self.retention, stored, state.sources, WINDOWS_PER_CALL)
            if applied.stopped_after is not None:
                work.stop_after(applied.stopped_after)
            for key, window in applied.windows.items():  # changed in place: cached as written
                table[key] = formats.dumps(window.to_json(epoch))
            self.remember_pairs(work, applied.pairs, epoch)
            sweeping = self.sweeps.for_partition(work.partition, work.generation)
            if (sweeping or now - state.swept >= SWEEP_EVERY) and self.sweep(work.partition, now, cached, sweeping):
                state.swept = now
            state.too_old += applied.too_old
            state.sources = applied.sources
            state.offset = work.through
            table[str(work.partition)] = formats.dumps(state.to_json())
        self.metrics.history_readings.inc(applied.stored)
        if applied.too_old:
            self.metrics.history_too_old.inc(applied.too_old)
            self.too_old_unlogged += applied.too_old

    @staticmethod
    def bundles(rows: list, after: int):
        """The bundles past ``after``, parsed only as they are taken: a take can
        stop at its window budget long before its last bundle."""
        for offset, _key, value in rows:
            bundle = messages.history_rows(value) if offset > after else None
            if bundle is not None:
                yield offset, *bundle

    def remember_pairs(self, work: PartitionWork, pairs: set[tuple[str, str]], epoch: int) -> None:
        table = self.tables.history_windows
        known = self.pairs.for_partition(work.partition, work.generation)
        if len(known) > CACHED_MAX:
            known.clear()
        for pair in pairs - known.keys():
            key = history.pair_key(*pair)
            if partition_get(table, work.partition, key) is None:
                table[key] = formats.dumps({"epoch": epoch})
            known[pair] = True

    def sweep(self, partition: int, now: float, cached: dict, sweeping: dict) -> bool:
        """Remove the expired windows of the partition's next SWEEP_LOGGERS
        loggers, and of their devices not yet swept in this pass; ``sweeping``
        carries the pass from one call to the next. True when the pass is complete."""
        table = self.tables.history_windows
        swept_devices = sweeping.setdefault("devices", set())
        pairs, resume = partition_slice(table, partition, sweeping.get("from", history.PAIR), history.PAIR_END,
                                        SWEEP_LOGGERS)
        names = set()
        for key, _value in pairs:
            guid, device = history.pair_names(key)
            names.add((history.LOGGER, guid))
            if device not in swept_devices:
                swept_devices.add(device)
                names.add((history.DEVICE, device))
        for resolution in history.RESOLUTIONS:
            for what, name in names:
                low, high = history.expired_span(what, name, resolution, now, self.retention)
                for key in [k for k, _v in partition_range(table, partition, low, high)]:
                    del table[key]
                    cached.pop(key, None)
        if resume is None:
            sweeping.clear()
            return True
        sweeping["from"] = resume
        return False

    # -- what this worker answers for (humidity.web.history asks)

    def owned(self, wanted: set[int]) -> list[int]:
        """Those of ``wanted`` partitions whose history this worker holds now."""
        return [p for p in owned_partitions(self.app, self.topics.history_readings.get_topic_name()) if p in wanted]

    def newest(self, partition: int, what: str, name: str, now: float) -> list | None:
        """The newest reading kept of a device or logger: ``[time, humidity, other]``."""
        table = self.tables.history_windows
        for resolution in history.RESOLUTIONS:
            prefix = history.window_prefix(what, name, resolution)
            cutoff = self.retention.cutoff(resolution, now)
            for key, value in partition_range(table, partition, prefix, reverse=True):
                if history.start_of_key(key) >= cutoff:
                    return orjson.loads(value).get("new")
                break
        return None

    def newest_on(self, partition: int, guid: str, device: str, now: float) -> list | None:
        """A logger's newest reading kept for one device, ``[time, humidity]``:
        from its hour windows, newest first, the first with a reading there
        (a logger that moved has readings for several devices)."""
        cutoff = self.retention.cutoff("h", now)
        prefix = history.window_prefix(history.LOGGER, guid, "h")
        kept = itertools.takewhile(lambda item: history.start_of_key(item[0]) >= cutoff,
                                   partition_range(self.tables.history_windows, partition, prefix, reverse=True))
        return history.newest_for((history.StoredWindow.from_json(orjson.loads(value)) for _key, value in kept),
                                  device)

    async def local_devices(self, wanted: set[int], now: float, only: str | None = None) -> dict:
        """Per device in the owned partitions (or just ``only``): its loggers,
        its newest reading, its last full minute; with ``only``, each logger's
        newest reading for it too. Read in steps of ANSWER_STEP, the event loop free
        in between; a partition that moves meanwhile is left out of the answer."""
        table = self.tables.history_windows
        partitions = self.owned(wanted)
        devices: dict[str, dict] = {}
        minute = last_full_minute(now)

        def still_owned(partition: int) -> bool:
            return bool(self.owned({partition}))

        answered = []
        for partition in partitions:
            here: dict[str, dict] = {}
            try:
                async for rows in partition_steps(table, partition, history.PAIR, history.PAIR_END, ANSWER_STEP,
                                                  still_owned):
                    for key, _value in rows:
                        guid, device = history.pair_names(key)
                        if only is None or device == only:
                            here.setdefault(device, {"loggers": {}})["loggers"][guid] = None
                for looked_up, (device, entry) in enumerate(here.items(), 1):
                    entry["newest"] = self.newest(partition, history.DEVICE, device, now)
                    key = history.window_key(history.DEVICE, device, "m", minute)
                    doc = load_json(partition_get(table, partition, key))
                    entry["last_minute"] = history.StoredWindow.from_json(doc).window.to_list() if doc else None
                    if only is not None:
                        for guid in entry["loggers"]:
                            entry["loggers"][guid] = self.newest_on(partition, guid, device, now)
                    if looked_up % ANSWER_STEP == 0:
                        await asyncio.sleep(0)
                        if not still_owned(partition):
                            raise PartitionMoved(partition)
            except PartitionMoved:
                continue
            devices.update(here)
            answered.append(partition)
        return {"partitions": answered, "devices": devices}

    def local_logger(self, wanted: set[int], guid: str, now: float) -> dict:
        """A logger's newest reading in each owned partition: ``[time, humidity, device]``."""
        partitions = self.owned(wanted)
        newest = [found for partition in partitions
                  if (found := self.newest(partition, history.LOGGER, guid, now)) is not None]
        return {"partitions": partitions, "newest": newest}

    def local_windows(self, wanted: set[int], what: str, name: str, resolution: str, first: int,
                      stop: int) -> dict:
        """Stored windows of one device or logger with ``first <= start < stop``
        in the owned partitions, and whether it has any window kept there."""
        table = self.tables.history_windows
        partitions = self.owned(wanted)
        windows, known = [], False
        now = time.time()
        cutoff = self.retention.cutoff(resolution, now)
        for partition in partitions:
            known = known or self.newest(partition, what, name, now) is not None
            lo = history.window_key(what, name, resolution, max(first, cutoff))
            hi = history.window_key(what, name, resolution, stop)
            for key, value in partition_range(table, partition, lo, hi):
                stored = history.StoredWindow.from_json(orjson.loads(value))
                windows.append([history.start_of_key(key), *stored.window.to_list()])
        return {"partitions": partitions, "known": known, "windows": windows}

    async def log_too_old(self) -> None:
        if self.too_old_unlogged:
            count, self.too_old_unlogged = self.too_old_unlogged, 0
            log.warning("history: %d reading(s) older than HUMIDITY_HISTORY_HOUR_DAYS were counted, not stored "
                        "(humidity_history_too_old_total)", count)
