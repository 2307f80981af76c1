// The three-colour overview: one tile per community coloured red/yellow/
// green by its confirmed incidents in the rating window (its compounds
// listed inside), and a table of grid cells with their counts.  Re-reads
// /api/v1/overview every 10 s.
"use strict";

(function () {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const C = boot.labels.centre;
  const el = function (id) { return document.getElementById(id); };

  function node(tag, text, cls) {
    const n = document.createElement(tag);
    if (text !== undefined) n.textContent = text;
    if (cls) n.className = cls;
    return n;
  }

  function tile(c) {
    const li = node("li", undefined, "tile");
    li.dataset.community = c.community;
    li.dataset.colour = c.colour;
    li.append(node("h3", c.community || C.unassigned),
      node("div", C[c.colour] + " · " + C.incidents + " " + c.incidents, "count"));
    const list = node("ul");
    for (const p of c.compounds) {
      const item = node("li", (p.compound || "—") + ": " + p.incidents);
      item.dataset.compound = p.compound;
      item.dataset.colour = p.colour;
      list.append(item);
    }
    li.append(list);
    return li;
  }

  function cellRow(g) {
    const tr = document.createElement("tr");
    tr.dataset.code = g.code;
    tr.dataset.colour = g.colour;
    const name = node("td");
    const dot = node("span", undefined, "dot");
    dot.dataset.colour = g.colour;
    name.append(dot, g.code + " " + g.name);
    tr.append(name, node("td", g.community), node("td", g.worker || "—"),
      node("td", g.households, "num"), node("td", g.incidents, "num incidents"));
    return tr;
  }

  async function load() {
    const r = await fetch(boot.api + "/overview", { credentials: "same-origin" });
    const err = el("overview-error");
    if (!r.ok) {
      err.textContent = "/overview: " + r.status + " " + (await r.text());
      err.hidden = false;
      return;
    }
    const o = await r.json();
    err.hidden = true;
    el("rating-rule").textContent = C.window + " " + o.window_days + " · " + C.yellow +
      " ≥ " + o.yellow + " · " + C.red + " ≥ " + o.red;
    el("communities").replaceChildren(...o.communities.map(tile));
    el("cell-rows").replaceChildren(...o.grid_cells.map(cellRow));
    document.body.dataset.loaded = "true";
  }

  load();
  setInterval(load, 10000);
})();
