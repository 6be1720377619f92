"""A page of a device list: found by name, filtered, sorted, paged (pure).

With tens of thousands of devices neither the page nor a person can take
every row at once; the API gives the rows asked for (``q``: part of the
name, any case; ``sort`` and ``order``; ``offset`` and ``limit``) and how
many match, so that the page can show the top or bottom N and step through
the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: Rows per page when none is asked for, and at most.
LIMIT_DEFAULT, LIMIT_MAX = 50, 1000
MAX_QUERY = 200  # characters of a name search


class ListingError(ValueError):
    """A query the API answers with 400 and this message."""


@dataclass(frozen=True)
class Listing:
    q: str = ""
    sort: str = "device"
    descending: bool = False
    offset: int = 0
    limit: int | None = None  # None: every row

    @classmethod
    def parse(cls, params: Mapping[str, str], sorts: tuple[str, ...], default_sort: str,
              default_limit: int | None = LIMIT_DEFAULT) -> Listing:
        """From query parameters; ``sorts``: the sort keys allowed."""
        q = params.get("q", "")
        if len(q) > MAX_QUERY:
            raise ListingError(f"q is longer than {MAX_QUERY} characters")
        sort = params.get("sort", default_sort)
        if sort not in sorts:
            raise ListingError(f"sort is one of {', '.join(sorts)}")
        order = params.get("order", "asc" if sort == "device" else "desc")
        if order not in ("asc", "desc"):
            raise ListingError("order is asc or desc")
        offset = _number(params, "offset", 0, 0, None) or 0
        limit = _number(params, "limit", default_limit, 1, LIMIT_MAX)
        return cls(q, sort, order == "desc", offset, limit)

    def apply(self, rows: list[dict], keys: Mapping[str, Callable[[dict], Any]],
              keep: Callable[[dict], bool] | None = None) -> tuple[int, list[dict]]:
        """(how many rows match, the page of them). ``keys[sort](row)`` orders
        the rows (ties by device name, ascending; rows it gives None for
        last, in either order); ``keep`` filters further."""
        needle = self.q.casefold()
        found = [row for row in rows
                 if (not needle or needle in row["device"].casefold()) and (keep is None or keep(row))]
        key = keys[self.sort]
        found.sort(key=lambda row: row["device"])
        if self.sort != "device" or self.descending:
            known = [row for row in found if key(row) is not None]
            known.sort(key=key, reverse=self.descending)
            found = known + [row for row in found if key(row) is None]
        end = None if self.limit is None else self.offset + self.limit
        return len(found), found[self.offset:end]


def _number(params: Mapping[str, str], name: str, default: int | None, low: int, high: int | None) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return default
    if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
        raise ListingError(f"{name} is a whole number from {low}" + (f" to {high}" if high is not None else ""))
    return int(text)
