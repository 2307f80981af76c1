// The reports page: reads /api/v1/reports with the form's range, period and
// grouping; fills the figures and tables; draws the counts per period (by
// type, stacked) and the false-alarm rate with Chart.js (static/vendor).
// The CSV links carry the same query; "print" prints the page (print CSS).
"use strict";

(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const L = boot.labels;
  const P = L.reports;
  const el = function (id) { return document.getElementById(id); };
  const form = el("report-form");
  const charts = {};
  const COLOURS = ["#c62828", "#1565c0", "#2e7d32", "#f9a825", "#6a1b9a", "#00838f",
                   "#546e7a", "#e65100", "#8d6e00", "#ad1457", "#283593", "#558b2f"];

  function node(tag, text, cls) {
    const n = document.createElement(tag);
    if (text !== undefined) n.textContent = text;
    if (cls) n.className = cls;
    return n;
  }
  function pct(x) { return x === null ? "—" : (x * 100).toFixed(1) + "%"; }
  function num(x) { return x === null ? "—" : String(Math.round(x * 10) / 10); }
  function place(p) { return p === "" ? (form.by.value === "none" ? P.all_places : P.unassigned) : p; }
  function spread(s) { return s.n ? num(s.p50) + " / " + num(s.p90) + " (" + s.n + ")" : "—"; }
  function outcomes(o) {
    return Object.keys(o).map(function (k) {
      return (k === "none" ? L.history.none : L.outcomes[k]) + " " + o[k];
    }).join(" · ");
  }
  function tr(cells, data) {
    const row = document.createElement("tr");
    for (const [k, v] of Object.entries(data || {})) row.dataset[k] = v;
    cells.forEach(function (c) { row.append(typeof c === "string" ? node("td", c) : c); });
    return row;
  }
  function pairs(dl, list) {
    dl.replaceChildren();
    list.forEach(function (p) {
      const dd = node("dd", String(p[2]));
      dd.id = p[0];
      dl.append(node("dt", p[1]), dd);
    });
  }

  // a period's first day ("2026-12-02", the API's) in the page's date format
  const dayFmt = new Intl.DateTimeFormat(boot.lang, {
    timeZone: "UTC", year: "numeric", month: "2-digit", day: "2-digit" });
  function day(iso) { return dayFmt.format(new Date(iso + "T00:00:00Z")); }

  function draw(id, config) {
    if (charts[id]) charts[id].destroy();
    charts[id] = new window.Chart(el(id), config);
  }

  function chartsOf(rep) {
    const labels = rep.series.map(function (s) { return day(s.bucket); });
    const types = Object.keys(rep.totals.by_type);
    draw("chart-counts", {
      type: "bar",
      data: { labels: labels, datasets: types.map(function (t, i) {
        return { label: L.types[t] || t, backgroundColor: COLOURS[i % COLOURS.length],
                 data: rep.series.map(function (s) { return s.by_type[t] || 0; }) };
      }) },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
                 scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
    });
    draw("chart-false", {
      type: "line",
      data: { labels: labels, datasets: [{ label: P.false_rate, borderColor: "#c62828",
        spanGaps: true, data: rep.series.map(function (s) {
          return s.false_rate === null ? null : s.false_rate * 100; }) }] },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
                 scales: { y: { beginAtZero: true, max: 100 } } },
    });
  }

  function fill(rep) {
    el("total-alarms").textContent = String(rep.totals.alarms);
    el("false-rate").textContent = pct(rep.totals.false_rate);
    el("ack-late").textContent = String(rep.totals.ack_late);
    el("verify-late").textContent = String(rep.totals.verify_late);
    el("sla-rule").textContent = P.sla_rule.replace("{ack}", rep.sla.ack_s)
      .replace("{verify}", rep.sla.verify_s);
    const fmt = new Intl.DateTimeFormat(boot.lang, {  // the desk's one date format
      timeZone: boot.timezone, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
    });
    el("report-range").textContent = P.range + ": " + fmt.format(new Date(rep.since_ms)) +
      " – " + fmt.format(new Date(rep.until_ms)) + " · " + P.generated + " " +
      fmt.format(new Date(rep.generated_ms));
    el("outcomes").tBodies[0].replaceChildren(...Object.entries(rep.totals.by_outcome).map(
      function (kv) {
        return tr([kv[0] === "none" ? L.history.none : L.outcomes[kv[0]], node("td",
          String(kv[1]), "num")], { outcome: kv[0] });
      }));
    el("timings").replaceChildren(...Object.entries(rep.timings).map(function (kv) {
      return tr([P[kv[0]], node("td", String(kv[1].n), "num"), node("td", num(kv[1].p50), "num"),
        node("td", num(kv[1].p90), "num")], { step: kv[0] });
    }));
    el("operators").replaceChildren(...rep.operators.map(function (o) {
      return tr([o.operator, spread(o.ack), spread(o.verify), spread(o.dispatch),
        spread(o.resolve)], { operator: o.operator });
    }));
    const w = rep.workers;
    el("workers").replaceChildren(...[{ worker: "", ...w }].concat(w.by_worker).map(
      function (x) {
        return tr([x.worker === "" ? P.all_workers : x.worker, node("td", spread(x.accept),
          "num accept"), node("td", spread(x.arrive), "num arrive"),
          node("td", String(x.overdue), "num overdue")], { worker: x.worker });
      }));
    el("places").replaceChildren(...rep.places.map(function (p) {
      return tr([place(p.place), node("td", String(p.alarms), "num alarms"),
        node("td", pct(p.false_rate), "num"), node("td", String(p.ack_late), "num"),
        node("td", String(p.verify_late), "num")], { place: p.place });
    }));
    // each period x place with all its figures, one compact row
    el("rows").replaceChildren(...rep.rows.map(function (r) {
      const t = r.timings, h = r.hazards, d = r.devices;
      return tr([day(r.bucket), place(r.place), node("td", String(r.alarms), "num"),
        outcomes(r.by_outcome), node("td", pct(r.false_rate), "num"),
        node("td", spread(t.ack), "num ack"), node("td", spread(t.verify), "num verify"),
        node("td", spread(t.dispatch), "num dispatch"),
        node("td", spread(t.resolve), "num resolve"),
        node("td", r.ack_late + " / " + r.verify_late, "num late"),
        node("td", h.opened + " / " + h.still_open, "num hazards"),
        node("td", spread(h.rectify_hours), "num rectify"),
        node("td", num(d.offline_hours), "num offline"),
        node("td", String(d.low_battery_alarms), "num low-battery")],
        { bucket: r.bucket, place: r.place });
    }));
    const h = rep.hazards;
    pairs(el("hazards"), [["hz-opened", P.hazards_opened, h.opened],
      ["hz-rectified", P.hazards_rectified, h.rectified],
      ["hz-open-now", P.hazards_open_now, h.open_now],
      ["hz-time", P.rectify_time + " p50 / p90", spread(h.rectify_hours)]]);
    const d = rep.devices;
    pairs(el("devices"), [["dv-offline", P.offline_alarms, d.offline_alarms],
      ["dv-offline-devices", P.offline_devices, d.offline_devices],
      ["dv-offline-hours", P.offline_hours, num(d.offline_hours)],
      ["dv-low", P.low_battery_alarms, d.low_battery_alarms],
      ["dv-low-devices", P.low_battery_devices, d.low_battery_devices]]);
    colours(rep);
    chartsOf(rep);
  }

  function colours(rep) {
    const rule = rep.colour_rule;
    el("colour-rule").textContent = P.colour_rule.replace("{days}", rule.window_days)
      .replace("{yellow}", rule.yellow).replace("{red}", rule.red);
    const periods = rep.colours.length ? rep.colours[0].colours.map(function (p) {
      return p.period; }) : [];
    el("colour-head").replaceChildren(node("th", P.community), node("th", P.compound),
      ...periods.map(function (p) { return node("th", day(p)); }));
    if (!rep.colours.length) {
      const td = node("td", P.no_compounds);
      td.colSpan = 2;
      el("colours").replaceChildren(tr([td]));
      return;
    }
    el("colours").replaceChildren(...rep.colours.map(function (c) {
      return tr([c.community === "" ? P.unassigned : c.community, c.compound,
        ...c.colours.map(function (p) {
          const td = node("td", P["colour_" + p.colour] + " (" + p.incidents + ")",
            "colour colour-" + p.colour);
          td.dataset.period = p.period;
          td.dataset.colour = p.colour;
          return td;
        })], { community: c.community, compound: c.compound });
    }));
  }

  async function load() {
    const q = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) q.append(k, String(v));
    el("export").href = boot.api + "/reports.csv?" + q;
    el("export-colours").href = boot.api + "/reports/colours.csv?" + q;
    el("export-workers").href = boot.api + "/reports/workers.csv?" + q;
    history.replaceState(null, "", "?" + q);
    const r = await fetch(boot.api + "/reports?" + q, { credentials: "same-origin" });
    const err = el("report-error");
    if (!r.ok) {
      err.textContent = P.error + ": " + r.status + " " + (await r.text());
      err.hidden = false;
      return;
    }
    err.hidden = true;
    fill(await r.json());
    document.body.dataset.loaded = q.toString();
  }

  const start = new URLSearchParams(location.search);
  for (const input of form.elements) {
    if (input.name && start.has(input.name)) input.value = start.get(input.name);
  }
  form.addEventListener("submit", function (e) { e.preventDefault(); load(); });
  el("print").addEventListener("click", function () { window.print(); });
  load();
})();
