// The device board: every registered device's status as gateways last
// reported it (online/offline, heartbeat age, battery, RSSI, firmware,
// outbox depth) and its open alarms (supervision ones too), offline rows
// highlighted.  Live: /api/v1/devices/stream sends every device on connect
// (`devices`) and then the rows of devices whose status or open alarms
// changed (`update`); a reconnect gets the whole list again.  Heartbeat
// ages tick every second in between.
"use strict";

(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const R = boot.labels.registry;
  const L = boot.labels;
  const el = function (id) { return document.getElementById(id); };
  const clock = new Intl.DateTimeFormat(boot.lang, {
    timeZone: boot.timezone, hour: "2-digit", minute: "2-digit", second: "2-digit",
    hour12: false,
  });
  let devices = [];

  // "25 秒前" / "25 sec. ago": the browser's own wording for the language
  const rel = new Intl.RelativeTimeFormat(boot.lang, { numeric: "always", style: "short" });
  function age(ms) {
    if (ms === null) return R.never;
    const s = Math.max(0, Math.floor((Date.now() - ms) / 1000));
    return s < 60 ? rel.format(-s, "second")
      : s < 3600 ? rel.format(-Math.floor(s / 60), "minute")
        : rel.format(-Math.floor(s / 3600), "hour");
  }

  function td(value, cls) {
    const n = document.createElement("td");
    n.textContent = value === null || value === undefined || value === "" ? "—" : value;
    if (cls) n.className = cls;
    return n;
  }

  function statusOf(d) {
    return d.online === true ? "true" : d.online === false ? "false" : "unknown";
  }

  function render() {
    const body = el("board-rows");
    body.replaceChildren();
    devices.forEach(function (d) {
      const tr = document.createElement("tr");
      const status = statusOf(d);
      tr.dataset.device = d.device_id;
      tr.dataset.online = status;
      tr.appendChild(td(d.device_id));
      tr.appendChild(td(R[d.type] || d.type));
      tr.appendChild(td(d.household));
      const st = td(status === "true" ? R.online : status === "false" ? R.offline : R.unknown);
      st.classList.add("state-cell");
      st.replaceChildren(Object.assign(document.createElement("span"),
        { className: "status", textContent: st.textContent }));
      tr.appendChild(st);
      const hb = td(age(d.last_heartbeat_ms), "age");
      hb.dataset.ms = d.last_heartbeat_ms === null ? "" : String(d.last_heartbeat_ms);
      tr.appendChild(hb);
      tr.appendChild(td(d.battery_mv === null ? null : (d.battery_mv / 1000).toFixed(2) + " V",
        "num battery"));
      tr.appendChild(td(d.rssi === null ? null : d.rssi + " dBm", "num rssi"));
      tr.appendChild(td(d.firmware, "firmware"));
      tr.appendChild(td(d.outbox_depth, "num outbox"));
      tr.appendChild(td(d.open_alarms.map(function (t) { return L.types[t] || t; }).join(", "),
        d.open_alarms.length ? "open alarms-open" : "open"));
      body.appendChild(tr);
    });
    el("board-empty").hidden = devices.length > 0;
    el("online-count").textContent = devices.filter(function (d) { return d.online === true; }).length;
    el("offline-count").textContent = devices.filter(function (d) { return d.online === false; }).length;
  }

  function tick() {
    document.querySelectorAll("#board-rows td.age").forEach(function (c) {
      c.textContent = age(c.dataset.ms === "" ? null : Number(c.dataset.ms));
    });
  }

  function shown() {
    render();
    el("board-error").hidden = true;
    el("board-updated").textContent = clock.format(new Date());
  }

  function setConn(state) {
    const conn = el("conn");
    conn.dataset.state = state;
    conn.textContent = L.text[state];
  }

  function connect() {
    const source = new EventSource(boot.api + "/devices/stream");
    source.onopen = function () { setConn("live"); };
    source.onerror = function () {
      setConn("offline");
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 3000);
    };
    source.addEventListener("devices", function (e) {
      devices = JSON.parse(e.data);
      shown();
    });
    source.addEventListener("update", function (e) {
      const rows = new Map(JSON.parse(e.data).map(function (d) { return [d.device_id, d]; }));
      devices = devices.map(function (d) {
        const now = rows.get(d.device_id);
        rows.delete(d.device_id);
        return now || d;
      }).concat(Array.from(rows.values()));
      shown();
    });
  }

  connect();
  setInterval(tick, 1000);
})();
