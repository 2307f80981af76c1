// The history page: the filter form becomes the query string of
// /api/v1/history/alarms (and of the CSV link, so the export has the same
// filters); pages go back and forth by the cursors the API hands out; a
// click on a row shows the alarm's full record (audit trail, notifications),
// as does the address ?record=ID.
"use strict";

(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const L = boot.labels;
  const H = L.history;
  const PAGE = 50;
  const el = function (id) { return document.getElementById(id); };
  const form = el("filters");
  const clock = new Intl.DateTimeFormat(boot.lang, {
    timeZone: boot.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
  let cursors = [null];  // the `before` of each page shown so far; last = this page
  let next = null;
  let loads = 0;

  function time(ms) { return ms === null || ms === undefined ? "—" : clock.format(new Date(ms)); }

  function node(tag, text, cls) {
    const n = document.createElement(tag);
    if (text !== undefined) n.textContent = text;
    if (cls) n.className = cls;
    return n;
  }

  function query() {
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) q.append(k, String(v));
    return q;
  }

  function fillForm(q) {
    for (const input of form.elements) {
      if (input.name && q.has(input.name)) input.value = q.get(input.name);
    }
  }

  function place(a) {
    if (!a.household) return "—";
    return [a.community, a.compound, a.grid_cell, a.household].filter(Boolean).join(" · ");
  }

  function row(a) {
    const tr = document.createElement("tr");
    tr.dataset.id = String(a.id);
    tr.dataset.priority = String(a.priority);
    tr.dataset.state = a.state;
    tr.append(node("td", time(a.created_ms), "time"),
      node("td", L.types[a.type] || a.type, "type"), node("td", a.device + " · " + a.seq),
      node("td", place(a), "place"), node("td", L.states[a.state] || a.state, "state-cell"),
      node("td", a.outcome ? L.outcomes[a.outcome] : H.none, "outcome"),
      node("td", a.acked_by || "—"), node("td", time(a.resolved_ms), "time"));
    tr.addEventListener("click", function () { record(a.id); });
    return tr;
  }

  async function load() {
    const q = query();
    el("export").href = boot.api + "/history/alarms.csv?" + q;
    history.replaceState(null, "", "?" + q + location.hash);  // the hash: the tab shown
    q.set("limit", String(PAGE));
    const before = cursors[cursors.length - 1];
    if (before) q.set("before", before);
    const mine = ++loads;
    const r = await fetch(boot.api + "/history/alarms?" + q, { credentials: "same-origin" });
    if (mine !== loads) return;
    const err = el("history-error");
    if (!r.ok) {
      err.textContent = H.error + ": " + r.status + " " + (await r.text());
      err.hidden = false;
      return;
    }
    err.hidden = true;
    const page = await r.json();
    next = page.next;
    const first = (cursors.length - 1) * PAGE;
    el("history-rows").replaceChildren(...page.alarms.map(row));
    el("history-empty").hidden = page.total > 0;
    el("total").textContent = H.total.replace("{total}", String(page.total))
      .replace("{from}", String(page.alarms.length ? first + 1 : 0))
      .replace("{to}", String(first + page.alarms.length));
    el("total").dataset.total = String(page.total);
    el("page-next").disabled = next === null;
    el("page-prev").disabled = el("page-first").disabled = cursors.length < 2;
    document.body.dataset.loaded = String(mine);
  }

  function restart() { cursors = [null]; load(); }

  async function record(id) {
    const r = await fetch(boot.api + "/history/alarms/" + id, { credentials: "same-origin" });
    if (!r.ok) return;
    const rec = await r.json();
    const a = rec.detail.alarm;
    const site = rec.detail.site || {};
    el("record-id").textContent = "#" + a.id;
    const dl = el("record-fields");
    dl.replaceChildren();
    [[L.text.type, L.types[a.type] || a.type], [L.text.device, a.device + " · seq " + a.seq],
     [L.text.state, L.states[a.state] || a.state],
     [L.text.outcome, a.outcome ? L.outcomes[a.outcome] : H.none],
     [L.text.dispatched_to, a.dispatched_to ? L.dispatch_to[a.dispatched_to] : "—"],
     [L.text.device_time, time(a.device_time_ms)], [L.text.received_time, time(a.received_ms)],
     [L.registry.household, site.household || "—"],
     [L.registry.address, [site.address, site.compound, site.community].filter(Boolean)
       .join(" · ") || "—"],
    ].forEach(function (p) { dl.append(node("dt", p[0]), node("dd", p[1])); });
    el("record-audit").replaceChildren(...rec.detail.audit.map(function (x) {
      let what = L.actions[x.action] || x.action;
      if (x.outcome) what += " · " + L.outcomes[x.outcome];
      if (x.dispatched_to) what += " · " + L.dispatch_to[x.dispatched_to];
      const li = node("li", time(x.at_ms) + " · " + x.username + " · " + what +
        (x.note ? " — " + x.note : ""));
      li.dataset.action = x.action;
      return li;
    }));
    const notified = rec.notifications.map(function (n) {
      const li = node("li", time(n.at_ms) + " · " + n.name + " · " + n.channel + " " +
        n.target + " · " + n.status + (n.error ? " — " + n.error : ""));
      li.dataset.status = n.status;
      return li;
    });
    el("record-notified").replaceChildren(
      ...(notified.length ? notified : [node("li", L.text.notified_none, "muted")]));
    el("record").dataset.id = String(a.id);
    el("record").hidden = false;
  }

  form.addEventListener("submit", function (e) { e.preventDefault(); restart(); });
  form.addEventListener("reset", function () { setTimeout(restart, 0); });
  el("page-next").addEventListener("click", function () {
    if (next !== null) { cursors.push(next); load(); }
  });
  el("page-prev").addEventListener("click", function () {
    if (cursors.length > 1) { cursors.pop(); load(); }
  });
  el("page-first").addEventListener("click", restart);
  el("record-close").addEventListener("click", function () { el("record").hidden = true; });
  const asked = new URLSearchParams(location.search);
  fillForm(asked);
  load();
  // /history?record=ID (the desk's link for a closed alarm) shows its record
  if (/^[1-9][0-9]{0,15}$/.test(asked.get("record") || "")) record(Number(asked.get("record")));
})();
