"""Maintenance silences over HTTP (the edge).

* ``GET /api/silences``: the active silences, the soonest to end first.
* ``POST /api/silences`` (JSON ``{"device", "guid", "kinds", "until",
  "reason"}``; an operator, as for an acknowledgement): 201 with the silence.
* ``DELETE /api/silences/{id}`` (an operator; the request is JSON, like every
  write): ends an active silence early, 200 with it.

The commands go to the silences topic (:mod:`humidity.flow.silences`); every
worker lists a silence once it has read its entry, within about a second.
"""

from __future__ import annotations

import time
import uuid

from faust.web import View

from humidity.application import HumidityApp
from humidity.core import maintenance
from humidity.flow.silences import SilencesFlow
from humidity.web.access import Access, Denied
from humidity.web.responses import API_HEADERS, denied, json_body


def routes(app: HumidityApp, flow: SilencesFlow, access: Access) -> None:
    @app.page("/api/silences")
    class Silences(View):
        async def get(self, request):
            """The active silences."""
            listed = [silence.to_json() for silence in flow.active(time.time())]
            return self.json({"silences": listed}, headers=dict(API_HEADERS))

        async def post(self, request):
            """An operator silences a device, a datalogger, or both, until a time, with a reason."""
            try:
                user = await access.operator(request, "silence alarms")
                body = await json_body(request)
                silence = maintenance.from_request(body, user.name, time.time(), uuid.uuid4().hex[:16])
            except maintenance.SilenceError as exc:
                return denied(self, Denied(400, str(exc)))
            except Denied as exc:
                return denied(self, exc)
            flow.request(maintenance.create_command(silence))
            return self.json(silence.to_json(), status=201, headers=dict(API_HEADERS))

    @app.page("/api/silences/{silence_id}")
    class OneSilence(View):
        async def delete(self, request, silence_id: str):
            """An operator ends an active silence early."""
            try:
                user = await access.operator(request, "end a silence")
                now = time.time()
                silence = flow.entries.get(silence_id)
                if silence is None or not silence.active_at(now):
                    raise Denied(404, "no active silence has this id")
            except Denied as exc:
                return denied(self, exc)
            flow.request(maintenance.end_command(silence_id, user.name, now))
            return self.json({**silence.to_json(), "ended_by": user.name}, headers=dict(API_HEADERS))
