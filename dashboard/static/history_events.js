// The history page's second tab (#events): the events that are not alarms
// (restores, cancels, tests, faults, supervision) from
// /api/v1/history/events, its filter form as the query string (and the CSV
// link's), pages back and forth by the API's cursors, the true total.
// The address's hash says which tab is shown; history.js keeps it.
"use strict";

(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const L = boot.labels;
  const H = L.history;
  const PAGE = 50;
  const el = function (id) { return document.getElementById(id); };
  const form = el("event-filters");
  const clock = new Intl.DateTimeFormat(boot.lang, {
    timeZone: boot.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  let cursors = [null];  // the `before` of each page shown so far; last = this page
  let next = null;
  let loads = 0;
  let loaded = false;

  function node(tag, text, cls) {
    const n = document.createElement(tag);
    n.textContent = text;
    if (cls) n.className = cls;
    return n;
  }

  function place(e) {
    if (!e.household) return "—";
    return [e.community, e.compound, e.grid_cell, e.household].filter(Boolean).join(" · ");
  }

  function row(e) {
    const tr = document.createElement("tr");
    tr.dataset.id = String(e.id);
    tr.dataset.kind = e.kind;
    const data = Object.keys(e.data).length ? JSON.stringify(e.data) : "";
    tr.append(node("td", clock.format(new Date(e.received_ms)), "time"),
      node("td", H["kind_" + e.kind] || e.kind, "kind"),
      node("td", L.types[e.type] || e.type, "type"), node("td", e.device + " · " + e.seq),
      node("td", place(e), "place"), node("td", clock.format(new Date(e.event_time_ms)), "time"),
      node("td", data, "data"));
    return tr;
  }

  function query() {
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) q.append(k, String(v));
    return q;
  }

  async function load() {
    loaded = true;
    const q = query();
    el("events-export").href = boot.api + "/history/events.csv?" + q;
    q.set("limit", String(PAGE));
    const before = cursors[cursors.length - 1];
    if (before) q.set("before", before);
    const mine = ++loads;
    const r = await fetch(boot.api + "/history/events?" + q, { credentials: "same-origin" });
    if (mine !== loads) return;
    const err = el("events-error");
    if (!r.ok) {
      err.textContent = H.error + ": " + r.status + " " + (await r.text());
      err.hidden = false;
      return;
    }
    err.hidden = true;
    const page = await r.json();
    next = page.next;
    const first = (cursors.length - 1) * PAGE;
    el("event-rows").replaceChildren(...page.events.map(row));
    el("events-empty").hidden = page.total > 0;
    const total = el("events-total");
    total.textContent = H.total.replace("{total}", String(page.total))
      .replace("{from}", String(page.events.length ? first + 1 : 0))
      .replace("{to}", String(first + page.events.length));
    total.dataset.total = String(page.total);
    el("events-next").disabled = next === null;
    el("events-prev").disabled = el("events-first").disabled = cursors.length < 2;
  }

  function restart() { cursors = [null]; load(); }

  // the tab the hash names: #events, else the alarms
  function show() {
    const events = location.hash === "#events";
    el("alarms-view").hidden = events;
    el("events-view").hidden = !events;
    el("tab-alarms").setAttribute("aria-selected", String(!events));
    el("tab-events").setAttribute("aria-selected", String(events));
    if (events && !loaded) load();
  }

  form.addEventListener("submit", function (e) { e.preventDefault(); restart(); });
  form.addEventListener("reset", function () { setTimeout(restart, 0); });
  el("events-next").addEventListener("click", function () {
    if (next !== null) { cursors.push(next); load(); }
  });
  el("events-prev").addEventListener("click", function () {
    if (cursors.length > 1) { cursors.pop(); load(); }
  });
  el("events-first").addEventListener("click", restart);
  window.addEventListener("hashchange", show);
  show();
})();
