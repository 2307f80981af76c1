// What a device sent, in words, and waiting times, in the page's language:
// `ma=342, set_ma=300` -> 剩余电流 342 mA（设定 300 mA）, `btn=f` -> 按键：火警.
// The words are labels.py's DATA and DESK tables (boot.labels.data/.desk);
// readings arrive as fixed-point integers in named units (docs/protocol.md):
// mA, mV, tenths of a degree; the sensor app sends `v` and `set` in the
// unit of its alarm type.
"use strict";

(function () {
  // button letters (a button's `btn`) -> the alarm type they raise
  const BUTTONS = { f: "fire", m: "medical", s: "security", p: "panic" };
  // sensor alarm type -> [divisor to display units, decimals]
  const UNITS = { residual_current: [1, 0], over_temp: [10, 1], over_current: [1000, 1],
                  over_voltage: [1000, 0], under_voltage: [1000, 0] };

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (m, k) {
      return values[k] === undefined ? m : String(values[k]);
    });
  }

  // a reading with its set point; without one, the bracket naming it goes
  function reading(template, v, set) {
    if (set === undefined) template = template.replace(/\s*[（(][^（()）]*\{set\}[^（()）]*[）)]/, "");
    return fill(template, { v: v, set: set });
  }

  function scaled(value, unit) {
    if (value === undefined) return undefined;
    return typeof value === "number" ? (value / unit[0]).toFixed(unit[1]) : String(value);
  }

  // the readable parts of an alarm's data, one string each, raw for keys
  // nobody named (key=value), so nothing a device sent is hidden
  function parts(type, data, L) {
    const D = L.data;
    const rest = Object.assign({}, data || {});
    const out = [];
    const take = function (k) { const v = rest[k]; delete rest[k]; return v; };
    if ("ma" in rest) {
      out.push(reading(D.residual_current, take("ma"), take("set_ma")));
    } else if ("v" in rest && UNITS[type]) {
      const u = UNITS[type];
      out.push(reading(D[type], scaled(take("v"), u), scaled(take("set"), u)));
    }
    if ("mv" in rest) {
      out.push(reading(D.battery, scaled(take("mv"), [1000, 2]),
                       scaled(take("low_mv"), [1000, 2])));
    }
    if ("btn" in rest) {
      const b = take("btn");
      out.push(fill(D.btn, { v: BUTTONS[b] ? L.types[BUTTONS[b]] : b }));
    }
    if ("zone" in rest) out.push(fill(D.zone, { v: take("zone") }));
    if ("ch" in rest) {
      const ch = take("ch");
      if (!out.length) out.push(fill(D.channel, { v: ch }));  // said by the reading already
    }
    if (take("latched") === true) out.push(D.latched);
    if ("reason" in rest) out.push(fill(D.reason, { v: take("reason") }));
    if ("ref" in rest) out.push(fill(D.ref, { v: take("ref") }));
    // a gateway's warnings about itself: data_lost, disk_low, shedding
    if ("seqs" in rest) out.push(fill(D.seqs, { v: take("seqs") }));
    if ("devices" in rest) out.push(fill(D.devices, { v: take("devices") }));
    if ("most" in rest) out.push(fill(D.most, { v: take("most"), n: take("most_seqs") }));
    if ("free_mb" in rest) out.push(reading(D.free_mb, take("free_mb"), take("min_free_mb")));
    if ("shed" in rest) out.push(fill(D.shed, { v: take("shed") }));
    delete rest.set;
    delete rest.set_ma;
    delete rest.low_mv;
    Object.keys(rest).sort().forEach(function (k) { out.push(k + "=" + rest[k]); });
    return out;
  }

  function text(type, data, L) {
    return parts(type, data, L).join(L.desk.sep);
  }

  // a waiting time: 42 秒 / 3 分 05 秒 / 2 小时 10 分 (or in English)
  function waited(ms, L) {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return fill(L.desk.seconds, { n: s });
    const m = Math.floor(s / 60);
    if (m < 60) return fill(L.desk.minutes, { m: m, s: String(s % 60).padStart(2, "0") });
    return fill(L.desk.hours, { h: Math.floor(m / 60), m: String(m % 60).padStart(2, "0") });
  }

  window.HGReadable = { parts: parts, text: text, waited: waited, fill: fill };
})();
