"""Device lists at fleet scale: found by name, filtered, sorted and paged (no broker)."""

import pytest

from humidity.core.device_rows import brief, device_rows
from humidity.core.listing import LIMIT_DEFAULT, Listing, ListingError

SORTS = {"device": lambda r: r["device"], "average": lambda r: r["average"],
         "interval_average": lambda r: r["interval_average"]}


def summary_of(devices: int) -> dict:
    averages = sorted(({"device": f"MRI {i}", "average": 20.0 + (i * 7919 % 600) / 10} for i in range(devices)),
                      key=lambda r: (-r["average"], r["device"]))
    return {"time": "2026-11-28T10:00:00.000000Z", "total_messages": 10 * devices,
            "average_humidity_by_device": averages,
            "sensors_by_device": [{"device": f"MRI {i}", "sensors": i % 5} for i in range(devices)],
            "interval": {"messages": 7, "average_humidity_by_device": [
                {"device": "MRI 3", "average": 41.0, "count": 2}, {"device": "MRI 5", "average": 44.0, "count": 5}]}}


def test_rows_join_the_lists_of_a_summary_and_its_brief_form_leaves_them_out():
    summary = summary_of(40_000)
    rows = device_rows(summary)
    assert len(rows) == 40_000
    by_name = {r["device"]: r for r in rows}
    assert by_name["MRI 5"] == {"device": "MRI 5", "average": 20.0 + (5 * 7919 % 600) / 10, "outside": True,
                                "sensors": 0, "interval_average": 44.0, "interval_count": 5}
    assert by_name["MRI 6"]["interval_average"] is None
    short = brief(summary, rows)
    assert "average_humidity_by_device" not in short and "sensors_by_device" not in short
    assert short["interval"] == {"messages": 7, "devices": 2}
    assert short["device_count"] == 40_000
    assert short["outside_count"] == sum(not 30 <= r["average"] <= 60 for r in summary["average_humidity_by_device"])
    assert short["total_messages"] == 400_000


def test_top_and_bottom_n_search_and_paging():
    rows = device_rows(summary_of(40_000))
    listing = Listing.parse({}, tuple(SORTS), "average")
    total, top = listing.apply(rows, SORTS)
    assert total == 40_000 and len(top) == LIMIT_DEFAULT
    averages = sorted((r["average"] for r in rows), reverse=True)
    assert [r["average"] for r in top] == averages[:LIMIT_DEFAULT]
    _, bottom = Listing.parse({"order": "asc", "limit": "10"}, tuple(SORTS), "average").apply(rows, SORTS)
    assert [r["average"] for r in bottom] == sorted(averages)[:10]
    total, found = Listing.parse({"q": "mri 3999", "sort": "device"}, tuple(SORTS), "average").apply(rows, SORTS)
    assert total == 11 and [r["device"] for r in found][:2] == ["MRI 3999", "MRI 39990"]
    _, second = Listing.parse({"offset": "50", "limit": "50"}, tuple(SORTS), "average").apply(rows, SORTS)
    _, both = Listing.parse({"limit": "100"}, tuple(SORTS), "average").apply(rows, SORTS)
    assert second == both[50:]
    total, outside = listing.apply(rows, SORTS, keep=lambda r: r["outside"])
    assert total == sum(r["outside"] for r in rows) and all(r["outside"] for r in outside)


def test_rows_without_the_figure_sorted_by_go_last_either_way():
    rows = device_rows(summary_of(10))
    for order in ("asc", "desc"):
        _, page = Listing.parse({"sort": "interval_average", "order": order}, tuple(SORTS), "average").apply(rows,
                                                                                                           SORTS)
        assert [r["device"] for r in page[:2]] == (["MRI 3", "MRI 5"] if order == "asc" else ["MRI 5", "MRI 3"])
        assert all(r["interval_average"] is None for r in page[2:])


@pytest.mark.parametrize("params, message", [
    ({"sort": "color"}, "sort is one of device, average, interval_average"),
    ({"order": "up"}, "order is asc or desc"),
    ({"limit": "0"}, "limit is a whole number from 1 to 1000"),
    ({"limit": "5000"}, "limit is a whole number from 1 to 1000"),
    ({"offset": "-1"}, "offset is a whole number from 0"),
    ({"q": "x" * 201}, "q is longer than 200 characters"),
])
def test_bad_queries_get_a_clear_error(params, message):
    with pytest.raises(ListingError, match=message):
        Listing.parse(params, tuple(SORTS), "average")
