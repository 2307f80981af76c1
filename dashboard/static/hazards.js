// The hazards page: counts per community (warnings pushed, rectified, open)
// and every hazard, open first, with its sensor restores; an open hazard's
// row takes an inspection note and "mark rectified" (POST .../rectify).
"use strict";

(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const C = boot.labels.centre;
  const T = boot.labels.types;
  const el = function (id) { return document.getElementById(id); };
  const when = new Intl.DateTimeFormat(boot.lang, {
    timeZone: boot.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });

  function td(value, cls) {
    const n = document.createElement("td");
    n.textContent = value === null || value === undefined || value === "" ? "—" : value;
    if (cls) n.className = cls;
    return n;
  }

  function showError(text) {
    const e = el("hazard-error");
    e.textContent = text || "";
    e.hidden = !text;
  }

  async function getJson(path) {
    const r = await fetch(boot.api + path, { credentials: "same-origin" });
    if (!r.ok) throw new Error(path + ": " + r.status + " " + (await r.text()));
    return r.json();
  }

  function countRow(c) {
    const tr = document.createElement("tr");
    tr.dataset.community = c.community;
    tr.append(td(c.community || C.unassigned), td(c.warnings, "num warnings"),
      td(c.rectified, "num rectified"), td(c.open, "num open"));
    return tr;
  }

  function stateCell(h) {
    const n = td(h.state === "open" ? C.open : C.rectified, "state");
    if (h.restored) {
      const s = document.createElement("div");
      s.className = "restored";
      s.textContent = C.restored + " " + when.format(h.restore_times_ms.at(-1));
      n.append(s);
    }
    return n;
  }

  function actionCell(h) {
    const n = document.createElement("td");
    if (h.state !== "open") return n;
    const note = document.createElement("input");
    note.className = "note";
    note.placeholder = C.rectify_note;
    const b = document.createElement("button");
    b.type = "button";
    b.className = "rectify";
    b.textContent = C.rectify;
    b.addEventListener("click", function () { rectify(h.id, note.value, b); });
    n.append(note, b);
    return n;
  }

  function hazardRow(h) {
    const tr = document.createElement("tr");
    tr.dataset.id = h.id;
    tr.dataset.state = h.state;
    tr.dataset.device = h.device_id;
    tr.append(td(when.format(h.opened_ms)), td(T[h.type] || h.type), td(h.device_id),
      td(h.community || C.unassigned), td(h.compound), stateCell(h),
      td(h.rectified_by), td(h.note), actionCell(h));
    return tr;
  }

  async function rectify(id, note, button) {
    button.disabled = true;
    const r = await fetch(boot.api + "/hazards/" + id + "/rectify", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": boot.csrf },
      body: JSON.stringify({ note: note }),
    });
    showError(r.ok ? "" : (await r.json()).detail || String(r.status));
    await load();
  }

  async function load() {
    try {
      const [counts, hazards] = await Promise.all([getJson("/hazards/counts"),
        getJson("/hazards")]);
      el("count-rows").replaceChildren(...counts.map(countRow));
      el("hazard-rows").replaceChildren(...hazards.map(hazardRow));
      document.body.dataset.loaded = "true";
    } catch (e) {
      showError(String(e));
    }
  }

  load();
  setInterval(load, 10000);
})();
