"""Web page, JSON API, health and metrics on Faust's built-in web server (the edge).

* ``GET /``: the dashboard (static HTML; scripts and styles under ``/static``,
  all served from this repository, so the page works with no internet).
* ``GET /api/summary``: the latest published summary, byte for byte as on the
  results topic; ``GET /api/summary/totals``: the same without the lists
  per device; ``GET /api/summary/devices``: its devices, found by name,
  filtered, sorted and paged (:mod:`humidity.core.listing`);
  ``GET /api/alarms``: its active alarms; 503 with a JSON error before the
  first one.
* ``GET /health``: 200 while this worker consumes, the input partitions it
  owns move (or have nothing waiting) and summaries are fresh.
* ``GET /metrics``: Prometheus text of the app's registry.

Faust's own routes that expose tables, assignments, stats or graphs are
switched off (:func:`humidity.application.create_app`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from humidity.application import HumidityApp
from humidity.core.health import health, summary_age_seconds
from humidity.core.listing import ListingError
from humidity.core.summary import DEVICE_SORTS, brief, device_rows, devices_query
from humidity.declare.metrics import Metrics
from humidity.flow.publisher import Publisher
from humidity.flow.stalls import StallMonitor

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
API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


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


def register(app: HumidityApp, publisher: Publisher, metrics: Metrics, stalls: StallMonitor) -> None:
    settings = app.settings
    app.static_routes.append(("/static", STATIC_DIR))

    def no_summary_yet(view):
        """503 before the first summary: the service is starting or waiting for data."""
        return view.json(
            {"error": "no summary has been published yet", "retry_after_seconds": settings.interval},
            status=503, headers={**API_HEADERS, "Retry-After": str(max(1, round(settings.interval)))},
        )

    @app.page("/")
    async def dashboard(self, request):
        return self.html(INDEX_HTML, headers=dict(PAGE_HEADERS))

    @app.page("/api/summary")
    async def api_summary(self, request):
        latest = publisher.latest
        if latest.raw is None or latest.summary is None:
            return no_summary_yet(self)
        age = summary_age_seconds(latest.summary, datetime.now(UTC))
        return self.bytes(latest.raw, content_type="application/json",
                          headers={**API_HEADERS, "X-Summary-Age-Seconds": f"{age:.3f}"})

    rows = SummaryRows(publisher)

    @app.page("/api/summary/totals")
    async def api_summary_totals(self, request):
        """The latest summary without its lists per device (``device_count``, ``outside_count`` instead)."""
        if not rows.current():
            return no_summary_yet(self)
        return self.json(rows.brief, headers=dict(API_HEADERS))

    @app.page("/api/summary/devices")
    async def api_summary_devices(self, request):
        """A page of the latest summary's devices: ``q``, ``band`` (all, outside, inside), ``sort``, ``order``,
        ``offset``, ``limit``."""
        try:
            listing, keep = devices_query(request.query)
        except ListingError as exc:
            return self.json({"error": str(exc)}, status=400, headers=dict(API_HEADERS))
        if not rows.current():
            return no_summary_yet(self)
        total, page = listing.apply(rows.rows, DEVICE_SORTS, keep)
        return self.json({"time": rows.brief["time"], "total": total, "offset": listing.offset,
                          "limit": listing.limit, "devices": page}, headers=dict(API_HEADERS))

    @app.page("/api/alarms")
    async def api_alarms(self, request):
        """The active alarms of the latest summary, newest first."""
        latest = publisher.latest
        if latest.summary is None:
            return no_summary_yet(self)
        return self.json({"time": latest.summary["time"], "active_alarms": latest.summary.get("active_alarms", [])},
                         headers=dict(API_HEADERS))

    @app.page("/health")
    async def api_health(self, request):
        """200 while this worker consumes, its input partitions move and summaries are fresh; 503 with the reasons."""
        consumer = app.consumer
        consuming = bool(consumer.started and not consumer.crashed and not app.should_stop)
        summary = publisher.latest.summary
        ok, body = health(datetime.now(UTC), summary["time"] if summary else None, settings.interval,
                          consuming, stalls.describe())
        return self.json(body, status=200 if ok else 503, headers=dict(API_HEADERS))

    @app.page("/metrics")
    async def metrics_page(self, request):
        return self.bytes(generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
