/* Dashboard: polls /api/summary/totals every interval and redraws; the
 * devices of the summary come a page at a time from /api/summary/devices.
 * Every string from a datalogger (device names) is set with textContent or
 * drawn on the canvas by Chart.js: it is never parsed as HTML. */
"use strict";
(function () {
  const BAND_LOW = 30, BAND_HIGH = 60;
  const COLOR_INSIDE = "#2e7d32", COLOR_OUTSIDE = "#c62828";
  const PAGE_SIZE = 50;
  const number = new Intl.NumberFormat("en");
  const $ = (id) => document.getElementById(id);

  let intervalSeconds = 3;
  let shownTime = null;        // "time" of the summary on screen
  let lastNewAt = Date.now();  // local clock when the shown summary was published (server age applied)
  let chart = null;
  let asked = 0;               // the newest device page asked for (answers to older ones are dropped)

  // Shade the 30-60 % band behind the bars.
  const bandPlugin = {
    id: "band",
    beforeDatasetsDraw(c) {
      const x = c.scales.x, area = c.chartArea;
      if (!x || !area) return;
      const ctx = c.ctx;
      ctx.save();
      ctx.fillStyle = "rgba(46, 125, 50, 0.08)";
      ctx.fillRect(x.getPixelForValue(BAND_LOW), area.top, x.getPixelForValue(BAND_HIGH) - x.getPixelForValue(BAND_LOW), area.bottom - area.top);
      ctx.restore();
    },
  };

  function drawChart(rows) {
    const labels = rows.map((r) => (r.outside ? "⚠ " : "") + r.device);
    const values = rows.map((r) => r.average);
    const colors = rows.map((r) => (r.outside ? COLOR_OUTSIDE : COLOR_INSIDE));
    const canvas = $("chart");
    canvas.parentElement.style.height = Math.max(220, rows.length * 18 + 70) + "px";
    if (typeof Chart === "undefined") return; // library failed to load: the tables still work
    if (!chart) {
      chart = new Chart(canvas, {
        type: "bar",
        data: { labels, datasets: [{ label: "average % RH", data: values, backgroundColor: colors, barPercentage: 0.85, categoryPercentage: 0.9 }] },
        options: {
          indexAxis: "y", animation: false, responsive: true, maintainAspectRatio: false,
          scales: {
            x: { min: 0, max: 100, title: { display: true, text: "% RH" }, position: "top" },
            y: { ticks: { autoSkip: false, font: { size: 11 } } },
          },
          plugins: {
            legend: { display: false },
            tooltip: { callbacks: { label: (item) => item.parsed.x.toFixed(2) + " % RH" } },
          },
        },
        plugins: [bandPlugin],
      });
    } else {
      chart.data.labels = labels;
      chart.data.datasets[0].data = values;
      chart.data.datasets[0].backgroundColor = colors;
      chart.resize();
      chart.update("none");
    }
  }

  function fillTable(tbody, rows, cells) {
    const fragment = document.createDocumentFragment();
    for (const row of rows) {
      const tr = document.createElement("tr");
      for (const [text, cls] of cells(row)) {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.appendChild(td);
      }
      fragment.appendChild(tr);
    }
    tbody.replaceChildren(fragment);
  }

  const fixed2 = (x) => (x === null || x === undefined ? "–" : x.toFixed(2));

  function render(s) {
    intervalSeconds = s.interval_seconds || intervalSeconds;
    $("interval").textContent = String(intervalSeconds);
    const time = $("summary-time");
    time.textContent = new Date(s.time).toLocaleString() + " (" + s.time + ")";
    time.dateTime = s.time;
    $("total-messages").textContent = number.format(s.total_messages);
    $("total-sensors").textContent = number.format(s.total_sensors);
    $("invalid-messages").textContent = number.format(s.invalid_messages);
    $("cut").textContent = Object.entries(s.as_of || {}).map(([p, o]) => p + ": " + o).join(", ") || "–";
    renderInterval(s);
    $("device-count").textContent = "(" + number.format(s.device_count) + " devices, " +
      number.format(s.outside_count) + " outside 30 to 60 % RH)";
    window.humidityAlarms.load();
    loadDevices();
  }

  async function loadDevices() {
    const mine = ++asked;
    try {
      const response = await fetch("/api/summary/devices?" + pager.params(), { cache: "no-store" });
      if (!response.ok || mine !== asked) return;
      const body = await response.json();
      if (mine !== asked) return;
      pager.shown(body.total, body.devices.length);
      drawChart(body.devices);
      fillTable(document.querySelector("#device-table tbody"), body.devices, (r) => [
        [r.device], [fixed2(r.average), "num"], [r.outside ? "⚠ outside" : "inside", r.outside ? "outside" : ""],
        [fixed2(r.interval_average), "num"], [number.format(r.interval_count), "num"], [number.format(r.sensors), "num"],
      ]);
      window.humidityDashboard.devices = body;
    } catch (err) {
      /* the next summary asks again; poll() reports an unreachable worker */
    }
  }

  function renderInterval(s) {
    const iv = s.interval;
    if (!iv) return;
    $("interval-messages").textContent = number.format(iv.messages);
    $("interval-invalid").textContent = number.format(iv.invalid_messages);
    $("new-sensors").textContent = number.format(iv.new_sensors);
    const seconds = iv.since ? (Date.parse(s.time) - Date.parse(iv.since)) / 1000 : 0;
    $("rate").textContent = seconds > 0 ? number.format(Math.round((iv.messages + iv.invalid_messages) / seconds)) : "–";
  }

  function showProblem(text) {
    const box = $("problem");
    box.textContent = text || "";
    box.hidden = !text;
  }

  function updateStale() {
    const silentFor = (Date.now() - lastNewAt) / 1000;
    const stale = shownTime !== null && silentFor > 2 * intervalSeconds;
    $("stale").hidden = !stale;
    if (stale) $("stale-for").textContent = Math.round(silentFor) + " s";
  }

  // The cut stands still while readings arrive: say how old the counts are.
  function updateBehind(behind, limitSeconds) {
    const late = !!behind && behind.seconds > limitSeconds;
    $("behind").hidden = !late;
    if (late) {
      const at = new Date(Date.now() - behind.seconds * 1000);
      $("behind").textContent = "counts as of " + at.toLocaleTimeString("en-GB", { hour12: false }) + ", " +
        behind.readings + " readings not yet counted";
    }
  }

  async function poll() {
    try {
      const response = await fetch("/api/summary/totals", { cache: "no-store" });
      if (response.status === 503) {
        showProblem("No summary yet: the service is starting or waiting for data.");
      } else if (!response.ok) {
        showProblem("The worker answered HTTP " + response.status + ".");
      } else {
        const age = Number(response.headers.get("X-Summary-Age-Seconds"));
        const s = await response.json();
        showProblem("");
        updateBehind(s.behind, s.behind_limit_seconds);
        if (s.time !== shownTime) {
          window.humidityDashboard.summary = s;
          shownTime = s.time;
          lastNewAt = Date.now() - (Number.isFinite(age) && age > 0 ? age * 1000 : 0);
          render(s);
        }
      }
    } catch (err) {
      showProblem("Cannot reach the worker (" + err.message + "); retrying.");
    }
    updateStale();
    setTimeout(poll, Math.max(500, intervalSeconds * 1000));
  }

  const pager = window.humidityPager("device", PAGE_SIZE, loadDevices);
  window.humidityDashboard = { summary: null, devices: null, chart: () => chart };
  poll();
  setInterval(updateStale, 1000);
})();
