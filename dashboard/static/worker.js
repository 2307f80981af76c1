// The grid worker's phone (/worker): the tasks dispatched to this worker,
// followed live (GET /api/v1/worker/stream sends the whole list whenever it
// changes), each with the household's address, contacts to call, the alarm,
// and the next step: accept, arrive, report (with the result and a note).
"use strict";

(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const W = boot.labels.worker;
  const T = boot.labels.types;
  const O = boot.labels.outcomes;
  const el = function (id) { return document.getElementById(id); };
  const when = new Intl.DateTimeFormat(boot.lang, {
    timeZone: boot.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });

  function node(tag, text, cls) {
    const n = document.createElement(tag);
    if (text !== undefined && text !== null) n.textContent = text;
    if (cls) n.className = cls;
    return n;
  }

  function field(label, value, cls) {
    const p = node("p", null, "field " + (cls || ""));
    p.append(node("span", label, "label"), node("span", value, "value"));
    return p;
  }

  function showError(text) {
    el("error").textContent = text ? W.failed + text : "";
    el("error").hidden = !text;
  }

  async function post(id, action, body) {
    showError("");
    const r = await fetch(boot.api + "/tasks/" + id + "/" + action, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": boot.csrf },
      body: JSON.stringify(body),
    });
    if (!r.ok) {
      let why = r.status + "";
      try { why = (await r.json()).detail || why; } catch (e) { /* not JSON */ }
      showError(why);
      return;
    }
    // the stream brings the list with this step; show it at once too
    replace(await r.json());
  }

  function contacts(site) {
    const box = node("div", null, "contacts");
    box.append(node("h3", W.contacts));
    if (!site.contacts.length) box.append(node("p", W.no_contacts, "muted"));
    site.contacts.forEach(function (c) {
      const a = node("a", null, "call");
      a.href = "tel:" + c.phone.replace(/[^0-9+]/g, "");
      a.append(node("span", c.name + (c.relation ? " (" + c.relation + ")" : ""), "name"),
        node("span", c.phone, "phone"));
      box.append(a);
    });
    return box;
  }

  function stepForm(t) {
    const box = node("div", null, "step");
    const note = node("textarea", null, "note");
    note.placeholder = W.note_hint;
    note.maxLength = 2000;
    note.setAttribute("aria-label", W.note);
    if (t.next.includes("report")) {
      const label = node("label", W.result, "result");
      const pick = node("select", null, "outcome");
      ["genuine", "false", "test"].forEach(function (k) {
        const opt = node("option", O[k]);
        opt.value = k;
        pick.append(opt);
      });
      label.append(pick);
      const send = node("button", W.report, "act act-report");
      send.type = "button";
      send.addEventListener("click", function () {
        post(t.alarm_id, "report", { outcome: pick.value, note: note.value });
      });
      box.append(label, note, send);
      return box;
    }
    t.next.forEach(function (action) {
      const b = node("button", W[action], "act act-" + action);
      b.type = "button";
      b.addEventListener("click", function () {
        post(t.alarm_id, action, { note: note.value });
      });
      box.append(b);
    });
    if (t.next.length) box.prepend(note);
    return box;
  }

  function card(t) {
    const li = node("li", null, "task p" + t.priority);
    li.dataset.alarm = t.alarm_id;
    li.dataset.step = t.step;
    const head = node("div", null, "head");
    head.append(node("span", T[t.type] || t.type, "type"),
      node("span", W["step_" + t.step] || t.step, "state"));
    li.append(head);
    const s = t.site;
    if (s.address) {
      li.append(field(W.address, s.address + (s.compound ? " · " + s.compound : ""),
                      "address"));
    } else {
      li.append(node("p", W.unregistered, "muted"));
    }
    if (s.household) li.append(field(W.household, s.household));
    li.append(field(W.time, when.format(new Date(t.event_time_ms)), "time"),
      field(W.device, t.device, "device"));
    if (t.note) li.append(field(W.from_centre, t.note, "from-centre"));
    if (t.dispatched_by) li.append(field(W.dispatched_by, t.dispatched_by));
    li.append(contacts(s), stepForm(t));
    return li;
  }

  let shown = [];

  function replace(task) {
    render(shown.map(function (t) { return t.alarm_id === task.alarm_id ? task : t; }));
  }

  // a card whose task is unchanged stays as it is (with what was typed in it)
  function render(tasks) {
    const list = el("tasks");
    const old = new Map();
    list.querySelectorAll("li.task").forEach(function (li) { old.set(li.dataset.alarm, li); });
    const before = new Map(shown.map(function (t) { return [String(t.alarm_id), t]; }));
    const cards = tasks.map(function (t) {
      const li = old.get(String(t.alarm_id));
      const was = before.get(String(t.alarm_id));
      return li && was && JSON.stringify(was) === JSON.stringify(t) ? li : card(t);
    });
    list.replaceChildren.apply(list, cards);
    el("empty").hidden = tasks.length > 0;
    shown = tasks;
  }

  function follow() {
    const source = new EventSource(boot.api + "/stream");
    source.addEventListener("tasks", function (m) {
      render(JSON.parse(m.data));
      el("live").dataset.on = "true";
      el("offline").hidden = true;
    });
    source.addEventListener("error", function () {
      el("live").dataset.on = "false";
      el("offline").hidden = false;
    });
  }

  render(boot.tasks);
  follow();
})();
