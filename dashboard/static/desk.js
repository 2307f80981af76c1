// Alarm desk: render the open alarms the page was served with, then follow
// the centre's SSE stream from the same snapshot (boot.after) so an alarm
// stored between page load and stream connect is replayed, not missed.
"use strict";

(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const L = boot.labels;
  const rows = document.getElementById("alarm-rows");
  const empty = document.getElementById("empty");
  const count = document.getElementById("open-count");
  const conn = document.getElementById("conn");
  const seen = new Set();
  let lastId = boot.after;
  let source = null;

  const clock = new Intl.DateTimeFormat("zh-CN", {
    timeZone: boot.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });

  function formatTime(ms) {
    return ms === null || ms === undefined ? null : clock.format(new Date(ms));
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
    return tr;
  }

  function refresh() {
    count.textContent = String(rows.children.length);
    empty.hidden = rows.children.length > 0;
  }

  function addAlarm(a, live) {
    const key = a.device + "/" + a.seq;
    if (seen.has(key)) return;
    seen.add(key);
    const tr = buildRow(a);
    if (live) {
      tr.classList.add("new");
      rows.insertBefore(tr, rows.firstChild);
    } else {
      rows.appendChild(tr);
    }
    refresh();
  }

  function setConn(state) {
    conn.dataset.state = state;
    conn.textContent = L.text[state];
  }

  function connect() {
    const url = boot.stream + "?after=" + encodeURIComponent(lastId);
    source = new EventSource(url);
    source.onopen = function () { setConn("live"); };
    source.onerror = function () {
      setConn("offline");
      if (source.readyState === EventSource.CLOSED) {
        // the browser gave up; start again from the last id we saw
        source = null;
        setTimeout(connect, 3000);
      }
    };
    source.addEventListener("alarm", function (e) {
      lastId = Math.max(lastId, Number(e.lastEventId) || 0);
      addAlarm(JSON.parse(e.data), true);
    });
    source.addEventListener("event", function (e) {
      lastId = Math.max(lastId, Number(e.lastEventId) || 0);
    });
  }

  boot.alarms.forEach(function (a) { addAlarm(a, false); });
  refresh();
  connect();
})();
