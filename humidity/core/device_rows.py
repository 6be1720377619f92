"""A summary's devices as the web shows them: one row per device, found,
filtered, sorted and paged, and the summary without its lists (pure)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import itemgetter

from humidity.core.listing import Listing, ListingError

#: The band the page marks averages inside or outside of (% RH), as the old job did.
BAND = (30.0, 60.0)
#: The per-device lists of a summary (a brief summary leaves them out).
DEVICE_LISTS = ("average_humidity_by_device", "sensors_by_device", "active_alarms_by_device")


def device_rows(summary: dict) -> list[dict]:
    """One row per device of a summary: ``{"device", "average", "outside"
    (of BAND), "sensors", "interval_average", "interval_count"}`` (None
    where the summary has no figure)."""
    rows: dict[str, dict] = {}

    def row(device: str) -> dict:
        found = rows.get(device)
        if found is None:
            found = rows[device] = {"device": device, "average": None, "outside": False, "sensors": 0,
                                    "interval_average": None, "interval_count": 0}
        return found

    for r in summary["average_humidity_by_device"]:
        row(r["device"]).update(average=r["average"], outside=not BAND[0] <= r["average"] <= BAND[1])
    for r in summary["sensors_by_device"]:
        row(r["device"])["sensors"] = r["sensors"]
    for r in summary.get("interval", {}).get("average_humidity_by_device", []):
        row(r["device"]).update(interval_average=r["average"], interval_count=r["count"])
    return list(rows.values())


#: How a summary's device rows sort (rows without the figure go last), and which a band keeps.
DEVICE_SORTS = {key: itemgetter(key) for key in ("device", "average", "sensors", "interval_average", "interval_count")}
BANDS = {"all": None, "outside": itemgetter("outside"), "inside": lambda row: not row["outside"]}


def devices_query(params: Mapping[str, str]) -> tuple[Listing, Callable[[dict], bool] | None]:
    """The page of device rows asked for (``q``, ``sort``, ``order``,
    ``offset``, ``limit``) and the band's filter; ListingError if malformed."""
    listing = Listing.parse(params, tuple(DEVICE_SORTS), "average")
    band = params.get("band", "all")
    if band not in BANDS:
        raise ListingError("band is all, outside or inside")
    return listing, BANDS[band]


def brief(summary: dict, rows: list[dict]) -> dict:
    """The summary without its per-device lists, with how many devices and
    how many of them are outside BAND (the page's header and cards)."""
    out = {k: v for k, v in summary.items() if k not in DEVICE_LISTS}
    if "interval" in summary:
        out["interval"] = {k: v for k, v in summary["interval"].items() if k != "average_humidity_by_device"}
        out["interval"]["devices"] = len(summary["interval"]["average_humidity_by_device"])
    out["device_count"] = len(rows)
    out["outside_count"] = sum(row["outside"] for row in rows)
    return out
