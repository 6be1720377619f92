"""The dashboard in a real headless Chromium (Debian's), fed through real Kafka."""

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

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
        rows: [...document.querySelectorAll('#sensors tbody tr')].map(tr => [...tr.cells].map(td => td.textContent)),
        chartLabels: window.humidityDashboard.chart() ? window.humidityDashboard.chart().data.labels : null,
        chartValues: window.humidityDashboard.chart() ? window.humidityDashboard.chart().data.datasets[0].data : null,
        imgs: document.querySelectorAll('img').length,
        alarms: [...document.querySelectorAll('#alarm-table tbody tr')]
            .map(tr => [...tr.cells].map(td => td.textContent)),
        alarmsFirst: document.getElementById('alarms').compareDocumentPosition(document.getElementById('chart')) === 4,
        stale: !document.getElementById('stale').hidden,
        intervalMessages: document.getElementById('interval-messages').textContent,
        newSensors: document.getElementById('new-sensors').textContent,
        intervalRows: [...document.querySelectorAll('#interval-table tbody tr')]
            .map(tr => [...tr.cells].map(td => td.textContent)),
        cut: document.getElementById('cut').textContent,
    })""")


SHOWS_MESSAGES = "(want) => document.getElementById('total-messages').textContent === want"


def fleet_summary(devices: int) -> dict:
    averages = sorted(({"device": f"MRI {i}", "average": 20.0 + (i * 7919 % 600) / 10} for i in range(devices)),
                      key=lambda r: (-r["average"], r["device"]))
    return {"time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "interval_seconds": 3.0,
            "average_humidity_by_device": averages, "total_messages": 10 * devices,
            "sensors_by_device": sorted(({"device": r["device"], "sensors": 4} for r in averages),
                                        key=lambda r: r["device"]),
            "total_sensors": 4 * devices, "invalid_messages": 0}


def fmt(n: int) -> str:
    return f"{n:,}"


def test_dashboard_shows_the_summary_updates_itself_and_renders_names_as_text(kafka, tmp_path, workers):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it (scripts/ensure_chromium.sh)")
    from playwright.sync_api import sync_playwright

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

    artifacts = helpers.ARTIFACTS
    artifacts.mkdir(exist_ok=True)
    dialogs = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(helpers.web_url(env, "/"))
            page.evaluate("() => { window.__sameDocument = true; }")

            api = orjson.loads(helpers.http_get(helpers.web_url(env, "/api/summary"))[2])
            page.wait_for_function(SHOWS_MESSAGES, arg=fmt(api["total_messages"]), timeout=20000)
            shown = page_numbers(page)
            assert shown["sensors"] == fmt(api["total_sensors"])
            assert shown["invalid"] == fmt(api["invalid_messages"])
            assert shown["rows"] == [[r["device"], fmt(r["sensors"])] for r in api["sensors_by_device"]]
            assert shown["chartValues"] == [r["average"] for r in api["average_humidity_by_device"]]
            assert [label.removeprefix("⚠ ") for label in shown["chartLabels"]] == \
                   [r["device"] for r in api["average_humidity_by_device"]]
            assert [HOSTILE, "51"] in shown["rows"], "the device name is shown literally"
            assert shown["alarmsFirst"], "active alarms come first on the page"
            assert [row[:4] for row in shown["alarms"]] == [["HIGH", HOSTILE, "0-ALARM-0001", "64 % RH"]]
            assert shown["imgs"] == 0 and dialogs == []
            assert not shown["stale"]
            interval = api["interval"]
            assert shown["intervalMessages"] == fmt(interval["messages"])
            assert shown["newSensors"] == fmt(interval["new_sensors"])
            assert shown["intervalRows"] == [[r["device"], f"{r['average']:.2f}", fmt(r["count"])]
                                             for r in interval["average_humidity_by_device"]]
            assert shown["cut"] == ", ".join(f"{p}: {o}" for p, o in api["as_of"].items())

            # more readings: the page follows without a reload
            more = readings(200, 300, devices + ["PETCT9"])
            helpers.run(helpers.produce(env["HUMIDITY_INPUT_TOPIC"], [raw for raw, _ in more]))
            expected = expected_summary(first + more)
            page.wait_for_function(SHOWS_MESSAGES, arg=fmt(expected["total_messages"]), timeout=30000)
            assert page.evaluate("() => window.__sameDocument === true"), "the page must not reload"
            page.wait_for_function("() => document.querySelectorAll('#sensors tbody tr').length === 5",
                                   timeout=10000)
            # one summary, one cut: once the messages show, the sensors of the same readings do
            assert page_numbers(page)["sensors"] == fmt(expected["total_sensors"])
            page.screenshot(path=str(artifacts / "dashboard.png"), full_page=True)
            assert dialogs == [], f"a script ran from a device name: {dialogs}"

            # 500 devices: every one gets a labelled bar and a table row
            big = browser.new_page(viewport={"width": 1200, "height": 1000})
            big.route("**/api/summary", lambda route: route.fulfill(
                status=200, content_type="application/json", body=orjson.dumps(fleet_summary(500))))
            big.goto(helpers.web_url(env, "/"))
            big.wait_for_function("() => document.querySelectorAll('#sensors tbody tr').length === 500",
                                  timeout=20000)
            shown = page_numbers(big)
            assert len(shown["chartLabels"]) == 500 and shown["chartLabels"][0].startswith("⚠ ")
            assert big.evaluate("() => document.getElementById('chart-box').scrollHeight") >= 500 * 15
            big.screenshot(path=str(artifacts / "dashboard-500-devices.png"))

            # no new summary for two intervals: a visible warning
            worker.stop()
            page.wait_for_selector("#stale", state="visible", timeout=15000)
            assert "Stale" in page.inner_text("#stale")
            page.screenshot(path=str(artifacts / "dashboard-stale.png"))
        finally:
            browser.close()
