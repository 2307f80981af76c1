// The registry page: households with their contacts, grid cells and
// devices, read from /api/v1/registry; for `registry.manage` the forms
// add (POST) or, after "Edit", change (PATCH) an entry, and "Delete" asks
// for a second click.  Every change sends the session's CSRF token; a
// refused one shows the server's message.
"use strict";

(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const R = boot.labels.registry;
  const API = boot.api + "/registry";
  const manage = boot.can_manage;
  const el = function (id) { return document.getElementById(id); };
  let cells = [];
  let households = [];

  async function call(method, path, body) {
    const r = await fetch(API + path, {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": boot.csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (r.status === 204) return null;
    const got = await r.json();
    if (!r.ok) throw new Error(typeof got.detail === "string" ? got.detail : r.statusText);
    return got;
  }

  function fail(err) {
    const p = el("registry-error");
    p.textContent = String(err.message || err);
    p.hidden = false;
  }

  function node(tag, value, cls) {
    const n = document.createElement(tag);
    if (value !== undefined && value !== null) n.textContent = value;
    if (cls) n.className = cls;
    return n;
  }

  function button(label, cls, onClick) {
    const b = node("button", label, cls);
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  }

  function opsCell(onEdit, onDelete) {
    const td = node("td", null, "ops");
    if (!manage) return td;
    td.appendChild(button(R.edit, "edit", onEdit));
    const del = button(R.delete, "delete", function () {
      if (del.dataset.armed) { onDelete(); return; }
      del.dataset.armed = "1";
      del.textContent = R.confirm_delete + "?";
    });
    td.appendChild(del);
    return td;
  }

  function row(cells_, key) {
    const tr = document.createElement("tr");
    tr.dataset.code = key;
    cells_.forEach(function (c) { tr.appendChild(typeof c === "string" ? node("td", c) : c); });
    return tr;
  }

  function contactList(contacts) {
    const td = node("td");
    const ol = node("ol", null, "ranked");
    contacts.forEach(function (c) {
      ol.appendChild(node("li", c.name + " " + c.phone + (c.relation ? " (" + c.relation + ")" : "")));
    });
    td.appendChild(contacts.length ? ol : node("span", R.none, "muted"));
    return td;
  }

  function remove(path) {
    return function () { call("DELETE", path).then(reload).catch(fail); };
  }

  function renderHouseholds() {
    const body = el("household-rows");
    body.replaceChildren();
    households.forEach(function (h) {
      body.appendChild(row([h.code, h.address, h.compound, h.community, h.grid_cell || "—",
        contactList(h.contacts), h.devices.join(", ") || "—",
        opsCell(function () { editHousehold(h); }, remove("/households/" + h.code))], h.code));
    });
    if (!households.length) body.appendChild(emptyRow(8));
  }

  function renderCells() {
    const body = el("cell-rows");
    body.replaceChildren();
    cells.forEach(function (c) {
      body.appendChild(row([c.code, c.name, c.community, c.worker_name, c.worker_phone,
        opsCell(function () { edit("cell-form", c, c.code); }, remove("/grid-cells/" + c.code))],
        c.code));
    });
    if (!cells.length) body.appendChild(emptyRow(6));
  }

  function renderDevices(devices) {
    const body = el("device-rows");
    body.replaceChildren();
    devices.forEach(function (d) {
      body.appendChild(row([d.device_id, R[d.type] || d.type, d.board, d.firmware,
        d.household || "—", d.key_ref === "centre" ? R.key_ref_centre : d.key_ref,
        d.has_key ? R.key_set : R.key_missing,
        opsCell(function () { edit("device-form", d, d.device_id); },
          remove("/devices/" + d.device_id))], d.device_id));
    });
    if (!devices.length) body.appendChild(emptyRow(8));
  }

  function emptyRow(span) {
    const tr = document.createElement("tr");
    const td = node("td", R.empty, "muted empty-row");
    td.colSpan = span;
    tr.appendChild(td);
    return tr;
  }

  function fillSelect(select, items, key) {
    if (!select) return;
    const keep = select.value;
    select.replaceChildren(node("option", "—"));
    select.firstChild.value = "";
    items.forEach(function (x) {
      const opt = node("option", x[key] + (x.name ? " " + x.name : x.address ? " " + x.address : ""));
      opt.value = x[key];
      select.appendChild(opt);
    });
    select.value = keep;
  }

  async function reload() {
    const got = await Promise.all([call("GET", "/grid-cells"), call("GET", "/households"),
                                   call("GET", "/devices")]);
    cells = got[0];
    households = got[1];
    renderHouseholds();
    renderCells();
    renderDevices(got[2]);
    document.querySelectorAll("select.cell-choice").forEach(function (s) {
      fillSelect(s, cells, "code");
    });
    fillSelect(el("household-choice"), households, "code");
  }

  // --- forms ---

  function values(form) {
    const out = {};
    Array.from(form.elements).forEach(function (f) {
      if (f.name && !f.closest(".contact")) out[f.name] = f.value.trim();
    });
    return out;
  }

  function edit(formId, entry, key) {
    const form = el(formId);
    Array.from(form.elements).forEach(function (f) {
      if (!f.name || f.closest(".contact") || !(f.name in entry)) return;
      f.value = entry[f.name] === null ? "" : entry[f.name];
    });
    form.dataset.editing = key;
    if (form.elements.device_id) form.elements.device_id.readOnly = true;
    form.scrollIntoView({ block: "nearest" });
  }

  function contactRow(c) {
    const div = node("div", null, "contact");
    [["contact_name", "name"], ["phone", "phone"], ["relation", "relation"]].forEach(function (f) {
      const input = document.createElement("input");
      input.placeholder = R[f[0]];
      input.dataset.field = f[1];
      input.value = c ? c[f[1]] || "" : "";
      div.appendChild(input);
    });
    if (c && c.email) div.dataset.email = c.email; // kept, though the form does not show it
    div.appendChild(button("×", "remove-contact", function () { div.remove(); }));
    el("contact-rows").appendChild(div);
  }

  function contacts() {
    const out = [];
    el("contact-rows").querySelectorAll(".contact").forEach(function (div) {
      const c = {};
      div.querySelectorAll("input").forEach(function (i) { c[i.dataset.field] = i.value.trim(); });
      if (div.dataset.email) c.email = div.dataset.email;
      if (c.name || c.phone) out.push(c);
    });
    return out;
  }

  function editHousehold(h) {
    edit("household-form", h, h.code);
    el("household-form").elements.grid_cell.value = h.grid_cell || "";
    el("contact-rows").replaceChildren();
    h.contacts.forEach(contactRow);
    if (!h.contacts.length) contactRow(null);
  }

  // after(saved entry, form values) runs once the entry is saved
  function onSubmit(formId, path, build, after) {
    const form = el(formId);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      el("registry-error").hidden = true;
      const key = form.dataset.editing;
      const v = values(form);
      const body = build(Object.assign({}, v), Boolean(key));
      const done = key ? call("PATCH", path + "/" + key, body) : call("POST", path, body);
      done.then(function (saved) { return after ? after(saved, v) : null; })
        .then(function () { form.reset(); return reload(); }).catch(fail);
    });
    form.addEventListener("reset", function () {
      delete form.dataset.editing;
      if (form.elements.device_id) form.elements.device_id.readOnly = false;
      if (formId === "household-form") {
        el("contact-rows").replaceChildren();
        contactRow(null);
      }
    });
  }

  function orNull(v, editing) { return v === "" && !editing ? null : v; }

  if (manage) {
    contactRow(null);
    el("add-contact").addEventListener("click", function () { contactRow(null); });
    onSubmit("household-form", "/households", function (v, editing) {
      v.grid_cell = orNull(v.grid_cell, editing);
      v.contacts = contacts();
      return v;
    });
    onSubmit("cell-form", "/grid-cells", function (v) { return v; });
    onSubmit("device-form", "/devices", function (v, editing) {
      v.household = orNull(v.household, editing);
      delete v.key_hex; // write-only, through its own call
      if (editing) delete v.device_id;
      return v;
    }, function (saved, v) {
      if (!v.key_hex) return null;
      return call("PUT", "/devices/" + saved.device_id + "/key", { key_hex: v.key_hex });
    });
  }
  // the import section (registry_import.js) announces a written file
  document.addEventListener("registry:changed", function () { reload().catch(fail); });
  reload().catch(fail);
})();
