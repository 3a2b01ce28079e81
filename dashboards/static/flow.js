// The Flow page (/flows/{run or trace id}) and the Trace page (/traces/{trace id}): verdict and
// failure text, a sequence diagram of the hops, a waterfall with budgets and the critical path,
// and the details of a span on click. Text from spans only ever goes through textContent.

import { compareWith, snapshotComparison } from "./compare.js";
import { jaegerLink } from "./jaeger.js";
import { flowKeys, setPageKeys } from "./keys.js";
import { api, formatDuration, formatWhen, h, isoTime, navigate, nsBetween, s, serviceColor, showError, verdictBadge } from "./util.js";

const FOLDED = / http (send|receive)$/;
const BUDGET_REACH = 1.5;  // how far past the last span a budget tick may widen the waterfall

export async function renderFlowPage(root, key, { recorded }) {
  // A recorded run's verdict came with the page (the server drew it): it stays while the rest loads.
  if (!root.querySelector(":scope > .server-verdict")) root.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  let view;
  try {
    view = await api(`/api/flows/${encodeURIComponent(key)}${recorded ? "" : "?recorded=false"}`);
  } catch (error) {
    showError(root, error);
    return;
  }
  const model = buildModel(view);
  const details = h("aside", { class: "panel details", id: "span-details" },
    h("p", { class: "muted" }, "Click a span or a hop to see its attributes, events, links and captured headers."));
  const select = (spanId, options) => selectSpan(model, spanId, details, options);
  model.select = select;

  const parts = [header(view, recorded), failureText(view), snapshotComparison(view)];
  if (!recorded) parts.push(traceActions(view));
  parts.push(compareWith(view));
  parts.push(h("div", { class: "layout" },
    h("div", {},
      h("h2", {}, "Hops"),
      h("div", { class: "panel diagram" }, sequenceDiagram(view, model)),
      h("h2", {}, "Waterfall"),
      waterfall(view, model)),
    details));
  root.replaceChildren(...parts.filter(Boolean));
  document.title = `${view.run ? view.run.name : "trace"} · tracebaton`;
  const first = view.result.hops.find((hop) => model.culpritHops.has(hop) && hop.caller_span_id) ||
    view.result.hops.find((hop) => model.implicatedHops.has(hop) && hop.caller_span_id);
  // Selected, not scrolled to: the page opens at its top, the verdict in view.
  if (first) model.highlightHop(first, { scroll: false });
  fitLabels(document.getElementById("sequence"));
  model.closeDetails = () => {
    model.selected = null;
    for (const el of [...model.rows.values(), ...model.hopEls.values()]) el.classList.remove("selected");
    details.replaceChildren(h("p", { class: "muted" }, "Details closed: j/k or a click opens a span's."));
  };
  setPageKeys(flowKeys(model));
  // For benchmarks and tests: when the page is drawn and takes clicks.
  performance.mark("tracebaton:flow-rendered");
  document.documentElement.dataset.rendered = key;
}

// ---- model -----------------------------------------------------------------------------------

function buildModel(view) {
  const spans = view.spans;
  const byId = new Map(spans.map((span) => [span.span_id, span]));
  const hops = view.result.hops;
  // Which hops to blame is the engine's call (hop_blame): the culprit is the hop the first
  // divergence names, drawn red; the others its failed checks name are drawn beside it.
  const culpritHops = new Set(view.culprit_hops.map((i) => hops[i]));
  const implicatedHops = new Set(view.implicated_hops.map((i) => hops[i]));
  // The flow's tree is the engine's too: `tree_parents` lists every span it hangs elsewhere
  // than under the parent its own id names (another trace's top under the call that reached
  // it, the cut of a parent loop); every other span hangs under its own parent.
  const hung = new Map(Object.entries(view.tree_parents));
  const parentOf = (span) => {
    if (hung.has(span.span_id)) return hung.get(span.span_id);
    return span.parent_span_id && byId.has(span.parent_span_id) ? span.parent_span_id : null;
  };
  return { spans, byId, culpritHops, implicatedHops, hung, parentOf, rows: new Map(), hopEls: new Map() };
}

// ---- header and failure text ---------------------------------------------------------------

function header(view, recorded) {
  const result = view.result;
  const run = view.run;
  const traceId = result.trace_id;
  const title = recorded ? (run ? run.name : result.name) : `Trace ${traceId}`;
  const meta = [];
  if (traceId) meta.push(h("span", {}, "trace ", h("a", { class: "mono", href: `/traces/${traceId}` }, traceId), " ", jaegerLink(traceId)));
  if (result.trace_ids.length > 1) meta.push(h("span", {}, `${result.trace_ids.length} traces in the flow`));
  meta.push(h("span", {}, `${view.spans.length} spans${view.truncated ? " (cut: too many to show)" : ""}`));
  if (run) {
    meta.push(h("span", {}, `waited ${result.waited_ms} ms (${result.waited_reason})`));
    if (run.test_id) meta.push(h("span", {}, "test ", h("code", {}, run.test_id)));
    if (run.session_id) meta.push(h("span", {}, "session ", h("code", {}, run.session_id)));
    meta.push(h("span", { title: isoTime(run.recorded_unix_nano) }, `recorded ${formatWhen(run.recorded_unix_nano)}`));
  }
  const badge = recorded || run ? verdictBadge(result.passed) : null;
  return h("div", {},
    h("div", { class: "verdict" }, badge, h("h1", { id: "flow-title" }, title)),
    h("div", { class: "meta" }, meta),
    recorded && !run ? h("p", { class: "muted" }, "No run of this trace is recorded: shown judged without a spec.") : null);
}

function failureText(view) {
  const result = view.result;
  if (!view.run) {
    const failed = result.checks.filter((c) => c.state === "fail");
    if (!failed.length) return null;
    return h("div", { class: "failure", id: "failure" },
      h("div", { class: "first" }, "Without a spec, this trace still shows problems:"),
      h("ul", {}, failed.map((c) => h("li", {}, `${c.check}: ${c.message}`))));
  }
  if (result.passed) {
    return h("div", { class: "passed-note", id: "failure" }, view.divergence);
  }
  const failed = result.checks.filter((c) => c.state === "fail");
  const pending = result.checks.filter((c) => c.state === "pending");
  return h("div", { class: "failure", id: "failure", role: "alert" },
    h("div", { class: "first" }, view.divergence),
    h("ul", {},
      failed.map((c) => h("li", {}, h("b", {}, `FAIL ${c.check}`), `: ${c.message}`, moreViolations(c))),
      pending.length ? h("li", { class: "muted" },
        `undecided when the verdict came: ${pending.map((c) => c.check + (c.message ? ` (${c.message})` : "")).join(", ")}`) : null,
      findingItems(result.findings)));
}

/** A check's other violations, folded: the message says `(and N more)` of them. */
function moreViolations(check) {
  const more = check.more || [];
  if (!more.length) return null;
  return h("details", { class: "more-violations" },
    h("summary", {}, `${more.length} more ${check.check} violation${more.length > 1 ? "s" : ""}`),
    h("ul", {}, more.map((m) => h("li", {}, m))));
}

/** Findings, with runs of one kind (export lag of six services) folded after the first. */
function findingItems(findings) {
  const byKind = new Map();
  for (const finding of findings) {
    if (!byKind.has(finding.kind)) byKind.set(finding.kind, []);
    byKind.get(finding.kind).push(finding);
  }
  return [...byKind.values()].map((group) => {
    const first = h("li", {}, h("b", {}, group[0].kind), `: ${group[0].message}`);
    if (group.length === 1) return first;
    return [first, h("li", {}, h("details", {},
      h("summary", {}, `${group.length - 1} more ${group[0].kind} finding${group.length > 2 ? "s" : ""}`),
      h("ul", {}, group.slice(1).map((f) => h("li", {}, f.message)))))];
  });
}

function traceActions(view) {
  const traceId = view.result.trace_id;
  const out = h("div", {});
  const button = h("button", { type: "button", id: "make-spec" }, "Make a spec from this trace");
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      const data = await api(`/api/traces/${traceId}/spec`);
      const blob = new Blob([data.yaml], { type: "application/yaml" });
      const copy = h("button", { type: "button", class: "secondary" }, "Copy");
      copy.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(data.yaml));
      out.replaceChildren(
        h("h2", {}, "A spec this trace satisfies"),
        h("p", { class: "muted" }, "Its hops in order, how often each happened, and budgets with headroom: save it as flows/<name>.yaml and edit."),
        h("pre", { class: "spec", id: "spec-yaml" }, data.yaml),
        h("div", { class: "actions" }, copy,
          h("a", { href: URL.createObjectURL(blob), download: "flow.yaml" }, "Download flow.yaml")));
    } catch (error) {
      showError(out, error);
    } finally {
      button.disabled = false;
    }
  });
  return h("div", {},
    h("div", { class: "actions" }, button,
      h("a", { class: "button-link", href: `/api/traces/${traceId}/otlp`, download: `${traceId}.otlp.json` }, "Download OTLP JSON"),
      h("a", { class: "button-link", href: `/flows/${traceId}` }, "Recorded verdict")),
    out);
}

// ---- sequence diagram ------------------------------------------------------------------------

function clip(text, length) {
  return text.length > length ? text.slice(0, length - 1) + "…" : text;
}

function sequenceDiagram(view, model) {
  const hops = view.result.hops;
  if (!hops.length) return h("p", { class: "muted", id: "no-hops" }, "No hand-off between services in this flow.");
  const services = [];
  const peers = new Set();
  for (const hop of hops) {
    for (const svc of [hop.caller_service, hop.callee_service]) if (!services.includes(svc)) services.push(svc);
    if (hop.kind === "peer") peers.add(hop.callee_service);
  }
  // Lifelines share the panel's width (about 880 px), within limits a label can still be read in;
  // the stylesheet scales a wider diagram down to the panel, so no service is cut off on the right.
  const colWidth = Math.max(96, Math.min(150, Math.floor(880 / services.length))), left = 10, top = 50, rowHeight = 34;
  const width = left * 2 + colWidth * services.length;
  const height = top + rowHeight * hops.length + 20;
  const x = (svc) => left + colWidth * services.indexOf(svc) + colWidth / 2;
  const svg = s("svg", { class: "sequence", id: "sequence", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "sequence diagram of the flow's hops", style: `max-width:${width}px` });
  svg.append(s("defs", {},
    ["", "fail", "implicated", "ghost"].map((kind) => s("marker", { id: `arrow${kind}`, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      s("path", { d: "M0,0 L10,5 L0,10 z", class: `arrowhead ${kind}` })))));
  for (const svc of services) {
    const cx = x(svc);
    const room = Math.floor((colWidth - 24) / 7.5);
    const label = svc.length > room ? svc.slice(0, room - 1) + "…" : svc;
    svg.append(s("g", { class: `lifeline${peers.has(svc) ? " peer" : ""}`, "data-service": svc },
      s("title", {}, peers.has(svc) ? `${svc} (uninstrumented peer)` : svc),
      s("line", { x1: cx, y1: 34, x2: cx, y2: height - 6 }),
      s("rect", { x: cx - colWidth / 2 + 8, y: 8, width: colWidth - 16, height: 26, rx: 4 }),
      s("text", { x: cx, y: 25, "text-anchor": "middle" }, label)));
  }
  hops.forEach((hop, index) => {
    const y = top + rowHeight * index + 12;
    const x1 = x(hop.caller_service), x2 = x(hop.callee_service);
    const failing = model.culpritHops.has(hop), implicated = model.implicatedHops.has(hop);
    const unseen = hop.status === "missing" || hop.status === "pending";
    const classes = ["hop", hop.kind === "async" ? "async" : "", unseen ? "ghost" : "",
      hop.status === "broken" ? "broken" : "", hop.status === "unexpected" ? "unexpected" : "", failing ? "failing" : "",
      implicated ? "implicated" : ""].filter(Boolean).join(" ");
    const marker = `url(#arrow${failing ? "fail" : implicated ? "implicated" : unseen ? "ghost" : ""})`;
    const group = s("g", { class: classes, "data-hop": hop.hop, "data-status": hop.status, tabindex: 0 });
    let what = hop.status === "missing" ? "never seen" : hop.status === "pending" ? "not seen yet (not judged)" : formatDuration(hop.duration_ns === null ? null : Number(hop.duration_ns));
    if (hop.status === "broken") what = "propagation broken";
    if (hop.detail) what += ` · ${hop.detail}`;
    group.append(s("title", {}, `${hop.hop} — ${hop.status}${hop.detail ? ": " + hop.detail : ""}`));
    if (x1 === x2) {  // a service calling itself over the network
      group.append(s("path", { d: `M${x1},${y} h40 v14 h-38`, "marker-end": marker }));
    } else if (hop.status === "broken") {
      // A cut arrow: the call left, the hand-off never joined the trace; the far half links to
      // the trace the callee started instead.
      const mid = (x1 + x2) / 2, dir = x2 > x1 ? 1 : -1;
      group.append(s("line", { x1, y1: y, x2: mid - 8 * dir, y2: y }));
      group.append(s("path", { class: "cut", d: `M${mid - 6 * dir},${y - 7} l${6 * dir},14 M${mid + 2 * dir},${y - 7} l${6 * dir},14` }));
      const callee = model.byId.get(hop.callee_span_id);
      const far = s("line", { x1: mid + 10 * dir, y1: y, x2: x2 - 2 * dir, y2: y, "marker-end": marker });
      if (callee) {
        // A band to click on: a bare line is too thin to hit.
        const band = s("rect", { class: "hit", x: Math.min(mid, x2), y: y - 9, width: Math.abs(x2 - mid), height: 18 });
        group.append(s("a", { href: `/traces/${callee.trace_id}`, class: "other-trace" },
          s("title", {}, `the trace ${callee.service} started: ${callee.trace_id}`), band, far));
      } else {
        group.append(far);
      }
    } else {
      group.append(s("line", { x1, y1: y, x2: x2 + (x2 > x1 ? -2 : 2), y2: y, "marker-end": marker }));
    }
    const labelX = x1 === x2 ? x1 + 46 : (x1 + x2) / 2;
    group.append(s("text", { class: "label", x: labelX, y: y - 6, "text-anchor": x1 === x2 ? "start" : "middle" },
      clip(`${hop.hop}  ${what}`, Math.min(64, Math.floor((width - 8) / 7)))));
    group.addEventListener("click", (event) => {
      if (event.target.closest("a")) return;
      model.highlightHop(hop);
    });
    group.addEventListener("keydown", (event) => { if (event.key === "Enter") model.highlightHop(hop); });
    model.hopEls.set(hop, group);
    svg.append(group);
  });
  model.highlightHop = (hop, options) => {
    for (const [other, el] of model.hopEls) el.classList.toggle("selected", other === hop);
    const spanId = hop.callee_span_id || hop.caller_span_id;
    if (spanId && model.byId.has(spanId)) model.select(spanId, options);
  };
  const legend = h("div", { class: "legend" },
    h("span", {}, "call"), h("span", { class: "l-async" }, "asynchronous"), h("span", { class: "l-fail" }, "failing hop"),
    h("span", { class: "l-implicated" }, "also named by a failed check"),
    h("span", { class: "l-ghost" }, "expected, never seen"), h("span", { class: "l-fail" }, "✂ broken: links to the callee's own trace"));
  return h("div", {}, svg, legend);
}

/** A label centred on a hop near the diagram's edge would run past it and be cut off: move it in. */
function fitLabels(svg) {
  if (!svg) return;
  const width = svg.viewBox.baseVal.width;
  for (const label of svg.querySelectorAll("text.label")) {
    const box = label.getBBox();
    const shift = box.x < 2 ? 2 - box.x : Math.min(0, width - 2 - (box.x + box.width));
    if (shift) label.setAttribute("x", String(Number(label.getAttribute("x")) + shift));
  }
}

// ---- waterfall ----------------------------------------------------------------------------------

function waterfall(view, model) {
  const spans = model.spans;
  if (!spans.length) return h("p", { class: "muted" }, "No spans.");
  const showFolded = { value: false };
  const container = h("div", { class: "waterfall", id: "waterfall" });
  const critical = new Set(view.critical_path);
  const budgets = new Map();
  for (const marker of view.budgets) {
    if (!budgets.has(marker.span_id)) budgets.set(marker.span_id, []);
    budgets.get(marker.span_id).push(marker);
  }
  let t0 = spans[0].start_unix_nano, t1 = spans[0].end_unix_nano;
  for (const span of spans) {
    if (BigInt(span.start_unix_nano) < BigInt(t0)) t0 = span.start_unix_nano;
    if (BigInt(span.end_unix_nano) > BigInt(t1)) t1 = span.end_unix_nano;
  }
  // A budget ending a little past the last span widens the axis to show its headroom; one
  // far past it (a 2 s budget on a 100 ms flow) would squeeze every bar to a sliver, so its
  // tick waits at the right edge instead.
  const reach = nsBetween(t1, t0) * BUDGET_REACH;
  for (const [spanId, markers] of budgets) {
    const span = model.byId.get(spanId);
    for (const m of markers) {
      const end = (BigInt(span.start_unix_nano) + BigInt(m.budget_ns)).toString();
      if (BigInt(end) > BigInt(t1) && nsBetween(end, t0) <= reach) t1 = end;
    }
  }
  const total = Math.max(1, nsBetween(t1, t0));
  const pct = (ns) => `${Math.max(0, Math.min(100, (ns / total) * 100)).toFixed(3)}%`;
  const foldedCount = spans.filter((span) => span.kind === "internal" && FOLDED.test(span.name)).length;

  function tree(includeFolded) {
    const visible = (span) => includeFolded || !(span.kind === "internal" && FOLDED.test(span.name));
    const parentOf = model.parentOf;
    const children = new Map();
    const roots = [];
    for (const span of spans) {
      let parentId = parentOf(span);
      const guard = new Set();
      while (parentId && !visible(model.byId.get(parentId)) && !guard.has(parentId)) {
        guard.add(parentId);
        parentId = parentOf(model.byId.get(parentId));  // a folded span's children move up
      }
      if (!visible(span)) continue;
      if (parentId && parentId !== span.span_id) {
        if (!children.has(parentId)) children.set(parentId, []);
        children.get(parentId).push(span);
      } else {
        roots.push(span);
      }
    }
    const out = [];
    const seen = new Set();
    const stack = roots.slice().reverse().map((span) => [span, 0]);
    while (stack.length) {
      const [span, depth] = stack.pop();
      if (seen.has(span.span_id)) continue;
      seen.add(span.span_id);
      out.push([span, depth]);
      const kids = children.get(span.span_id) || [];
      for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i], depth + 1]);
    }
    return out;
  }

  function render() {
    model.rows.clear();
    const head = h("div", { class: "wf-head" },
      h("span", { class: "legend" }, h("span", {}, formatDuration(total)), h("span", { class: "l-critical" }, "critical path"),
        h("span", { class: "l-budget" }, "budget (red: exceeded)")),
      foldedCount ? (() => {
        const toggle = h("button", { type: "button", class: "secondary", id: "fold-toggle" },
          showFolded.value ? `Fold ${foldedCount} send/receive spans` : `Show ${foldedCount} folded send/receive spans`);
        toggle.addEventListener("click", () => { showFolded.value = !showFolded.value; render(); });
        return toggle;
      })() : null);
    const rows = tree(showFolded.value).map(([span, depth]) => {
      const start = nsBetween(span.start_unix_nano, t0);
      const duration = nsBetween(span.end_unix_nano, span.start_unix_nano);
      const error = span.status.code === "error";
      const bar = h("div", {
        class: ["wf-bar", error ? "error" : "", critical.has(span.span_id) ? "critical" : "",
          model.hung.get(span.span_id) ? "stitched" : ""].filter(Boolean).join(" "),
        style: `left:${pct(start)};width:${pct(duration)};--svc:${serviceColor(span.service)}`,
      });
      // The duration label goes after the bar, or before it when the bar reaches the right edge.
      const late = (start + duration) / total > 0.85;
      const label = late ? `right:calc(${pct(total - start)} + 4px)` : `left:calc(${pct(start + duration)} + 4px)`;
      const track = h("div", { class: "wf-track" }, bar, h("span", { class: "wf-dur", style: label }, formatDuration(duration)));
      for (const marker of budgets.get(span.span_id) || []) {
        const over = duration > Number(marker.budget_ns);
        const beyond = start + Number(marker.budget_ns) > total;
        const state = over ? " over" : beyond ? " beyond" : "";
        const note = over ? " — exceeded" : beyond ? ` — ends past the axis, ${formatDuration(Number(marker.budget_ns) - duration)} to spare` : "";
        track.append(h("div", { class: `wf-budget${state}`, style: beyond ? "right:0" : `left:${pct(start + Number(marker.budget_ns))}`,
          title: `budget ${marker.label}${note}` }));
      }
      const row = h("div", { class: "wf-row", dataset: { spanId: span.span_id }, tabindex: 0 },
        h("div", { class: "wf-name", style: `padding-left:${8 + depth * 14}px`, title: `${span.service} · ${span.name}` },
          error ? h("span", { class: "err" }, "!") : null,
          h("span", { class: "svc", style: `color:${serviceColor(span.service)}` }, span.service),
          h("span", { class: "span-name" }, span.name),
          h("span", { class: "kind" }, span.kind)),
        track);
      row.addEventListener("click", () => model.select(span.span_id));
      row.addEventListener("keydown", (event) => { if (event.key === "Enter") model.select(span.span_id); });
      model.rows.set(span.span_id, row);
      return row;
    });
    container.replaceChildren(head, ...rows);
    if (model.selected && model.rows.has(model.selected)) model.rows.get(model.selected).classList.add("selected");
  }
  render();
  return container;
}

// ---- span details ----------------------------------------------------------------------------------

const HEADER_PREFIXES = ["http.request.header.", "http.response.header.", "rpc.grpc.request.metadata.", "rpc.grpc.response.metadata."];

function valueText(value) {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function kvTable(entries, id) {
  if (!entries.length) return h("p", { class: "muted", id }, "none");
  return h("table", { class: "kv", id }, h("tbody", {},
    entries.map(([key, value]) => h("tr", {}, h("td", {}, key), h("td", { class: "mono" }, valueText(value))))));
}

function selectSpan(model, spanId, panel, { scroll = true } = {}) {
  const span = model.byId.get(spanId);
  if (!span) return;
  model.selected = spanId;
  for (const [id, row] of model.rows) row.classList.toggle("selected", id === spanId);
  const row = model.rows.get(spanId);
  if (scroll && row && row.scrollIntoView) row.scrollIntoView({ block: "nearest" });
  const attributes = Object.entries(span.attributes).sort(([a], [b]) => (a < b ? -1 : 1));
  const headers = attributes.filter(([key]) => HEADER_PREFIXES.some((p) => key.startsWith(p)));
  const plain = attributes.filter(([key]) => !HEADER_PREFIXES.some((p) => key.startsWith(p)));
  const duration = nsBetween(span.end_unix_nano, span.start_unix_nano);
  panel.replaceChildren(
    h("h3", { id: "detail-name" }, span.name),
    kvTable([
      ["service", span.service], ["kind", span.kind],
      ["status", span.status.code + (span.status.message ? `: ${span.status.message}` : "")],
      ["duration", formatDuration(duration)], ["start", isoTime(span.start_unix_nano)],
      ["trace id", span.trace_id], ["span id", span.span_id], ["parent span id", span.parent_span_id || "(root)"],
      ["trace state", span.trace_state || ""], ["scope", `${span.scope.name} ${span.scope.version}`.trim()],
    ], "detail-span"),
    h("h4", {}, "Attributes"), kvTable(plain, "detail-attributes"),
    h("h4", {}, "Captured headers"), headers.length ? kvTable(headers, "detail-headers")
      : h("p", { class: "muted" }, span.kind === "server" || span.kind === "consumer"
        ? "none captured: set OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST (tracebaton.sut_env() does)"
        : "none (headers are read from the callee's server span)"),
    h("h4", {}, "Events"),
    span.events.length ? h("div", { id: "detail-events" }, span.events.map((event) => h("div", { class: "event" },
      h("b", {}, event.name), " ", h("span", { class: "muted" }, `+${formatDuration(nsBetween(event.time_unix_nano, span.start_unix_nano))}`),
      kvTable(Object.entries(event.attributes))))) : h("p", { class: "muted" }, "none"),
    h("h4", {}, "Links"),
    span.links.length ? h("ul", {}, span.links.map((link) => h("li", {},
      h("a", { href: `/traces/${encodeURIComponent(link.trace_id)}`, class: "mono" }, `${link.trace_id.slice(0, 12)}…`),
      " span ", h("code", {}, link.span_id)))) : h("p", { class: "muted" }, "none"),
    h("h4", {}, "Resource"), kvTable(Object.entries(span.resource)));
}

