// The action plans page: every alarm type's steps in zh-CN and en; a
// supervisor or admin edits a type's steps (add, remove, move, the words in
// both languages), saves them (PUT /api/v1/plans/{type}) or goes back to
// the shipped plan (DELETE).  Each change is audited by the centre.
"use strict";

(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const L = boot.labels;
  const P = L.plan;
  const R = window.HGReadable;
  const el = function (id) { return document.getElementById(id); };
  const when = new Intl.DateTimeFormat(boot.lang, {
    timeZone: boot.timezone, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });

  function node(tag, value, cls) {
    const n = document.createElement(tag);
    if (value !== undefined) n.textContent = value;
    if (cls) n.className = cls;
    return n;
  }

  function button(label, onClick, cls) {
    const b = node("button", label, cls);
    b.type = "button";
    b.addEventListener("click", onClick);
    return b;
  }

  function showError(text) {
    el("plan-error").textContent = text || "";
    el("plan-error").hidden = !text;
  }

  function heading(plan) {
    const h = node("h2", L.types[plan.type] || plan.type);
    const state = plan.custom
      ? R.fill(P.edited_by, { user: plan.updated_by, when: when.format(new Date(plan.updated_ms)) })
      : P.default;
    h.appendChild(node("span", state, "muted"));
    return h;
  }

  function readOnly(plan) {
    const ol = node("ol");
    plan.steps.forEach(function (s) {
      const li = node("li", s[boot.lang]);
      li.dataset.key = s.key;
      ol.appendChild(li);
    });
    return ol;
  }

  // the editor: one row per step with both languages' words
  function editor(plan, section) {
    const box = node("div", undefined, "editor");
    const rows = node("div");
    function row(s) {
      const r = node("div", undefined, "edit-row");
      r.dataset.key = s.key || "";
      ["zh-CN", "en"].forEach(function (lang) {
        const input = document.createElement("input");
        input.value = s[lang] || "";
        input.dataset.lang = lang;
        input.setAttribute("aria-label", lang === "en" ? P.text_en : P.text_zh);
        input.placeholder = lang === "en" ? P.text_en : P.text_zh;
        r.appendChild(input);
      });
      r.appendChild(button(P.up, function () {
        if (r.previousElementSibling) rows.insertBefore(r, r.previousElementSibling);
      }));
      r.appendChild(button(P.down, function () {
        if (r.nextElementSibling) rows.insertBefore(r.nextElementSibling, r);
      }));
      r.appendChild(button(P.remove, function () { r.remove(); }, "remove"));
      rows.appendChild(r);
    }
    plan.steps.forEach(row);
    box.appendChild(rows);
    const tools = node("div", undefined, "tools");
    const saved = node("span", "", "saved");
    tools.appendChild(button(P.add_step, function () { row({}); }, "add"));
    tools.appendChild(button(P.save, async function () {
      const steps = Array.from(rows.children).map(function (r) {
        const s = { "zh-CN": r.querySelector('[data-lang="zh-CN"]').value,
                    en: r.querySelector('[data-lang="en"]').value };
        if (r.dataset.key) s.key = r.dataset.key;
        return s;
      });
      const got = await send("PUT", plan.type, { steps: steps });
      if (got) { replace(section, got); }
    }, "save"));
    tools.appendChild(button(P.reset, async function () {
      const got = await send("DELETE", plan.type);
      if (got) replace(section, got);
    }, "reset"));
    tools.appendChild(saved);
    box.appendChild(tools);
    return box;
  }

  async function send(method, type, body) {
    showError("");
    const r = await fetch(boot.api + "/plans/" + encodeURIComponent(type), {
      method: method, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": boot.csrf },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const got = await r.json();
    if (!r.ok) {
      showError(L.text.error + ": " + (typeof got.detail === "string" ? got.detail : r.statusText));
      return null;
    }
    return got;
  }

  function section(plan) {
    const s = node("section");
    s.id = "plan-" + plan.type;
    s.dataset.type = plan.type;
    s.dataset.custom = String(plan.custom);
    s.appendChild(heading(plan));
    s.appendChild(readOnly(plan));
    if (boot.can_manage) s.appendChild(editor(plan, s));
    return s;
  }

  function replace(old, plan) {
    const s = section(plan);
    old.replaceWith(s);
    s.querySelector(".tools .saved").textContent = P.saved;
  }

  boot.plans.forEach(function (p) { el("plan-list").appendChild(section(p)); });
})();
