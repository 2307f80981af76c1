// The device board: every registered device's status as gateways last
// reported it (online/offline, heartbeat age, battery, RSSI, firmware,
// outbox depth) and its open alarms (supervision ones too), offline rows
// highlighted.  It re-reads
// /api/v1/registry/devices every boot.refresh_s seconds; heartbeat ages
// tick every second in between.
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

  function age(ms) {
    if (ms === null) return R.never;
    const s = Math.max(0, Math.floor((Date.now() - ms) / 1000));
    const text = s < 60 ? s + " s" : s < 3600 ? Math.floor(s / 60) + " min"
      : Math.floor(s / 3600) + " h";
    return boot.lang === "en" ? text + " " + R.ago : text + R.ago;
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

  async function refresh() {
    try {
      const r = await fetch(boot.api + "/registry/devices", { credentials: "same-origin" });
      const got = await r.json();
      if (!r.ok) throw new Error(got.detail);
      devices = got;
      render();
      el("board-error").hidden = true;
      el("board-updated").textContent = clock.format(new Date());
    } catch (err) {
      el("board-error").textContent = String(err.message || err);
      el("board-error").hidden = false;
    }
  }

  refresh();
  setInterval(refresh, boot.refresh_s * 1000);
  setInterval(tick, 1000);
})();
