"""What every JSON answer of the API carries, and how a write's body and refusal look (the edge)."""

from __future__ import annotations

import orjson

from humidity.web.access import Denied

#: Never cached, never sniffed as another type.
API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def error(view, status: int, message: str):
    """``{"error": message}`` with ``status``."""
    return denied(view, Denied(status, message))


def denied(view, exc: Denied):
    """A refused request: ``{"error"}`` with its status (and ``Retry-After`` while locked)."""
    headers = dict(API_HEADERS)
    if exc.retry_after:
        headers["Retry-After"] = str(max(1, round(exc.retry_after)))
    return view.json({"error": exc.message}, status=exc.status, headers=headers)


async def json_body(request) -> dict:
    """A write's body: a JSON object, or :class:`Denied` (400)."""
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise Denied(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise Denied(400, "the body must be a JSON object")
    return body
