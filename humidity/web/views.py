"""Web page, JSON API, health and metrics on Faust's built-in web server (the edge).

* ``GET /``: the dashboard (static HTML; scripts and styles under ``/static``,
  all served from this repository, so the page works with no internet).
* ``GET /api/summary``: the latest published summary, byte for byte as on the
  results topic; ``GET /api/summary/totals``: the same without the lists
  per device, with ``behind`` as of the request; ``GET /api/summary/devices``: its devices, found by name,
  filtered, sorted and paged (:mod:`humidity.core.listing`);
  ``GET /api/alarms``: its active alarms (the newest 1,000, and how many
  there are), each with its ``id`` and who acknowledged it; 503 with a JSON
  error before the first one.
* ``POST /api/alarms/{id}/ack`` (JSON ``{"comment"}``; an operator, by HTTP
  Basic or a page session with its CSRF token): acknowledges an active alarm.
  ``POST /api/login`` / ``/api/logout``, ``GET /api/session``: the page's
  session (:mod:`humidity.web.access`).
* ``GET /health``: 200 while this worker consumes, every partition it
  consumes moves (or has nothing waiting) and summaries are fresh.
* ``GET /metrics``: Prometheus text of the app's registry.

Faust's own routes that expose tables, assignments, stats or graphs are
switched off (:func:`humidity.application.create_app`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from faust.web import View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from humidity.application import HumidityApp
from humidity.core import acks
from humidity.core.device_rows import DEVICE_SORTS, brief, device_rows, devices_query
from humidity.core.health import health, summary_age_seconds
from humidity.core.listing import ListingError
from humidity.core.readings import now_iso
from humidity.declare.metrics import Metrics
from humidity.flow.acks import AcksFlow
from humidity.flow.publisher import Publisher
from humidity.flow.silences import SilencesFlow
from humidity.flow.stalls import StallMonitor
from humidity.web import silences
from humidity.web.access import COOKIE, CSRF_HEADER, Access, Denied, check_same_origin
from humidity.web.responses import API_HEADERS, denied, json_body

STATIC_DIR = Path(__file__).parent / "static"
INDEX_HTML = (STATIC_DIR / "index.html").read_text(encoding="utf-8")

#: The page loads only its own files; inline script, plugins and framing are refused.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class SummaryRows:
    """The latest summary's rows per device and brief form, made once per summary."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher
        self.made_for: dict | None = None
        self.rows: list[dict] = []
        self.brief: dict = {}

    def current(self) -> bool:
        summary = self.publisher.latest.summary
        if summary is None:
            return False
        if summary is not self.made_for:
            self.rows = device_rows(summary)
            self.brief, self.made_for = brief(summary, self.rows), summary
        return True


def register(app: HumidityApp, publisher: Publisher, metrics: Metrics, stalls: StallMonitor, acks_flow: AcksFlow,
             silences_flow: SilencesFlow, access: Access) -> None:
    """Every route of the page and the API, by what it serves."""
    app.static_routes.append(("/static", STATIC_DIR))
    summary_routes(app, publisher)
    alarm_routes(app, publisher, acks_flow, access)
    silences.routes(app, silences_flow, access)
    session_routes(app, access)
    operations_routes(app, publisher, metrics, stalls)


def no_summary_yet(view, interval: float):
    """503 before the first summary: the service is starting or waiting for data."""
    return view.json(
        {"error": "no summary has been published yet", "retry_after_seconds": interval},
        status=503, headers={**API_HEADERS, "Retry-After": str(max(1, round(interval)))},
    )


def summary_routes(app: HumidityApp, publisher: Publisher) -> None:
    """The dashboard and the latest summary: whole, without its device lists, or its devices a page at a time."""
    settings = app.settings
    rows = SummaryRows(publisher)

    @app.page("/")
    async def dashboard(self, request):
        return self.html(INDEX_HTML, headers=dict(PAGE_HEADERS))

    @app.page("/api/summary")
    async def api_summary(self, request):
        latest = publisher.latest
        if latest.raw is None or latest.summary is None:
            return no_summary_yet(self, settings.interval)
        age = summary_age_seconds(latest.summary, datetime.now(UTC))
        return self.bytes(latest.raw, content_type="application/json",
                          headers={**API_HEADERS, "X-Summary-Age-Seconds": f"{age:.3f}"})

    @app.page("/api/summary/totals")
    async def api_summary_totals(self, request):
        """The latest summary without its lists per device (``device_count``, ``outside_count`` instead);
        ``behind`` as of now, and the limit past which the page says so (``behind_limit_seconds``)."""
        if not rows.current():
            return no_summary_yet(self, settings.interval)
        return self.json({**rows.brief, "behind": publisher.latest_behind().to_json(),
                          "behind_limit_seconds": settings.stall_seconds}, headers=dict(API_HEADERS))

    @app.page("/api/summary/devices")
    async def api_summary_devices(self, request):
        """A page of the latest summary's devices: ``q``, ``band`` (all, outside, inside), ``sort``, ``order``,
        ``offset``, ``limit``."""
        try:
            listing, keep = devices_query(request.query)
        except ListingError as exc:
            return self.json({"error": str(exc)}, status=400, headers=dict(API_HEADERS))
        if not rows.current():
            return no_summary_yet(self, settings.interval)
        total, page = listing.apply(rows.rows, DEVICE_SORTS, keep)
        return self.json({"time": rows.brief["time"], "total": total, "offset": listing.offset,
                          "limit": listing.limit, "devices": page}, headers=dict(API_HEADERS))


def alarm_routes(app: HumidityApp, publisher: Publisher, acks_flow: AcksFlow, access: Access) -> None:
    """The active alarms, and an operator's acknowledgement."""
    settings = app.settings

    @app.page("/api/alarms")
    async def api_alarms(self, request):
        """The active alarms of the latest summary, newest first."""
        latest = publisher.latest
        if latest.summary is None:
            return no_summary_yet(self, settings.interval)
        listed = latest.summary.get("active_alarms", [])
        active = acks.with_acks(listed, acks_flow.entries)
        return self.json({"time": latest.summary["time"], "active_alarms": active,
                          "active_alarm_count": latest.summary.get("active_alarm_count", len(listed)),
                          "active_alarms_by_kind": latest.summary.get("active_alarms_by_kind")},
                         headers=dict(API_HEADERS))

    @app.page("/api/alarms/{alarm_id}/ack")
    class Acknowledge(View):
        async def post(self, request, alarm_id: str):
            """An operator acknowledges an active alarm, with a comment: 202 once it is on its way."""
            try:
                user = await access.operator(request, "acknowledge")
                comment = acks.clean_comment((await json_body(request)).get("comment"))
                summary = publisher.latest.summary or {}
                alarm = next((a for a in summary.get("active_alarms", []) if a.get("id") == alarm_id), None)
                if alarm is None:
                    raise Denied(404, "no active alarm has this id")
                entry = acks_flow.entries.get(alarm_id, {})
                if entry.get("acknowledged_by"):
                    raise Denied(409, f"acknowledged already by {entry['acknowledged_by']}")
            except acks.AckError as exc:
                return denied(self, Denied(400, str(exc)))
            except Denied as exc:
                return denied(self, exc)
            command = acks.ack_command(alarm, user.name, comment, now_iso())
            acks_flow.request(command)
            return self.json({"id": alarm_id, "acknowledged_by": user.name, "acknowledged_at": command["at"],
                              "comment": comment}, status=202, headers=dict(API_HEADERS))


def session_routes(app: HumidityApp, access: Access) -> None:
    """The page's session: who is logged in, logging in and out."""
    if access.enabled:
        @app.task
        async def read_users() -> None:
            """Report the users file (or what is wrong with it) when the worker starts."""
            access.users()

    @app.page("/api/session")
    async def api_session(self, request):
        """Whether users are configured, and who this page's session is."""
        _token, session, user = access.session_of(request)
        body = {"users": access.enabled, "user": None, "role": None, "csrf": None}
        if session is not None and user is not None:
            body.update(user=user.name, role=user.role, csrf=session.csrf)
        return self.json(body, headers=dict(API_HEADERS))

    @app.page("/api/login")
    class Login(View):
        async def post(self, request):
            """Open a page session: JSON ``{"user", "password"}``; the cookie is HttpOnly and SameSite=Strict."""
            try:
                if not access.enabled:
                    raise Denied(403, "no users are configured (HUMIDITY_USERS_FILE)")
                check_same_origin(request)
                body = await json_body(request)
                name, password = body.get("user"), body.get("password")
                if not isinstance(name, str) or not isinstance(password, str):
                    raise Denied(400, "user and password are required")
                user = await access.check_password(name, password, request.remote or "?")
            except Denied as exc:
                return denied(self, exc)
            token, session = access.sessions.open(user, time.time())
            response = self.json({"user": user.name, "role": user.role, "csrf": session.csrf},
                                 headers=dict(API_HEADERS))
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/",
                                secure=access.secure_cookie)
            return response

    @app.page("/api/logout")
    class Logout(View):
        async def post(self, request):
            token, session, _user = access.session_of(request)
            if session is not None:
                if request.headers.get(CSRF_HEADER) != session.csrf:
                    return denied(self, Denied(403, f"missing or wrong {CSRF_HEADER}"))
                access.sessions.close(token, time.time())
            response = self.json({"user": None}, headers=dict(API_HEADERS))
            response.del_cookie(COOKIE, path="/")
            return response


def operations_routes(app: HumidityApp, publisher: Publisher, metrics: Metrics, stalls: StallMonitor) -> None:
    """Health for the orchestrator, metrics for Prometheus."""
    settings = app.settings

    @app.page("/health")
    async def api_health(self, request):
        """200 while this worker consumes, its partitions move and summaries are fresh; 503 with the reasons."""
        consumer = app.consumer
        consuming = bool(consumer.started and not consumer.crashed and not app.should_stop)
        summary = publisher.latest.summary
        ok, body = health(datetime.now(UTC), summary["time"] if summary else None, settings.interval,
                          consuming, stalls.describe())
        return self.json(body, status=200 if ok else 503, headers=dict(API_HEADERS))

    @app.page("/metrics")
    async def metrics_page(self, request):
        return self.bytes(generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
