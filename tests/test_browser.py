"""The dashboard in a real headless Chromium (Debian's), fed through real Kafka."""

import urllib.parse
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from humidity.core.device_rows import DEVICE_SORTS, brief, device_rows, devices_query
from humidity.core.simulation import reading_doc
from tests import helpers
from tests.reference import expected_summary, matches

pytestmark = pytest.mark.kafka

CHROMIUM = "/usr/bin/chromium"
HOSTILE = "<img src=x onerror=alert(1)>"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def readings(start: int, count: int, devices: list[str]):
    when = datetime(2024, 3, 1, 12, tzinfo=UTC)
    docs = [reading_doc(f"0-ZZZ{i:08d}-01A", devices[i % len(devices)], when, 20.0 + (i % 60)) for i in
            range(start, start + count)]
    return [(orjson.dumps(d), d) for d in docs]


def breach(guid: str, device: str, humidity: float):
    """Two minutes of readings above the limit: raises HIGH."""
    start = datetime(2024, 3, 1, 13, tzinfo=UTC).timestamp()
    docs = [reading_doc(guid, device, datetime.fromtimestamp(start + t, UTC), humidity)
            for t in range(0, 130, 10)]
    return [(orjson.dumps(d), d) for d in docs]


def page_numbers(page) -> dict:
    return page.evaluate("""() => ({
        messages: document.getElementById('total-messages').textContent,
        sensors: document.getElementById('total-sensors').textContent,
        invalid: document.getElementById('invalid-messages').textContent,
        rows: [...document.querySelectorAll('#device-table tbody tr')]
            .map(tr => [...tr.cells].map(td => td.textContent)),
        chartLabels: window.humidityDashboard.chart() ? window.humidityDashboard.chart().data.labels : null,
        chartValues: window.humidityDashboard.chart() ? window.humidityDashboard.chart().data.datasets[0].data : null,
        imgs: document.querySelectorAll('img').length,
        alarms: [...document.querySelectorAll('#alarm-table tbody tr')]
            .map(tr => [...tr.cells].map(td => td.textContent)),
        alarmsFirst: document.getElementById('alarms').compareDocumentPosition(document.getElementById('chart')) === 4,
        stale: !document.getElementById('stale').hidden,
        intervalMessages: document.getElementById('interval-messages').textContent,
        newSensors: document.getElementById('new-sensors').textContent,
        cut: document.getElementById('cut').textContent,
        pageLabel: document.getElementById('device-page').textContent,
        count: document.getElementById('device-count').textContent,
        summary: window.humidityDashboard.summary,
        devicesTime: window.humidityDashboard.devices && window.humidityDashboard.devices.time,
    })""")


#: The band the page calls "inside", in % RH (docs/api.md, The web page).
INSIDE = (30.0, 60.0)


def expected_rows(summary: dict) -> list[dict]:
    """The device table's rows of a summary, highest average first, worked out
    here from the summary's own lists (not by the service's code)."""
    sensors = {r["device"]: r["sensors"] for r in summary["sensors_by_device"]}
    interval = {r["device"]: r for r in summary["interval"]["average_humidity_by_device"]}
    rows = [{"device": r["device"], "average": r["average"], "outside": not INSIDE[0] <= r["average"] <= INSIDE[1],
             "sensors": sensors.get(r["device"], 0),
             "interval_average": interval[r["device"]]["average"] if r["device"] in interval else None,
             "interval_count": interval[r["device"]]["count"] if r["device"] in interval else 0}
            for r in summary["average_humidity_by_device"]]
    return sorted(rows, key=lambda r: (-r["average"], r["device"]))


def table_rows(rows: list[dict]) -> list[list[str]]:
    """The device table's cells for rows of /api/summary/devices."""
    def fixed(x):
        return "–" if x is None else f"{x:.2f}"
    return [[r["device"], fixed(r["average"]), "⚠ outside" if r["outside"] else "inside", fixed(r["interval_average"]),
             fmt(r["interval_count"]), fmt(r["sensors"])] for r in rows]


@contextmanager
def chromium():
    """Debian's Chromium and a page in it, with the dialogs any script opened;
    closed whatever happens. Screenshots go to helpers.ARTIFACTS."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it (scripts/ensure_chromium.sh)")
    from playwright.sync_api import sync_playwright

    helpers.ARTIFACTS.mkdir(exist_ok=True)
    dialogs = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            yield browser, page, dialogs
        finally:
            browser.close()


SHOWS_MESSAGES = "(want) => document.getElementById('total-messages').textContent === want"
SHOWS_ITS_DEVICES = ("() => window.humidityDashboard.devices && window.humidityDashboard.summary && "
                     "window.humidityDashboard.devices.time === window.humidityDashboard.summary.time")
ALARM_ROWS = "(n) => document.querySelectorAll('#alarm-table tbody tr').length === n"
DEVICE_ROWS = "() => [...document.querySelectorAll('#device-table tbody tr')].map(tr => tr.cells[0].textContent)"


def fleet_summary(devices: int) -> dict:
    averages = sorted(({"device": f"MRI {i}", "average": 20.0 + (i * 7919 % 600) / 10} for i in range(devices)),
                      key=lambda r: (-r["average"], r["device"]))
    return {"time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "interval_seconds": 3.0,
            "as_of": {"0": 10 * devices - 1}, "average_humidity_by_device": averages, "total_messages": 10 * devices,
            "sensors_by_device": sorted(({"device": r["device"], "sensors": 4} for r in averages),
                                        key=lambda r: r["device"]),
            "total_sensors": 4 * devices, "invalid_messages": 0, "active_alarms": [],
            "interval": {"since": None, "messages": 0, "invalid_messages": 0, "new_sensors": 0,
                         "average_humidity_by_device": []}}


def serve_summary(page, summary: dict) -> None:
    """The page's summary API answers with ``summary``, by the service's own rules (core.summary)."""
    rows = device_rows(summary)

    def devices(route):
        listing, keep = devices_query(dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(route.request.url).query)))
        total, found = listing.apply(rows, DEVICE_SORTS, keep)
        route.fulfill(status=200, content_type="application/json", body=orjson.dumps(
            {"time": summary["time"], "total": total, "offset": listing.offset, "limit": listing.limit,
             "devices": found}))

    page.route("**/api/summary/totals", lambda route: route.fulfill(
        status=200, content_type="application/json", body=orjson.dumps(brief(summary, rows))))
    page.route("**/api/summary/devices?*", devices)


def fmt(n: int) -> str:
    return f"{n:,}"


def test_dashboard_shows_the_summary_updates_itself_and_renders_names_as_text(kafka, tmp_path, workers):

    env = helpers.service_env(tmp_path)
    worker = workers(env)
    helpers.wait_for_web(env)
    devices = ["MRI 1", "CT 2", HOSTILE, "SPECT 3"]
    alarm = breach("0-ALARM-0001", HOSTILE, 64.0)
    first = readings(0, 200, devices) + alarm
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in first[:200]]))
    # keyed by guid: one partition, so the logger's readings reach the alarm
    # rules in event-time order (out-of-order ones have no say, by design)
    helpers.run(helpers.produce_pairs(env["HUMIDITY_INPUT_TOPIC"], [(b"0-ALARM-0001", raw) for raw, _ in alarm]))
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"],
                             lambda s: matches(expected_summary(first))(s) and len(s["active_alarms"]) == 1,
                             timeout=90)

    with chromium() as (browser, page, dialogs):
        page.goto(helpers.web_url(env, "/"))
        page.evaluate("() => { window.__sameDocument = true; }")

        api = orjson.loads(helpers.http_get(helpers.web_url(env, "/api/summary"))[2])
        page.wait_for_function(SHOWS_MESSAGES, arg=fmt(api["total_messages"]), timeout=20000)
        page.wait_for_function(SHOWS_ITS_DEVICES, timeout=10000)
        page.wait_for_function(ALARM_ROWS, arg=1, timeout=10000)
        shown = page_numbers(page)
        # checked against the summary on screen: a later one may have the same totals, another interval
        published = {s["time"]: s for s in helpers.summaries(env["HUMIDITY_RESULTS_TOPIC"])}
        assert shown["summary"]["time"] in published, "the page shows a published summary"
        api = published[shown["summary"]["time"]]
        assert shown["sensors"] == fmt(api["total_sensors"])
        assert shown["invalid"] == fmt(api["invalid_messages"])
        assert shown["rows"] == table_rows(expected_rows(api))
        assert shown["chartValues"] == [r["average"] for r in api["average_humidity_by_device"]]
        assert [label.removeprefix("⚠ ") for label in shown["chartLabels"]] == \
               [r["device"] for r in api["average_humidity_by_device"]]
        assert [HOSTILE, "51"] in [[row[0], row[5]] for row in shown["rows"]], "the device name is shown literally"
        assert shown["pageLabel"] == "1–4 of 4" and shown["count"].startswith("(4 devices, ")
        assert shown["alarmsFirst"], "active alarms come first on the page"
        assert [row[:4] for row in shown["alarms"]] == [["HIGH", HOSTILE, "0-ALARM-0001", "64 % RH"]]
        assert shown["imgs"] == 0 and dialogs == []
        assert not shown["stale"]
        interval = api["interval"]
        assert shown["intervalMessages"] == fmt(interval["messages"])
        assert shown["newSensors"] == fmt(interval["new_sensors"])
        assert shown["cut"] == ", ".join(f"{p}: {o}" for p, o in api["as_of"].items())

        # more readings: the page follows without a reload
        more = readings(200, 300, devices + ["PETCT9"])
        helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in more]))
        expected = expected_summary(first + more)
        page.wait_for_function(SHOWS_MESSAGES, arg=fmt(expected["total_messages"]), timeout=30000)
        assert page.evaluate("() => window.__sameDocument === true"), "the page must not reload"
        page.wait_for_function("() => document.querySelectorAll('#device-table tbody tr').length === 5",
                               timeout=10000)
        # one summary, one cut: once the messages show, the sensors of the same readings do
        assert page_numbers(page)["sensors"] == fmt(expected["total_sensors"])
        page.screenshot(path=str(helpers.ARTIFACTS / "dashboard.png"), full_page=True)
        assert dialogs == [], f"a script ran from a device name: {dialogs}"

        # no new summary for two intervals: a visible warning
        worker.stop()
        page.wait_for_selector("#stale", state="visible", timeout=15000)
        assert "Stale" in page.inner_text("#stale")
        page.screenshot(path=str(helpers.ARTIFACTS / "dashboard-stale.png"))


def test_40000_devices_a_page_at_a_time_found_by_name_top_and_bottom(kafka, tmp_path, workers):
    env = helpers.service_env(tmp_path)
    workers(env)
    helpers.wait_for_web(env)
    summary = fleet_summary(40_000)
    by_average = expected_rows(summary)
    lowest_first = sorted(by_average, key=lambda r: (r["average"], r["device"]))
    with chromium() as (browser, page, dialogs):
        serve_summary(page, summary)
        page.goto(helpers.web_url(env, "/"))
        page.wait_for_function(SHOWS_ITS_DEVICES, timeout=20000)
        shown = page_numbers(page)
        assert shown["pageLabel"] == "1–50 of 40,000" and shown["messages"] == "400,000"
        assert shown["rows"] == table_rows(by_average[:50]), "the top 50 by average"
        assert len(shown["chartLabels"]) == 50 and shown["chartLabels"][0].startswith("⚠ ")
        assert page.evaluate("() => document.getElementById('chart-box').scrollHeight") < 1500, "no 40,000-bar chart"
        assert page.evaluate("() => document.getElementById('device-prev').disabled")

        def shows(label):
            page.wait_for_function("(want) => document.getElementById('device-page').textContent === want",
                                   arg=label, timeout=10000)
            return page.evaluate(DEVICE_ROWS)

        page.click("#device-next")
        assert shows("51–100 of 40,000") == [r["device"] for r in by_average[50:100]]
        page.select_option("#device-sort", "average:asc")
        assert shows("1–50 of 40,000") == [r["device"] for r in lowest_first[:50]], "the bottom 50"
        page.fill("#device-q", "mri 3999")
        assert shows("1–11 of 11") == [r["device"] for r in lowest_first if r["device"].startswith("MRI 3999")]
        page.fill("#device-q", "")
        page.select_option("#device-band", "outside")
        outside = [r for r in lowest_first if r["outside"]]
        assert shows(f"1–50 of {len(outside):,}") == [r["device"] for r in outside[:50]]
        page.screenshot(path=str(helpers.ARTIFACTS / "dashboard-40000-devices.png"))
        assert dialogs == []


def recent_history(devices: list[str], hours: float = 5.5, every: int = 120):
    """Readings from three loggers per device over the last ``hours``."""
    now = datetime.now(UTC).timestamp()
    docs = []
    for d, device in enumerate(devices):
        for n in range(3):
            t = now - hours * 3600 + n * 7
            while t < now - 60:
                docs.append(reading_doc(f"0-HIST{d:04d}-{n:03d}", device, datetime.fromtimestamp(t, UTC),
                                        round(40.0 + 10 * d + (t % 3600) / 600 + n, 1)))
                t += every
    return [orjson.dumps(doc) for doc in docs]


def test_device_list_and_device_view_draw_what_the_api_says(kafka, tmp_path, workers):

    env = helpers.service_env(tmp_path)
    workers(env)
    helpers.wait_for_web(env)
    devices = ["MRI 7", HOSTILE, "PET-CT Ω 2"]
    messages = recent_history(devices)
    helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], messages))

    def api(path):
        return orjson.loads(helpers.http_get(helpers.web_url(env, path))[2])

    def listed():
        body = api("/api/devices")
        return body if sum(d["loggers"] for d in body.get("devices", [])) == 9 else None

    helpers.wait_until(listed, 90, what="every device in /api/devices")
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], lambda s: s["total_messages"] == len(messages), 90)

    with chromium() as (browser, page, dialogs):
        page.goto(helpers.web_url(env, "/"))
        page.wait_for_function("() => [...document.querySelectorAll('#devices svg.spark')]"
                               ".filter(s => s.dataset.averages).length === 3", timeout=30000)
        rows = page.evaluate("""() => [...document.querySelectorAll('#devices tbody tr')].map(tr => ({
            cells: [...tr.cells].map(td => td.textContent),
            href: tr.querySelector('a').getAttribute('href'),
            spark: tr.querySelector('svg.spark').dataset.averages.split(',').map(Number)}))""")
        body = api("/api/devices")
        assert [r["cells"][0] for r in rows] == [d["device"] for d in body["devices"]] == sorted(devices)
        for row, device in zip(rows, body["devices"], strict=True):
            assert row["cells"][2].startswith(f"{device['latest']['humidity']:.1f}")
            assert row["href"] == "#/device/" + urllib.parse.quote(device["device"], safe="-_.!~*'()")
            now = datetime.now(UTC).timestamp()
            spark = api(f"/api/devices/{urllib.parse.quote(device['device'], safe='')}/history?" +
                        urllib.parse.urlencode({"from": iso(now - 86400), "to": iso(now + 60), "step": 900}))
            assert row["spark"] == [p["average"] for p in spark["points"]]

        # the device view, from a link; then from its shared URL in a new page
        page.click(f"#devices a >> text={HOSTILE}")
        for view in (page, browser.new_page(viewport={"width": 1200, "height": 900})):
            if view is not page:
                view.goto(helpers.web_url(env, "/#/device/" + urllib.parse.quote(HOSTILE, safe="")))
            view.wait_for_function("() => window.humidityHistory.chart() && "
                                   "window.humidityHistory.state.points.length > 0", timeout=20000)
            assert view.inner_text("#view-device") == HOSTILE
            for label, step in (("24 h", 900), ("6 h", 300)):
                now = datetime.now(UTC).timestamp()
                want = api(f"/api/devices/{urllib.parse.quote(HOSTILE, safe='')}/history?" + urllib.parse.urlencode(
                    {"from": iso(now - (86400 if step == 900 else 21600)), "to": iso(now + 60), "step": step}))
                view.click(f"button[data-range] >> text='{label}'")
                view.wait_for_function(
                    "(want) => { const c = window.humidityHistory.chart(); return c && JSON.stringify(c.data"
                    ".datasets.find(d => d.label === 'average').data.map(p => p.y)) === JSON.stringify(want); }",
                    arg=[p["average"] for p in want["points"]], timeout=10000)
                assert view.inner_text("#view-step") == f"{step // 60} min"
                drawn = view.evaluate("""() => window.humidityHistory.chart().data.datasets.map(
                    d => ({label: d.label, y: d.data.map(p => p.y)}))""")
                by_label = {d["label"]: d["y"] for d in drawn}
                assert by_label["average"] == [p["average"] for p in want["points"]]
                assert by_label["lowest"] == [p["min"] for p in want["points"]]
                assert by_label["highest"] == [p["max"] for p in want["points"]]
                limits = next(d for d in body["devices"] if d["device"] == HOSTILE)["limits"]
                assert by_label["low limit"] == [limits["low"]] * 2
                assert by_label["high limit"] == [limits["high"]] * 2
            loggers = view.evaluate("() => [...document.querySelectorAll('#view-loggers tbody tr')]"
                                    ".map(tr => tr.cells[0].textContent)")
            assert loggers == ["0-HIST0001-000", "0-HIST0001-001", "0-HIST0001-002"]
            assert view.evaluate("() => document.querySelectorAll('img').length") == 0
        page.screenshot(path=str(helpers.ARTIFACTS / "device-view.png"), full_page=True)
        assert dialogs == [], f"a script ran from a device name: {dialogs}"


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def test_an_operator_logs_in_acknowledges_silences_the_device_and_sees_names_and_reasons_as_text(
        kafka, tmp_path, workers):
    from tests.test_acks_kafka import OPERATOR_PASSWORD, VIEWER_PASSWORD, add_users

    env = add_users(helpers.service_env(tmp_path), tmp_path / "users.toml")
    workers(env)
    helpers.wait_for_web(env)
    helpers.run(helpers.produce_pairs(env["HUMIDITY_INPUT_TOPIC"],
                                      [(b"0-ALARM-0002", raw) for raw, _ in breach("0-ALARM-0002", HOSTILE, 66.0)]))
    helpers.wait_for_summary(env["HUMIDITY_RESULTS_TOPIC"], lambda s: len(s["active_alarms"]) == 1, timeout=90)
    comment = "Checked the room " + HOSTILE

    with chromium() as (browser, page, dialogs):
        page.goto(helpers.web_url(env, "/"))
        page.wait_for_function(ALARM_ROWS, arg=1, timeout=20000)
        assert page.locator("#alarm-table button.ack").count() == 0, "no acknowledging before logging in"

        # a viewer sees the alarm but has no button; a wrong password is refused on the page
        page.fill("#login-user", "victor")
        page.fill("#login-password", "not the password")
        page.click("#login-button")
        page.wait_for_function("() => document.getElementById('login-error').textContent !== ''", timeout=20000)
        page.fill("#login-password", VIEWER_PASSWORD)
        page.click("#login-button")
        page.wait_for_selector("#logged-in", state="visible", timeout=20000)
        assert page.inner_text("#who") == "victor" and page.locator("#alarm-table button.ack").count() == 0
        assert not page.is_visible("#login-form")
        page.click("#logout-button")
        page.wait_for_selector("#login-form", state="visible", timeout=10000)

        page.fill("#login-user", "olivia")
        page.fill("#login-password", OPERATOR_PASSWORD)
        page.click("#login-button")
        page.wait_for_selector("#alarm-table button.ack", timeout=20000)
        page.click("#alarm-table button.ack")
        page.fill("#ack-comment", comment)
        page.click("#ack-submit")
        page.wait_for_function(
            "() => [...document.querySelectorAll('#alarm-table tbody tr')].some(tr => "
            "tr.cells[6].textContent.startsWith('by olivia at '))", timeout=30000)
        cell = page.evaluate("() => document.querySelector('#alarm-table tbody tr').cells[6].textContent")
        assert cell.endswith(": " + comment), cell
        assert page.locator("#alarm-table button.ack").count() == 0
        assert page.evaluate("() => document.querySelectorAll('img').length") == 0 and dialogs == []
        page.screenshot(path=str(helpers.ARTIFACTS / "dashboard-acknowledged.png"), full_page=True)

        # the page's session cannot be used by another site: no CSRF token, no write
        status = page.evaluate("""async (id) => (await fetch('/api/alarms/' + id + '/ack', {method: 'POST',
            headers: {'Content-Type': 'application/json'}, body: '{"comment": "x"}'})).status""",
                               page.evaluate("() => window.humidityAlarms.alarms[0].id"))
        assert status == 403

        # the operator silences the device from its view, with a reason that holds HTML: shown as text
        reason = "Vendor service </td><script>window.injected=1</script>" + HOSTILE
        page.goto(helpers.web_url(env, "/#/device/" + urllib.parse.quote(HOSTILE, safe="")))
        page.click("#silence-open", timeout=20000)
        assert page.inner_text("#silence-what") == HOSTILE
        page.fill("#silence-reason", reason)
        page.click("#silence-submit")
        page.wait_for_selector("#silence-table tbody tr", timeout=30000)
        row = page.evaluate("() => [...document.querySelector('#silence-table tbody tr').cells]"
                            ".map(c => c.textContent)")
        assert (row[0], row[1], row[2], row[4], row[5]) == (HOSTILE, "any", "all", reason, "olivia"), row
        page.goto(helpers.web_url(env, "/"))
        page.wait_for_function(  # the alarm is still shown, now as silenced, with the reason
            "(reason) => [...document.querySelectorAll('#alarm-table tbody tr.silenced')].some(tr => "
            "tr.cells[6].textContent.startsWith('silenced until ') && tr.cells[6].textContent.endsWith(reason))",
            arg=reason, timeout=30000)
        assert page.evaluate("() => document.querySelectorAll('img, #silence-table script').length") == 0
        assert page.evaluate("() => window.injected") is None and dialogs == []
        page.screenshot(path=str(helpers.ARTIFACTS / "dashboard-silenced.png"), full_page=True)
    alarm = orjson.loads(helpers.http_get(helpers.web_url(env, "/api/alarms"))[2])["active_alarms"][0]
    assert (alarm["acknowledged_by"], alarm["comment"]) == ("olivia", comment)
    assert alarm["silenced"]["id"] == orjson.loads(helpers.http_get(helpers.web_url(env, "/api/silences"))[2])[
        "silences"][0]["id"]
