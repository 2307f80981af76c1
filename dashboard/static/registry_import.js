// The registry page's import section: "Check file" sends the chosen file
// (CSV, or an Excel workbook: the centre tells them apart by content) to
// POST /api/v1/registry/import?dry_run=true and shows the report (what
// would be created or changed, or every problem by row and column);
// "Import now" sends the same file with dry_run=false.  A written file
// tells registry.js ("registry:changed") to reload the tables.
"use strict";

(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const form = document.getElementById("import-form");
  if (!form) return; // a role without registry.manage has no section
  const I = boot.labels.reg_import;
  const el = function (id) { return document.getElementById(id); };
  const KINDS = ["grid_cells", "households", "contacts", "devices"];
  const XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
  let checked = null; // the File whose dry run was good

  function fill(text, vars) {
    return text.replace(/\{(\w+)\}/g, function (_m, k) { return String(vars[k]); });
  }

  function rows(tableId, lines) {
    const table = el(tableId);
    const body = table.querySelector("tbody");
    body.replaceChildren();
    lines.forEach(function (cells) {
      const tr = document.createElement("tr");
      cells.forEach(function (c) {
        const td = document.createElement("td");
        td.textContent = c;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    table.hidden = lines.length === 0;
  }

  function say(text) {
    el("import-report").hidden = false;
    el("import-summary").textContent = text;
  }

  function show(report) {
    const ok = report.ok;
    rows("import-counts", ok ? KINDS.map(function (k) {
      return [I[k], report.counts[k].create, report.counts[k].update];
    }) : []);
    rows("import-errors", (report.errors || []).map(function (p) {
      return [p.row ? String(p.row) : I.whole_file, p.column || "", p.message];
    }));
    el("import-report").dataset.state = !ok ? "failed" : report.written ? "done" : "checked";
    if (!ok) say(fill(I.failed, { n: report.errors.length }));
    else say(fill(report.written ? I.done : I.ok, { rows: report.rows }));
  }

  // what the file says it is; a file named .xlsx that is not a workbook is
  // then refused as such, not read as CSV
  function mediaType(file) {
    return /\.xlsx$/i.test(file.name) ? XLSX : "text/csv";
  }

  async function send(file, dryRun) {
    const r = await fetch(boot.api + "/registry/import?dry_run=" + dryRun, {
      method: "POST", credentials: "same-origin", body: file,
      headers: { "Content-Type": mediaType(file), "X-CSRF-Token": boot.csrf },
    });
    const got = await r.json();
    if (r.ok || (r.status === 422 && got.errors)) return got;
    throw new Error(typeof got.detail === "string" ? got.detail : r.statusText);
  }

  function run(file, dryRun) {
    el("import-confirm").hidden = true;
    el("import-check").disabled = true;
    say(dryRun ? I.checking : I.importing);
    return send(file, dryRun).then(function (report) {
      show(report);
      checked = dryRun && report.ok ? file : null;
      el("import-confirm").hidden = !checked;
      if (report.written) document.dispatchEvent(new CustomEvent("registry:changed"));
    }).catch(function (err) {
      el("import-report").dataset.state = "failed";
      say(String(err.message || err));
    }).finally(function () { el("import-check").disabled = false; });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    const file = el("import-file").files[0];
    if (!file) { say(I.no_file); return; }
    run(file, true);
  });
  el("import-file").addEventListener("change", function () {
    checked = null;
    el("import-confirm").hidden = true;
  });
  el("import-confirm").addEventListener("click", function () {
    if (checked) run(checked, false);
  });
})();
