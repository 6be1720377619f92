/* Maintenance silences: the active ones (/api/silences) with an End button
 * for operators, and the "Silence…" action of the device view, which asks
 * for the end and the reason. Writes carry the session's CSRF token (the
 * session and the helper that writes are alarms.js's; the device viewed is
 * history.js's, which loads first); device names,
 * logger ids and reasons are set with textContent, never parsed as HTML. */
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const REFRESH_MS = 3000;
  const HOURS_DEFAULT = 4;
  let shown = "";  // the silences on screen, as JSON, with the role: redrawn only when they change
  window.humiditySilences = { byId: {} };

  const alarms = window.humidityAlarms;  // the session, writes with its CSRF token, table buttons
  const session = alarms.session;
  const viewedDevice = () => window.humidityHistory.state.view;  // history.js reads the #/device/<name> route

  function render(silences) {
    $("silences").hidden = silences.length === 0;
    const operator = session().role === "operator";
    const fragment = document.createDocumentFragment();
    for (const s of silences) {
      const tr = document.createElement("tr");
      tr.dataset.silence = s.id;
      const cells = [s.device || "any", s.guid || "any", s.kinds.length ? s.kinds.join(", ") : "all",
        new Date(s.until).toLocaleString() + " (" + s.until + ")", s.reason, s.created_by];
      for (const text of cells) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      tr.appendChild(alarms.actionCell("End now", "end", operator ? () => end(s) : null));
      fragment.appendChild(tr);
    }
    document.querySelector("#silence-table tbody").replaceChildren(fragment);
  }

  async function load() {
    $("silence-actions").hidden = !(session().role === "operator" && viewedDevice() !== null);
    try {
      const response = await fetch("/api/silences", { cache: "no-store" });
      if (!response.ok) return;
      const silences = (await response.json()).silences;
      window.humiditySilences.byId = Object.fromEntries(silences.map((s) => [s.id, s]));
      const text = JSON.stringify([session().role, silences]);
      if (text !== shown) {
        shown = text;
        render(silences);
        alarms.refresh();
      }
    } catch (err) { /* the summary poll reports an unreachable worker */ }
  }

  async function poll() {
    await load();
    setTimeout(poll, REFRESH_MS);
  }

  async function end(silence) {
    const result = await alarms.sendJson("DELETE", "/api/silences/" + encodeURIComponent(silence.id), {});
    $("silences-error").textContent = result.ok ? "" : result.answer.error || "HTTP " + result.status;
    await load();
  }

  function localInput(ms) {
    const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
    return d.toISOString().slice(0, 16);
  }

  function openForm() {
    $("silence-what").textContent = viewedDevice();
    $("silence-until").value = localInput(Date.now() + HOURS_DEFAULT * 3600000);
    $("silence-error").textContent = "";
    $("silence-form").hidden = false;
    $("silence-reason").focus();
  }

  function closeForm() {
    $("silence-form").hidden = true;
    $("silence-reason").value = "";
  }

  $("silence-open").addEventListener("click", openForm);
  $("silence-cancel").addEventListener("click", closeForm);
  $("silence-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const until = new Date($("silence-until").value);  // the browser's local time
    if (isNaN(until.getTime())) {
      $("silence-error").textContent = "give the end as a date and time";
      return;
    }
    const result = await alarms.sendJson("POST", "/api/silences",
      { device: viewedDevice(), until: until.toISOString(), reason: $("silence-reason").value });
    if (!result.ok) {
      $("silence-error").textContent = result.answer.error || "HTTP " + result.status;
      return;
    }
    closeForm();
    // The silence shows once this worker has read it: ask again until it does.
    for (let i = 0; i < 20 && !window.humiditySilences.byId[result.answer.id]; i++) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      await load();
    }
  });

  window.addEventListener("hashchange", () => { closeForm(); load(); });  // after history.js's: the route is read
  poll();
})();
