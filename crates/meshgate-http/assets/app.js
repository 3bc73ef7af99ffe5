// meshgate catalog page. Everything shown comes from /api (governed like SQL for the
// logged-in principal) and is rendered with textContent: never HTML from data.
"use strict";

const state = { me: null, catalog: null, results: [], active: -1 };

// ---------------------------------------------------------------------------------
// small helpers
// ---------------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

/** Creates an element: h("a", {href: "#/", class: "x"}, "text", child, …). */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "on") {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const numberFormat = new Intl.NumberFormat();
const fmtNumber = (n) => (n === null || n === undefined ? "—" : numberFormat.format(n));

// A freshness check measures the newest data's age in seconds.
function fmtAge(seconds) {
  const steps = [[365.25 * 86400, "years"], [86400, "days"], [3600, "h"], [60, "min"]];
  for (const [size, unit] of steps) {
    if (seconds >= size) return `${numberFormat.format(Math.round((seconds / size) * 10) / 10)} ${unit}`;
  }
  return `${numberFormat.format(Math.round(seconds))} s`;
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value < 10 && unit ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

function fmtWhen(text) {
  if (!text) return "never";
  const then = new Date(text);
  if (Number.isNaN(then.getTime())) return text;
  const seconds = Math.round((Date.now() - then.getTime()) / 1000);
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min ago`;
  const hours = Math.round(minutes / 60);
  if (hours < 36) return `${hours} h ago`;
  const days = Math.round(hours / 24);
  if (days < 60) return `${days} days ago`;
  return then.toISOString().slice(0, 10);
}

const plural = (n, one, many) => `${fmtNumber(n)} ${n === 1 ? one : many}`;
const absolute = (text) => (text ? new Date(text).toLocaleString() : "");

// Badges: every status shown as pass / warn / fail / unknown.
const LEVELS = {
  passing: "pass", fresh: "pass", healthy: "pass",
  warning: "warn",
  degraded: "fail", stale: "fail", unhealthy: "fail",
};

function badge(kind, status, checkedAt) {
  const level = LEVELS[status] || "unknown";
  const label = `${kind}: ${status || "unknown"}`;
  const title = checkedAt ? `${label}, checked ${absolute(checkedAt)}` : label;
  return h("span", { class: `badge badge-${level}`, title, "data-testid": `${kind}-badge`, "data-level": level }, label);
}

const tags = (list) => (list || []).map((tag) => h("span", { class: "tag" }, tag));
const productHref = (p) => `#/p/${encodeURIComponent(p.domain)}/${encodeURIComponent(p.name)}`;

// ---------------------------------------------------------------------------------
// the API
// ---------------------------------------------------------------------------------

class Unauthenticated extends Error {}

async function api(path, options) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401) throw new Unauthenticated();
  if (response.status === 204) return null;
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${path}: HTTP ${response.status}`);
  return body;
}

const postJson = (path, body) =>
  api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body || {}) });

// ---------------------------------------------------------------------------------
// login and logout
// ---------------------------------------------------------------------------------

function showLogin(message) {
  state.me = null;
  state.catalog = null;
  $("login-view").hidden = false;
  $("view").replaceChildren();
  for (const id of ["search-box", "who", "domains"]) $(id).hidden = true;
  $("catalog-name").textContent = "";
  $("login-error").textContent = message || "";
  $("login-user").focus();
}

async function onLogin(event) {
  event.preventDefault();
  const user = $("login-user").value.trim();
  const password = $("login-password").value;
  if (!user || !password) {
    $("login-error").textContent = "Enter your user name and password.";
    return;
  }
  $("login-submit").disabled = true;
  try {
    await postJson("/api/login", { user, password });
    $("login-password").value = "";
    $("login-error").textContent = "";
    await start();
  } catch (error) {
    $("login-error").textContent =
      error instanceof Unauthenticated ? "Those credentials were not accepted." : error.message;
  } finally {
    $("login-submit").disabled = false;
  }
}

async function onLogout() {
  try {
    await postJson("/api/logout");
  } finally {
    location.hash = "#/";
    showLogin("You are logged out.");
  }
}

// ---------------------------------------------------------------------------------
// start and routing
// ---------------------------------------------------------------------------------

async function start() {
  try {
    const [me, catalog] = await Promise.all([api("/api/me"), api("/api/catalog")]);
    state.me = me;
    state.catalog = catalog;
  } catch (error) {
    if (error instanceof Unauthenticated) return showLogin();
    return showError(error);
  }
  $("login-view").hidden = true;
  for (const id of ["search-box", "who", "domains"]) $(id).hidden = false;
  $("catalog-name").textContent = state.catalog.catalog;
  $("who-name").textContent = state.me.user;
  $("who-name").title = `groups: ${state.me.groups.join(", ") || "none"}`;
  await route();
}

async function route() {
  if (!state.catalog) return;
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  renderDomains(parts[0] === "d" ? parts[1] : parts[0] === "p" ? parts[1] : null);
  try {
    if (parts[0] === "p" && parts.length >= 3) await renderProduct(parts[1], parts[2]);
    else if (parts[0] === "d" && parts[1]) renderList(parts[1]);
    else renderList(null);
  } catch (error) {
    if (error instanceof Unauthenticated) return showLogin("Your session ended; log in again.");
    showError(error);
  }
}

function showError(error) {
  $("view").replaceChildren(h("div", { class: "card section", role: "alert" }, h("h2", {}, "Something went wrong"),
    h("p", {}, error.message)));
}

function renderDomains(current) {
  const links = state.catalog.domains.map((domain) =>
    h("a", { href: `#/d/${encodeURIComponent(domain.name)}`, "aria-current": domain.name === current ? "page" : null,
      title: domain.description },
      h("span", {}, domain.name), h("span", { class: "count" }, domain.products)));
  const all = h("a", { href: "#/", "aria-current": current ? null : "page" },
    h("span", {}, "All products"), h("span", { class: "count" }, state.catalog.products.length));
  $("domains").replaceChildren(h("h2", {}, "Domains"), all, ...links);
}

// ---------------------------------------------------------------------------------
// the product list
// ---------------------------------------------------------------------------------

function renderList(domainName) {
  const domain = state.catalog.domains.find((d) => d.name === domainName);
  const products = state.catalog.products.filter((p) => !domainName || p.domain === domainName);
  const head = domain
    ? h("div", {}, h("h1", {}, domain.name), h("p", { class: "muted" }, domain.description,
        domain.owner ? ` · owner ${domain.owner}` : ""))
    : h("div", {}, h("h1", {}, "Data products"),
        h("p", { class: "muted" }, `${products.length} products in ${state.catalog.domains.length} domains you may read`));
  const cards = h("ul", { class: "cards", "data-testid": "product-list" }, products.map(card));
  $("view").replaceChildren(h("div", { class: "list-head" }, head), products.length ? cards
    : h("p", { class: "muted" }, "No products here that you may read."));
  document.title = domain ? `${domain.name} · meshgate catalog` : "meshgate catalog";
}

function card(p) {
  return h("li", {}, h("a", { class: "card product-card", href: productHref(p), "data-product": `${p.domain}.${p.name}` },
    h("span", { class: "title" }, h("span", { class: "name" }, p.name), h("span", { class: "domain" }, p.domain),
      h("span", { class: "version" }, `v${p.version}`)),
    h("p", { class: "desc" }, p.description),
    h("span", { class: "meta" }, badge("quality", p.quality_status, p.checked_at),
      badge("freshness", p.freshness_status, p.checked_at),
      p.status === "deprecated" ? h("span", { class: "badge badge-warn plain" }, "deprecated") : null),
    h("span", { class: "meta" }, tags(p.tags),
      h("span", { class: "figure" }, `${p.columns.length} columns`),
      p.row_count !== null ? h("span", { class: "figure" }, `· ${fmtNumber(p.row_count)} rows`) : null,
      h("span", { class: "figure" }, `· ${plural(p.queries_7d, "query", "queries")} in 7 days`))));
}

// ---------------------------------------------------------------------------------
// a product page
// ---------------------------------------------------------------------------------

async function renderProduct(domain, name) {
  const data = await api(`/api/products/${encodeURIComponent(domain)}/${encodeURIComponent(name)}`);
  const p = data.product;
  document.title = `${p.domain}.${p.name} · meshgate catalog`;
  const view = h("article", { "aria-labelledby": "product-title" },
    h("div", { class: "crumbs" }, h("a", { href: "#/" }, "Products"), " / ",
      h("a", { href: `#/d/${encodeURIComponent(p.domain)}` }, p.domain)),
    h("header", { class: "product-head" },
      h("div", { class: "title" }, h("h1", { id: "product-title" }, `${p.domain}.${p.name}`),
        h("span", { class: "version" }, `v${p.version}`)),
      h("p", {}, p.description),
      h("div", { class: "meta" }, badge("quality", p.quality_status, p.checked_at),
        badge("freshness", p.freshness_status, p.checked_at), badge("health", p.health),
        p.checked_at ? h("span", { class: "figure muted", title: absolute(p.checked_at) }, `checked ${fmtWhen(p.checked_at)}`)
          : h("span", { class: "figure muted" }, "not checked yet")),
      p.problem ? h("p", { class: "error", role: "status" }, p.problem) : null,
      h("div", { class: "meta" }, tags(p.tags), (p.ml_roles || []).map((role) => h("span", { class: "tag" }, `ml: ${role}`)))),
    facts(p),
    schema(data.columns),
    quality(data.quality),
    h("div", { class: "two" }, versions(p), usage(data.usage)),
    lineage(p, data.lineage),
    snippets(data.snippets));
  $("view").replaceChildren(view);
  $("main").focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

function facts(p) {
  const fact = (label, value, title, wide) =>
    h("div", { class: wide ? "card fact wide" : "card fact" }, h("dt", {}, label), h("dd", { title }, value));
  return h("dl", { class: "facts" },
    fact("Owner", p.owner, null, true),
    fact("Rows", fmtNumber(p.row_count), p.row_count === null ? "shown to who sees every row" : null),
    fact("Size", fmtBytes(p.bytes)),
    fact("Files", fmtNumber(p.files)),
    fact("Format", p.delta_version !== null ? `${p.format} (v${p.delta_version})` : p.format),
    fact("Updated", p.last_modified ? fmtWhen(p.last_modified) : "—", absolute(p.last_modified)));
}

function section(title, id, ...content) {
  return h("section", { class: "card section", "aria-labelledby": id }, h("h2", { id }, title), ...content);
}

function table(headers, rows, testid) {
  return h("div", { class: "table-wrap" }, h("table", { "data-testid": testid },
    h("thead", {}, h("tr", {}, headers.map(([label, cls]) => h("th", { scope: "col", class: cls }, label)))),
    h("tbody", {}, rows)));
}

function schema(columns) {
  const rows = columns.map((c) => h("tr", { "data-column": c.column_name },
    h("td", { class: "col-name" }, c.column_name, c.is_key ? h("span", { class: "key", title: "key" }, "KEY") : null),
    h("td", { class: "type" }, c.data_type, c.is_nullable ? "" : " not null"),
    h("td", {}, c.description || h("span", { class: "muted" }, "—"),
      c.masked_for_you ? h("div", { class: "hint" }, "masked for you") : null),
    h("td", {}, tags(c.tags)),
    h("td", {}, c.ml_role ? h("span", { class: "tag" }, c.ml_role) : ""),
    h("td", {}, c.unit || "")));
  return section(`Schema · ${columns.length} columns`, "schema-title",
    table([["Column"], ["Type"], ["Description"], ["Tags"], ["ML role"], ["Unit"]], rows, "columns"));
}

function quality(results) {
  if (!results.length) return section("Quality checks", "quality-title", h("p", { class: "muted" }, "No checks declared, or none run yet."));
  const rows = results.map((r) => h("tr", {},
    h("td", {}, h("strong", {}, r.check_name), h("div", { class: "hint" }, r.description)),
    h("td", {}, r.severity),
    h("td", {}, h("span", { class: `badge badge-${r.passed ? "pass" : r.severity === "error" ? "fail" : "warn"}` },
      r.passed ? "passed" : "failed"), r.error ? h("div", { class: "hint" }, r.error) : null),
    h("td", { class: "num", title: r.measured === null ? "" : String(r.measured) },
      r.measured === null ? "—" : r.kind === "freshness" ? fmtAge(r.measured) : fmtNumber(r.measured)),
    h("td", {}, r.expectation),
    h("td", { title: absolute(r.ran_at) }, fmtWhen(r.ran_at))));
  return section("Quality checks", "quality-title",
    table([["Check"], ["Severity"], ["Result"], ["Measured", "num"], ["Expected"], ["Ran"]], rows, "quality"));
}

function versions(p) {
  const items = p.versions.map((v) => h("li", {},
    h("span", {}, h("code", {}, v.version), " ", v.is_current ? h("span", { class: "tag" }, "current") : null),
    h("span", { class: "edge-kind" }, v.status, v.sunset ? ` · sunset ${v.sunset}` : "",
      v.table_name ? ` · ${p.domain}."${v.table_name}"` : "")));
  return section("Versions", "versions-title", h("ul", { class: "edges" }, items));
}

function usage(rows) {
  const order = ["1h", "24h", "7d", "all"];
  rows.sort((a, b) => order.indexOf(a.window) - order.indexOf(b.window));
  if (!rows.length) return section("Usage", "usage-title", h("p", { class: "muted" }, "No recorded queries yet."));
  const body = rows.map((u) => h("tr", {}, h("td", {}, u.window), h("td", { class: "num" }, fmtNumber(u.queries)),
    h("td", { class: "num" }, fmtNumber(u.rows)), h("td", { class: "num" }, fmtNumber(u.distinct_principals)),
    h("td", { class: "num" }, fmtNumber(u.distinct_consuming_domains))));
  return section("Usage", "usage-title", table([["Window"], ["Queries", "num"], ["Rows read", "num"],
    ["Principals", "num"], ["Domains", "num"]], body, "usage"));
}

function lineage(p, edges) {
  const self = `${p.domain}.${p.name}`;
  const link = (kind, name) => {
    if (kind !== "product") return h("span", {}, name);
    const [domain, ...rest] = name.split(".");
    return h("a", { href: productHref({ domain, name: rest.join(".") }) }, name);
  };
  const edge = (kind, name, detail) => h("li", {}, link(kind, name), h("span", { class: "edge-kind" }, detail));
  const up = edges.upstream.map((e) => edge(e.source_kind, e.source, e.source_kind === "product" ? "derives into this" : "external source"));
  const down = edges.downstream.filter((e) => e.source === self).map((e) => edge(e.target_kind, e.target,
    e.relation === "reads" ? `${plural(e.queries, "query", "queries")} · ${fmtWhen(e.last_seen)}` : "derived product"));
  const list = (items, empty) => (items.length ? h("ul", { class: "edges" }, items) : h("p", { class: "muted" }, empty));
  return section("Lineage", "lineage-title", h("div", { class: "two" },
    h("div", { "data-testid": "upstream" }, h("h3", { class: "muted" }, "Upstream"), list(up, "No declared sources.")),
    h("div", { "data-testid": "consumers" }, h("h3", { class: "muted" }, "Consumers"), list(down, "Nobody has read it yet."))));
}

function snippets(list) {
  const panel = h("div", { class: "snippet", role: "tabpanel", id: "snippet-panel" });
  const tabs = list.map((s, i) => h("button", { type: "button", role: "tab", id: `snippet-tab-${i}`,
    "aria-controls": "snippet-panel", on: { click: () => select(i), keydown: (e) => arrows(e, i) } }, s.label));
  function select(i) {
    tabs.forEach((tab, j) => {
      tab.setAttribute("aria-selected", String(i === j));
      tab.tabIndex = i === j ? 0 : -1;
    });
    panel.setAttribute("aria-labelledby", `snippet-tab-${i}`);
    const code = h("code", {}, list[i].code);
    const copy = h("button", { type: "button", class: "button quiet copy" }, "Copy");
    copy.addEventListener("click", () => copyText(list[i].code, copy));
    panel.replaceChildren(h("pre", { tabindex: 0, "data-testid": "snippet" }, code), copy);
  }
  function arrows(event, i) {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    const next = (i + step + tabs.length) % tabs.length;
    select(next);
    tabs[next].focus();
  }
  if (list.length) select(0);
  return section("Read it", "snippets-title", h("div", { class: "tabs", role: "tablist", "aria-label": "Client" }, tabs),
    panel, h("p", { class: "hint" }, "Set MESHGATE_PASSWORD in your environment first; the snippets never contain it."));
}

async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Select and copy";
  }
  setTimeout(() => { button.textContent = "Copy"; }, 1500);
}

// ---------------------------------------------------------------------------------
// search: instant, over what /api/catalog returned; "/" focuses it
// ---------------------------------------------------------------------------------

function search(query) {
  const q = query.trim().toLowerCase();
  if (!q) return [];
  const hits = [];
  for (const p of state.catalog.products) {
    const name = p.name.toLowerCase();
    const qualified = `${p.domain}.${p.name}`.toLowerCase();
    let score = 0;
    let why = "";
    if (name === q || qualified === q) score = 100;
    else if (name.startsWith(q)) score = 80;
    else if (qualified.includes(q)) score = 60;
    const column = p.columns.find((c) => c.toLowerCase().includes(q));
    if (!score && column) [score, why] = [column.toLowerCase() === q ? 55 : 45, `column ${column}`];
    const tag = [...(p.tags || []), ...(p.column_tags || [])].find((t) => t.toLowerCase().includes(q));
    if (!score && tag) [score, why] = [35, `tag ${tag}`];
    if (!score && (p.description || "").toLowerCase().includes(q)) [score, why] = [20, "description"];
    if (score) hits.push({ product: p, score, why });
  }
  return hits.sort((a, b) => b.score - a.score || a.product.name.localeCompare(b.product.name)).slice(0, 12);
}

function renderResults() {
  const list = $("search-results");
  const input = $("search");
  const query = input.value.trim();
  if (!query) {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    return;
  }
  const items = state.results.map((hit, i) => h("li", {
    id: `result-${i}`, role: "option", "aria-selected": String(i === state.active),
    "data-product": `${hit.product.domain}.${hit.product.name}`,
    on: { mousedown: (e) => { e.preventDefault(); open(i); } },
  }, h("span", { class: "result-name" }, hit.product.name), " ", h("span", { class: "muted" }, hit.product.domain),
  h("span", { class: "result-why" }, hit.why || hit.product.description)));
  list.replaceChildren(...(items.length ? items : [h("li", { class: "empty", role: "option", "aria-disabled": "true" },
    `No product matches “${query}”`)]));
  list.hidden = false;
  input.setAttribute("aria-expanded", "true");
  if (state.active >= 0) input.setAttribute("aria-activedescendant", `result-${state.active}`);
  else input.removeAttribute("aria-activedescendant");
}

function open(i) {
  const hit = state.results[i];
  if (!hit) return;
  clearSearch();
  $("search").blur();
  location.hash = productHref(hit.product);
}

function clearSearch() {
  $("search").value = "";
  state.results = [];
  state.active = -1;
  renderResults();
}

function onSearchKey(event) {
  const count = state.results.length;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    if (!count) return;
    const step = event.key === "ArrowDown" ? 1 : -1;
    state.active = (state.active + step + count) % count;
    renderResults();
    $(`result-${state.active}`)?.scrollIntoView({ block: "nearest" });
  } else if (event.key === "Enter") {
    event.preventDefault();
    open(state.active >= 0 ? state.active : 0);
  } else if (event.key === "Escape") {
    event.preventDefault();
    if ($("search").value) clearSearch();
    else $("search").blur();
  }
}

document.addEventListener("keydown", (event) => {
  const target = event.target;
  const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target.isContentEditable;
  if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey && !$("search-box").hidden) {
    event.preventDefault();
    $("search").focus();
  }
});

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", onLogin);
  $("logout").addEventListener("click", onLogout);
  const input = $("search");
  input.addEventListener("input", () => {
    state.results = search(input.value);
    state.active = state.results.length ? 0 : -1;
    renderResults();
  });
  input.addEventListener("keydown", onSearchKey);
  input.addEventListener("blur", () => { $("search-results").hidden = true; input.setAttribute("aria-expanded", "false"); });
  input.addEventListener("focus", () => { if (input.value.trim()) renderResults(); });
  window.addEventListener("hashchange", route);
  start();
});
