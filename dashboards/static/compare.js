// Two flows side by side: a flow against its snapshot on the Flow page, any two traces on the
// Compare page (/compare?a=<trace id>&b=<trace id>), and "Compare with…" on the Flow and Trace
// pages. The diff is the server's (the one renderer behind a failed assert_snapshot() and
// `tracebaton diff`): this file draws its rows, it never compares anything itself.

import { api, formatWhen, h, navigate, s, showError } from "./util.js";
import { jaegerLink } from "./jaeger.js";

const MARKS = { " ": "same", "!": "changed", "-": "removed", "+": "added" };

// ---- the two diagrams -------------------------------------------------------------------------

/** Both sides' sequence diagrams, a row per hop of the diff at the same height on both. */
export function diffDiagrams(diff, { before, after }) {
  const rows = diff.rows;
  if (!rows.length) return h("p", { class: "muted", id: "diff-no-hops" }, "Neither flow has a hand-off between services.");
  const services = [];
  for (const row of rows) for (const svc of [row.caller, row.callee]) if (!services.includes(svc)) services.push(svc);
  const side = (which, title) => h("div", { class: "panel diagram diff-side", id: `diagram-${which}` },
    h("h3", {}, title), sideDiagram(rows, diff.culprit, services, which));
  return h("div", {},
    h("div", { class: "diff-sides" }, side("before", before), side("after", after)),
    h("div", { class: "legend" },
      h("span", { class: "l-changed" }, "changed (what changed is written on the hop)"),
      h("span", { class: "l-fail" }, "the first changed hop"),
      h("span", { class: "l-removed" }, `only in ${before}`), h("span", { class: "l-added" }, `only in ${after}`)));
}

function sideDiagram(rows, culprit, services, which) {
  // Half the panel's width each; lifelines in one order on both sides, so columns line up.
  const colWidth = Math.max(84, Math.min(140, Math.floor(620 / services.length))), left = 8, top = 50, rowHeight = 46;
  const width = left * 2 + colWidth * services.length;
  const height = top + rowHeight * rows.length + 10;
  const x = (svc) => left + colWidth * services.indexOf(svc) + colWidth / 2;
  const peers = new Set(rows.filter((row) => row.kind === "peer").map((row) => row.callee));
  const arrow = (kind) => `diff-${which}-arrow${kind}`;
  const svg = s("svg", { class: "sequence diff", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `sequence diagram of the hops, ${which === "before" ? "A" : "B"} side` });
  svg.append(s("defs", {}, ["", "changed", "removed", "added", "culprit"].map((kind) =>
    s("marker", { id: arrow(kind), viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" },
      s("path", { d: "M0,0 L10,5 L0,10 z", class: `arrowhead ${kind}` })))));
  for (const svc of services) {
    const cx = x(svc);
    const fits = Math.floor((colWidth - 20) / 7.5);
    svg.append(s("g", { class: `lifeline${peers.has(svc) ? " peer" : ""}`, "data-service": svc },
      s("title", {}, svc),
      s("line", { x1: cx, y1: 34, x2: cx, y2: height - 6 }),
      s("rect", { x: cx - colWidth / 2 + 6, y: 8, width: colWidth - 12, height: 26, rx: 4 }),
      s("text", { x: cx, y: 25, "text-anchor": "middle" }, svc.length > fits ? svc.slice(0, fits - 1) + "…" : svc)));
  }
  rows.forEach((row, index) => {
    if (!(which === "before" ? row.before : row.after)) return;  // a gap: the hop is on the other side only
    const y = top + rowHeight * index + 14;
    const x1 = x(row.caller), x2 = x(row.callee);
    const mark = MARKS[row.mark] || "same";
    const isCulprit = index === culprit;
    const look = isCulprit ? "culprit" : mark === "same" ? "" : mark;
    const group = s("g", { class: ["hop", `d-${mark}`, isCulprit ? "culprit" : "", row.kind === "async" ? "async" : ""].filter(Boolean).join(" "),
      "data-hop": row.hop, "data-mark": row.mark, tabindex: 0 });
    group.append(s("title", {}, row.said ? `${row.hop}  ${row.said}` : row.hop));
    if (x1 === x2) {  // a service calling itself over the network
      group.append(s("path", { d: `M${x1},${y} h40 v14 h-38`, "marker-end": `url(#${arrow(look)})` }));
    } else {
      group.append(s("line", { x1, y1: y, x2: x2 + (x2 > x1 ? -2 : 2), y2: y, "marker-end": `url(#${arrow(look)})` }));
    }
    const labelX = x1 === x2 ? x1 + 46 : (x1 + x2) / 2, anchor = x1 === x2 ? "start" : "middle";
    group.append(s("text", { class: "label", x: labelX, y: y - 6, "text-anchor": anchor }, `${row.mark.trim()} ${row.hop}`.trim()));
    // What changed goes on the hop where it is true: a change on the side of the flow now, a
    // hop that went missing on the snapshot's side; a note (optional, not seen) where it was.
    const tells = row.changes.length ? (row.mark === "-" ? which === "before" : which === "after") : Boolean(row.note);
    if (tells && row.said) {
      const room = Math.floor((anchor === "start" ? width - labelX : 2 * Math.min(labelX, width - labelX)) / 6.4);
      group.append(s("text", { class: "change", x: labelX, y: y + 15, "text-anchor": anchor },
        row.said.length > room ? row.said.slice(0, room - 1) + "…" : row.said));
    }
    svg.append(group);
  });
  return svg;
}

function textDiff(text, id) {
  return h("pre", { class: "diff-text", id }, text);
}

// ---- the Flow page: a flow that failed its snapshot ---------------------------------------------

/** The snapshot and the flow now, side by side, for a run whose snapshot check found changes;
 * null for any other flow. */
export function snapshotComparison(view) {
  const recorded = view.run && view.result.snapshot_diff;
  if (!recorded || recorded.same) return null;
  const body = h("div", {}, h("p", { class: "muted" }, "Loading the snapshot diff…"));
  const section = h("section", { id: "snapshot-comparison" }, h("h2", {}, "Snapshot vs now"), body);
  api(`/api/runs/${encodeURIComponent(view.run.run_id)}/snapshot-diff`).then((data) => {
    body.replaceChildren(diffDiagrams(data.diff, { before: "the snapshot", after: "the flow now" }),
      textDiff(data.text, "snapshot-diff-text"));
    section.dataset.drawn = "true";
  }, (error) => showError(body, error));
  return section;
}

// ---- "Compare with…" on the Flow and Trace pages ----------------------------------------------------

/** Glob characters in a span name, matched literally. */
function literalGlob(text) {
  return text.replace(/[*?[]/g, (c) => `[${c}]`);
}

function compareHref(a, b) {
  return `/compare?${new URLSearchParams({ a, b })}`;
}

/** Pick another trace (pasted, or one of the recent traces of the same root service and
 * operation) and open the Compare page with it as A and this flow's trace as B. */
export function compareWith(view) {
  const traceId = view.result.trace_id;
  if (!traceId) return null;
  const input = h("input", { name: "a", id: "compare-trace", size: 34, placeholder: "a trace id (32 hex digits)", autocomplete: "off" });
  const form = h("form", { class: "filters", id: "compare-form" },
    h("label", {}, "Trace to compare this one with", input), h("button", { type: "submit" }, "Compare"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    navigate(compareHref(input.value.trim(), traceId));  // the Compare page shows what is wrong with the id
  });
  const list = h("div", { id: "compare-recent" });
  const box = h("details", { class: "compare-with", id: "compare-with" },
    h("summary", {}, "Compare with…"),
    h("p", { class: "muted" }, "The other trace is read as A (its hops as a snapshot of it would hold them), this one as B."),
    form, list);
  let loaded = false;
  box.addEventListener("toggle", () => {
    if (box.open && !loaded) { loaded = true; recentTraces(view, traceId, list); }
  });
  return box;
}

async function recentTraces(view, traceId, list) {
  const root = view.spans.find((span) => span.trace_id === traceId && !span.parent_span_id) ||
    view.spans.find((span) => span.trace_id === traceId);
  if (!root) return;
  list.replaceChildren(h("p", { class: "muted" }, "Looking for recent traces of the same operation…"));
  try {
    const query = new URLSearchParams({ service: root.service, name: literalGlob(root.name), limit: "50" });
    const data = await api(`/api/traces?${query}`);
    const same = data.traces.filter((t) => t.trace_id !== traceId && t.root_service === root.service && t.root_name === root.name).slice(0, 10);
    if (!same.length) {
      list.replaceChildren(h("p", { class: "muted" }, `No other recent trace starts with ${root.service} ${root.name}.`));
      return;
    }
    list.replaceChildren(h("p", {}, `Recent traces of ${root.service} ${root.name}:`),
      h("ul", { class: "recent" }, same.map((t) => h("li", { dataset: { traceId: t.trace_id } },
        h("a", { class: "mono", href: compareHref(t.trace_id, traceId) }, t.trace_id), " ",
        h("span", { class: "muted" }, formatWhen(t.last_arrival_unix_nano)),
        t.error_count ? h("span", { class: "badge fail" }, `${t.error_count} error${t.error_count === 1 ? "" : "s"}`) : null))));
  } catch (error) {
    showError(list, error);
  }
}

// ---- the Compare page ------------------------------------------------------------------------------

export async function renderComparePage(root) {
  const params = new URLSearchParams(location.search);
  const a = params.get("a") || "", b = params.get("b") || "";
  const field = (name, value, label) => h("label", {}, label,
    h("input", { name, value, size: 34, placeholder: "32 hex digits", autocomplete: "off" }));
  const form = h("form", { class: "filters", id: "compare-page-form" },
    field("a", a, "Trace A (-, read as the snapshot)"), field("b", b, "Trace B (+)"),
    h("button", { type: "submit" }, "Compare"),
    a && b ? h("a", { class: "button-link", id: "compare-swap", href: compareHref(b, a) }, "Swap A and B") : null);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    navigate(compareHref(String(data.get("a")).trim(), String(data.get("b")).trim()));
  });
  const out = h("div", { id: "comparison" });
  root.replaceChildren(h("h1", {}, "Compare traces"), form, out);
  document.title = "compare · tracebaton";
  if (!a || !b) {
    out.replaceChildren(h("p", { class: "muted", id: "compare-hint" },
      "Give two traces: paste their ids above, or use “Compare with…” on a Flow or Trace page."));
    return;
  }
  out.replaceChildren(h("p", { class: "muted" }, "Comparing…"));
  try {
    const data = await api(`/api/diff?${new URLSearchParams({ a, b })}`);
    const diff = data.diff;
    out.replaceChildren(
      h("div", { class: data.same ? "passed-note" : "failure", id: "compare-verdict" },
        h("div", { class: "first" }, data.same ? "The two flows have the same hops." : diff.first_change),
        h("div", { class: "meta" },
          h("span", {}, "A ", h("a", { class: "mono", href: `/traces/${data.a}` }, data.a), " ", jaegerLink(data.a)),
          h("span", {}, "B ", h("a", { class: "mono", href: `/traces/${data.b}` }, data.b), " ", jaegerLink(data.b)),
          data.same ? null : h("span", {}, `${diff.changed_hops} hop${diff.changed_hops === 1 ? "" : "s"} changed`))),
      h("h2", {}, "Hops"),
      diffDiagrams(diff, { before: `A ${data.a.slice(0, 12)}…`, after: `B ${data.b.slice(0, 12)}…` }),
      h("h2", {}, "Diff"),
      textDiff(data.text, "compare-diff-text"));
    out.dataset.drawn = "true";
  } catch (error) {
    showError(out, error);
  }
}
