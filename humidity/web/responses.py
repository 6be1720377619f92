"""What every JSON answer of the API carries (the edge)."""

from __future__ import annotations

#: Never cached, never sniffed as another type.
API_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def error(view, status: int, message: str):
    """``{"error": message}`` with ``status``."""
    return view.json({"error": message}, status=status, headers=dict(API_HEADERS))
