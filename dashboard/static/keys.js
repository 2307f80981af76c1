// The desk from the keyboard: ↑/↓ (or k/j) move through the alarms, Enter
// or Space opens one, a/v/d/r acknowledge, verify (then 1-3 for the
// outcome), dispatch (then 1-2 for whom) and resolve (which cannot be
// undone, so it asks for the result it closes with and names plan steps not
// done: panel.js) the alarm under the cursor, 1-9 record the outcome of that
// plan step (then 1-4: done, no answer, not needed, failed), n goes to the
// note field, u releases the alarm, t goes to the reassign field (Enter there
// reassigns: panel.js), m mutes, ? shows the keys, Esc closes a dialog or
// leaves a field for the alarm's row.  Keys are ignored while typing.
"use strict";

(function () {
  const desk = window.HGDesk;
  const panel = window.HGPanel;
  const alert = window.HGAlert;
  const L = desk.boot.labels;
  const el = function (id) { return document.getElementById(id); };
  const keys = el("keys");
  const ask = el("ask");
  let answer = null;  // resolves the open question

  function rows() { return Array.from(desk.rows().children); }

  function cursor() {
    const focused = document.activeElement;
    if (focused && focused.parentElement === desk.rows()) return focused;
    return desk.rows().querySelector("tr.selected");
  }

  function move(step) {
    const all = rows();
    if (!all.length) return;
    const at = all.indexOf(cursor());
    const to = at < 0 ? 0 : Math.min(all.length - 1, Math.max(0, at + step));
    all[to].focus();
    all[to].scrollIntoView({ block: "nearest" });
    if (to === all.length - 1) desk.loadMore();
  }

  // a question in the dialog: choices [[key, label, value]]; null on Esc
  function question(text, choices) {
    el("ask-text").textContent = text;
    const box = el("ask-choices");
    box.replaceChildren();
    choices.forEach(function (c) {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.key = c[0];
      b.dataset.value = c[2];
      b.textContent = c[1];
      b.addEventListener("click", function () { finish(c[2]); });
      box.appendChild(b);
    });
    ask.showModal();
    box.firstChild.focus();
    return new Promise(function (resolve) { answer = resolve; });
  }

  function finish(value) {
    const done = answer;
    answer = null;
    if (ask.open) ask.close();
    if (done) done(value);
  }

  // Esc (or close()) answers null; the close event comes a task later, and
  // a key pressed at once (input goes first) may already have asked the next
  // question: a late close of the last one must not answer (and shut) it
  ask.addEventListener("close", function () { if (!ask.open) finish(null); });
  ask.addEventListener("keydown", function (e) {
    const b = el("ask-choices").querySelector('button[data-key="' + e.key + '"]');
    if (b) { e.preventDefault(); b.click(); }
  });

  // choices in the workflow's order (the page's label tables arrive sorted)
  const OUTCOMES = ["genuine", "false", "test"];
  const DISPATCH_TO = ["grid_worker", "patrol"];

  function numbered(keys, table) {
    return keys.map(function (k, i) { return [String(i + 1), (i + 1) + " " + table[k], k]; });
  }

  async function perform(action) {
    const tr = cursor();
    if (!tr) return;
    const a = desk.alarm(Number(tr.dataset.alarmId));
    if (!a) return;
    if (panel.selected() !== a.id) desk.open(tr);
    if (action === "release") {  // the holder's; anyone else gets the centre's answer
      await panel.act(a.id, "release", {});
      refocus(a.id);
      return;
    }
    if (action === "resolve") {
      // always asked first (the result, steps not done): it cannot be undone
      await panel.ready();
      await panel.resolve(panel.shown() || a);
      refocus(a.id);
      return;
    }
    if (panel.can(a).indexOf(action) < 0) {
      // not now (state, role, or another holds it): the server says why
      await panel.act(a.id, action, action === "verify" ? { outcome: "genuine" }
        : action === "dispatch" ? { to: "grid_worker" } : {});
      tr.focus();
      return;
    }
    let body = {};
    if (action === "verify") {
      const outcome = await question(L.desk.pick_outcome, numbered(OUTCOMES, L.outcomes));
      if (outcome === null) { refocus(a.id); return; }
      body = { outcome: outcome };
    } else if (action === "dispatch") {
      const to = await question(L.desk.pick_dispatch, numbered(DISPATCH_TO, L.dispatch_to));
      if (to === null) { refocus(a.id); return; }
      body = { to: to };
    }
    await panel.act(a.id, action, body);
    refocus(a.id);
  }

  // the n-th step of the alarm's plan (the alarm under the cursor, opened first)
  async function step(n) {
    const tr = cursor();
    const id = tr ? Number(tr.dataset.alarmId) : panel.selected();
    if (id === null || id === undefined) return;
    if (tr && panel.selected() !== id) desk.open(tr);
    await panel.ready();
    await panel.step(n - 1);
    refocus(id);
  }

  // back to the alarm's row, or where it was when it left the list
  function refocus(id) {
    const tr = desk.rows().querySelector('tr[data-alarm-id="' + id + '"]');
    if (tr) { tr.focus(); return; }
    const first = desk.rows().firstElementChild;
    if (first && !desk.rows().contains(document.activeElement)) first.focus();
  }

  // the alarm under the cursor opened, then one of its panel's fields focused
  async function field(id) {
    const tr = cursor();
    if (tr && panel.selected() !== Number(tr.dataset.alarmId)) desk.open(tr);
    await panel.ready();
    const input = el(id);
    if (input) input.focus();
  }

  const ACTIONS = { a: "ack", v: "verify", d: "dispatch", r: "resolve", u: "release" };
  const FIELDS = { n: "action-note", t: "reassign-to" };

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented) return;
    if (ask.open || e.isComposing) return;
    if (keys.open) {
      if (e.key === "?") { e.preventDefault(); keys.close(); }
      return;
    }
    const t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "SELECT" || t.tagName === "TEXTAREA")) {
      if (e.key === "Escape") {
        t.blur();
        if (panel.selected() !== null) refocus(panel.selected());
      }
      return;
    }
    if (e.key === "ArrowDown" || e.key === "j") { e.preventDefault(); move(1); return; }
    if (e.key === "ArrowUp" || e.key === "k") { e.preventDefault(); move(-1); return; }
    if (e.key === "?") { e.preventDefault(); keys.showModal(); return; }
    if (e.key === "m") { e.preventDefault(); alert.setMuted(!alert.muted()); return; }
    const inRows = t && t.parentElement === desk.rows();
    if ((e.key === "Enter" || e.key === " ") && inRows) {
      e.preventDefault();
      desk.open(t);
      return;
    }
    if (ACTIONS[e.key] && (inRows || panel.selected() !== null)) {
      e.preventDefault();
      perform(ACTIONS[e.key]);
      return;
    }
    if (FIELDS[e.key] && (inRows || panel.selected() !== null)) {
      e.preventDefault();  // the key is not typed into the field
      field(FIELDS[e.key]);
      return;
    }
    if (/^[1-9]$/.test(e.key) && (inRows || panel.selected() !== null)) {
      e.preventDefault();
      step(Number(e.key));
    }
  });

  window.HGKeys = { question: question };
})();
