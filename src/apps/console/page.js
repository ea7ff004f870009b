// The console page: renders the state the server sends (GET /api/state, then every change by
// server-sent events on /api/events). Every string from ZooKeeper goes into the page as text
// (textContent, createTextNode), never as markup: a node's data is written by anyone.
"use strict";

let state = null;
// Server clock minus this browser's, so ages are the server's view.
let skew = 0;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    // Text, always: a string never becomes markup.
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function age(ms) {
  ms = Math.max(0, ms);
  if (ms < 1000) return ms + "ms";
  if (ms < 60000) return (ms / 1000).toFixed(1) + "s";
  if (ms < 3600000) return Math.floor(ms / 60000) + "m" + String(Math.floor(ms % 60000 / 1000)).padStart(2, "0") + "s";
  return Math.floor(ms / 3600000) + "h" + String(Math.floor(ms % 3600000 / 60000)).padStart(2, "0") + "m";
}

function now() { return Date.now() + skew; }

function table(headers, rows) {
  return el("table", {}, el("thead", {}, el("tr", {}, ...headers.map(h => el("th", {}, h)))),
    el("tbody", {}, ...rows));
}

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
const SVG = "http://www.w3.org/2000/svg";

function traffic(endpoint) {
  return state.traffic && state.traffic.endpoints ? state.traffic.endpoints[endpoint] : undefined;
}

function failuresText(t) {
  if (!t) return "";
  const parts = Object.entries(t.failures_per_s).filter(([, v]) => v > 0).map(([k, v]) => k + " " + v);
  return parts.join(", ") + (t.ejections_total > 0 ? (parts.length ? "; " : "") + "ejected " + t.ejections_total + "x" : "");
}

// Calls per second of each endpoint last seen under `base`, over the last minute.
function chart(base) {
  const lines = Object.entries((state.traffic && state.traffic.endpoints) || {})
    .filter(([endpoint]) => state.homes && state.homes[endpoint] === base);
  if (lines.length === 0) return null;
  const width = 600, height = 110, points = 60;
  const top = Math.max(1, ...lines.flatMap(([, t]) => t.history));
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("class", "chart");
  const legend = el("div", { class: "legend" }, el("span", { class: "muted" }, "calls/s, last minute (max " + top + "): "));
  lines.forEach(([endpoint, t], i) => {
    const color = COLORS[i % COLORS.length];
    const offset = points - t.history.length;
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", color);
    line.setAttribute("stroke-width", "2");
    line.setAttribute("points", t.history.map((v, j) =>
      ((offset + j) * width / (points - 1)).toFixed(1) + "," + (height - 4 - v / top * (height - 8)).toFixed(1)).join(" "));
    svg.append(line);
    legend.append(el("span", { class: "key", style: "color: " + color }, "\u25A0 " + endpoint + " " + t.calls_per_s + "/s"));
  });
  return el("div", { class: "traffic" }, svg, legend);
}

// The weight a consumer picks the provider by: its `weight`, or the default (said so).
function weightText(p) {
  if (p.error !== null) return "";
  const w = p.metadata ? p.metadata.weight : undefined;
  if (w === undefined) return state.default_weight + " (default)";
  return /^[0-9]+$/.test(w) && Number(w) <= 4294967295 ? w : w + " (not a number: " + state.default_weight + " used)";
}

function providerRow(p) {
  const meta = p.metadata ? Object.entries(p.metadata).filter(([k]) => k !== "weight")
    .map(([k, v]) => k + "=" + v).join(", ") : "";
  const weight = weightText(p);
  const first = p.error === null
    ? el("td", { class: "url" }, p.url)
    : el("td", { class: "url" }, el("span", { class: "tag bad" }, "BAD DATA"), " ", p.error);
  const row = el("tr", { class: p.error === null ? "provider" : "provider bad", "data-node": p.path },
    el("td", { class: "nowrap" }, p.node), first,
    el("td", { class: "nowrap" }, weight, " ", state.can_act && p.error === null ? weightButton(p.path) : null),
    el("td", {}, meta),
    el("td", { class: "nowrap" }, p.session_id),
    el("td", { class: "nowrap calls" }, p.url !== null && traffic(p.url.split("?")[0]) ? traffic(p.url.split("?")[0]).calls_per_s : ""),
    el("td", { class: "failures" }, p.url !== null ? failuresText(traffic(p.url.split("?")[0])) : ""),
    el("td", { class: "age nowrap", "data-created": String(p.created_ms) }, age(now() - p.created_ms)));
  return row;
}

function renderServices(target) {
  const parts = [];
  if (!state.services || state.services.length === 0) parts.push(el("p", { class: "muted" }, "no providers under " + state.root));
  for (const s of state.services || []) {
    const live = s.providers.filter(p => p.error === null).length;
    parts.push(el("h3", {}, s.base_path, " ", el("span", { class: "muted" }, live + " live, " + (s.providers.length - live) + " bad")));
    parts.push(table(["node", "URL", "weight", "metadata", "session", "calls/s", "failures/s", "age"], s.providers.map(providerRow)));
    const drawn = chart(s.base_path);
    if (drawn) parts.push(drawn);
  }
  for (const t of (state.traffic && state.traffic.targets) || []) {
    parts.push(el("p", { class: t.ok ? "muted" : "down" }, "traffic from " + t.addr + (t.ok ? "" : ": " + t.error)));
  }
  for (const path of state.unreadable || []) parts.push(el("p", { class: "muted" }, "not readable by this identity: " + path));
  if (state.truncated) parts.push(el("p", { class: "muted" }, "the walk stopped early: start the console at a deeper --root"));
  target.replaceChildren(...parts);
}

// Sends a confirmed action; says why when it was refused.
async function act(endpoint, body, failed) {
  const response = await fetch(endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Zoorpc-Confirmed": "yes" },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) window.alert(failed + (answer.error || response.status));
}

function designateButton(path, address) {
  const button = el("button", {}, "make master");
  button.addEventListener("click", () => {
    if (window.confirm("Hand mastership of " + path + " to " + address + "?")) {
      act("/api/designate", { path, address }, "Not designated: ");
    }
  });
  return button;
}

function weightButton(node) {
  const button = el("button", {}, "set");
  button.addEventListener("click", () => {
    const answer = window.prompt("New weight of " + node + " (0 to 4294967295):");
    if (answer === null) return;
    const weight = Number(answer);
    if (!Number.isInteger(weight) || weight < 0 || weight > 4294967295) {
      window.alert("Not a weight: " + answer);
    } else if (window.confirm("Set the weight of " + node + " to " + weight + "?")) {
      act("/api/weight", { node, weight }, "Weight not set: ");
    }
  });
  return button;
}

// What an election (or a timeline entry) says of its master: the master, bad data with the
// reason, a designation not taken over yet, a handover under way, or nobody.
function masterCell(m, tagged) {
  if (m.master !== null) return el("td", {}, tagged ? el("span", { class: "tag master" }, "MASTER") : null, tagged ? " " : null, m.master);
  if (m.error) return el("td", { class: "bad" }, el("span", { class: "tag bad" }, "BAD DATA"), " ", m.error);
  if (m.designated) return el("td", {}, "no master yet: designated " + m.designated + ", not taken over yet");
  if (m.designee) return el("td", {}, "no master: handing over to " + m.designee + ", not taken over yet");
  return el("td", { class: "muted" }, "no master");
}

function masterRow(m) {
  const standbys = el("td", {});
  for (const s of m.standbys || []) {
    standbys.append(el("div", {}, s, " ", state.can_act ? designateButton(m.path, s) : null));
  }
  for (const bad of m.bad_standbys || []) {
    standbys.append(el("div", { class: "bad" }, el("span", { class: "tag bad" }, "BAD DATA"), " not an address: ", bad));
  }
  return el("tr", { class: "election" }, el("td", {}, m.path), masterCell(m, true),
    el("td", {}, m.epoch === null ? "" : m.epoch),
    el("td", { class: "tenure nowrap", "data-since": m.since_ms === null ? "" : String(m.since_ms) },
      m.since_ms === null ? "" : age(now() - m.since_ms)),
    el("td", {}, m.designee || ""), standbys);
}

function renderMasters(target) {
  if (!state.masters || state.masters.length === 0) {
    target.replaceChildren(el("p", { class: "muted" }, "no elections under " + state.root));
    return;
  }
  target.replaceChildren(table(["election", "master", "epoch", "tenure", "designee", "standbys"], state.masters.map(masterRow)));
}

function renderTimeline(target) {
  const rows = (state.timeline || []).slice().reverse().map(t => el("tr", { class: "timeline" },
    el("td", {}, new Date(t.at_ms).toLocaleTimeString()), el("td", {}, t.path),
    masterCell(t, false), el("td", {}, t.epoch === null ? "" : t.epoch)));
  target.replaceChildren(rows.length ? table(["seen", "election", "master", "epoch"], rows)
    : el("p", { class: "muted" }, "nothing seen yet"));
}

function render() {
  document.getElementById("root").textContent = "root " + state.root;
  document.getElementById("mode").textContent = state.can_act
    ? "Actions enabled (--zk-auth-file given): each asks for a confirmation."
    : "Read-only: start the console with --zk-auth-file to designate a master or change a weight.";
  const problem = document.getElementById("problem");
  problem.hidden = state.zookeeper.ok;
  problem.textContent = state.zookeeper.ok ? "" : state.zookeeper.problem + " (read " + new Date(state.read_ms).toLocaleTimeString() + ")";
  renderServices(document.getElementById("services"));
  renderMasters(document.getElementById("masters"));
  renderTimeline(document.getElementById("timeline"));
}

// Renders are coalesced: a state that comes less than RENDER_GAP ms after a render ended waits
// for the gap, and only the newest of those is parsed and drawn. A big registry that
// changes often (one full render of 3,000 providers takes hundreds of ms on a loaded machine)
// then costs a few renders a second, not one per change, and the page's timers keep up.
const RENDER_GAP = 300;
let pending = null;
let lastRender = -Infinity;

function take(text) {
  const scheduled = pending !== null;
  pending = text;
  if (scheduled) return;
  setTimeout(() => {
    const newest = pending;
    pending = null;
    state = JSON.parse(newest);
    skew = state.now_ms - Date.now();
    render();
    // The gap counts from the end of a render: the page's timers run between two of them.
    lastRender = performance.now();
  }, Math.max(0, lastRender + RENDER_GAP - performance.now()));
}

function tick() {
  for (const cell of document.querySelectorAll("td.age")) cell.textContent = age(now() - Number(cell.dataset.created));
  for (const cell of document.querySelectorAll("td.tenure")) {
    if (cell.dataset.since) cell.textContent = age(now() - Number(cell.dataset.since));
  }
}

function connect() {
  const link = document.getElementById("link");
  const events = new EventSource("/api/events");
  events.addEventListener("state", e => { link.textContent = "live"; take(e.data); });
  events.addEventListener("error", () => { link.textContent = "console unreachable: retrying…"; });
}

fetch("/api/state").then(r => r.text()).then(take).catch(() => {}).finally(connect);
setInterval(tick, 1000);
