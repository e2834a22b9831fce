// Spangate's admin page: one ES module, no build step, no dependency. Everything shown comes from
// the admin API, called with the key typed at sign-in (kept in sessionStorage, sent as a Bearer
// header); the API authorises each call, so a team admin's 403s just leave views out. The DOM is
// built with textContent only: nothing the API returns is ever parsed as HTML.

const KEY = "spangate.key";
const POLL_MS = 2000; // how often an open view re-reads its delivery ledger
const HOUR_S = 3600; // the charts' window: the server's samples (one per 30 s), then this tab's own polls

const $ = (id) => document.getElementById(id);
const samples = new Map(); // delivery row id -> [{t, delivered, failures, lag}], the last hour
let session = null; // {key, operator, teamId}
let timer = null;
let routeTurn = 0; // bumped by each navigation

class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code;
  }
}

async function api(method, path, body) {
  const init = { method, headers: { Authorization: `Bearer ${session.key}` }, cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const answer = await fetch(path, init);
  const data = await answer.json().catch(() => null);
  if (!answer.ok) throw new ApiError(answer.status, data);
  return data;
}

// --- DOM helpers ------------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

let uid = 0;
function field(label, attrs = {}) {
  const id = attrs.id || `f${++uid}`;
  const control = attrs.options
    ? h("select", { id, name: attrs.name }, attrs.options.map((o) => h("option", { value: o }, o || "—")))
    : h("input", { type: "text", autocomplete: "off", ...attrs, id });
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

function table(caption, headers, rows) {
  return h("div", { class: "scroll" }, h("table", {}, h("caption", { class: "small" }, caption),
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: headers.length }, "none")))));
}

let sayTimer = null;
function say(text) {
  $("status").textContent = text;
  clearTimeout(sayTimer);
  sayTimer = setTimeout(() => { $("status").textContent = ""; }, 5000);
}

const round = (v) => Math.round(v * 10) / 10;
const count = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;
const num = (v) => (v === null || v === undefined ? "—" : Number(v).toLocaleString("en"));
const when = (t) => (t ? new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) : "—");
const clock = (iso) => (iso ? `${new Date(iso).toISOString().slice(0, 16).replace("T", " ")} UTC` : "—");

// Spend is exact to the nano-dollar and a mock call costs a few millionths: cents alone would show
// $0.00 for most of a small budget, so under a cent the amount keeps four significant digits.
function usd(v) {
  const n = Number(v || 0);
  const digits = n === 0 || Math.abs(n) >= 0.01 ? { minimumFractionDigits: 2, maximumFractionDigits: 4 }
    : { maximumSignificantDigits: 4 };
  return `$${n.toLocaleString("en", digits)}`;
}

function budget(item) {
  if (!("spend" in item)) return "—";
  const spend = Number(item.spend || 0);
  const max = item.max_budget;
  if (max === null || max === undefined) return h("span", {}, `${usd(spend)} spent, no budget`);
  const share = max > 0 ? Math.round((100 * spend) / max) : 100;
  const parts = [h("span", { class: "amount" }, `${usd(spend)} of ${usd(max)} (${share}%)`),
    h("meter", { min: 0, max: max > 0 ? max : 1, value: max > 0 ? Math.min(spend, max) : 1, optimum: 0,
      low: item.soft_budget ?? max * 0.8, high: max * 0.95, "aria-label": `spend against budget: ${share}%` })];
  const notes = [];
  if (item.soft_budget !== null && item.soft_budget !== undefined) notes.push(`soft ${usd(item.soft_budget)}`);
  if (item.budget_duration) notes.push(`per ${item.budget_duration}, resets ${clock(item.budget_reset_at)}`);
  if (notes.length) parts.push(h("div", { class: "small" }, notes.join(" · ")));
  return h("div", {}, parts);
}

function limits(item) {
  const set = (v) => v !== null && v !== undefined;
  const parts = [];
  if (set(item.tpm_limit)) parts.push(`${num(item.tpm_limit)} tokens/min`);
  if (set(item.rpm_limit)) parts.push(`${num(item.rpm_limit)} requests/min`);
  if (set(item.max_parallel_requests)) parts.push(`${num(item.max_parallel_requests)} in parallel`);
  return parts.join(" · ") || "none";
}

// The six limit fields of /key/generate and /team/new, as form fields and back into a body.
function limitFields() {
  return [field("Max budget ($)", { name: "max_budget", type: "number", step: "any", min: "0" }),
    field("Soft budget ($)", { name: "soft_budget", type: "number", step: "any", min: "0" }),
    field("Budget period (e.g. 30d)", { name: "budget_duration" }),
    field("Tokens per minute", { name: "tpm_limit", type: "number", min: "0" }),
    field("Requests per minute", { name: "rpm_limit", type: "number", min: "0" }),
    field("Parallel requests", { name: "max_parallel_requests", type: "number", min: "0" })];
}

function withLimits(body, data) {
  if (data.budget_duration) body.budget_duration = data.budget_duration;
  for (const name of ["max_budget", "soft_budget"]) if (data[name]) body[name] = Number(data[name]);
  for (const name of ["tpm_limit", "rpm_limit", "max_parallel_requests"]) if (data[name]) body[name] = parseInt(data[name], 10);
  return body;
}

// --- sign-in and routing ----------------------------------------------------------------------

async function signIn(key) {
  session = { key, operator: false, teamId: null };
  try {
    await api("GET", "/team/list");
    session.operator = true;
  } catch (err) {
    if (err.status !== 403) throw err;
    const info = await api("POST", "/key/info", { key });
    session.teamId = info.info.team_id;
  }
  sessionStorage.setItem(KEY, key);
}

function signOut() {
  sessionStorage.removeItem(KEY);
  session = null;
  samples.clear();
  location.hash = "";
  showSignIn();
}

function showSignIn(message = "") {
  clearInterval(timer);
  $("view").replaceChildren();
  $("signin").hidden = false;
  $("nav").hidden = $("signout").hidden = true;
  $("who").textContent = "";
  $("signin-error").textContent = message;
  $("signin-key").value = "";
  $("signin-key").focus();
}

// Each view is drawn off-screen and shown only if no later navigation started meanwhile: a slow
// answer to an earlier view must not replace the one the user went to since.
async function route() {
  clearInterval(timer);
  if (!session) return;
  const turn = ++routeTurn;
  const [, view, id] = location.hash.split("/");
  const target = h("div");
  $("view").replaceChildren(h("p", { class: "small" }, "Loading…"));
  let poll = null;
  try {
    if (view === "team" && id) poll = await teamView(target, decodeURIComponent(id));
    else if (view === "gateway") poll = await gatewayView(target);
    else if (session.operator) await teamsView(target);
    else return void (location.hash = `#/team/${encodeURIComponent(session.teamId)}`);
  } catch (err) {
    if (turn !== routeTurn) return;
    if (err.status === 401) return showSignIn("The key was refused: sign in again.");
    target.replaceChildren(h("h2", {}, "Not available"), h("p", { class: "error", role: "alert" }, err.message));
  }
  if (turn !== routeTurn) return;
  $("view").replaceChildren(target);
  if (poll) timer = setInterval(poll, POLL_MS);
}

// --- teams ------------------------------------------------------------------------------------

async function teamsView(target) {
  const teams = await api("GET", "/team/list");
  const rows = teams.map((t) => h("tr", {},
    h("td", {}, h("a", { href: `#/team/${encodeURIComponent(t.team_id)}` }, t.team_alias || t.team_id)),
    h("td", {}, h("code", {}, t.team_id)), h("td", {}, (t.models || []).join(", ") || "all"),
    h("td", {}, budget(t)), h("td", {}, limits(t)), h("td", {}, ((t.metadata && t.metadata.logging) || []).map((e) => e.callback_name).join(", ") || "—"),
    h("td", {}, t.logging_disabled ? "paused" : "on")));
  const form = h("form", { class: "grid", "aria-label": "New team" },
    field("Team alias", { name: "team_alias", required: true }), field("Team id (optional)", { name: "team_id" }),
    field("Models (comma separated, empty: all)", { name: "models" }), ...limitFields(),
    h("button", { type: "submit" }, "Create team"));
  form.addEventListener("submit", (e) => submit(e, async (data) => {
    const body = withLimits({ team_alias: data.team_alias, models: list(data.models) }, data);
    if (data.team_id) body.team_id = data.team_id;
    const team = await api("POST", "/team/new", body);
    location.hash = `#/team/${encodeURIComponent(team.team_id)}`;
  }));
  target.replaceChildren(h("h2", {}, "Teams"),
    table(count(teams.length, "team"), ["Team", "Id", "Models", "Spend", "Limits", "Callbacks", "Logging"], rows),
    h("h3", {}, "New team"), form);
}

async function teamView(target, teamId) {
  const info = await api("GET", `/team/info?team_id=${encodeURIComponent(teamId)}`);
  const team = info.team_info;
  const title = h("h2", { id: "team-title" }, `Team ${team.team_alias || teamId}`);
  const summary = h("dl", { class: "summary", "aria-label": "Team budget and limits" });
  const keys = h("section", { "aria-labelledby": "keys-title" });
  const callbacks = h("section", { "aria-labelledby": "callbacks-title" });
  const deliveries = h("section", { "aria-labelledby": "deliveries-title" });
  target.replaceChildren(title, summary, keys, callbacks, deliveries);
  const keyRows = renderKeys(keys, teamId);
  const spend = spendPanel(teamId, summary, keyRows, info);
  await renderCallbacks(callbacks, teamId, team);
  const ledger = deliveryPanel(deliveries, teamLedger(teamId));
  await ledger();
  return () => Promise.all([ledger(), spend()]);
}

// The team's and its keys' spend move with every call, so the view re-reads /team/info on each poll
// and redraws the summary and the key table only when something in them changed (a redraw would take
// the focus off a Revoke button, and never touches the new-key form or a key being shown).
function spendPanel(teamId, summary, keyRows, info) {
  let drawn = "";
  const draw = (fresh) => {
    const shown = JSON.stringify([fresh.team_info, fresh.keys]);
    if (shown === drawn) return;
    drawn = shown;
    const team = fresh.team_info;
    summary.replaceChildren(h("dt", {}, "Id"), h("dd", {}, h("code", {}, teamId)),
      h("dt", {}, "Spend"), h("dd", { "data-field": "team-spend" }, budget(team)),
      h("dt", {}, "Limits"), h("dd", { "data-field": "team-limits" }, limits(team)));
    keyRows.replaceChildren(keyTable(fresh.keys));
  };
  draw(info);
  return () => api("GET", `/team/info?team_id=${encodeURIComponent(teamId)}`).then(draw, (err) => say(err.message));
}

function keyTable(keys) {
  const rows = keys.map((k) => h("tr", {},
    h("td", {}, h("code", {}, k.key_name)), h("td", {}, k.key_alias || "—"), h("td", {}, (k.models || []).join(", ") || "team's"),
    h("td", { "data-field": "spend" }, budget(k)), h("td", { "data-field": "limits" }, limits(k)), h("td", {}, k.expires || "never"),
    h("td", {}, h("button", { type: "button", class: "danger", "aria-label": `Revoke key ${k.key_alias || k.key_name}`,
      onclick: () => act(`Revoked ${k.key_name}`, () => api("POST", "/key/delete", { keys: [k.token] })) }, "Revoke"))));
  return table(`${count(keys.length, "key")} (masked)`, ["Key", "Alias", "Models", "Spend", "Limits", "Expires", ""], rows);
}

// The keys section: its table (returned, for spendPanel to fill and redraw) above the new-key form.
function renderKeys(section, teamId) {
  const rows = h("div");
  const form = h("form", { class: "grid", "aria-label": "New key" },
    field("Key alias", { name: "key_alias" }), field("Models (comma separated)", { name: "models" }),
    field("Expires after (e.g. 30d)", { name: "duration" }), ...limitFields(),
    h("button", { type: "submit" }, "Create key"));
  const shown = h("div");
  form.addEventListener("submit", (e) => submit(e, async (data) => {
    const body = withLimits({ team_id: teamId }, data);
    for (const name of ["key_alias", "duration"]) if (data[name]) body[name] = data[name];
    if (data.models) body.models = list(data.models);
    const made = await api("POST", "/key/generate", body);
    showNewKey(shown, made.key);
  }));
  section.replaceChildren(h("h3", { id: "keys-title" }, "Keys"), rows, shown, form);
  return rows;
}

function showNewKey(place, key) {
  // The one time a key is shown: dismissing removes the node, so the key is gone from the DOM.
  const box = h("input", { id: "new-key", readonly: true, value: key, "aria-describedby": "new-key-note" });
  const done = h("button", { type: "button", class: "primary", onclick: () => { place.replaceChildren(); route(); } },
    "I have copied it");
  place.replaceChildren(h("div", { class: "newkey", role: "region", "aria-label": "Key created" },
    h("label", { for: "new-key" }, "The new key, shown once"), box,
    h("p", { id: "new-key-note" }, "Copy it now: it is not shown again."), done));
  box.select();
  done.focus();
}

async function renderCallbacks(section, teamId, team) {
  const entries = (team.metadata && team.metadata.logging) || [];
  const rows = entries.map((e) => h("tr", {}, h("td", {}, e.callback_name), h("td", {}, e.callback_type),
    h("td", {}, Object.entries(e.callback_vars || {}).map(([k, v]) => h("div", { class: "mono" }, `${k}: ${v}`))),
    h("td", {}, h("button", { type: "button", class: "danger", "aria-label": `Delete callback ${e.callback_name}`,
      onclick: () => act(`Deleted ${e.callback_name}`, () =>
        api("DELETE", `/team/${encodeURIComponent(teamId)}/callback/${encodeURIComponent(e.callback_name)}`)) }, "Delete"))));
  const test = h("button", { type: "button", disabled: !entries.length, onclick: () => testCallbacks(teamId, result) },
    "Test callbacks");
  const result = h("div", { role: "status" });
  section.replaceChildren(h("h3", { id: "callbacks-title" }, "Callbacks"),
    table(`${count(entries.length, "callback")} (secrets masked)`, ["Destination", "Type", "Settings", ""], rows),
    h("div", { class: "actions" }, test), result);
  try {
    const fields = await api("GET", `/team/${encodeURIComponent(teamId)}/callback/fields`);
    section.append(callbackForm(teamId, fields));
  } catch (err) {
    section.append(h("p", { class: "error" }, err.message));
  }
}

async function testCallbacks(teamId, place) {
  place.textContent = "Testing…";
  try {
    const answer = await api("POST", `/team/${encodeURIComponent(teamId)}/callback/test`);
    place.replaceChildren(...answer.results.map((r) =>
      h("p", {}, `${r.callback_name}: ${r.status}${r.http_status ? ` (HTTP ${r.http_status})` : ""}${r.detail ? ` — ${r.detail}` : ""}`)));
  } catch (err) {
    place.textContent = err.message;
  }
}

function callbackForm(teamId, fields) {
  const byName = Object.fromEntries(fields.destinations.map((d) => [d.callback_name, d]));
  const pick = field("Destination", { name: "callback_name", options: Object.keys(byName) });
  const vars = h("div", { class: "grid-span" });
  const form = h("form", { class: "grid", "aria-label": "New callback" }, pick,
    field("Calls", { name: "callback_type", options: fields.callback_types }),
    field("Message logging", { name: "message_logging", options: ["", ...fields.message_logging] }),
    vars, h("button", { type: "submit" }, "Add callback"));
  const draw = () => {
    const kind = byName[pick.querySelector("select").value];
    vars.replaceChildren(...kind.vars.map((v) => field(`${v.name}${v.required ? " (required)" : ""}`,
      { name: `var:${v.name}`, type: v.secret ? "password" : "text", required: v.required })));
  };
  pick.querySelector("select").addEventListener("change", draw);
  draw();
  form.addEventListener("submit", (e) => submit(e, async (data) => {
    const callbackVars = {};
    for (const [name, value] of Object.entries(data)) if (name.startsWith("var:") && value) callbackVars[name.slice(4)] = value;
    if (data.message_logging) callbackVars.message_logging = data.message_logging;
    await api("POST", `/team/${encodeURIComponent(teamId)}/callback`,
      { callback_name: data.callback_name, callback_type: data.callback_type, callback_vars: callbackVars });
    say(`Added ${data.callback_name}`);
    await route();
  }));
  return h("div", {}, h("h3", {}, "Add a callback"), form);
}

// --- deliveries (a team's and the gateway's share one view) -------------------------------------

function teamLedger(teamId) {
  const base = `/team/${encodeURIComponent(teamId)}`;
  return {
    title: "Deliveries",
    deadLabel: "Dead letters held",
    read: async () => (await api("GET", `${base}/deliveries`)).destinations.map((d) => ({
      id: `team/${teamId}/${d.callback_name}/${d.callback_type}`, name: d.callback_name, type: d.callback_type,
      state: d.state, delivered: d.delivered, queued: d.queued, retrying: d.retrying, dead: d.dead_lettered,
      failures: d.failed, error: d.last_error, lag: d.lag_p50_ms, lag99: d.lag_p99_ms })),
    history: async () => (await api("GET", `${base}/deliveries/history`)).destinations.map((d) =>
      [`team/${teamId}/${d.callback_name}/${d.callback_type}`, d.samples]),
    letters: (row) => `${base}/callback/${encodeURIComponent(row.name)}/dead_letters`,
    replay: (row) => `${base}/callback/${encodeURIComponent(row.name)}/replay`,
  };
}

function globalLedger() {
  return {
    title: "Gateway-wide destinations",
    deadLabel: "Dead-lettered since start",
    read: async () => (await api("GET", "/health/destinations")).destinations
      .filter((d) => d.key.startsWith("global/") && d.state !== "orphaned").map((d) => ({
        id: d.key, name: d.key.slice("global/".length), type: "gateway-wide", state: d.state, delivered: d.delivered,
        queued: d.queued, retrying: d.retrying, dead: d.dead_lettered, failures: d.failed,
        error: d.last_error ? { status: d.last_status, reason: d.last_error, at: d.last_failure_at } : null,
        lag: d.lag_p50_ms, lag99: d.lag_p99_ms })),
    history: async () => (await api("GET", "/health/destinations/history")).destinations.map((d) =>
      [`global/${d.name}`, d.samples]),
    letters: (row) => `/health/destinations/${encodeURIComponent(row.name)}/dead_letters`,
    replay: (row) => `/health/destinations/${encodeURIComponent(row.name)}/replay`,
  };
}

function deliveryPanel(section, ledger) {
  const body = h("div", { class: "cards" });
  const letters = h("section", { "aria-labelledby": "letters-title" });
  const refresh = h("button", { type: "button", onclick: () => update() }, "Refresh");
  section.replaceChildren(h("h3", { id: "deliveries-title" }, ledger.title),
    h("p", { class: "small" }, `Read every ${POLL_MS / 1000} s while this page is open; charts show the last hour.`),
    h("div", { class: "actions" }, refresh), body, letters);
  let seeded = false;
  const update = async () => {
    if (!seeded) {
      for (const [id, kept] of await ledger.history()) {
        samples.set(id, kept.map((k) => ({ t: k.t, delivered: k.delivered, failures: k.failed, lag: k.lag_p50_ms || 0 })));
      }
      seeded = true;
    }
    const rows = await ledger.read();
    const now = Date.now() / 1000;
    body.replaceChildren(...rows.map((row) => deliveryCard(row, record(row, now), ledger, letters)));
    if (!rows.length) body.replaceChildren(h("p", {}, "No destinations."));
  };
  return () => update().catch((err) => say(err.message));
}

function record(row, now) {
  const ring = samples.get(row.id) || [];
  ring.push({ t: now, delivered: row.delivered, failures: row.failures, lag: row.lag || 0 });
  while (ring.length && ring[0].t < now - HOUR_S) ring.shift();
  samples.set(row.id, ring);
  return ring;
}

function deliveryCard(row, ring, ledger, letters) {
  const slug = row.id.replace(/[^a-zA-Z0-9]+/g, "-");
  const err = row.error ? `${errorText(row.error)} at ${when(row.error.at)}` : "none";
  const rate = minutes(ring, "delivered", "sum");
  const fails = minutes(ring, "failures", "sum");
  const lags = minutes(ring, "lag", "last");
  return h("article", { class: "card", "data-destination": row.name, "aria-labelledby": `d-${slug}` },
    h("h4", { id: `d-${slug}` }, `${row.name} `, h("span", { class: "small" }, row.type)),
    h("dl", { class: "small" },
      h("dt", {}, "State"), h("dd", { class: `state state-${row.state}`, "data-field": "state" }, row.state),
      h("dt", {}, "Delivered"), h("dd", { "data-field": "delivered" }, num(row.delivered)),
      h("dt", {}, "Queued"), h("dd", { "data-field": "queued" }, `${num(row.queued)} (${num(row.retrying)} retrying)`),
      h("dt", {}, ledger.deadLabel), h("dd", { "data-field": "dead_lettered" }, num(row.dead)),
      h("dt", {}, "Last error"), h("dd", { "data-field": "last_error" }, err),
      h("dt", {}, "Lag p50 / p99"), h("dd", {}, `${num(row.lag)} / ${num(row.lag99)} ms`)),
    h("div", { class: "charts" }, chart("Delivered per minute", rate, ""), chart("Failed per minute", fails, "fail"),
      chart("Lag p50 (ms)", lags, "")),
    h("div", { class: "actions" }, h("button", { type: "button", "aria-label": `Dead letters of ${row.name}`,
      onclick: () => showLetters(letters, row, ledger) }, "Dead letters")));
}

function errorText(error) {
  const status = error.status ? `HTTP ${error.status}` : "";
  if (!error.reason || error.reason === status) return status || "failed";
  return error.reason.includes(status) ? error.reason : `${status} ${error.reason}`.trim();
}

// The last hour in 60 one-minute bars. Counters are since start, so a bar sums the increases of the
// samples that fall in its minute (a restart's drop to zero counts as none); lag keeps the minute's last.
function minutes(ring, name, how) {
  const bars = new Array(60).fill(0);
  const now = Date.now() / 1000;
  ring.forEach((s, i) => {
    const bar = 59 - Math.floor(Math.max(0, now - s.t) / 60); // counted back from now: a sample of this very ms is in the last bar
    if (bar < 0) return;
    if (how === "last") bars[bar] = s[name] || 0;
    else if (i > 0) bars[bar] += Math.max(0, s[name] - ring[i - 1][name]);
  });
  return bars;
}

function chart(label, bars, kind) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const width = 120, height = 40, top = Math.max(1, ...bars), step = width / bars.length;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("class", `spark ${kind}`);
  svg.setAttribute("role", "img");
  const now = round(bars[bars.length - 1]);
  svg.setAttribute("aria-label", `${label} over the last hour: this minute ${num(now)}, peak ${num(round(Math.max(...bars)))}`);
  bars.forEach((v, i) => {
    if (!v) return;
    const bar = document.createElementNS(ns, "rect");
    const tall = Math.max(1, (v / top) * (height - 2));
    bar.setAttribute("x", (i * step).toFixed(2));
    bar.setAttribute("width", (step * 0.8).toFixed(2));
    bar.setAttribute("y", (height - tall).toFixed(2));
    bar.setAttribute("height", tall.toFixed(2));
    svg.append(bar);
  });
  return h("figure", {}, svg, h("figcaption", {}, `${label}: ${num(now)} this minute`));
}

async function showLetters(place, row, ledger) {
  const data = await api("GET", `${ledger.letters(row)}?limit=100`);
  const items = data.dead_letters;
  const replay = (body, what) => act(`Replayed ${what}`, async () => {
    const answer = await api("POST", ledger.replay(row), body);
    say(`Replayed ${answer.replayed} span(s) of ${row.name}`);
    return showLetters(place, row, ledger);
  }, false);
  const rows = items.map((d) => h("tr", {}, h("td", {}, h("code", {}, d.span_id)), h("td", {}, when(d.time)),
    h("td", {}, when(d.dead_lettered_at)), h("td", {}, d.model || "—"), h("td", {}, d.status || "—"), h("td", {}, d.reason),
    h("td", {}, h("button", { type: "button", "aria-label": `Replay span ${d.span_id}`,
      onclick: () => replay({ span_ids: [d.span_id] }, d.span_id) }, "Replay"))));
  place.replaceChildren(h("h3", { id: "letters-title", tabindex: "-1" }, `Dead letters of ${row.name}`),
    h("div", { class: "actions" }, h("button", { type: "button", class: "primary", disabled: !items.length,
      onclick: () => replay({}, "all") }, `Replay all ${items.length}`)),
    table(count(items.length, "dead letter"), ["Span", "Call ended", "Dead-lettered", "Model", "Status", "Reason", ""], rows));
  place.querySelector("h3").focus();
}

// --- gateway ----------------------------------------------------------------------------------

async function gatewayView(target) {
  const models = await api("GET", "/health");
  const rows = [...models.healthy_endpoints.map((m) => [m, "healthy"]), ...models.unhealthy_endpoints.map((m) => [m, "unhealthy"])]
    .map(([m, state]) => h("tr", {}, h("td", {}, m.model), h("td", {}, m.provider), h("td", {}, h("code", {}, m.address || "—")),
      h("td", { class: state }, state), h("td", {}, m.error || "")));
  const destinations = h("section", { "aria-labelledby": "deliveries-title" });
  target.replaceChildren(h("h2", {}, "Gateway"), h("h3", {}, "Models"),
    table(`${models.healthy_count} healthy, ${models.unhealthy_count} unhealthy`, ["Model", "Provider", "Address", "Health", "Error"], rows),
    destinations);
  if (!session.operator) {
    destinations.replaceChildren(h("p", { class: "small" }, "Gateway-wide destinations are shown to the operator only."));
    return null;
  }
  const ledger = deliveryPanel(destinations, globalLedger());
  await ledger();
  return ledger;
}

// --- forms and actions ------------------------------------------------------------------------

const list = (text) => (text || "").split(",").map((s) => s.trim()).filter(Boolean);

async function submit(event, handle) {
  event.preventDefault();
  const form = event.target;
  const error = form.querySelector(".error") || form.appendChild(h("p", { class: "error", role: "alert" }));
  error.textContent = "";
  try {
    await handle(Object.fromEntries(new FormData(form)));
  } catch (err) {
    error.textContent = err.message;
  }
}

async function act(done, call, reload = true) {
  try {
    await call();
    say(done);
    if (reload) await route();
  } catch (err) {
    say(err.message);
  }
}

function start() {
  $("signin-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await signIn($("signin-key").value);
    } catch (err) {
      session = null;
      return showSignIn(err.status === 401 ? "That key was not accepted." : err.message);
    }
    enter();
  });
  $("signout").addEventListener("click", signOut);
  window.addEventListener("hashchange", route);
  const kept = sessionStorage.getItem(KEY);
  if (!kept) return showSignIn();
  signIn(kept).then(enter, () => showSignIn("Sign in again."));
}

function enter() {
  $("signin").hidden = true;
  $("signin-key").value = "";
  $("nav").hidden = $("signout").hidden = false;
  $("who").textContent = session.operator ? "Signed in as the operator" : `Signed in as an admin of team ${session.teamId}`;
  route();
  $("main").focus();
}

start();
