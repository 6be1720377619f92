/* The find / show / order / page controls of a device list, shared by the
 * summary's devices and the devices now: the lists are asked of the API a
 * page at a time, so that the page stays usable with tens of thousands. */
"use strict";
window.humidityPager = function (prefix, pageSize, reload) {
  const $ = (id) => document.getElementById(prefix + "-" + id);
  const number = new Intl.NumberFormat("en");
  const state = { offset: 0, total: 0 };
  let typing = null;

  function params() {
    const [sort, order] = $("sort").value.split(":");
    const query = new URLSearchParams({ sort, order, offset: String(state.offset), limit: String(pageSize) });
    const q = $("q").value.trim();
    if (q) query.set("q", q);
    const band = $("band");
    if (band && band.value !== "all") query.set("band", band.value);
    return query;
  }

  function shown(total, count) {
    state.total = total;
    $("page").textContent = total
      ? number.format(state.offset + 1) + "–" + number.format(state.offset + count) + " of " + number.format(total)
      : "none found";
    $("prev").disabled = state.offset === 0;
    $("next").disabled = state.offset + pageSize >= total;
  }

  function restart() {
    state.offset = 0;
    reload();
  }

  $("q").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(restart, 250); });
  $("sort").addEventListener("change", restart);
  if ($("band")) $("band").addEventListener("change", restart);
  $("prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - pageSize); reload(); });
  $("next").addEventListener("click", () => {
    if (state.offset + pageSize < state.total) { state.offset += pageSize; reload(); }
  });
  $("q").form.addEventListener("submit", (event) => { event.preventDefault(); restart(); });
  return { params, shown, state };
};
