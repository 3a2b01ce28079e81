// tracebaton dashboard: the router, and the Flows and Traces pages. Data from spans is shown
// through textContent only (see util.js).

import { renderComparePage } from "./compare.js";
import { renderFlowPage } from "./flow.js";
import { jaegerLink } from "./jaeger.js";
import { listKeys, setPageKeys } from "./keys.js";
import { renderMapPage } from "./map.js";
import { api, formatDuration, formatWhen, globToRegExp, h, isoTime, navigate, showError, verdictBadge } from "./util.js";

// ---- router -------------------------------------------------------------------------------

let pageCleanup = null;

function route() {
  if (pageCleanup) { pageCleanup(); pageCleanup = null; }
  setPageKeys(null);
  const root = document.getElementById("app");
  const path = decodeURIComponent(location.pathname);
  const parts = path.split("/").filter(Boolean);
  for (const link of document.querySelectorAll("nav a")) {
    link.classList.toggle("current", link.dataset.nav === (parts[0] || "flows"));
  }
  if (parts.length === 0 || (parts[0] === "flows" && parts.length === 1)) {
    pageCleanup = renderFlowsPage(root);
  } else if (parts[0] === "flows" && parts.length === 2) {
    renderFlowPage(root, parts[1], { recorded: true });
  } else if (parts[0] === "traces" && parts.length === 1) {
    renderTracesPage(root);
  } else if (parts[0] === "traces" && parts.length === 2) {
    renderFlowPage(root, parts[1], { recorded: false });
  } else if (parts[0] === "map" && parts.length === 1) {
    pageCleanup = renderMapPage(root);
  } else if (parts[0] === "compare" && parts.length === 1) {
    renderComparePage(root);
  } else {
    root.replaceChildren(h("div", { class: "error-box" }, "No such page. Try ", h("a", { href: "/flows" }, "Flows"), "."));
  }
}

/** Same-origin links navigate without a reload. */
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("a[href]");
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(link.getAttribute("href"), location.href);  // an SVG <a>'s .href is no string
  if (url.origin !== location.origin || url.pathname.startsWith("/api/") || link.hasAttribute("download")) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", route);
window.addEventListener("tb:navigate", route);

// ---- Flows page: recorded runs, failed first, live -----------------------------------------

const SINCE_CHOICES = [["", "any time"], ["15m", "last 15 min"], ["1h", "last hour"], ["24h", "last day"], ["168h", "last week"]];

function filterField(label, input) {
  return h("label", {}, label, input);
}

function select(name, choices, value) {
  return h("select", { name }, choices.map(([v, text]) => h("option", { value: v, selected: v === value }, text)));
}

function renderFlowsPage(root) {
  const params = new URLSearchParams(location.search);
  const form = h("form", { class: "filters", role: "search" },
    filterField("Verdict", select("passed", [["", "all"], ["false", "failed"], ["true", "passed"]], params.get("passed") || "")),
    filterField("Flow name", h("input", { name: "name", value: params.get("name") || "", placeholder: "checkout*", size: 14 })),
    filterField("Test id", h("input", { name: "test_id", value: params.get("test_id") || "", placeholder: "tests/test_shop.py::*", size: 24 })),
    filterField("Session", h("input", { name: "session_id", value: params.get("session_id") || "", size: 14 })),
    filterField("Recorded", select("since", SINCE_CHOICES, params.get("since") || "")),
    h("button", { type: "submit" }, "Filter"));
  const body = h("tbody");
  const table = h("table", { class: "list", id: "runs" },
    h("thead", {}, h("tr", {}, ["Verdict", "Flow", "First divergence", "Test", "Session", "Trace", "Recorded", "Waited"].map((c) => h("th", {}, c)))),
    body);
  const status = h("p", { class: "muted", id: "runs-status" }, "Loading runs…");
  root.replaceChildren(h("h1", {}, "Flows"), form, status, table);
  setPageKeys(listKeys(body, "flow"));

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const query = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (value) query.set(key, value);
    history.replaceState(null, "", `/flows${query.toString() ? "?" + query : ""}`);
    load();
  });

  const filters = () => Object.fromEntries([...new FormData(form)].filter(([, v]) => v));
  const rows = new Map();

  function runRow(run, fresh) {
    const href = `/flows/${encodeURIComponent(run.run_id)}`;
    const row = h("tr", { class: fresh ? "fresh" : null, dataset: { runId: run.run_id, passed: String(run.passed), recorded: run.recorded_unix_nano } },
      h("td", {}, verdictBadge(run.passed)),
      h("td", {}, h("a", { href }, run.name || "(unnamed)")),
      h("td", { class: "divergence" }, run.first_divergence || ""),
      h("td", { class: "mono" }, run.test_id || ""),
      h("td", { class: "mono" }, run.session_id || ""),
      h("td", { class: "mono" }, run.trace_id ? [run.trace_id.slice(0, 12) + "…", " ", jaegerLink(run.trace_id)] : "–"),
      h("td", { title: isoTime(run.recorded_unix_nano) }, formatWhen(run.recorded_unix_nano)),
      h("td", {}, run.waited_ms === null || run.waited_ms === undefined ? "–" : `${run.waited_ms} ms`));
    row.addEventListener("click", (event) => { if (!event.target.closest("a")) navigate(href); });
    return row;
  }

  function matches(run) {
    const f = filters();
    if (f.passed && String(run.passed) !== f.passed) return false;
    if (f.name && !globToRegExp(f.name).test(run.name || "")) return false;
    if (f.test_id && !globToRegExp(f.test_id).test(run.test_id || "")) return false;
    if (f.session_id && run.session_id !== f.session_id) return false;
    return true;
  }

  /** Failed first, then newest: a new failed run goes on top, a new passed one above the passed. */
  function insert(run) {
    if (rows.has(run.run_id) || !matches(run)) return;
    const row = runRow(run, true);
    let before = null;
    for (const other of body.children) {
      const otherPassed = other.dataset.passed === "true";
      if (run.passed === otherPassed || (!run.passed && otherPassed)) { before = other; break; }
    }
    body.insertBefore(row, before);
    rows.set(run.run_id, row);
    status.textContent = `${rows.size} run${rows.size === 1 ? "" : "s"}`;
  }

  async function load() {
    const query = new URLSearchParams(filters());
    query.set("limit", "200");
    try {
      const data = await api(`/api/runs?${query}`);
      rows.clear();
      body.replaceChildren(...data.runs.map((run) => { const row = runRow(run, false); rows.set(run.run_id, row); return row; }));
      status.textContent = data.runs.length
        ? `${data.runs.length} run${data.runs.length === 1 ? "" : "s"}`
        : "No runs recorded yet. Runs appear here as tests, `tracebaton check` or POST /api/check judge flows.";
    } catch (error) {
      showError(status, error);
    }
  }
  load();

  // Live: the server pushes each run as it is recorded (server-sent events; no timer here).
  const live = document.getElementById("live");
  const source = new EventSource("/api/events");
  let dropped = false;
  source.addEventListener("open", () => {
    live.hidden = false;
    live.classList.remove("offline");
    live.textContent = "live";
    if (dropped) load();  // runs recorded while the stream was down are in the list again
    dropped = false;
  });
  source.addEventListener("error", () => { dropped = true; live.classList.add("offline"); live.textContent = "reconnecting"; });
  source.addEventListener("run", (event) => {
    try { insert(JSON.parse(event.data)); } catch (error) { console.error(error); }
  });
  return () => { source.close(); live.hidden = true; };
}

// ---- Traces page: search ----------------------------------------------------------------------

function renderTracesPage(root) {
  const params = new URLSearchParams(location.search);
  const attrText = [...params.entries()].filter(([k]) => k.startsWith("attr.")).map(([k, v]) => `${k.slice(5)}=${v}`).join(" ");
  const form = h("form", { class: "filters", role: "search" },
    filterField("Service", h("input", { name: "service", value: params.get("service") || "", size: 14 })),
    filterField("Span name", h("input", { name: "name", value: params.get("name") || "", placeholder: "POST /checkout*", size: 18 })),
    filterField("Attributes (key=value …)", h("input", { name: "attrs", value: attrText, placeholder: "order.id=A-17", size: 24 })),
    filterField("Status", select("status", [["", "any"], ["error", "error"], ["ok", "ok"], ["unset", "unset"]], params.get("status") || "")),
    filterField("Arrived", select("since", SINCE_CHOICES, params.get("since") || "")),
    h("button", { type: "submit" }, "Search"));
  const body = h("tbody");
  const table = h("table", { class: "list", id: "traces" },
    h("thead", {}, h("tr", {}, ["Trace", "Root", "Services", "Spans", "Errors", "Duration", "Arrived"].map((c) => h("th", {}, c)))),
    body);
  const status = h("p", { class: "muted", id: "traces-status" }, "Searching…");
  root.replaceChildren(h("h1", {}, "Traces"), form, status, table);
  setPageKeys(listKeys(body, "trace"));

  function query() {
    const data = new FormData(form);
    const out = new URLSearchParams();
    for (const key of ["service", "name", "status", "since"]) if (data.get(key)) out.set(key, data.get(key));
    for (const pair of String(data.get("attrs") || "").split(/\s+/).filter(Boolean)) {
      const at = pair.indexOf("=");
      if (at > 0) out.append(`attr.${pair.slice(0, at)}`, pair.slice(at + 1));
    }
    return out;
  }

  async function search() {
    const q = query();
    history.replaceState(null, "", `/traces${q.toString() ? "?" + q : ""}`);
    q.set("limit", "100");
    const started = performance.now();
    try {
      const data = await api(`/api/traces?${q}`);
      body.replaceChildren(...data.traces.map((t) => {
        const href = `/traces/${encodeURIComponent(t.trace_id)}`;
        const row = h("tr", { dataset: { traceId: t.trace_id } },
          h("td", { class: "mono" }, h("a", { href }, t.trace_id), " ", jaegerLink(t.trace_id)),
          h("td", {}, h("b", {}, t.root_service || "?"), " ", t.root_name || ""),
          h("td", {}, t.services.join(", ")),
          h("td", {}, t.span_count),
          h("td", {}, t.error_count ? h("span", { class: "badge fail" }, t.error_count) : "0"),
          h("td", {}, formatDuration(Number(t.duration_ns))),
          h("td", { title: isoTime(t.last_arrival_unix_nano) }, formatWhen(t.last_arrival_unix_nano)));
        row.addEventListener("click", (event) => { if (!event.target.closest("a")) navigate(href); });
        return row;
      }));
      const ms = Math.round(performance.now() - started);
      status.textContent = data.traces.length ? `${data.traces.length} traces (${ms} ms)` : "No trace matches.";
      status.dataset.ms = String(ms);
      performance.mark("tracebaton:traces-rendered");  // for the benchmark
    } catch (error) {
      showError(status, error);
    }
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); search(); });
  search();
}

route();
