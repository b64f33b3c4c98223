/* The cloudsdk web UI: a feature registry on the REST API (no framework, no build step).
 *
 * Every request carries "Authorization: ApiKey <key>" and "X-Cloudsdk-Project: <project>".
 * The key lives in sessionStorage only (never in a URL). Data is always put into the page as
 * text (textContent / attributes through el()), never as HTML.
 */
"use strict";

const API = "/api/v1";
const S = window.sessionStorage;
const SVGNS = "http://www.w3.org/2000/svg";
const RULE_TYPES = ["completeness", "uniqueness", "distinctness", "min", "max", "mean", "sum", "stddev",
  "size", "pattern", "allowed_values"];
const FORMATS = ["tfrecords", "parquet", "csv", "tsv", "avro", "orc", "petastorm", "hdf5", "npy"];

class ApiError extends Error {
  constructor(message, status, code) { super(message); this.status = status; this.code = code; }
}

// --- state -----------------------------------------------------------------------------------

function key() { return S.getItem("cloudsdk.key"); }
function project() { return S.getItem("cloudsdk.project") || "default"; }
// The feature store the pages read: the project's own, or one shared with it (its owner project).
function store() { return S.getItem("cloudsdk.store") || project(); }
function ownStore() { return store() === project(); }

// --- DOM helpers (text only) ------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVGNS, tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

function setAttrs(node, attrs) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function text(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function fmt(value) {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return String(value);
    if (Number.isInteger(value)) return String(value);
    return Math.abs(value) >= 1e5 || Math.abs(value) < 1e-3 ? value.toExponential(3) : value.toFixed(3);
  }
  return text(value);
}

function table(headers, rows, attrs) {
  return el("table", attrs,
    el("thead", null, el("tr", null, headers.map((h) => el("th", null, h)))),
    el("tbody", null, rows.map((r) => el("tr", null, r.map((c) => el("td", null, c))))));
}

function facts(rows, attrs) {
  return el("table", Object.assign({ class: "facts" }, attrs || {}),
    el("tbody", null, rows.map(([k, v]) => el("tr", null, el("th", null, k), el("td", null, v)))));
}

function kv(obj) {
  const entries = Object.entries(obj || {});
  if (!entries.length) return el("p", { class: "muted" }, "none");
  return table(["key", "value"], entries.map(([k, v]) => [k, text(v)]));
}

function link(hash, label) { return el("a", { href: hash }, label); }
function enc(s) { return encodeURIComponent(s); }
function errorBox(err) { return el("div", { class: "error", role: "alert" }, err instanceof Error ? err.message : String(err)); }

function main() { return document.getElementById("main"); }
function show(...nodes) { const m = main(); m.replaceChildren(); append(m, nodes); }

// --- the API ---------------------------------------------------------------------------------

async function api(method, path, body, opts) {
  const o = opts || {};
  const headers = { "Authorization": "ApiKey " + (o.key || key() || ""), "X-Cloudsdk-Project": o.project || project() };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const base = o.raw ? API : API + "/projects/" + enc(o.store || store());
  let response;
  try { response = await fetch(base + path, init); }
  catch (err) { throw new ApiError("cannot reach the server: " + err.message, 0, "network"); }
  if (response.status === 204) return null;
  let payload = null;
  try { payload = await response.json(); } catch (_err) { payload = null; }
  if (!response.ok) {
    const message = payload && payload.message ? payload.message : "HTTP " + response.status;
    const error = new ApiError(message, response.status, payload && payload.code);
    if (response.status === 401 && !o.login) { logout(message); }
    throw error;
  }
  return payload;
}

function q(params) {
  const parts = Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== "")
    .map(([k, v]) => enc(k) + "=" + enc(v));
  return parts.length ? "?" + parts.join("&") : "";
}

// --- login -----------------------------------------------------------------------------------

function logout(reason) {
  S.removeItem("cloudsdk.key");
  S.removeItem("cloudsdk.store");
  if (reason) S.setItem("cloudsdk.reason", reason);
  if (location.hash !== "#/login") location.hash = "#/login";
  else route();
}

function loginPage() {
  document.body.classList.add("logged-out");
  document.getElementById("who").textContent = "";
  const reason = S.getItem("cloudsdk.reason");
  S.removeItem("cloudsdk.reason");
  const status = el("div", { id: "login-status" }, reason ? errorBox(reason) : null);
  const form = el("form", { class: "stack", id: "login-form", autocomplete: "off" },
    el("label", null, "Project", el("input", { name: "project", id: "login-project", value: project(), required: true })),
    el("label", null, "API key", el("input", { name: "key", id: "login-key", type: "password", required: true })),
    el("button", { type: "submit", id: "login-submit" }, "Log in"), status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const p = form.elements.project.value.trim();
    const k = form.elements.key.value.trim();
    status.replaceChildren(el("p", { class: "muted" }, "Checking…"));
    try {
      await api("GET", "/featuregroups", undefined, { key: k, project: p, store: p, login: true });
    } catch (err) {
      status.replaceChildren(errorBox(err));
      return;
    }
    S.setItem("cloudsdk.key", k);
    S.setItem("cloudsdk.project", p);
    S.removeItem("cloudsdk.store");
    location.hash = "#/";
  });
  show(el("div", { id: "login-box" }, el("h1", null, "Log in"),
    el("p", { class: "muted" }, "Use an API key of the store (cloudsdk apikey create, cloudsdk ui or cloudsdk server start --dev)."),
    form));
}

// --- pages -----------------------------------------------------------------------------------

async function homePage() {
  const [groups, datasets] = await Promise.all([api("GET", "/featuregroups"), api("GET", "/trainingdatasets")]);
  show(el("h1", null, "Feature store ", el("span", { class: "muted" }, store() + "_featurestore")),
    el("h2", null, "Feature groups"),
    groups.length ? table(["name", "version", "features", "description", "updated"], groups.map((g) => [
      link(`#/fg/${enc(g.name)}/${g.version}`, g.name), g.version, g.features.length, g.description, g.updated || ""]),
    { id: "groups" }) : el("p", { class: "muted" }, "No feature groups yet."),
    el("h2", null, "Training datasets"),
    datasets.length ? table(["name", "version", "format", "rows", "created"], datasets.map((d) => [
      link(`#/td/${enc(d.name)}/${d.version}`, d.name), d.version, d.data_format, fmt(d.row_count), d.created || ""]),
    { id: "datasets" }) : el("p", { class: "muted" }, "No training datasets yet."));
}

async function searchPage(params) {
  const text0 = params.get("q") || "";
  document.getElementById("search-input").value = text0;
  if (!text0.trim()) { show(el("h1", null, "Search"), el("p", { class: "muted" }, "Type a word in the search bar.")); return; }
  const results = await api("GET", "/search" + q({ q: text0 }));
  const items = results.map((r) => {
    const versions = r.versions || [];
    let target;
    if (r.kind === "feature") target = r.featuregroup ? `#/fg/${enc(r.featuregroup)}/${versions.length ? versions[0].version : ""}` : null;
    else if (r.kind === "training_dataset") target = `#/td/${enc(r.name)}/${versions.length ? versions[0].version : ""}`;
    else target = `#/fg/${enc(r.name)}/${versions.length ? versions[0].version : ""}`;
    const title = r.kind === "feature" && r.featuregroup ? `${r.name} (in ${r.featuregroup})` : r.name;
    return el("div", { class: "result", "data-kind": r.kind, "data-name": r.name },
      el("span", { class: "kind" }, r.kind.replace("_", " ")),
      target ? link(target, title) : title,
      el("span", { class: "muted" }, "  " + (r.match || "")),
      el("div", null, versions.map((v) => el("span", { class: "pill" }, "v" + v.version + (v.description ? ": " + v.description : "")))));
  });
  show(el("h1", null, "Search: ", text0),
    el("div", { id: "search-results" }, items.length ? items : el("p", { class: "muted" }, "Nothing found.")));
}

function section(title, id, ...children) {
  return el("section", { class: "card", id }, el("h2", null, title), ...children);
}

async function loadInto(container, loader) {
  container.replaceChildren(el("p", { class: "muted" }, "Loading…"));
  try { container.replaceChildren(...[].concat(await loader())); }
  catch (err) { container.replaceChildren(errorBox(err)); }
}

async function groupPage(name, version) {
  const v = version ? Number(version) : null;
  const g = await api("GET", `/featuregroups/${enc(name)}` + q({ version: v }));
  const vq = q({ version: g.version });
  const statsBox = el("div", { id: "stats-box" });
  const commitsBox = el("div", { id: "commits-box" });
  const rulesBox = el("div", { id: "rules-box" });
  const resultsBox = el("div", { id: "results-box" });
  const tdBox = el("div", { id: "group-datasets" });
  const tagsBox = el("div", { id: "tags-box" });
  const previewBox = el("div", { id: "preview-box" });

  show(el("h1", null, g.name, el("span", { class: "muted" }, " version " + g.version)),
    section("Overview", "overview",
      el("p", { id: "fg-description" }, g.description || el("span", { class: "muted" }, "No description.")),
      facts([
        ["primary key", (g.primary_key || []).join(", ")],
        ["partitioned by", (g.partition_by || []).join(", ")],
        ["event time", g.event_time || ""],
        ["online", String(!!g.online_enabled)],
        ["on demand", String(!!g.on_demand)],
        ["location", g.location || ""],
        ["jobs", (g.jobs || []).map((j) => typeof j === "string" ? j : (j.name + (j.url ? " (" + j.url + ")" : ""))).join(", ")],
        ["created", g.created || ""], ["updated", g.updated || ""]])),
    section("Schema", "schema", table(["feature", "type", "primary", "partition", "description"],
      g.features.map((f) => [f.name, f.type, f.primary ? "yes" : "", f.partition ? "yes" : "", f.description || ""]))),
    section("Metadata", "metadata", kv(g.metadata),
      ownStore() ? metadataForm("featuregroups", g.name, g.version) : null),
    section("Tags", "tags", tagsBox),
    section("Data preview", "preview", previewBox),
    section("Statistics", "statistics", statsBox),
    section("Commits", "commits", commitsBox),
    section("Validation rules", "validation", rulesBox, ownStore() ? ruleForm(g) : null),
    section("Validation results", "validation-results", resultsBox),
    section("Training datasets built from this group", "group-tds", tdBox));

  tagsBox.replaceChildren(tagsView("featuregroup", g.name, g.version, g.tags || {}));
  loadInto(previewBox, async () => {
    const pv = await api("GET", `/featuregroups/${enc(g.name)}/preview` + q({ version: g.version, n: 10 }));
    if (!pv.rows.length) return el("p", { class: "muted" }, "No rows.");
    return table(pv.columns, pv.rows.map((r) => r.map((v) => v === null ? "" : (typeof v === "object" ? JSON.stringify(v) : String(v)))),
      { id: "preview-table" });
  });
  loadInto(statsBox, async () => statsView(await api("GET", `/featuregroups/${enc(g.name)}/statistics` + vq), g));
  loadInto(commitsBox, async () => {
    const commits = await api("GET", `/featuregroups/${enc(g.name)}/commits` + q({ version: g.version, limit: 50 }));
    if (!commits.length) return el("p", { class: "muted" }, "No commits.");
    return table(["commit", "committed at", "operation", "inserted", "updated", "deleted"],
      commits.map((c) => [c.commit_id, c.committed_at || "", c.operation || "", fmt(c.rows_inserted), fmt(c.rows_updated), fmt(c.rows_deleted)]),
      { id: "commits-table" });
  });
  const loadRules = () => loadInto(rulesBox, async () => rulesView(await api("GET", `/featuregroups/${enc(g.name)}/validation/rules` + vq), g, loadRules));
  const loadResults = () => loadInto(resultsBox, async () => resultsView(
    await api("GET", `/featuregroups/${enc(g.name)}/validation/results` + q({ version: g.version, limit: 5 })), g, loadResults));
  loadRules();
  loadResults();
  loadInto(tdBox, async () => {
    const tds = await api("GET", `/featuregroups/${enc(g.name)}/trainingdatasets` + vq);
    const list = Array.isArray(tds) ? tds : (tds.training_datasets || []);
    if (!list.length) return el("p", { class: "muted" }, "None.");
    return el("ul", null, list.map((d) => el("li", null, link(`#/td/${enc(d.name)}/${d.version}`, `${d.name} v${d.version}`))));
  });
  window.__reloadValidation = () => { loadRules(); loadResults(); };
}

function tagsView(kind, name, version, tags) {
  const box = el("div");
  const render = (current) => {
    const items = Object.entries(current || {});
    box.replaceChildren(
      items.length ? el("div", null, items.map(([t, val]) => el("span", { class: "pill" }, val === null || val === "" ? t : `${t}: ${val}`))) :
        el("p", { class: "muted" }, "No tags."));
    if (!ownStore()) return;
    const status = el("span");
    const form = el("form", { class: "inline" },
      el("label", null, "tag", el("input", { name: "tag", required: true, size: 12 })),
      el("label", null, "value", el("input", { name: "value", size: 16 })),
      el("button", { type: "submit" }, "Add tag"), status);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const after = await api("POST", `/tags/${kind}/${enc(name)}` + q({ version }),
          { tag: form.elements.tag.value.trim(), value: form.elements.value.value || null });
        render(after && typeof after === "object" ? after : current);
      } catch (err) { status.replaceChildren(errorBox(err)); }
    });
    box.appendChild(form);
  };
  render(tags);
  return box;
}

function metadataForm(collection, name, version) {
  const status = el("span");
  const form = el("form", { class: "inline" },
    el("label", null, "key", el("input", { name: "key", required: true, size: 12 })),
    el("label", null, "value", el("input", { name: "value", required: true, size: 20 })),
    el("button", { type: "submit" }, "Add metadata"), status);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", `/${collection}/${enc(name)}/metadata` + q({ version }),
        { items: { [form.elements.key.value.trim()]: form.elements.value.value } });
      route();
    } catch (err) { status.replaceChildren(errorBox(err)); }
  });
  return form;
}

// --- statistics: histograms and the correlation heatmap ----------------------------------------

function statsView(stats, g) {
  const compute = ownStore() ? el("button", { type: "button", id: "compute-stats", class: "secondary", onclick: async (ev) => {
    ev.target.disabled = true;
    try { await api("POST", `/featuregroups/${enc(g.name)}/statistics` + q({ version: g.version }), {}); route(); }
    catch (err) { ev.target.replaceWith(errorBox(err)); }
  } }, "Compute statistics now") : null;
  if (!stats) return [el("p", { class: "muted" }, "No statistics were computed for this group."), compute];
  const features = stats.features || {};
  const rows = Object.entries(features).map(([n, f]) => [n, f.type || "", fmt(f.count), fmt(f.nulls), fmt(f.mean),
    fmt(f.stddev), fmt(f.min), fmt(f.max), fmt(f.approx_distinct)]);
  const hists = Object.entries(stats.histograms || {});
  const out = [
    el("p", { class: "muted" }, `${fmt(stats.row_count)} rows, commit ${text(stats.commit_version)}, computed ${stats.computed_at || ""}` +
      (stats.sample && stats.sample.sampled ? `, sampled ${stats.sample.rows} rows` : "")),
    rows.length ? table(["feature", "type", "count", "nulls", "mean", "stddev", "min", "max", "distinct"], rows, { id: "descriptive" }) : null,
    el("h3", null, "Distributions"),
    hists.length ? el("div", { class: "charts", id: "histograms" }, hists.map(([n, h]) => histogram(n, h))) :
      el("p", { class: "muted" }, "No histograms."),
    el("h3", null, "Correlation" + (stats.correlation ? ` (${stats.correlation.method})` : "")),
    stats.correlation && stats.correlation.features && stats.correlation.features.length ?
      el("div", { class: "chart", id: "correlation" }, heatmap(stats.correlation)) : el("p", { class: "muted" }, "No correlation matrix."),
  ];
  if (stats.clusters) out.push(el("h3", null, "Clusters"), el("pre", null, JSON.stringify(stats.clusters, null, 1)));
  out.push(compute);
  return out;
}

function histogram(name, h) {
  const W = 260, H = 140, L = 34, B = 28, T = 16;
  const counts = h.counts || [];
  const labels = h.kind === "numeric" ? null : (h.values || []).map(text);
  const max = Math.max(1, ...counts);
  const bw = counts.length ? (W - L - 6) / counts.length : 0;
  const s = svg("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "histogram", "data-feature": name, role: "img" });
  s.appendChild(svg("title", null, `Distribution of ${name}`));
  s.appendChild(svg("text", { x: L, y: 11 }, name + (h.kind === "numeric" ? "" : " (top values)")));
  counts.forEach((c, i) => {
    const bh = (H - B - T) * (c / max);
    const rect = svg("rect", { class: "bar", x: L + i * bw + 0.5, y: H - B - bh, width: Math.max(1, bw - 1), height: bh });
    const range = labels ? labels[i] : `${fmt(h.edges[i])} – ${fmt(h.edges[i + 1])}`;
    rect.appendChild(svg("title", null, `${range}: ${c}`));
    s.appendChild(rect);
  });
  s.appendChild(svg("line", { x1: L, y1: H - B, x2: W - 4, y2: H - B, stroke: "#889" }));
  s.appendChild(svg("text", { x: 2, y: T + 8 }, fmt(max)));
  s.appendChild(svg("text", { x: 2, y: H - B }, "0"));
  if (h.kind === "numeric" && h.edges && h.edges.length) {
    s.appendChild(svg("text", { x: L, y: H - B + 13 }, fmt(h.edges[0])));
    s.appendChild(svg("text", { x: W - 4, y: H - B + 13, "text-anchor": "end" }, fmt(h.edges[h.edges.length - 1])));
  } else if (labels && labels.length) {
    s.appendChild(svg("text", { x: L, y: H - B + 13 }, labels.slice(0, 4).join(", ").slice(0, 40)));
  }
  return el("div", { class: "chart" }, s);
}

function heatColor(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "#ddd";
  const t = Math.max(-1, Math.min(1, v));
  // blue (-1) → white (0) → red (+1)
  const r = t > 0 ? 255 : Math.round(255 * (1 + t));
  const b = t < 0 ? 255 : Math.round(255 * (1 - t));
  const gch = Math.round(255 * (1 - Math.abs(t)));
  return `rgb(${r},${gch},${b})`;
}

function heatmap(corr) {
  const names = corr.features, n = names.length;
  const cell = Math.max(18, Math.min(44, Math.floor(420 / n)));
  const L = 110, T = 100;
  const s = svg("svg", { width: L + n * cell + 70, height: T + n * cell + 8, class: "heatmap", role: "img" });
  s.appendChild(svg("title", null, "Feature correlation"));
  names.forEach((nm, i) => {
    s.appendChild(svg("text", { x: L - 4, y: T + i * cell + cell / 2 + 3, "text-anchor": "end" }, nm));
    s.appendChild(svg("text", { x: 0, y: 0, transform: `translate(${L + i * cell + cell / 2 + 3},${T - 4}) rotate(-60)` }, nm));
    names.forEach((_m, j) => {
      const v = corr.matrix[i][j];
      const rect = svg("rect", { class: "cell", x: L + j * cell, y: T + i * cell, width: cell - 1, height: cell - 1, fill: heatColor(v) });
      rect.appendChild(svg("title", null, `${names[i]} × ${names[j]}: ${fmt(v)}`));
      s.appendChild(rect);
      if (cell >= 30) s.appendChild(svg("text", { x: L + j * cell + cell / 2, y: T + i * cell + cell / 2 + 3, "text-anchor": "middle",
        class: v !== null && Math.abs(v) > 0.6 ? "light" : null }, v === null ? "" : Number(v).toFixed(2)));
    });
  });
  return s;
}

// --- validation ------------------------------------------------------------------------------

function rulesView(rules, g, reload) {
  if (!rules.length) return el("p", { class: "muted" }, "No validation rules.");
  return table(["rule", "type", "features", "min", "max", "level", "hint", ""], rules.map((r) => [
    r.name, r.rule_type, (r.features || []).join(", "), fmt(r.min), fmt(r.max), r.level, r.hint || "",
    ownStore() ? el("button", { type: "button", class: "secondary", onclick: async (ev) => {
      try { await api("DELETE", `/featuregroups/${enc(g.name)}/validation/rules/${enc(r.name)}` + q({ version: g.version })); reload(); }
      catch (err) { ev.target.replaceWith(errorBox(err)); }
    } }, "remove") : ""]), { id: "rules-table" });
}

function ruleForm(g) {
  const status = el("div", { id: "rule-status" });
  const form = el("form", { class: "inline", id: "rule-form" },
    el("label", null, "name", el("input", { name: "name", required: true, size: 12 })),
    el("label", null, "type", el("select", { name: "rule_type" }, RULE_TYPES.map((t) => el("option", { value: t }, t)))),
    el("label", null, "features", el("select", { name: "features", multiple: true, size: 3 },
      g.features.map((f) => el("option", { value: f.name }, f.name)))),
    el("label", null, "min", el("input", { name: "min", size: 6 })),
    el("label", null, "max", el("input", { name: "max", size: 6 })),
    el("label", null, "level", el("select", { name: "level" }, el("option", { value: "error" }, "error"), el("option", { value: "warning" }, "warning"))),
    el("label", null, "pattern", el("input", { name: "pattern", size: 10 })),
    el("label", null, "allowed values (comma-separated)", el("input", { name: "allowed_values", size: 14 })),
    el("label", null, "hint", el("input", { name: "hint", size: 14 })),
    el("button", { type: "submit" }, "Add rule"),
    el("button", { type: "button", class: "secondary", id: "run-validation" }, "Run validation now"));
  const num = (s) => {
    const t = s.trim();
    if (!t) return null;
    const n = Number(t);
    if (Number.isNaN(n)) throw new Error(`"${t}" is not a number`);
    return n;
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.replaceChildren();
    try {
      const e = form.elements;
      const rule = { name: e.name.value.trim(), rule_type: e.rule_type.value, level: e.level.value,
        features: Array.from(e.features.selectedOptions).map((o) => o.value), hint: e.hint.value,
        min: num(e.min.value), max: num(e.max.value) };
      if (e.pattern.value) rule.pattern = e.pattern.value;
      if (e.allowed_values.value.trim()) rule.allowed_values = e.allowed_values.value.split(",").map((s) => s.trim());
      await api("POST", `/featuregroups/${enc(g.name)}/validation/rules` + q({ version: g.version }), { rule });
      status.replaceChildren(el("span", { class: "ok" }, `Rule ${rule.name} added.`));
      form.reset();
      window.__reloadValidation();
    } catch (err) { status.replaceChildren(errorBox(err)); }
  });
  form.querySelector("#run-validation").addEventListener("click", async () => {
    status.replaceChildren(el("span", { class: "muted" }, "Validating…"));
    try {
      const report = await api("POST", `/featuregroups/${enc(g.name)}/validation/runs` + q({ version: g.version }), {});
      status.replaceChildren(el("span", { class: statusClass(report.status) }, `Validation: ${report.status}`));
      window.__reloadValidation();
    } catch (err) { status.replaceChildren(errorBox(err)); }
  });
  return el("div", null, el("h3", null, "Add a rule"), form, status);
}

function statusClass(s) { return s === "success" || s === "passed" ? "ok" : (s === "warning" ? "warn" : "fail"); }

function resultsView(reports) {
  if (!reports || !reports.length) return el("p", { class: "muted" }, "No validation results yet.");
  return reports.map((r) => el("div", { class: "report" },
    el("h3", null, el("span", { class: statusClass(r.status) }, r.status), ` — commit ${text(r.commit_version)}, ${r.trigger || ""}, ${r.validated_at || ""}, ${fmt(r.rows)} rows`),
    table(["rule", "type", "feature", "value", "min", "max", "level", "passed", "message"], (r.results || []).map((x) => [
      x.rule, x.rule_type, x.feature || "", fmt(x.value), fmt(x.min), fmt(x.max), x.level,
      el("span", { class: x.passed ? "ok" : statusClass(x.level === "warning" ? "warning" : "error") }, x.passed ? "yes" : "no"),
      x.message || ""]), { class: "results-table" })));
}

// --- training datasets -----------------------------------------------------------------------

async function datasetPage(name, version) {
  const v = version ? Number(version) : null;
  const d = await api("GET", `/trainingdatasets/${enc(name)}` + q({ version: v }));
  const provBox = el("div", { id: "provenance-box" });
  const splits = d.splits && typeof d.splits === "object" ? Object.entries(d.splits) : [];
  show(el("h1", null, d.name, el("span", { class: "muted" }, " version " + d.version)),
    section("Overview", "td-overview",
      el("p", null, d.description || el("span", { class: "muted" }, "No description.")),
      facts([["format", d.data_format], ["location", d.location || ""], ["storage", d.storage || ""],
        ["connector", d.connector || ""], ["rows", fmt(d.row_count)], ["files", (d.files || []).length],
        ["seed", text(d.seed)], ["created", d.created || ""]], { id: "td-facts" })),
    section("Schema", "td-schema", table(["feature", "type"], (d.features || []).map((f) => [f.name, f.type]))),
    section("Splits", "td-splits", splits.length ? table(["split", "value"], splits.map(([k, val]) => [k, text(val)])) :
      el("p", { class: "muted" }, "No splits.")),
    section("Provenance", "td-provenance", provBox),
    section("Metadata", "td-metadata", kv(d.metadata), ownStore() ? metadataForm("trainingdatasets", d.name, d.version) : null),
    section("Tags", "td-tags", tagsView("training_dataset", d.name, d.version, d.tags || {})));
  loadInto(provBox, async () => {
    const p = await api("GET", `/trainingdatasets/${enc(d.name)}/provenance` + q({ version: d.version }));
    const groups = p.feature_groups || [];
    return [
      groups.length ? table(["feature group", "version", "commit", "features"], groups.map((gr) => [
        link(`#/fg/${enc(gr.name)}/${gr.version}`, gr.name), gr.version, text(gr.commit), (gr.features || []).join(", ")]),
      { id: "provenance-table" }) : el("p", { class: "muted" }, "Not built from feature groups (no recorded provenance)."),
      p.query ? el("details", null, el("summary", null, "query"), el("pre", null, JSON.stringify(p.query, null, 2))) : null,
    ];
  });
}

// --- connectors and shared stores -------------------------------------------------------------

async function connectorsPage() {
  const list = await api("GET", "/storageconnectors");
  show(el("h1", null, "Storage connectors"),
    list.length ? table(["name", "type", "description", "location"], list.map((c) => [c.name, c.type, c.description || "",
      c.path || c.bucket || c.url || ""]), { id: "connectors" }) : el("p", { class: "muted" }, "No storage connectors."));
}

async function storesPage() {
  const result = await api("GET", "/featurestores", undefined, { store: project() });
  const names = result.featurestores || [];
  const owner = (fs) => fs.endsWith("_featurestore") ? fs.slice(0, -"_featurestore".length) : fs;
  show(el("h1", null, "Feature stores"),
    el("p", { class: "muted" }, "Your project's feature store and those shared with it (read-only). Pick one to browse it."),
    table(["feature store", "owner project", ""], names.map((fs) => [fs, owner(fs),
      owner(fs) === store() ? el("strong", null, "browsing") :
        el("button", { type: "button", class: "secondary", onclick: () => {
          if (owner(fs) === project()) S.removeItem("cloudsdk.store"); else S.setItem("cloudsdk.store", owner(fs));
          location.hash = "#/";
        } }, "browse")]), { id: "stores" }));
}

// --- create a training dataset by picking features -------------------------------------------------

async function createPage() {
  if (!ownStore()) { show(el("h1", null, "New training dataset"), errorBox("Training datasets are created in your own feature store: switch back to it under Feature stores.")); return; }
  const groups = await api("GET", "/featuregroups");
  const status = el("div", { id: "create-status" });
  const picker = el("div", { id: "picker" }, groups.map((g) => el("div", { class: "picker-group" },
    el("h3", null, `${g.name} v${g.version}`, el("span", { class: "muted" }, g.description ? " — " + g.description : "")),
    g.features.map((f) => el("label", null, el("input", { type: "checkbox", name: "feature", value: f.name,
      "data-group": g.name, "data-version": g.version }), f.name + (f.primary ? " (key)" : ""))))));
  const form = el("form", { class: "stack", id: "create-form" },
    el("label", null, "dataset name", el("input", { name: "name", required: true })),
    el("label", null, "join key (optional, comma-separated; default: the groups' common primary key)", el("input", { name: "join_key" })),
    el("label", null, "format", el("select", { name: "data_format" }, FORMATS.map((f) => el("option", { value: f }, f)))),
    el("label", null, "splits (optional, e.g. train=0.8,test=0.2)", el("input", { name: "splits" })),
    el("label", null, "description", el("input", { name: "description" })),
    el("div", null, el("button", { type: "button", class: "secondary", id: "preview-query" }, "Check the query"), " ",
      el("button", { type: "submit" }, "Create training dataset")));
  const picked = () => {
    const boxes = Array.from(picker.querySelectorAll("input[name=feature]:checked"));
    const versions = {};
    for (const b of boxes) versions[b.dataset.group] = Number(b.dataset.version);
    const body = { features: boxes.map((b) => b.value), featuregroups_version_dict: versions };
    const jk = form.elements.join_key.value.split(",").map((s) => s.trim()).filter(Boolean);
    if (jk.length) body.join_key = jk.length === 1 ? jk[0] : jk;
    return body;
  };
  const plan = async () => {
    const p = picked();
    if (!p.features.length) throw new Error("pick at least one feature");
    return api("POST", "/query/features", p);
  };
  form.querySelector("#preview-query").addEventListener("click", async () => {
    try {
      const spec = await plan();
      const sql = await api("POST", "/query/plan", { spec });
      status.replaceChildren(el("pre", null, sql.sql), ...(spec.notes || []).map((n) => el("p", { class: "muted" }, n)));
    } catch (err) { status.replaceChildren(errorBox(err)); }
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    status.replaceChildren(el("p", { class: "muted" }, "Creating…"));
    try {
      const e = form.elements;
      const body = { name: e.name.value.trim(), spec: await plan(), data_format: e.data_format.value };
      if (e.description.value) body.description = e.description.value;
      if (e.splits.value.trim()) {
        body.splits = {};
        for (const part of e.splits.value.split(",")) {
          const [k, val] = part.split("=").map((s) => s.trim());
          if (!k || val === undefined || Number.isNaN(Number(val))) throw new Error(`bad split "${part}": use name=fraction`);
          body.splits[k] = Number(val);
        }
      }
      const td = await api("POST", "/trainingdatasets/query", body);
      location.hash = `#/td/${enc(td.name)}/${td.version}`;
    } catch (err) { status.replaceChildren(errorBox(err)); }
  });
  show(el("h1", null, "New training dataset"),
    el("p", { class: "muted" }, "Pick features from one or more feature groups; the planner joins the groups on their common keys."),
    groups.length ? picker : el("p", { class: "muted" }, "No feature groups yet."), form, status);
}

// --- routing ---------------------------------------------------------------------------------

async function route() {
  const hash = location.hash || "#/";
  const [pathPart, queryPart] = hash.slice(1).split("?");
  const parts = pathPart.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(queryPart || "");
  if (parts[0] === "login" || !key()) {
    if (parts[0] !== "login") { location.hash = "#/login"; return; }
    loginPage();
    return;
  }
  document.body.classList.remove("logged-out");
  document.getElementById("who").textContent = `project ${project()}` + (ownStore() ? "" : ` · browsing ${store()}_featurestore (shared, read-only)`);
  show(el("p", { class: "muted" }, "Loading…"));
  try {
    if (parts.length === 0) await homePage();
    else if (parts[0] === "search") await searchPage(params);
    else if (parts[0] === "fg" && parts[1]) await groupPage(parts[1], parts[2]);
    else if (parts[0] === "td" && parts[1]) await datasetPage(parts[1], parts[2]);
    else if (parts[0] === "connectors") await connectorsPage();
    else if (parts[0] === "stores") await storesPage();
    else if (parts[0] === "create") await createPage();
    else show(el("h1", null, "Not found"), el("p", null, link("#/", "Home")));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;  // logout() took over
    show(errorBox(err), el("p", null, link("#/", "Home")));
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("unhandledrejection", (ev) => { ev.preventDefault(); });
document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("search-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = "#/search?q=" + enc(document.getElementById("search-input").value);
  });
  document.getElementById("logout").addEventListener("click", () => logout(null));
  const hp = new URLSearchParams(location.hash.includes("?") ? location.hash.split("?")[1] : "");
  if (hp.get("project") && !key()) S.setItem("cloudsdk.project", hp.get("project"));
  route();
});
