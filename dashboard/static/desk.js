// Alarm desk: the open alarms a page at a time, live.
//
// Desk order is the server's (queries.py): unacknowledged first, then
// priority (1 most urgent), then the longest waiting; a row's place is its
// key [group, priority, created_ms, id].  The page arrives with the first
// page and the cursor of the next (boot.next); "load more" (or scrolling to
// it) fetches the next page from /api/v1/desk.  The rows held always cover
// the desk from the top down to `until`, the key of the last row loaded
// (null: to the end), so a live alarm or transition is shown when its key
// falls within that range and otherwise waits for its page.
//
// The stream is followed from the first page's snapshot (boot.after =
// "E:A"), so nothing stored between page load and connect is missed.  An
// alarm flood control folds into an open one arrives as `repeat`: that
// row's count (×N) changes in place, no row is added.  The
// counters are COUNTs from /api/v1/desk/counts, re-read after every live
// message (coalesced) and every COUNT_EVERY_MS: never the number of rows.
//
// Columns: type (with what the device sent, in words: readable.js),
// household and address, community and grid cell (the registry, from
// boot.sites / each page's `sites`, /api/v1/desk/sites for a device first
// seen live), waiting time, state, and the operator holding the alarm
// (claims.py; live from every transition).  Alarms nobody has taken flash.
// An address /?alarm=ID (the map's popup) opens that alarm's panel.
// alert.js (sound, title, notifications) and keys.js (keyboard) listen to
// `changed` (HGDesk.listen).
"use strict";

(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const L = boot.labels;
  const el = function (id) { return document.getElementById(id); };
  const rows = el("alarm-rows");
  const conn = el("conn");
  const more = el("load-more");
  const OPEN = new Set(["received", "acknowledged", "verified", "dispatched"]);
  const COUNT_DELAY_MS = 200;
  const COUNT_EVERY_MS = 15000;
  const alarms = new Map();     // alarm id -> alarm, the rows held
  const trs = new Map();        // alarm id -> its <tr>
  const shownAfter = new Map(); // alarm id -> ms from centre receipt to screen
  let lastId = boot.after;
  let next = boot.next;         // cursor of the next page, null at the end
  let until = parseCursor(next);
  let total = boot.counts.open;
  let loading = null;           // stream messages seen while a page loads
  let source = null;
  const sites = new Map(Object.entries(boot.sites || {}));  // device -> its site
  const siteWanted = new Set();  // devices to ask /desk/sites about
  let siteTimer = null;
  const listeners = [];
  const R = window.HGReadable;

  const clock = new Intl.DateTimeFormat(boot.lang, {
    timeZone: boot.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });

  function formatTime(ms) {
    return ms === null || ms === undefined ? null : clock.format(new Date(ms));
  }

  function parseCursor(text) {
    return text === null ? null : text.split(".").map(Number);
  }

  function key(a) {
    return [a.state === "received" ? 0 : 1, a.priority, a.created_ms, a.id];
  }

  function compare(x, y) {
    for (let i = 0; i < x.length; i++) {
      if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
    }
    return 0;
  }

  function inRange(a) {
    return until === null || compare(key(a), until) <= 0;
  }

  function cell(text, cls, title) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    if (title) td.title = title;
    return td;
  }

  function twoLines(first, second, cls) {
    const td = cell(first, cls);
    if (second) {
      const sub = document.createElement("div");
      sub.className = "sub";
      sub.textContent = second;
      td.appendChild(sub);
    }
    return td;
  }

  // household / address and community / grid cell from the registry
  function siteCells(tr, a) {
    const s = sites.get(a.device);
    if (!s) {
      wantSite(a.device);
      tr.appendChild(twoLines(a.device, "", "site"));
      tr.appendChild(cell("", "area"));
      return;
    }
    if (!s.registered || !s.household) {
      const why = s.registered ? L.registry.no_household : L.registry.unregistered;
      tr.appendChild(twoLines(a.device, why, "site muted"));
      tr.appendChild(cell("—", "area muted"));
      return;
    }
    tr.appendChild(twoLines(s.household + " " + (s.address || ""), a.device, "site"));
    tr.appendChild(twoLines(s.community || "—",
      s.grid_cell ? s.grid_cell + " " + (s.grid_name || "") : "", "area"));
  }

  function holderCell(a) {
    if (!a.claimed_by) return cell(L.desk.nobody, "operator muted");
    const me = a.claimed_by === boot.user.username;
    return cell(me ? R.fill(L.desk.you, { user: a.claimed_by }) : a.claimed_by,
                me ? "operator mine" : "operator");
  }

  // the grid worker's phone (worker.py): whose task it is and their step;
  // not accepted in time, the row asks to be re-dispatched (alert.js rings)
  const WORKER_STEP = { assigned: L.states.dispatched, overdue: L.actions.overdue,
                        accepted: L.actions.accept, arrived: L.actions.arrive,
                        reported: L.actions.report };

  function workerMark(a) {
    const m = document.createElement("span");
    m.className = "worker-step" + (a.worker_step === "overdue" ? " overdue" : "");
    m.dataset.step = a.worker_step || "";
    m.textContent = a.worker + " · " + (WORKER_STEP[a.worker_step] || a.worker_step);
    return m;
  }

  function buildRow(a) {
    const tr = document.createElement("tr");
    tr.dataset.device = a.device;
    tr.dataset.seq = String(a.seq);
    tr.dataset.alarmId = String(a.id);
    tr.dataset.type = a.type;
    tr.dataset.priority = String(a.priority);
    tr.dataset.state = a.state;
    tr.dataset.count = String(a.count);
    tr.dataset.claimedBy = a.claimed_by || "";
    tr.tabIndex = -1;  // focused by keys.js; one tab stop for the whole list
    if (a.state === "received") tr.classList.add("unhandled");
    tr.title = [[L.text.device_time, formatTime(a.device_time_ms) || L.text.not_synced],
                [L.text.received_time, formatTime(a.received_ms)]]
      .map(function (p) { return p[0] + " " + p[1]; }).join("\n");
    const type = twoLines(L.types[a.type] || a.type, R.text(a.type, a.data, L), "type");
    if (a.count > 1) {
      // alarms flood control folded into this one (flood.py)
      const n = document.createElement("span");
      n.className = "repeats";
      n.textContent = " ×" + a.count;
      type.insertBefore(n, type.childNodes[1] || null);
    }
    tr.appendChild(type);
    siteCells(tr, a);
    tr.appendChild(cell("", "timer"));
    const state = cell("", "");
    const badge = document.createElement("span");
    badge.className = "state";
    badge.textContent = L.states[a.state] || a.state;
    state.appendChild(badge);
    if (a.worker) state.appendChild(workerMark(a));
    tr.dataset.workerStep = a.worker_step || "";
    tr.appendChild(state);
    tr.appendChild(holderCell(a));
    if (window.HGPanel && window.HGPanel.selected() === a.id) tr.classList.add("selected");
    return tr;
  }

  // devices seen live whose site the page does not have: asked for together
  function wantSite(device) {
    if (siteWanted.has(device)) return;
    siteWanted.add(device);
    if (siteTimer === null) siteTimer = setTimeout(fetchSites, COUNT_DELAY_MS);
  }

  async function fetchSites() {
    siteTimer = null;
    const devices = Array.from(siteWanted).filter(function (d) { return !sites.has(d); });
    if (!devices.length) return;
    const q = devices.map(function (d) { return "device=" + encodeURIComponent(d); }).join("&");
    try {
      const r = await fetch(boot.api + "/desk/sites?" + q, { credentials: "same-origin" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      addSites(await r.json());
    } catch (err) {
      console.warn("could not read where the devices are:", err);
      devices.forEach(function (d) { siteWanted.delete(d); });
    }
  }

  // the device's site once known (at most SITE_WAIT_MS; then undefined)
  const siteWaiters = new Map();
  const SITE_WAIT_MS = 2000;
  function whenSite(device) {
    if (sites.has(device)) return Promise.resolve(sites.get(device));
    wantSite(device);
    return new Promise(function (resolve) {
      const list = siteWaiters.get(device) || [];
      list.push(resolve);
      siteWaiters.set(device, list);
      setTimeout(function () { resolve(sites.get(device)); }, SITE_WAIT_MS);
    });
  }

  function addSites(got) {
    Object.keys(got).forEach(function (d) {
      sites.set(d, got[d]);
      (siteWaiters.get(d) || []).forEach(function (resolve) { resolve(got[d]); });
      siteWaiters.delete(d);
    });
    alarms.forEach(function (a) { if (a.device in got) place(a, false); });
  }

  // SLA timer: age since the centre received it, until it is verified
  function tickRow(tr, now) {
    const a = alarms.get(Number(tr.dataset.alarmId));
    const td = tr.querySelector("td.timer");
    if (!a || !td) return;
    if (a.state !== "received" && a.state !== "acknowledged") {
      td.textContent = "";
      td.className = "timer";
      return;
    }
    const age = now - a.received_ms;
    const label = a.state === "received" ? L.text.unacked : L.text.verify_by;
    td.textContent = label + " " + R.waited(age, L);
    let cls = "timer";
    if (age > boot.verify_sla_s * 1000) cls += " late";
    else if (a.state === "received" && age > boot.ack_sla_s * 1000) cls += " warn";
    td.className = cls;
  }

  function tick() {
    const now = Date.now();
    trs.forEach(function (tr) { tickRow(tr, now); });
  }

  // put the alarm's row where its key belongs (binary search over the rows)
  function place(a, fresh) {
    const old = trs.get(a.id);
    // read before the removal: a removed row is no longer the focused one
    const focused = old && document.activeElement === old;
    if (old) old.remove();
    const k = key(a);
    let lo = 0, hi = rows.children.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const other = alarms.get(Number(rows.children[mid].dataset.alarmId));
      if (compare(key(other), k) < 0) lo = mid + 1; else hi = mid;
    }
    const tr = buildRow(a);
    if (fresh) tr.classList.add("new");
    rows.insertBefore(tr, rows.children[lo] || null);
    trs.set(a.id, tr);
    if (focused) tr.focus({ preventScroll: true });
    tickRow(tr, Date.now());
  }

  function drop(id) {
    const tr = trs.get(id);
    if (tr && document.activeElement === tr) {
      // keep the keyboard's place: the next row (or the one before) takes focus
      const near = tr.nextElementSibling || tr.previousElementSibling;
      if (near) near.focus({ preventScroll: true });
    }
    if (tr) tr.remove();
    trs.delete(id);
    alarms.delete(id);
  }

  function footer() {
    el("open-count").textContent = String(total);
    el("received-count").textContent = String(boot.counts.received);
    el("shown").textContent = L.text.shown_of
      .replace("{shown}", String(alarms.size)).replace("{total}", String(total));
    more.hidden = next === null;
    more.disabled = loading !== null;
    el("more").hidden = alarms.size === 0 && next === null;
    el("empty").hidden = alarms.size > 0 || next !== null;
    listeners.forEach(function (f) { f(); });
  }

  // the alarm as it is now: shown in its place when open and within the
  // loaded range, else not held (a later page brings it)
  function upsert(a, live) {
    const known = alarms.has(a.id);
    if (!OPEN.has(a.state) || !inRange(a)) {
      if (known) drop(a.id);
      // handled alarms move down the order: refill before the rows run out
      if (known && alarms.size < boot.page_size / 2) loadMore();
    } else {
      alarms.set(a.id, a);
      const fresh = !known && live;
      place(a, fresh);
      if (fresh) shownAfter.set(a.id, Date.now() - a.received_ms);
    }
    footer();
  }

  // --- the counters: COUNTs from the store, one request at a time ---
  let counting = false, countAgain = false, countTimer = null;

  function countSoon() {
    if (countTimer === null) countTimer = setTimeout(recount, COUNT_DELAY_MS);
  }

  async function recount() {
    countTimer = null;
    if (counting) { countAgain = true; return; }
    counting = true;
    try {
      const r = await fetch(boot.api + "/desk/counts", { credentials: "same-origin" });
      if (r.ok) {
        boot.counts = await r.json();
        total = boot.counts.open;
        footer();
      }
    } catch (err) {
      console.warn("could not count the open alarms:", err);
    } finally {
      counting = false;
      if (countAgain) { countAgain = false; countSoon(); }
    }
  }

  // --- the next page ---
  async function loadMore() {
    if (loading !== null || next === null) return;
    loading = [];
    footer();
    try {
      const url = boot.api + "/desk?limit=" + boot.page_size + "&after=" + encodeURIComponent(next);
      const r = await fetch(url, { credentials: "same-origin" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      const page = await r.json();
      Object.keys(page.sites || {}).forEach(function (d) { sites.set(d, page.sites[d]); });
      merge(page, loading);
    } catch (err) {
      console.warn("could not load more alarms:", err);
    } finally {
      loading = null;
      footer();
      countSoon();
    }
  }

  // a page read at snapshot page.after; stream messages that came while it
  // loaded and are newer than that snapshot are applied again over it
  function merge(page, seen) {
    next = page.next;
    until = parseCursor(next);
    page.alarms.forEach(function (a) { upsert(a, false); });
    const snap = page.after.split(":").map(Number);
    seen.forEach(function (m) {
      if (m.id > snap[m.cursor]) upsert(m.alarm, false);
    });
  }

  // --- the live stream ---
  function setConn(state) {
    conn.dataset.state = state;
    conn.textContent = L.text[state];
  }

  function follow(e) {
    if (e.lastEventId) lastId = e.lastEventId;
  }

  function live(e, cursor, alarm, fresh) {
    follow(e);
    if (loading !== null) {
      const ids = e.lastEventId.split(":").map(Number);
      loading.push({ cursor: cursor, id: ids[cursor], alarm: alarm });
    }
    const arrived = fresh && !alarms.has(alarm.id);
    upsert(alarm, fresh);
    if (arrived) listeners.forEach(function (f) { f(alarm); });
    countSoon();
  }

  function connect() {
    const url = boot.stream + "?after=" + encodeURIComponent(lastId);
    source = new EventSource(url);
    source.onopen = function () { setConn("live"); countSoon(); };
    source.onerror = function () {
      setConn("offline");
      if (source.readyState === EventSource.CLOSED) {
        // the browser gave up (e.g. logged out, server gone); start again
        source = null;
        setTimeout(connect, 3000);
      }
    };
    source.addEventListener("alarm", function (e) {
      live(e, 0, JSON.parse(e.data), true);
    });
    source.addEventListener("transition", function (e) {
      const msg = JSON.parse(e.data);
      live(e, 1, msg.alarm, false);
      if (window.HGPanel) window.HGPanel.changed(msg.alarm.id);
    });
    // an alarm folded into an open one (flood control): that row's count
    // grows in place; the first fold of a flood brings a flooding fault
    source.addEventListener("repeat", function (e) {
      const msg = JSON.parse(e.data);
      live(e, 0, msg.alarm, false);
      if (msg.flooding) live(e, 0, msg.flooding, true);
      if (window.HGPanel) window.HGPanel.changed(msg.alarm.id, true);
    });
    source.addEventListener("event", follow);
  }

  // open an alarm's detail (a click, or Enter in keys.js); the rows are on
  // show before panel.js has run (its script may still be loading): a click
  // then opens the alarm once the panel is there, it is not lost
  let waiting = null;
  function open(tr) {
    if (!tr) return;
    tr.focus({ preventScroll: true });
    select(Number(tr.dataset.alarmId));
  }

  // the panel shows this alarm (a row held or not)
  function select(id) {
    const said = el("linked");
    if (said) said.remove();
    rows.querySelectorAll("tr.selected").forEach(function (s) { s.classList.remove("selected"); });
    const tr = trs.get(id);
    if (tr) tr.classList.add("selected");
    if (!window.HGPanel) { waiting = id; return; }
    window.HGPanel.select(id);
  }

  // --- an alarm named in the address (/?alarm=ID: the map's link) ---
  // opened on its row, or fetched when it is on a page not loaded yet; a
  // closed or unknown one is said so, with a link to its record
  function notice(text, link) {
    const p = el("linked") || document.createElement("p");
    p.id = "linked";
    p.setAttribute("role", "alert");
    p.textContent = text;
    if (link) {
      const a = document.createElement("a");
      a.id = "linked-record";
      a.href = link;
      a.textContent = boot.linked.record;
      p.append(" ", a);
    }
    el("detail").prepend(p);
  }

  async function openLinked() {
    const asked = new URLSearchParams(location.search).get("alarm");
    if (asked === null) return;
    const id = Number(asked);
    const W = boot.linked;
    if (!/^[1-9][0-9]{0,15}$/.test(asked)) { notice(R.fill(W.unknown, { id: asked })); return; }
    const tr = trs.get(id);
    if (tr) { tr.scrollIntoView({ block: "nearest" }); open(tr); return; }
    let r;
    try {
      r = await fetch(boot.api + "/alarms/" + id, { credentials: "same-origin" });
    } catch (err) {
      notice(R.fill(W.failed, { id: id }) + " " + err);
      return;
    }
    if (r.status === 404) { notice(R.fill(W.unknown, { id: id })); return; }
    if (!r.ok) { notice(R.fill(W.failed, { id: id }) + " HTTP " + r.status); return; }
    const a = (await r.json()).alarm;
    if (!OPEN.has(a.state)) {
      notice(R.fill(W.closed, { id: id, state: L.states[a.state] || a.state }),
             "/history?record=" + id);
      return;
    }
    select(id);
  }

  rows.addEventListener("click", function (e) { open(e.target.closest("tr")); });
  more.addEventListener("click", loadMore);
  if (window.IntersectionObserver) {
    // scrolling down to the button loads the next page
    new IntersectionObserver(function (entries) {
      if (entries.some(function (x) { return x.isIntersecting; })) loadMore();
    }).observe(more);
  }

  window.HGDesk = {
    boot: boot,
    alarm: function (id) { return alarms.get(id); },
    shownAfter: function (id) { return shownAfter.get(id); },
    formatTime: formatTime,
    upsert: function (a, fresh) { upsert(a, fresh); countSoon(); },
    loadMore: loadMore,
    open: open,
    // panel.js has loaded: open what was clicked before it had
    panelLoaded: function () {
      const id = waiting;
      waiting = null;
      if (id !== null) select(id);
    },
    rows: function () { return rows; },
    counts: function () { return boot.counts; },
    site: function (device) { return sites.get(device); },
    whenSite: whenSite,
    // f() after any change of the rows or counts; f(alarm) when one arrives live
    listen: function (f) { listeners.push(f); },
  };
  boot.alarms.forEach(function (a) { upsert(a, false); });
  footer();
  openLinked();
  setInterval(tick, 1000);
  setInterval(countSoon, COUNT_EVERY_MS);
  connect();
})();
