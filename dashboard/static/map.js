// The map page: grid cells as polygons, households and devices with
// coordinates, open alarms as markers coloured by priority (desk.css's
// --p1..--p4), from GET /api/v1/map.  The open alarms are polled
// (/api/v1/map/alarms every boot.poll_s seconds): new ones appear, closed
// ones go, without a reload.  A click on an alarm opens a popup with its
// details and links to the desk and its history.  With no tile server
// configured the map draws on a plain background (works offline).
"use strict";

(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const M = boot.labels.map;
  const types = boot.labels.types || {};
  const states = boot.labels.states || {};
  const el = function (id) { return document.getElementById(id); };
  const box = el("map");
  const css = getComputedStyle(document.documentElement);
  const colour = function (p) {
    return p >= 5 ? "#9aa5b1" : css.getPropertyValue("--p" + p).trim() || "#546e7a";
  };
  const when = new Intl.DateTimeFormat(boot.lang, {
    timeZone: boot.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });

  // a view from the start: Leaflet draws a layer only once the map has one
  const map = L.map(box, { zoomControl: true, attributionControl: Boolean(boot.tile_url) })
    .setView([0, 0], 2);
  if (boot.tile_url) {
    L.tileLayer(boot.tile_url, { attribution: boot.attribution, maxZoom: 19 }).addTo(map);
  } else {
    box.classList.add("plain");
    el("map-no-tiles").hidden = false;
  }
  const layers = {
    cells: L.featureGroup().addTo(map),
    households: L.featureGroup().addTo(map),
    devices: L.featureGroup().addTo(map),
    alarms: L.featureGroup().addTo(map),
  };
  L.control.layers(null, {
    [M.cells]: layers.cells, [M.households]: layers.households,
    [M.devices]: layers.devices, [M.alarms]: layers.alarms,
  }).addTo(map);
  const markers = new Map(); // alarm id -> { marker, alarm }

  function node(tag, text, cls) {
    const n = document.createElement(tag);
    if (text !== undefined && text !== null) n.textContent = String(text);
    if (cls) n.className = cls;
    return n;
  }

  function popup(title, fields, links) {
    const div = node("div", null, "map-popup");
    div.appendChild(node("h3", title));
    const dl = node("dl");
    fields.forEach(function (f) {
      if (f[1] === null || f[1] === undefined || f[1] === "") return;
      dl.appendChild(node("dt", f[0]));
      dl.appendChild(node("dd", f[1]));
    });
    div.appendChild(dl);
    const p = node("p", null, "links");
    (links || []).forEach(function (l) {
      const a = node("a", l[0]);
      a.href = l[1];
      a.className = l[2];
      p.appendChild(a);
    });
    div.appendChild(p);
    return div;
  }

  function tag(layer, cls, key) {
    // data-* on the drawn SVG element: what tests and styles find it by
    const e = layer.getElement && layer.getElement();
    if (e) { e.classList.add(cls); e.dataset.key = key; }
  }

  function drawCell(c) {
    const shape = L.polygon(c.polygon.map(function (p) { return [p[1], p[0]]; }), {
      color: "#3559a8", weight: 2, fillOpacity: 0.08 }).addTo(layers.cells);
    tag(shape, "hg-cell", c.code);
    shape.bindTooltip(c.name + " (" + c.code + ")");
    shape.bindPopup(popup(c.name, [[M.worker, [c.worker_name, c.worker_phone].join(" ")],
                                  ["", c.community]]));
  }

  function drawHousehold(h) {
    const dot = L.circleMarker([h.latitude, h.longitude], {
      radius: 6, color: "#2e3b4e", weight: 1, fillColor: "#5b7db8", fillOpacity: 0.9,
    }).addTo(layers.households);
    tag(dot, "hg-household", h.code);
    dot.bindPopup(popup(M.household + " " + h.code, [[M.address, h.address],
      ["", [h.compound, h.community].filter(Boolean).join(" · ")],
      [M.device, h.devices.join(", ")]]));
  }

  function drawDevice(d) {
    const dot = L.circleMarker([d.latitude, d.longitude], {
      radius: 4, color: "#2e3b4e", weight: 1, fillColor: "#b7c4d6", fillOpacity: 1,
    }).addTo(layers.devices);
    tag(dot, "hg-device", d.device_id);
    dot.bindPopup(popup(M.device + " " + d.device_id, [[M.household, d.household]]));
  }

  function alarmPopup(a) {
    const history = "/history?device=" + encodeURIComponent(a.device_id);
    return popup("#" + a.id + " " + (types[a.type] || a.type), [
      [M.state, states[a.state] || a.state], [M.priority, a.priority],
      [M.received, when.format(new Date(a.created_ms))], [M.device, a.device_id],
      [M.household, a.household], [M.address, a.address],
    ], [[M.open_alarm, "/?alarm=" + a.id, "to-desk"], [M.open_in_history, history, "to-history"]]);
  }

  function drawAlarm(a) {
    const had = markers.get(a.id);
    if (had && had.alarm.state === a.state && had.alarm.priority === a.priority) return;
    if (had) layers.alarms.removeLayer(had.marker);
    const marker = L.circleMarker([a.latitude, a.longitude], {
      radius: 10, weight: 2, color: "#ffffff", fillColor: colour(a.priority), fillOpacity: 0.95,
    }).addTo(layers.alarms);
    tag(marker, "hg-alarm", String(a.id));
    const e = marker.getElement();
    if (e) e.dataset.priority = String(a.priority);
    marker.bindPopup(function () { return alarmPopup(a); });
    markers.set(a.id, { marker: marker, alarm: a });
  }

  function showAlarms(got) {
    const open = new Set(got.alarms.map(function (a) { return a.id; }));
    markers.forEach(function (m, id) {
      if (!open.has(id)) { layers.alarms.removeLayer(m.marker); markers.delete(id); }
    });
    // least urgent first, so the most urgent are drawn on top
    got.alarms.slice().reverse().forEach(drawAlarm);
    el("map-open").textContent = String(got.open);
    const hidden = got.unplaced + got.not_shown;
    el("map-unplaced").textContent = M.unplaced.replace("{n}", String(hidden));
    el("map-unplaced").hidden = hidden === 0;
    box.dataset.alarms = String(markers.size);
  }

  async function get(path) {
    const r = await fetch(boot.api + path, { credentials: "same-origin" });
    if (!r.ok) throw new Error(M.error + " (" + r.status + ")");
    return r.json();
  }

  function fail(err) {
    el("map-error").textContent = String(err.message || err);
    el("map-error").hidden = false;
  }

  function frame() {
    const bounds = L.latLngBounds([]);
    Object.values(layers).forEach(function (g) {
      if (g.getLayers().length) bounds.extend(g.getBounds());
    });
    if (bounds.isValid()) map.fitBounds(bounds.pad(0.1), { maxZoom: 17 });
    else fail(new Error(M.nothing));
  }

  async function poll() {
    try {
      showAlarms(await get("/map/alarms"));
      el("map-error").hidden = true;
    } catch (err) { fail(err); }
    setTimeout(poll, boot.poll_s * 1000);
  }

  get("/map").then(function (data) {
    data.cells.forEach(drawCell);
    data.households.forEach(drawHousehold);
    data.devices.forEach(drawDevice);
    showAlarms(data.alarms);
    frame();
    box.dataset.state = "ready";
    setTimeout(poll, boot.poll_s * 1000);
  }).catch(function (err) { box.dataset.state = "failed"; fail(err); });
})();
