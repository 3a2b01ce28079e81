// The Map page (/map): services and the hops between them over a time window, from
// /api/service-map (the flow engine's hops, counted server-side). Drawn as SVG, services in
// columns by call depth, left to right; the same numbers in a table below. Text only through
// textContent (util.js).

import { api, formatDuration, h, s, serviceColor, showError } from "./util.js";

const WINDOWS = [["15m", "last 15 min"], ["1h", "last hour"], ["24h", "last day"], ["custom", "custom…"]];
const NODE_W = 150, NODE_H = 34, COL_GAP = 240, ROW_GAP = 56, PAD = 20;
const PENDING_RETRY_MS = 1000;

function percent(rate) {
  return rate ? `${(rate * 100).toFixed(rate < 0.01 ? 2 : 1)}%` : "0%";
}

/** datetime-local text (local time) <-> nanoseconds since the epoch, as decimal strings. */
function toNs(local) {
  const ms = new Date(local).getTime();
  return Number.isNaN(ms) ? "" : (BigInt(ms) * 1000000n).toString();
}
function toLocal(ns) {
  if (!ns || !/^\d+$/.test(ns)) return "";
  const date = new Date(Number(BigInt(ns) / 1000000n));
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

export function renderMapPage(root) {
  const params = new URLSearchParams(location.search);
  const custom = params.has("start_unix_nano");
  const asked = params.get("window") || "1h";
  // A linked window that is not a choice (window=6h) is one for this page: the API judges it.
  const choices = WINDOWS.some(([value]) => value === asked) ? WINDOWS : [[asked, asked], ...WINDOWS];
  const windowSelect = h("select", { name: "window", id: "map-window" },
    choices.map(([value, text]) => h("option", { value, selected: custom ? value === "custom" : value === asked }, text)));
  const start = h("input", { type: "datetime-local", name: "start", id: "map-start", value: toLocal(params.get("start_unix_nano")) });
  const end = h("input", { type: "datetime-local", name: "end", id: "map-end", value: toLocal(params.get("end_unix_nano")) });
  const customFields = h("span", { class: "custom-window", hidden: !custom },
    h("label", {}, "From", start), h("label", {}, "to", end));
  const form = h("form", { class: "filters", role: "search" },
    h("label", {}, "Window", windowSelect), customFields, h("button", { type: "submit" }, "Show"));
  const status = h("p", { class: "muted", id: "map-status" }, "Adding up the hops…");
  const drawing = h("div", { class: "panel map", id: "service-map" });
  const body = h("tbody");
  const table = h("table", { class: "list", id: "map-hops" },
    h("thead", {}, h("tr", {}, ["Hop", "Calls", "Errors", "Error rate", "p50", "p99"].map((c) => h("th", {}, c)))), body);
  root.replaceChildren(h("h1", {}, "Service map"), form, status, drawing, h("h2", {}, "Hops"), table);
  document.title = "Service map · tracebaton";

  windowSelect.addEventListener("change", () => { customFields.hidden = windowSelect.value !== "custom"; });
  let timer = null;
  let gone = false;

  function query() {
    const out = new URLSearchParams();
    if (windowSelect.value === "custom") {
      if (start.value) out.set("start_unix_nano", toNs(start.value));
      if (end.value) out.set("end_unix_nano", toNs(end.value));
      if (!start.value) out.set("start_unix_nano", "");  // the API says what is missing
    } else {
      out.set("window", windowSelect.value);
    }
    return out;
  }

  // The first answer is for the URL as linked, to the nanosecond; later ones for the form.
  let linked = location.search ? new URLSearchParams(location.search) : null;

  async function load() {
    clearTimeout(timer);
    const q = linked || query();
    linked = null;
    history.replaceState(null, "", `/map?${q}`);
    try {
      const data = await api(`/api/service-map?${q}`);
      if (gone) return;
      draw(drawing, data);
      body.replaceChildren(...data.links.map(hopRow));
      const pending = data.pending ? `; ${data.pending} more still being summarised, updating…` : "";
      const cut = data.truncated ? ` (the most recent ${data.max_traces})` : "";
      status.textContent = data.links.length || data.pending
        ? `${data.links.length} hop${data.links.length === 1 ? "" : "s"} between ${data.services.length} services over ${data.traces} traces${cut}${pending}`
        : "No hop in this window: traces appear here as services export them.";
      status.dataset.pending = String(data.pending);
      if (data.pending) timer = setTimeout(load, PENDING_RETRY_MS);
    } catch (error) {
      if (!gone) showError(status, error);
    }
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); load(); });
  load();
  return () => { gone = true; clearTimeout(timer); };
}

function hopRow(link) {
  return h("tr", { dataset: { hop: link.hop } },
    h("td", { class: "mono" }, link.hop),
    h("td", {}, link.calls),
    h("td", {}, link.errors ? h("span", { class: "badge fail" }, link.errors) : "0"),
    h("td", {}, percent(link.error_rate)),
    h("td", {}, formatDuration(Number(link.p50_ns))),
    h("td", {}, formatDuration(Number(link.p99_ns))));
}

function draw(container, data) {
  const columns = new Map();
  for (const service of data.services) {
    if (!columns.has(service.depth)) columns.set(service.depth, []);
    columns.get(service.depth).push(service.name);
  }
  const depths = [...columns.keys()].sort((a, b) => a - b);
  const at = new Map();
  let rows = 0;
  depths.forEach((depth, column) => {
    columns.get(depth).forEach((name, row) => {
      at.set(name, { x: PAD + column * (NODE_W + COL_GAP), y: PAD + row * (NODE_H + ROW_GAP) });
      rows = Math.max(rows, row + 1);
    });
  });
  const width = PAD * 2 + Math.max(1, depths.length) * (NODE_W + COL_GAP) - COL_GAP;
  const height = PAD * 2 + Math.max(1, rows) * (NODE_H + ROW_GAP) - ROW_GAP + 30;
  const svg = s("svg", { id: "map-svg", viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-label": `service map: ${data.links.length} hops between ${data.services.length} services` });
  svg.append(s("defs", {},
    s("marker", { id: "map-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 10, markerHeight: 10, markerUnits: "userSpaceOnUse", orient: "auto-start-reverse" },
      s("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "map-arrowhead" }))));
  const most = Math.max(1, ...data.links.map((link) => link.calls));
  for (const link of data.links) {
    const from = at.get(link.caller), to = at.get(link.callee);
    if (!from || !to) continue;
    const x1 = from.x + NODE_W, y1 = from.y + NODE_H / 2;
    let path, lx, ly;
    if (link.caller === link.callee) {  // a service calling itself over the network
      path = `M ${x1} ${y1 - 8} C ${x1 + 50} ${y1 - 40}, ${x1 + 50} ${y1 + 40}, ${x1} ${y1 + 8}`;
      lx = x1 + 42; ly = y1;
    } else if (to.x > from.x) {
      const x2 = to.x, y2 = to.y + NODE_H / 2;
      path = `M ${x1} ${y1} C ${x1 + COL_GAP / 2} ${y1}, ${x2 - COL_GAP / 2} ${y2}, ${x2} ${y2}`;
      lx = (x1 + x2) / 2; ly = (y1 + y2) / 2 - 6;
    } else {  // back to a shallower column (or the same one): under the boxes
      const sx = from.x + NODE_W / 2, sy = from.y + NODE_H, tx = to.x + NODE_W / 2, ty = to.y + NODE_H;
      path = `M ${sx} ${sy} C ${sx} ${sy + 40}, ${tx} ${ty + 40}, ${tx} ${ty}`;
      lx = (sx + tx) / 2; ly = Math.max(sy, ty) + 28;
    }
    const cls = `map-edge${link.async ? " async" : ""}${link.errors ? " failing" : ""}`;
    const counts = `${link.calls} · ${percent(link.error_rate)} err`;
    const times = `p50 ${formatDuration(Number(link.p50_ns))} · p99 ${formatDuration(Number(link.p99_ns))}`;
    svg.append(s("g", { class: cls, dataset: { hop: link.hop } },
      s("title", {}, `${link.hop}: ${link.calls} calls, ${link.errors} failed (${percent(link.error_rate)}), p50 ${formatDuration(Number(link.p50_ns))}, p99 ${formatDuration(Number(link.p99_ns))}`),
      s("path", { d: path, "marker-end": "url(#map-arrow)", style: `stroke-width:${1.5 + 3 * (link.calls / most)}` }),
      s("text", { class: "map-edge-label", x: lx, y: ly - 14, "text-anchor": "middle" },
        s("tspan", { x: lx }, counts), s("tspan", { x: lx, dy: 13 }, times))));
  }
  for (const [name, { x, y }] of at) {
    svg.append(s("g", { class: "map-node", dataset: { service: name } },
      s("title", {}, name),
      s("rect", { x, y, width: NODE_W, height: NODE_H, rx: 6, style: `stroke:${serviceColor(name)}` }),
      s("text", { x: x + NODE_W / 2, y: y + NODE_H / 2 + 4, "text-anchor": "middle" },
        name.length > 20 ? name.slice(0, 19) + "…" : name)));
  }
  container.replaceChildren(svg);
}
