// Alarm desk: render the open alarms the page was served with, then follow
// the centre's SSE stream from the same snapshot (boot.after = "E:A") so an
// alarm or a transition stored between page load and stream connect is
// replayed, not missed.  Rows are kept in priority order, then oldest first.
"use strict";

(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const L = boot.labels;
  const rows = document.getElementById("alarm-rows");
  const empty = document.getElementById("empty");
  const count = document.getElementById("open-count");
  const conn = document.getElementById("conn");
  const OPEN = new Set(["received", "acknowledged", "verified", "dispatched"]);
  const alarms = new Map();   // alarm id -> alarm
  const shownAfter = new Map(); // alarm id -> ms from centre receipt to screen
  let lastId = boot.after;
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
    tr.tabIndex = 0;
    tr.appendChild(cell(L.types[a.type] || a.type, "type"));
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

  function order(a, b) {
    return a.priority - b.priority || a.created_ms - b.created_ms || a.id - b.id;
  }

  // SLA timer: age since the centre received it, until it is verified
  function tick() {
    const now = Date.now();
    rows.querySelectorAll("tr").forEach(function (tr) {
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
    });
  }

  function render(newId) {
    const sorted = Array.from(alarms.values()).sort(order);
    rows.replaceChildren.apply(rows, sorted.map(function (a) {
      const tr = buildRow(a);
      if (a.id === newId) tr.classList.add("new");
      return tr;
    }));
    count.textContent = String(sorted.length);
    empty.hidden = sorted.length > 0;
    tick();
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

  function upsert(a, live) {
    const known = alarms.has(a.id);
    if (!OPEN.has(a.state)) {
      if (known) { alarms.delete(a.id); render(null); }
      return;
    }
    alarms.set(a.id, a);
    if (!known && live) {
      shownAfter.set(a.id, Date.now() - a.received_ms);
      beep();
    }
    render(!known && live ? a.id : null);
  }

  function setConn(state) {
    conn.dataset.state = state;
    conn.textContent = L.text[state];
  }

  function follow(e) {
    if (e.lastEventId) lastId = e.lastEventId;
  }

  function connect() {
    const url = boot.stream + "?after=" + encodeURIComponent(lastId);
    source = new EventSource(url);
    source.onopen = function () { setConn("live"); };
    source.onerror = function () {
      setConn("offline");
      if (source.readyState === EventSource.CLOSED) {
        // the browser gave up (e.g. logged out, server gone); start again
        source = null;
        setTimeout(connect, 3000);
      }
    };
    source.addEventListener("alarm", function (e) {
      follow(e);
      upsert(JSON.parse(e.data), true);
    });
    source.addEventListener("transition", function (e) {
      follow(e);
      const msg = JSON.parse(e.data);
      upsert(msg.alarm, false);
      if (window.HGPanel) window.HGPanel.changed(msg.alarm.id);
    });
    source.addEventListener("event", follow);
  }

  rows.addEventListener("click", function (e) {
    const tr = e.target.closest("tr");
    if (tr && window.HGPanel) {
      window.HGPanel.select(Number(tr.dataset.alarmId));
      render(null);
    }
  });

  window.HGDesk = {
    boot: boot,
    alarm: function (id) { return alarms.get(id); },
    shownAfter: function (id) { return shownAfter.get(id); },
    formatTime: formatTime,
    upsert: upsert,
  };
  boot.alarms.forEach(function (a) { alarms.set(a.id, a); });
  render(null);
  setInterval(tick, 1000);
  connect();
})();
