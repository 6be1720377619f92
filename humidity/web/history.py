"""The history API: current values per device and windows over time (the edge).

Every worker answers for every device. A device's windows all live in one
partition of the history table (its name's key hash); the worker asked
forwards the question to the worker that owns that partition (or answers
itself), as Faust's ``@table_route`` does. Questions that span every
partition (the device list, a datalogger's history) go to each worker that
owns some, and the answers are merged exactly. While partitions move
between workers the API answers 503: an answer is complete or not given.

* ``GET /api/devices`` (all, or a page: ``q``, ``sort``, ``order``, ``offset``, ``limit``)
* ``GET /api/devices/{device}`` (with its loggers)
* ``GET /api/devices/{device}/history?from=&to=&step=`` and ``.../history.csv``
* ``GET /api/loggers/{guid}`` (its newest reading) and ``GET /api/loggers/{guid}/history?from=&to=&step=``

``/api/local/*`` are what workers ask each other: the same data, for the
partitions the asked worker owns.
"""

from __future__ import annotations

import asyncio
import csv
import inspect
import io
import time

import aiohttp
import orjson

from humidity.application import HumidityApp
from humidity.core import history
from humidity.core.history_query import QueryError, Range, merge_points
from humidity.core.listing import Listing, ListingError
from humidity.flow.history import HistoryFlow
from humidity.flow.limits import AlarmLimits
from humidity.flow.publisher import Publisher
from humidity.plumbing.kafka_admin import key_partition
from humidity.web.responses import API_HEADERS, error

MOVING = "history partitions are moving between workers; retry shortly"
#: How ``/api/devices`` sorts (devices without a figure go last).
DEVICE_LIST_SORTS = {
    "device": lambda d: d["device"],
    "now": lambda d: d["latest"]["humidity"] if d["latest"] else None,
    "alarms": lambda d: d["active_alarms"],
    "loggers": lambda d: d["loggers"],
}
UNKNOWN = {history.DEVICE: "no device with that name has readings in the history",
           history.LOGGER: "no datalogger with that name has readings in the history"}
#: Seconds a worker waits for another worker's part of an answer.
ASK_TIMEOUT = 5.0


class Incomplete(Exception):
    """Some partitions had no owner that answered (a rebalance is under way)."""


class HistoryApi:
    def __init__(self, app: HumidityApp, flow: HistoryFlow, publisher: Publisher, limits: AlarmLimits) -> None:
        self.app, self.flow, self.publisher, self.limits = app, flow, publisher, limits
        self.partitions = app.settings.partitions
        self._session: aiohttp.ClientSession | None = None

    # -- asking the owners

    def owners(self) -> dict[int, str]:
        """partition -> URL of the worker that owns it in the history table."""
        table = self.flow.tables.history_windows
        owners: dict[int, str] = {}
        for url, topics in self.app.router.table_metadata(table.name).items():
            for partitions in topics.values():
                for partition in partitions:
                    owners[partition] = str(url)
        return owners

    async def ask(self, path: str, params: dict, partitions: set[int], local) -> list[dict]:
        """The answers of the workers owning ``partitions``; ``local(wanted)``
        answers for this worker (or returns an awaitable of the answer).
        Raises :class:`Incomplete` unless every partition was answered for."""
        owners = self.owners()
        me = str(self.app.conf.canonical_url)
        wanted: dict[str, set[int]] = {}
        for partition in partitions:
            url = owners.get(partition)
            if url is None:
                raise Incomplete(partition)
            wanted.setdefault(url, set()).add(partition)
        calls = []
        for url, parts in wanted.items():
            if url == me:
                answer = local(parts)
                calls.append(answer if inspect.isawaitable(answer) else _done(answer))
            else:
                query = {**params, "partitions": ",".join(map(str, sorted(parts)))}
                calls.append(self._get(url.rstrip("/") + path, query))
        answers = await asyncio.gather(*calls)
        answered = set()
        for answer in answers:
            answered.update(answer["partitions"])
        if not partitions <= answered:
            raise Incomplete(min(partitions - answered))
        return answers

    async def _get(self, url: str, params: dict) -> dict:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=ASK_TIMEOUT))
        try:
            async with self._session.get(url, params=params) as response:
                if response.status != 200:
                    return {"partitions": []}
                return orjson.loads(await response.read())
        except (TimeoutError, aiohttp.ClientError):
            return {"partitions": []}

    # -- answers

    def partition_of(self, device: str) -> int:
        """The history partition of a device (where ``ingest`` sends its readings)."""
        return key_partition(device.encode("utf-8", "surrogatepass"), self.partitions)

    async def devices(self, now: float, only: str | None = None) -> list[dict]:
        """Every device with readings in the history, ascending by name (or just ``only``)."""
        partitions = set(range(self.partitions)) if only is None else {self.partition_of(only)}
        params = {} if only is None else {"device": only}
        answers = await self.ask("/api/local/devices", params, partitions,
                                 lambda parts: self.flow.local_devices(parts, now, only))
        alarms = self._alarm_counts()
        merged: dict[str, dict] = {}
        for answer in answers:
            merged.update(answer["devices"])  # a device lives in one partition
        return [self._device(device, entry, alarms) for device, entry in sorted(merged.items())]

    def _device(self, device: str, entry: dict, alarms: dict[str, int]) -> dict:
        config = self.limits.config
        newest = entry["newest"]
        window = entry["last_minute"]
        described = {
            "device": device,
            "type": config.type_of(device),
            "limits": config.shown(device),
            "loggers": len(entry["loggers"]),
            "latest": None if newest is None else {
                "humidity": newest[1], "event_time": history.iso(newest[0]), "guid": newest[2]},
            "last_minute": None if not window else history.Window(*window).figures(),
            "active_alarms": alarms.get(device, 0),
        }
        if any(reading is not None for reading in entry["loggers"].values()):
            described["logger_readings"] = [
                {"guid": guid, "humidity": r[1] if r else None, "event_time": history.iso(r[0]) if r else None}
                for guid, r in sorted(entry["loggers"].items())]
        return described

    def _alarm_counts(self) -> dict[str, int]:
        return (self.publisher.latest.summary or {}).get("active_alarms_by_device", {})

    async def logger(self, guid: str, now: float) -> dict | None:
        """A datalogger's newest reading by event time, or None if it has none kept."""
        answers = await self.ask("/api/local/logger", {"guid": guid}, set(range(self.partitions)),
                                 lambda parts: self.flow.local_logger(parts, guid, now))
        found = [tuple(newest) for answer in answers for newest in answer["newest"]]
        if not found:
            return None
        t, humidity, device = max(found)
        return {"guid": guid, "latest": {"humidity": humidity, "event_time": history.iso(t), "device": device}}

    async def windows(self, what: str, name: str, query: Range) -> list[dict] | None:
        """The query's points, or None when ``name`` has no stored window."""
        resolution = query.source()
        first, stop = query.stored_span()
        params = {"what": what, "name": name, "res": resolution, "first": first, "stop": stop}
        partitions = {self.partition_of(name)} if what == history.DEVICE else set(range(self.partitions))
        answers = await self.ask("/api/local/windows", params, partitions,
                                 lambda parts: self.flow.local_windows(parts, what, name, resolution, first, stop))
        if not any(answer["known"] for answer in answers):
            return None
        stored = ((start, history.Window(*figures)) for answer in answers for start, *figures in answer["windows"])
        return merge_points(stored, query)


async def _done(value):
    return value


def register(app: HumidityApp, api: HistoryApi) -> None:
    """The history API: windows over time, the devices and loggers now, and
    what the workers ask each other (``/api/local/*``)."""
    window_routes(app, api)
    current_routes(app, api)
    local_routes(app, api)


def parts_of(request) -> set[int]:
    """The partitions another worker asks this one about."""
    text = request.query.get("partitions", "")
    return {int(p) for p in text.split(",") if p.isdigit()}


async def history_of(api: HistoryApi, view, request, what: str, name: str, render):
    """The windows asked for, as ``render(query, points)`` makes them, or the one-line error."""
    try:
        query = Range.parse(request.query.get("from"), request.query.get("to"), request.query.get("step"))
    except QueryError as exc:
        return error(view, 400, str(exc))
    try:
        points = await api.windows(what, name, query)
    except Incomplete:
        return error(view, 503, MOVING)
    if points is None:
        return error(view, 404, UNKNOWN[what])
    return render(query, points)


def window_routes(app: HumidityApp, api: HistoryApi) -> None:
    """A device's or a logger's windows over a time range, as JSON or CSV."""

    @app.page("/api/devices/{device}/history.csv")
    async def device_history_csv(self, request, device: str):
        def render(query, points):
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(["device", "start", "step_seconds", "count", "average", "min", "max"])
            for p in points:
                writer.writerow([_cell(device), p["start"], query.step, p["count"], repr(p["average"]), p["min"],
                                 p["max"]])
            return self.bytes(out.getvalue().encode(), headers={
                **API_HEADERS, "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": 'attachment; filename="history.csv"'})

        return await history_of(api, self, request, history.DEVICE, device, render)

    @app.page("/api/devices/{device}/history")
    async def device_history(self, request, device: str):
        return await history_of(api, self, request, history.DEVICE, device, lambda query, points: self.json(
            {"device": device, "step_seconds": query.step, "points": points}, headers=dict(API_HEADERS)))

    @app.page("/api/loggers/{guid}/history")
    async def logger_history(self, request, guid: str):
        return await history_of(api, self, request, history.LOGGER, guid, lambda query, points: self.json(
            {"guid": guid, "step_seconds": query.step, "points": points}, headers=dict(API_HEADERS)))


def current_routes(app: HumidityApp, api: HistoryApi) -> None:
    """The devices and the loggers now: their newest readings and last minute."""

    @app.page("/api/loggers/{guid}")
    async def logger(self, request, guid: str):
        """A datalogger's newest reading by event time (value, time, device)."""
        try:
            answer = await api.logger(guid, time.time())
        except Incomplete:
            return error(self, 503, MOVING)
        if answer is None:
            return error(self, 404, UNKNOWN[history.LOGGER])
        return self.json(answer, headers=dict(API_HEADERS))

    @app.page("/api/devices")
    async def devices(self, request):
        """Every device (by name), or with ``q``, ``sort``, ``order``, ``offset``, ``limit`` a page of them."""
        try:
            listing = Listing.parse(request.query, tuple(DEVICE_LIST_SORTS), "device", default_limit=None)
        except ListingError as exc:
            return error(self, 400, str(exc))
        now = time.time()
        try:
            listed = await api.devices(now)
        except Incomplete:
            return error(self, 503, MOVING)
        total, page = listing.apply(listed, DEVICE_LIST_SORTS)
        return self.json({"time": history.iso(now), "total": total, "devices": page}, headers=dict(API_HEADERS))

    @app.page("/api/devices/{device}")
    async def device(self, request, device: str):
        """One device as in ``/api/devices``, with each of its loggers' newest reading."""
        now = time.time()
        try:
            listed = await api.devices(now, only=device)
        except Incomplete:
            return error(self, 503, MOVING)
        if not listed:
            return error(self, 404, UNKNOWN[history.DEVICE])
        return self.json({"time": history.iso(now), **listed[0]}, headers=dict(API_HEADERS))


def local_routes(app: HumidityApp, api: HistoryApi) -> None:
    """What one worker asks the others, for the partitions they own."""

    @app.page("/api/local/logger")
    async def local_logger(self, request):
        return self.json(api.flow.local_logger(parts_of(request), request.query.get("guid", ""), time.time()),
                         headers=dict(API_HEADERS))

    @app.page("/api/local/devices")
    async def local_devices(self, request):
        return self.json(await api.flow.local_devices(parts_of(request), time.time(), request.query.get("device")),
                         headers=dict(API_HEADERS))

    @app.page("/api/local/windows")
    async def local_windows(self, request):
        q = request.query
        try:
            answer = api.flow.local_windows(parts_of(request), q["what"], q["name"], q["res"], int(q["first"]),
                                            int(q["stop"]))
        except (KeyError, ValueError):
            return error(self, 400, "what, name, res, first and stop are required")
        return self.json(answer, headers=dict(API_HEADERS))


def _cell(text: str) -> str:
    """A spreadsheet does not run a device name as a formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
