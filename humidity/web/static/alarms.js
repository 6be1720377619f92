/* Active alarms, who acknowledged them, the log-in and the acknowledgement
 * form. The alarms come from /api/alarms each time a new summary is shown
 * (dashboard.js calls load()). Writes carry the session's CSRF token; every
 * string from a datalogger or a user (device names, comments) is set with
 * textContent, never parsed as HTML. */
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const UNITS = { HIGH: " % RH", LOW: " % RH", RATE: " % RH/h", OFFLINE: " s" };
  let session = { users: false, user: null, role: null, csrf: null };
  let shown = "";       // the alarms on screen, as JSON: the table is redrawn only when they change
  let acking = null;    // the alarm the form is open for

  async function sendJson(method, url, body) {
    const headers = { "Content-Type": "application/json" };
    if (session.csrf) headers["X-CSRF-Token"] = session.csrf;
    const response = await fetch(url, { method, headers, body: JSON.stringify(body), credentials: "same-origin" });
    let answer = {};
    try { answer = await response.json(); } catch (err) { /* no JSON body */ }
    return { ok: response.ok, status: response.status, answer };
  }
  const postJson = (url, body) => sendJson("POST", url, body);

  function actionCell(label, className, onClick) {  // a table cell with one button, or empty without onClick
    const td = document.createElement("td");
    if (onClick) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = className;
      button.textContent = label;
      button.addEventListener("click", onClick);
      td.appendChild(button);
    }
    return td;
  }

  function showSession() {
    $("account").hidden = !session.users;
    $("login-form").hidden = !!session.user;
    $("logged-in").hidden = !session.user;
    $("who").textContent = session.user || "";
    $("who-role").textContent = session.role ? "(" + session.role + ")" : "";
    shown = "";  // redraw: the buttons depend on the role
    load();
  }

  async function loadSession() {
    try {
      const response = await fetch("/api/session", { cache: "no-store", credentials: "same-origin" });
      if (response.ok) session = await response.json();
    } catch (err) { /* the summary poll reports an unreachable worker */ }
    showSession();
  }

  function silencedText(a) {
    const silence = (window.humiditySilences || { byId: {} }).byId[a.silenced.id];  // silences.js loads later
    return "silenced until " + new Date(a.silenced.until).toLocaleString() + (silence ? ": " + silence.reason : "");
  }

  function ackText(a) {
    if (a.silenced) return silencedText(a);
    if (!a.acknowledged_by) return a.escalated_at ? "not yet (escalated " + new Date(a.escalated_at).toLocaleString() + ")" : "not yet";
    return "by " + a.acknowledged_by + " at " + new Date(a.acknowledged_at).toLocaleString() + (a.comment ? ": " + a.comment : "");
  }

  function render(alarms, count) {
    const number = new Intl.NumberFormat("en");
    $("alarm-count").textContent = !count ? "" : count > alarms.length
      ? "(" + number.format(count) + "; the newest " + number.format(alarms.length) + " listed)"
      : "(" + number.format(count) + ", newest first)";
    $("no-alarms").hidden = alarms.length > 0;
    $("alarm-box").hidden = alarms.length === 0;
    const operator = session.role === "operator";
    const fragment = document.createDocumentFragment();
    for (const a of alarms) {
      const tr = document.createElement("tr");
      tr.dataset.alarm = a.id;
      if (a.silenced) tr.className = "silenced";
      const cells = [
        [a.kind, "kind"], [a.device], [a.guid],
        [a.value === null || a.value === undefined ? "–" : String(a.value) + (a.kind === "OFFLINE" ? " % RH" : UNITS[a.kind]), "num"],
        [String(a.limit) + UNITS[a.kind], "num"],
        [new Date(a.since).toLocaleString() + " (" + a.since + ")"],
        [ackText(a), a.acknowledged_by || a.silenced ? "acked" : ""],
      ];
      for (const [text, cls] of cells) {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.appendChild(td);
      }
      tr.appendChild(actionCell("Acknowledge", "ack", operator && !a.acknowledged_by ? () => openForm(a) : null));
      fragment.appendChild(tr);
    }
    document.querySelector("#alarm-table tbody").replaceChildren(fragment);
  }

  async function load() {
    try {
      const response = await fetch("/api/alarms", { cache: "no-store" });
      if (!response.ok) return;
      const body = await response.json();
      const count = body.active_alarm_count === undefined ? body.active_alarms.length : body.active_alarm_count;
      const text = JSON.stringify([count, body.active_alarms]);
      window.humidityAlarms.alarms = body.active_alarms;
      if (text !== shown) {
        shown = text;
        render(body.active_alarms, count);
      }
    } catch (err) { /* the summary poll reports an unreachable worker */ }
  }

  function openForm(alarm) {
    acking = alarm;
    $("ack-what").textContent = alarm.kind + " on " + alarm.device + " (" + alarm.guid + ")";
    $("ack-error").textContent = "";
    $("ack-form").hidden = false;
    $("ack-comment").focus();
  }

  function closeForm() {
    acking = null;
    $("ack-form").hidden = true;
    $("ack-comment").value = "";
  }

  $("ack-cancel").addEventListener("click", closeForm);
  $("ack-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!acking) return;
    const result = await postJson("/api/alarms/" + encodeURIComponent(acking.id) + "/ack", { comment: $("ack-comment").value });
    if (!result.ok) {
      $("ack-error").textContent = result.answer.error || "HTTP " + result.status;
      if (result.status === 401) loadSession();
      return;
    }
    closeForm();
    // The acknowledgement shows once every worker has it: ask again until it does.
    for (let i = 0; i < 20 && !(window.humidityAlarms.alarms || []).some((a) => a.id === result.answer.id && a.acknowledged_by); i++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      await load();
    }
  });

  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("login-error").textContent = "";
    const result = await postJson("/api/login", { user: $("login-user").value, password: $("login-password").value });
    $("login-password").value = "";
    if (!result.ok) {
      $("login-error").textContent = result.answer.error || "HTTP " + result.status;
      return;
    }
    session = { users: true, user: result.answer.user, role: result.answer.role, csrf: result.answer.csrf };
    showSession();
  });

  $("logout-button").addEventListener("click", async () => {
    await postJson("/api/logout", {});
    session = { users: session.users, user: null, role: null, csrf: null };
    closeForm();
    showSession();
  });

  // silences.js calls refresh() when the silences change: an alarm's row shows its silence's reason
  window.humidityAlarms = { load, refresh: () => { shown = ""; load(); }, alarms: null, session: () => session,
    sendJson, actionCell };
  loadSession();
})();
