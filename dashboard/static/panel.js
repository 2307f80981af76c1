// The alarm desk's detail panel: one alarm's fields, the workflow actions
// the user's role allows in its state, its audit trail and the alarms flood
// control folded into it.  Actions POST to /api/v1/alarms/{id}/{action}
// with the session's CSRF token; the resulting transition reaches every
// desk over the stream.  The first action takes the alarm (claims.py):
// while another operator holds it the panel says who and offers no action;
// a supervisor may reassign it, the holder release it.  keys.js acts
// through HGPanel.act.
//
// The alarm's action plan (plans.py) is listed with what was recorded on
// each step; a step's outcome is recorded with its button or, from keys.js,
// its number (HGPanel.step).  Resolving asks for the result the alarm
// closes with and names the plan's steps nobody recorded (HGPanel.resolve).
"use strict";

(function () {
  const desk = window.HGDesk;
  const boot = desk.boot;
  const L = boot.labels;
  const perms = new Set(boot.user.permissions);
  const PERM = { ack: "alarm.ack", verify: "alarm.verify",
                 dispatch: "alarm.dispatch", resolve: "alarm.resolve" };
  const R = window.HGReadable;
  const OPEN = ["received", "acknowledged", "verified", "dispatched"];
  const el = function (id) { return document.getElementById(id); };
  const FOLDED_PAGE = 50;
  const RELOAD_DELAY_MS = 500;
  let current = null;
  let shownAlarm = null;
  let foldedNext = null;
  let reloadTimer = null;
  let loads = 0;
  let plan = null;         // the shown alarm's plan with its records (GET .../plan)
  let planReady = Promise.resolve();
  let loading = Promise.resolve();
  let auditRows = [];
  let typed = "";          // the note typed for the shown alarm, not yet sent
  const P = L.plan;
  const STEP_OUTCOMES = ["done", "no_answer", "not_needed", "failed"];
  const RESULTS = ["genuine", "false", "test"];

  function text(tag, value, cls) {
    const node = document.createElement(tag);
    node.textContent = value;
    if (cls) node.className = cls;
    return node;
  }

  function button(id, label, onClick) {
    const b = text("button", label);
    b.type = "button";
    b.id = id;
    b.addEventListener("click", onClick);
    return b;
  }

  function fields(a) {
    const time = function (ms) { return desk.formatTime(ms) || L.text.not_synced; };
    const shown = desk.shownAfter(a.id);
    const list = [
      [L.text.type, L.types[a.type] || a.type],
      [L.text.device, a.device + " · " + R.fill(L.desk.seq, { seq: a.seq })],
      [L.text.state, L.states[a.state] || a.state],
      [L.text.outcome, a.outcome ? L.outcomes[a.outcome] : "—"],
      [L.text.dispatched_to, a.dispatched_to ? L.dispatch_to[a.dispatched_to] : "—"],
      [L.text.device_time, time(a.device_time_ms)],
      [L.text.gateway_time, time(a.gateway_time_ms)],
      [L.text.received_time, time(a.received_ms)],
      [L.text.data, R.text(a.type, a.data, L) || "—"],
      [L.desk.operator, a.claimed_by || L.desk.nobody],
    ];
    if (a.count > 1) {
      list.splice(1, 0, [L.text.count, L.text.count_folded
        .replace("{count}", String(a.count)).replace("{folded}", String(a.count - 1))]);
    }
    if (shown !== undefined) list.push([L.text.shown_after, shown + " ms"]);
    const dl = el("detail-fields");
    dl.replaceChildren();
    list.forEach(function (pair) {
      dl.appendChild(text("dt", pair[0]));
      dl.appendChild(text("dd", pair[1]));
    });
  }

  // who and where the device protects (registry): household, address,
  // grid cell and worker, contacts in rank order; or "unregistered"
  function siteFields(site) {
    if (!site) return;
    const G = L.registry;
    const dl = el("detail-fields");
    const add = function (label, id, value) {
      dl.appendChild(text("dt", label));
      const dd = typeof value === "string" ? text("dd", value) : value;
      dd.id = id;
      dl.appendChild(dd);
    };
    if (!site.registered) { add(G.household, "site-household", G.unregistered); return; }
    if (!site.household) { add(G.household, "site-household", G.no_household); return; }
    add(G.household, "site-household", site.household);
    add(G.address, "site-address", [site.address, site.compound, site.community]
      .filter(Boolean).join(" · "));
    const cell = site.grid_cell;
    add(G.grid_cell, "site-grid", cell ? cell.code + " " + cell.name : "—");
    add(G.grid_worker, "site-worker", cell && cell.worker_name
      ? cell.worker_name + " " + cell.worker_phone : "—");
    const dd = document.createElement("dd");
    const ol = text("ol", "", "ranked");
    site.contacts.forEach(function (c) {
      ol.appendChild(text("li", c.name + " " + c.phone + (c.relation ? " (" + c.relation + ")" : "")));
    });
    dd.appendChild(site.contacts.length ? ol : text("span", G.none, "muted"));
    add(G.contacts, "site-contacts", dd);
  }

  function note() { return el("action-note") ? el("action-note").value : ""; }

  // who holds the alarm: the holder may release it, a supervisor reassign it
  function claimActions(a, box) {
    if (OPEN.indexOf(a.state) < 0) return;
    if (a.claimed_by === boot.user.username) {
      box.appendChild(button("act-release", L.actions.release, function () {
        act(a.id, "release", { note: note() });
      }));
    }
    if (!perms.has("alarm.reassign")) return;
    const to = document.createElement("input");
    to.id = "reassign-to";
    to.placeholder = L.desk.reassign_to + " " + L.desk.reassign_nobody;
    to.value = a.claimed_by === boot.user.username ? "" : boot.user.username;
    const reassign = function () {
      act(a.id, "reassign", { to: to.value.trim() || null, note: note() });
    };
    to.addEventListener("keydown", function (e) {  // keys.js's t comes here
      if (e.key === "Enter") { e.preventDefault(); reassign(); }
    });
    box.appendChild(to);
    box.appendChild(button("act-reassign", L.actions.reassign, reassign));
  }

  function actions(a) {
    const box = el("actions");
    box.replaceChildren();
    const held = a.claimed_by && a.claimed_by !== boot.user.username && OPEN.indexOf(a.state) >= 0;
    const can = held ? [] : a.actions.filter(function (x) { return perms.has(PERM[x]); });
    if (held) box.appendChild(text("p", R.fill(L.desk.held_by, { user: a.claimed_by }), "held"));
    if (can.length === 0) {
      if (!held) box.appendChild(text("p", L.text.no_actions, "muted"));
      claimActions(a, box);
      return;
    }
    const input = document.createElement("input");
    input.id = "action-note";
    input.placeholder = L.text.note;
    // a note being typed survives the panel's reload (another desk's change)
    input.value = shownAlarm !== null && shownAlarm.id === a.id ? typed : "";
    input.addEventListener("input", function () { typed = input.value; });
    box.appendChild(input);
    if (can.includes("ack")) box.appendChild(button("act-ack", L.actions.ack, function () {
      act(a.id, "ack", { note: note() });
    }));
    if (can.includes("verify")) Object.keys(L.outcomes).forEach(function (o) {
      box.appendChild(button("act-verify-" + o, L.actions.verify + ": " + L.outcomes[o],
        function () { act(a.id, "verify", { outcome: o, note: note() }); }));
    });
    if (can.includes("dispatch")) {
      const to = document.createElement("select");
      to.id = "dispatch-to";
      Object.keys(L.dispatch_to).forEach(function (k) {
        const opt = text("option", L.dispatch_to[k]);
        opt.value = k;
        to.appendChild(opt);
      });
      box.appendChild(to);
      box.appendChild(button("act-dispatch", L.actions.dispatch, function () {
        act(a.id, "dispatch", { to: to.value, note: note() });
      }));
    }
    if (can.includes("resolve")) box.appendChild(button("act-resolve", L.actions.resolve,
      function () { resolve(a); }));
    claimActions(a, box);
  }

  // a step row's step, from the plan's records (null until the plan is loaded)
  function stepOf(auditId) {
    if (plan === null || plan.alarm !== current) return null;
    for (const s of plan.steps) {
      if (s.records.some(function (x) { return x.audit_id === auditId; })) return s;
    }
    return null;
  }

  function audit(rows) {
    auditRows = rows;
    const ol = el("audit");
    ol.replaceChildren();
    rows.forEach(function (r) {
      let what = L.actions[r.action] || r.action;
      if (r.action === "step") {
        const s = stepOf(r.id);
        if (s) what += " · " + s.label[boot.lang];
        what += " · " + (P[r.outcome] || r.outcome);
      } else if (r.outcome) what += " · " + L.outcomes[r.outcome];
      if (r.dispatched_to) what += " · " + L.dispatch_to[r.dispatched_to];
      if (r.action === "reassign") what += " → " + (r.claimed_by || L.desk.nobody);
      const why = r.action === "release" ? L.desk["released_" + r.note] : undefined;
      if (why) r = Object.assign({}, r, { note: why });
      const li = text("li", desk.formatTime(r.at_ms) + " · " + r.username + " · " + what +
        " (" + (L.states[r.from_state] || r.from_state) + " → " +
        (L.states[r.to_state] || r.to_state) + ")" + (r.note ? " — " + r.note : ""));
      li.dataset.action = r.action;
      ol.appendChild(li);
    });
  }

  // who the centre told about the alarm (contact notification), newest last
  async function notified(id) {
    const ol = el("notified");
    const r = await fetch(boot.api + "/alarms/" + id + "/notifications",
                          { credentials: "same-origin" });
    if (!r.ok || current !== id) return;
    const rows = await r.json();
    ol.replaceChildren();
    if (!rows.length) ol.appendChild(text("li", L.text.notified_none, "muted"));
    rows.forEach(function (n) {
      const li = text("li", desk.formatTime(n.at_ms) + " · " + n.name + " · " +
        (L.notify[n.channel] || n.channel) + " " + n.target + " · " +
        (L.notify[n.status] || n.status) + (n.error ? " — " + n.error : ""));
      li.dataset.status = n.status;
      ol.appendChild(li);
    });
  }

  // the alarms flood control folded into this one, newest first, a page at
  // a time (each stored and acked; none has a row of its own)
  async function folded(a, more) {
    const box = el("folded-box");
    box.hidden = a.count < 2;
    if (box.hidden) return;
    let url = boot.api + "/alarms/" + a.id + "/folded?limit=" + FOLDED_PAGE;
    if (more && foldedNext !== null) url += "&before=" + foldedNext;
    const r = await fetch(url, { credentials: "same-origin" });
    if (!r.ok || current !== a.id) return;
    const page = await r.json();
    const ol = el("folded");
    if (!more) ol.replaceChildren();
    page.events.forEach(function (ev) {
      const li = text("li", R.fill(L.desk.seq, { seq: ev.seq }) + " · " +
        (desk.formatTime(ev.event_time_ms) || L.text.not_synced) + " · " +
        L.text.received_time + " " + desk.formatTime(ev.received_ms));
      li.dataset.seq = String(ev.seq);
      ol.appendChild(li);
    });
    foldedNext = page.next;
    el("folded-more").hidden = page.next === null;
    el("folded-shown").textContent = L.text.folded_shown
      .replace("{shown}", String(ol.children.length)).replace("{total}", String(page.count - 1));
  }

  // the sensor's recent readings (the gateway's telemetry) around the alarm:
  // the field that matches the alarm type, with the set point as a line
  const FIELD = { residual_current: "r_max", over_temp: "t_max", over_current: "i_max",
                  over_voltage: "v_max", under_voltage: "v_min" };
  // the alarm type's set point (data.set) -> [divisor, decimals, unit] (protocol units)
  const UNIT = { residual_current: [1, 0, "mA"], over_temp: [10, 1, "°C"],
                 over_current: [1000, 1, "A"], over_voltage: [1000, 0, "V"],
                 under_voltage: [1000, 0, "V"] };
  const SVGNS = "http://www.w3.org/2000/svg";
  function line(svg, pts, cls) {
    const p = document.createElementNS(SVGNS, "polyline");
    p.setAttribute("points", pts.map(function (q) { return q.join(","); }).join(" "));
    p.setAttribute("class", cls);
    p.setAttribute("fill", "none");
    svg.appendChild(p);
  }
  async function chart(a) {
    const box = el("chart-box");
    const r = await fetch(boot.api + "/alarms/" + a.id + "/telemetry",
                          { credentials: "same-origin" });
    if (!r.ok || current !== a.id) return;
    const got = await r.json();
    const pts = got.points.filter(function (p) { return p.kind === "telemetry"; });
    const field = FIELD[a.type] || (pts.length ? Object.keys(pts[0].data)[0] : null);
    const xs = pts.filter(function (p) { return typeof p.data[field] === "number"; });
    box.hidden = xs.length < 2;
    if (box.hidden) return;
    const svg = el("chart");
    svg.replaceChildren();
    const ys = xs.map(function (p) { return p.data[field]; });
    const setp = typeof a.data.set === "number" ? a.data.set : null;
    const lo = Math.min.apply(null, setp === null ? ys : ys.concat([setp]));
    const hi = Math.max.apply(null, setp === null ? ys : ys.concat([setp]));
    const t0 = xs[0].t, t1 = xs[xs.length - 1].t;
    const x = function (t) { return 4 + 292 * (t - t0) / Math.max(1, t1 - t0); };
    const y = function (v) { return 76 - 72 * (v - lo) / Math.max(1, hi - lo); };
    if (setp !== null) line(svg, [[4, y(setp)], [296, y(setp)]], "setpoint");
    line(svg, xs.map(function (p) { return [x(p.t), y(p.data[field])]; }), "reading");
    svg.dataset.points = String(xs.length);
    // 剩余电流最大值 / 设定 300 mA: the field's name and the set point in its unit
    const C = L.chart;
    const setText = setp === null ? "" : C.sep + R.fill(C.set, {
      set: UNIT[a.type] === undefined ? setp
        : (setp / UNIT[a.type][0]).toFixed(UNIT[a.type][1]) + " " + UNIT[a.type][2] });
    el("chart-field").textContent = (C[field] || field) + setText;
  }

  // an electrical alarm's hazard: open or rectified, and the sensor's restores
  function hazardField(h) {
    if (!h) return;
    const dl = el("detail-fields");
    let what = (h.state === "rectified" ? L.text.hazard_rectified : L.text.hazard_open);
    if (h.rectified_by) what += " · " + h.rectified_by + " " + desk.formatTime(h.rectified_ms);
    if (h.restores_ms.length) {
      what += " · " + L.text.restored + " " +
        h.restores_ms.map(function (ms) { return desk.formatTime(ms); }).join(", ");
    }
    dl.appendChild(text("dt", L.text.hazard));
    const dd = text("dd", what);
    dd.id = "detail-hazard";
    dd.dataset.state = h.state;
    dd.dataset.restores = String(h.restores_ms.length);
    dl.appendChild(dd);
  }

  // may the user record plan steps on the alarm now? (taken, open, not another's)
  function mayRecord(a) {
    return perms.has("alarm.ack") && OPEN.indexOf(a.state) > 0 &&
      !(a.claimed_by && a.claimed_by !== boot.user.username);
  }

  function stepText(s, i) {
    return R.fill(P.step_n, { n: i + 1 }) + " " + s.label[boot.lang] +
      (s.in_plan ? "" : " " + P.no_longer);
  }

  function renderPlan(a) {
    const ol = el("plan");
    ol.replaceChildren();
    el("plan-box").hidden = plan === null;
    if (plan === null) return;
    plan.steps.forEach(function (s, i) {
      const li = text("li", "");
      li.dataset.key = s.key;
      li.appendChild(text("span", stepText(s, i), "step"));
      const last = s.records[s.records.length - 1];
      li.dataset.outcome = last ? last.outcome : "";
      li.appendChild(text("span", last
        ? P[last.outcome] + " · " + last.username + " · " + desk.formatTime(last.at_ms) +
          (last.note ? " — " + last.note : "")
        : P.pending, last ? "outcome" : "outcome muted"));
      if (s.in_plan && mayRecord(a)) {
        const b = button("step-" + (i + 1), P.record, function () { recordStep(a, i); });
        b.setAttribute("aria-keyshortcuts", String(i + 1));
        li.appendChild(b);
      }
      ol.appendChild(li);
    });
  }

  async function loadPlan(a) {
    const r = await fetch(boot.api + "/alarms/" + a.id + "/plan", { credentials: "same-origin" });
    if (!r.ok || current !== a.id) return;
    plan = Object.assign(await r.json(), { alarm: a.id });
    renderPlan(a);
    audit(auditRows);
  }

  function numbered(keys, table) {
    return keys.map(function (k, i) { return [String(i + 1), (i + 1) + " " + table[k], k]; });
  }

  // the i-th step's outcome, asked in the dialog (keys.js's question)
  async function recordStep(a, i) {
    await planReady;
    if (plan === null || plan.alarm !== a.id) return;
    const steps = plan.steps.filter(function (s) { return s.in_plan; });
    const s = steps[i];
    if (!s) return;
    const outcome = await window.HGKeys.question(
      R.fill(P.pick_step, { n: i + 1, step: s.label[boot.lang] }), numbered(STEP_OUTCOMES, P));
    if (!outcome) return;
    el("action-error").hidden = true;
    const r = await fetch(boot.api + "/alarms/" + a.id + "/steps", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": boot.csrf },
      body: JSON.stringify({ step: s.key, outcome: outcome, note: note() }),
    });
    const got = await r.json();
    if (!r.ok) { failed(r, got); return; }
    if (current === a.id) {
      plan = Object.assign(got, { alarm: a.id });
      renderPlan(a);
    }
  }

  // resolving: the result it closes with (Enter keeps verify's) and, first,
  // the plan's steps nobody recorded; nothing happens on Esc / n
  async function resolve(a) {
    await planReady;
    const skipped = plan !== null && plan.alarm === a.id ? plan.steps.filter(function (s) {
      return plan.skipped.indexOf(s.key) >= 0;
    }).map(function (s) { return s.label[boot.lang]; }) : [];
    const verified = L.outcomes[a.outcome] || "—";
    let ask = R.fill(L.desk.confirm_resolve, { id: a.id, type: L.types[a.type] || a.type });
    if (skipped.length) ask += " " + R.fill(P.skipped, { steps: skipped.join(L.desk.sep) });
    ask += " " + R.fill(P.pick_result, { outcome: verified });
    const got = await window.HGKeys.question(ask,
      [["Enter", R.fill(P.keep_result, { outcome: verified }), "keep"]]
        .concat(numbered(RESULTS, L.outcomes), [["n", L.desk.cancel, ""]]));
    if (!got) return false;
    await act(a.id, "resolve", got === "keep" ? { note: note() } : { outcome: got, note: note() });
    return true;
  }

  function show(detail) {
    const a = detail.alarm;
    el("detail-empty").hidden = true;
    el("detail-body").hidden = false;
    el("detail").dataset.alarmId = String(a.id);
    el("detail").dataset.state = a.state;
    el("detail-title").textContent = (L.types[a.type] || a.type) + " #" + a.id;
    fields(a);
    hazardField(detail.hazard);
    siteFields(detail.site);
    actions(a);
    if (plan !== null && plan.alarm !== a.id) plan = null;
    audit(detail.audit);
    renderPlan(a);
    shownAlarm = a;
    planReady = loadPlan(a);
    folded(a, false);
    notified(a.id);
    chart(a);
  }

  function fail(message) {
    const p = el("action-error");
    p.textContent = L.text.error + ": " + message;
    p.hidden = false;
  }

  async function load() {
    if (current === null) return;
    const mine = ++loads;
    const r = await fetch(boot.api + "/alarms/" + current, { credentials: "same-origin" });
    if (mine !== loads) return; // a newer load is under way
    if (!r.ok) { fail((await r.json()).detail); return; }
    show(await r.json());
    await planReady;
  }

  function failed(r, got) {
    // held by another: say so in the page's words (the 409 names them)
    fail(got.claimed_by ? R.fill(L.desk.held_by, { user: got.claimed_by })
                        : (typeof got.detail === "string" ? got.detail : r.statusText));
    if (got.claimed_by) load();
  }

  async function act(id, action, body) {
    el("action-error").hidden = true;
    const r = await fetch(boot.api + "/alarms/" + id + "/" + action, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": boot.csrf },
      body: JSON.stringify(body),
    });
    const got = await r.json();
    if (!r.ok) { failed(r, got); return; }
    if (body && typed === body.note) typed = "";  // the note went with the action
    loads++;
    desk.upsert(got.alarm, false);
    if (current === id) show(got);
  }

  el("folded-more").addEventListener("click", function () {
    if (shownAlarm !== null && shownAlarm.id === current) folded(shownAlarm, true);
  });

  window.HGPanel = {
    selected: function () { return current; },
    // the alarm on show (null before one is loaded)
    shown: function () { return shownAlarm !== null && shownAlarm.id === current ? shownAlarm : null; },
    // what the user may do to it now: the workflow's actions their role allows,
    // none while another holds it
    can: function (a) {
      if (a.claimed_by && a.claimed_by !== boot.user.username) return [];
      return a.actions.filter(function (x) { return perms.has(PERM[x]); });
    },
    act: function (id, action, body) {
      return act(id, action, Object.assign({ note: note() }, body || {}));
    },
    select: function (id) {
      if (id !== current) typed = "";
      current = id;
      el("action-error").hidden = true;
      loading = load();
    },
    // settles once the selected alarm (and its plan) is on show
    ready: function () { return loading; },
    resolve: resolve,
    // record the outcome of the shown alarm's i-th plan step (0-based), asking which
    step: function (i) {
      const a = shownAlarm !== null && shownAlarm.id === current ? shownAlarm : null;
      return a && mayRecord(a) ? recordStep(a, i) : Promise.resolve();
    },
    // the alarm changed; `repeat`: by a fold, of which a flood brings many,
    // so the panel reloads at most every RELOAD_DELAY_MS
    changed: function (id, repeat) {
      if (id !== current) return;
      if (!repeat) { load(); return; }
      if (reloadTimer === null) {
        reloadTimer = setTimeout(function () { reloadTimer = null; load(); }, RELOAD_DELAY_MS);
      }
    },
  };
  desk.panelLoaded();
})();
