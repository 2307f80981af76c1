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
  let audio = null;

  const clock = new Intl.DateTimeFormat(boot.lang, {
    timeZone: boot.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });

  function formatTime(ms) {
    return ms === null || ms === undefined ? null : clock.format(new Date(ms));
  }

  function formatAge(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const m = Math.floor(s / 60);
    return m + ":" + String(s % 60).padStart(2, "0");
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

  function timeCell(ms) {
    const text = formatTime(ms);
    return text === null ? cell(L.text.not_synced, "time muted") : cell(text, "time");
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
    tr.tabIndex = 0;
    const type = cell(L.types[a.type] || a.type, "type");
    if (a.count > 1) {
      // alarms flood control folded into this one (flood.py)
      const n = document.createElement("span");
      n.className = "repeats";
      n.textContent = " ×" + a.count;
      type.appendChild(n);
    }
    tr.appendChild(type);
    tr.appendChild(cell(a.device, "device", "gateway " + a.gateway));
    tr.appendChild(timeCell(a.device_time_ms));
    tr.appendChild(timeCell(a.gateway_time_ms));
    tr.appendChild(timeCell(a.received_ms));
    const state = cell("", "");
    const badge = document.createElement("span");
    badge.className = "state";
    badge.textContent = L.states[a.state] || a.state;
    state.appendChild(badge);
    tr.appendChild(state);
    tr.appendChild(cell("", "timer"));
    if (window.HGPanel && window.HGPanel.selected() === a.id) tr.classList.add("selected");
    return tr;
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
    td.textContent = label + " " + formatAge(age);
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
    tickRow(tr, Date.now());
  }

  function drop(id) {
    const tr = trs.get(id);
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
  }

  function beep() {
    try {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return;
      audio = audio || new Ctx();
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.2;
      osc.connect(gain).connect(audio.destination);
      osc.start();
      osc.stop(audio.currentTime + 0.25);
    } catch (err) {
      console.warn("no alarm sound:", err);
    }
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
      merge(await r.json(), loading);
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
    if (fresh && !alarms.has(alarm.id)) beep();
    upsert(alarm, fresh);
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

  rows.addEventListener("click", function (e) {
    const tr = e.target.closest("tr");
    if (!tr || !window.HGPanel) return;
    rows.querySelectorAll("tr.selected").forEach(function (s) { s.classList.remove("selected"); });
    tr.classList.add("selected");
    window.HGPanel.select(Number(tr.dataset.alarmId));
  });
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
  };
  boot.alarms.forEach(function (a) { upsert(a, false); });
  footer();
  setInterval(tick, 1000);
  setInterval(countSoon, COUNT_EVERY_MS);
  connect();
})();
