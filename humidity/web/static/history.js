/* Devices now and over time: the device list, a page at a time, with
 * 24-hour sparklines (/api/devices, /api/devices/{device}/history), and a device view at
 * #/device/<name> (a URL that can be shared) with a time-range picker.
 * Device and logger names are set with textContent, drawn by Chart.js, or
 * percent-encoded into URLs: never parsed as HTML. */
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const RANGES = { "6h": [6 * 3600, 300], "24h": [86400, 900], "7d": [7 * 86400, 3600], "30d": [30 * 86400, 21600] };
  const SPARK = { seconds: 86400, step: 900, width: 160, height: 28 };
  const REFRESH_MS = 10000;
  const fixed = (x) => (x === null || x === undefined ? "–" : x.toFixed(1));
  const iso = (ms) => new Date(ms).toISOString();
  const PAGE_SIZE = 50;
  const state = { devices: [], sparklines: {}, sparkAt: {}, chart: null, view: null, range: "24h", points: [], asked: 0 };

  function historyUrl(device, seconds, step, csv) {
    const end = Date.now();
    const query = new URLSearchParams({ from: iso(end - seconds * 1000), to: iso(end + 60000), step: String(step) });
    return "/api/devices/" + encodeURIComponent(device) + "/history" + (csv ? ".csv" : "") + "?" + query;
  }

  async function getJson(url) {
    const response = await fetch(url, { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    return response.json();
  }

  // -- the device list

  function sparkline(points, limits) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("width", SPARK.width);
    svg.setAttribute("height", SPARK.height);
    svg.setAttribute("viewBox", "0 0 " + SPARK.width + " " + SPARK.height);
    svg.setAttribute("class", "spark");
    if (!points.length) return svg;
    const end = Date.now(), start = end - SPARK.seconds * 1000;
    const values = points.map((p) => p.average);
    const low = Math.min(limits.low, ...values) - 1, high = Math.max(limits.high, ...values) + 1;
    const x = (ms) => ((ms - start) / (end - start)) * SPARK.width;
    const y = (v) => SPARK.height - ((v - low) / (high - low)) * SPARK.height;
    const band = document.createElementNS(ns, "rect");  // the type's limits
    band.setAttribute("x", 0);
    band.setAttribute("width", SPARK.width);
    band.setAttribute("y", y(limits.high));
    band.setAttribute("height", Math.max(0, y(limits.low) - y(limits.high)));
    band.setAttribute("class", "spark-band");
    svg.appendChild(band);
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points.map((p) => x(Date.parse(p.start)).toFixed(1) + "," + y(p.average).toFixed(1)).join(" "));
    line.setAttribute("class", "spark-line");
    svg.appendChild(line);
    svg.dataset.averages = values.join(",");
    return svg;
  }

  async function refreshSparkline(device) {
    try {
      const body = await getJson(historyUrl(device.device, SPARK.seconds, SPARK.step));
      state.sparklines[device.device] = body.points;
      state.sparkAt[device.device] = Date.now();
    } catch (err) {
      /* keep the previous line; the list still shows the current values */
    }
  }

  function renderDevices() {
    const tbody = document.querySelector("#devices tbody");
    const fragment = document.createDocumentFragment();
    for (const d of state.devices) {
      const tr = document.createElement("tr");
      const name = document.createElement("td");
      const link = document.createElement("a");
      link.href = "#/device/" + encodeURIComponent(d.device);
      link.textContent = d.device;
      name.appendChild(link);
      const outside = d.latest && (d.latest.humidity < d.limits.low || d.latest.humidity > d.limits.high);
      const cells = [
        [d.type],
        [d.latest ? fixed(d.latest.humidity) + (outside ? " ⚠" : "") : "–", "num" + (outside ? " outside" : "")],
        [d.last_minute ? fixed(d.last_minute.average) + " (" + fixed(d.last_minute.min) + "–" + fixed(d.last_minute.max) + ")" : "–", "num"],
      ];
      tr.appendChild(name);
      for (const [text, cls] of cells) {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.appendChild(td);
      }
      const spark = document.createElement("td");
      spark.appendChild(sparkline(state.sparklines[d.device] || [], d.limits));
      tr.appendChild(spark);
      const alarms = document.createElement("td");
      alarms.textContent = d.active_alarms ? d.active_alarms + " active" : "none";
      alarms.className = d.active_alarms ? "outside" : "calm";
      tr.appendChild(alarms);
      tr.dataset.device = d.device;
      fragment.appendChild(tr);
    }
    tbody.replaceChildren(fragment);
  }

  async function loadDevices() {
    const mine = ++state.asked;
    try {
      const body = await getJson("/api/devices?" + pager.params());
      if (mine !== state.asked) return;  // the controls changed meanwhile
      const stale = body.devices.filter((d) => !state.sparkAt[d.device] || Date.now() - state.sparkAt[d.device] > 60000);
      await Promise.all(stale.map(refreshSparkline));
      if (mine !== state.asked) return;
      state.devices = body.devices;
      pager.shown(body.total, body.devices.length);
      $("devices-count").textContent = "(" + body.total + (pager.params().has("q") ? " found)" : ")");
      renderDevices();
    } catch (err) {
      /* the summary part of the page reports an unreachable worker */
    }
  }

  async function pollDevices() {
    await loadDevices();
    if (state.view) renderViewNow();
    setTimeout(pollDevices, REFRESH_MS);
  }

  // -- one device over time

  function route() {
    const match = /^#\/device\/(.+)$/.exec(location.hash);
    state.view = match ? decodeURIComponent(match[1]) : null;
    $("overview").hidden = state.view !== null;
    $("device-view").hidden = state.view === null;
    if (state.view !== null) {
      $("view-device").textContent = state.view;
      document.title = state.view + " · humidity";
      loadView();
    } else {
      document.title = "Humidity of imaging devices";
    }
  }

  function renderViewNow() {
    const d = state.viewDevice;
    if (!d) return;
    $("view-type").textContent = "(" + d.type + ", " + d.loggers + " dataloggers)";
    $("view-now").textContent = d.latest ? fixed(d.latest.humidity) : "–";
    const when = $("view-now-time");
    when.textContent = d.latest ? new Date(d.latest.event_time).toLocaleString() : "none";
    when.dateTime = d.latest ? d.latest.event_time : "";
    $("view-minute").textContent = d.last_minute
      ? fixed(d.last_minute.average) + " % RH (" + fixed(d.last_minute.min) + "–" + fixed(d.last_minute.max) + ")" : "–";
    $("view-alarms").textContent = d.active_alarms ? d.active_alarms + " active alarm(s)" : "no active alarm";
    $("view-limits").textContent = d.limits.low + " and " + d.limits.high + " % RH"
      + (d.limits.source === "device" ? " (its own)" : " (its type's)");
    const rows = d.logger_readings || [];
    const fragment = document.createDocumentFragment();
    for (const r of rows) {
      const tr = document.createElement("tr");
      for (const [text, cls] of [[r.guid], [fixed(r.humidity), "num"], [new Date(r.event_time).toLocaleString() + " (" + r.event_time + ")"]]) {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.appendChild(td);
      }
      fragment.appendChild(tr);
    }
    document.querySelector("#view-loggers tbody").replaceChildren(fragment);
  }

  async function loadView() {
    const device = state.view;
    const [seconds, step] = RANGES[state.range];
    for (const button of document.querySelectorAll("[data-range]")) {
      button.setAttribute("aria-pressed", String(button.dataset.range === state.range));
    }
    $("view-step").textContent = step >= 3600 ? step / 3600 + " h" : step / 60 + " min";
    $("view-csv").href = historyUrl(device, seconds, step, true);
    try {
      const [entry, body] = await Promise.all([
        getJson("/api/devices/" + encodeURIComponent(device)), getJson(historyUrl(device, seconds, step))]);
      if (device !== state.view) return;  // the user moved on meanwhile
      state.viewDevice = entry;
      state.points = body.points;
      renderViewNow();
      drawView(body.points, entry.limits, seconds);
    } catch (err) {
      state.viewDevice = null;
      state.points = [];
      $("view-type").textContent = "(no readings in the history for this device: " + err.message + ")";
      drawView([], { low: 0, high: 0 }, seconds);
    }
  }

  function drawView(points, limits, seconds) {
    $("view-empty").hidden = points.length > 0;
    if (typeof Chart === "undefined") return;
    const xs = points.map((p) => Date.parse(p.start));
    const end = Date.now(), start = end - seconds * 1000;
    const limit = (v) => [{ x: start, y: v }, { x: end, y: v }];
    const datasets = [
      { label: "lowest", data: points.map((p, i) => ({ x: xs[i], y: p.min })), borderWidth: 0, pointRadius: 0, fill: false },
      { label: "highest", data: points.map((p, i) => ({ x: xs[i], y: p.max })), borderWidth: 0, pointRadius: 0,
        fill: "-1", backgroundColor: "rgba(21, 101, 192, 0.18)" },
      { label: "average", data: points.map((p, i) => ({ x: xs[i], y: p.average })), borderColor: "#1565c0",
        borderWidth: 2, pointRadius: points.length > 150 ? 0 : 2, fill: false },
      { label: "low limit", data: limit(limits.low), borderColor: "#c62828", borderDash: [6, 4], borderWidth: 1, pointRadius: 0, fill: false },
      { label: "high limit", data: limit(limits.high), borderColor: "#c62828", borderDash: [6, 4], borderWidth: 1, pointRadius: 0, fill: false },
    ];
    const options = {
      animation: false, responsive: true, maintainAspectRatio: false, parsing: false, spanGaps: false,
      scales: {
        x: { type: "linear", min: start, max: end,
             ticks: { callback: (v) => new Date(v).toLocaleString([], seconds > 86400
               ? { month: "short", day: "numeric", hour: "2-digit" } : { hour: "2-digit", minute: "2-digit" }) } },
        y: { title: { display: true, text: "% RH" } },
      },
      plugins: { legend: { display: false }, tooltip: { callbacks: {
        title: (items) => items.length ? new Date(items[0].parsed.x).toLocaleString() : "",
        label: (item) => item.dataset.label + ": " + item.parsed.y.toFixed(2) + " % RH" } } },
    };
    if (state.chart) state.chart.destroy();
    state.chart = new Chart($("view-chart"), { type: "line", data: { datasets }, options });
  }

  for (const button of document.querySelectorAll("[data-range]")) {
    button.addEventListener("click", () => { state.range = button.dataset.range; loadView(); });
  }
  window.addEventListener("hashchange", route);
  const pager = window.humidityPager("devices", PAGE_SIZE, loadDevices);
  window.humidityHistory = { state, chart: () => state.chart };
  route();
  pollDevices();
})();
