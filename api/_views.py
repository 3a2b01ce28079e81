"""What the dashboard's Flow and Trace pages draw, computed once on the server: the verdict,
the spans of every trace the flow covers, the critical path, the budget markers, where the
flow's tree hangs a span, and which hops to draw as the culprit.

Pure functions over public types: the flow engine judges, this only arranges the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tracebaton import FlowSpecError
from tracebaton.assertions import (
    FlowResult,
    FlowTrace,
    build_trace,
    critical_path,
    entry_span,
    hand_off_parents,
    hop_blame,
    hop_matches,
    parse_flow_spec,
    render_divergence,
    span_json,
)
from tracebaton.collector import StoredSpan

MAX_FLOW_SPANS = 20_000
"""Spans one Flow page shows; a flow of more is cut (the `truncated` flag says so), because a
browser cannot lay out more rows than that usefully anyway."""


def budget_markers(
    spec: Mapping[str, Any] | None, result: FlowResult, trace: FlowTrace
) -> list[dict[str, Any]]:
    """Where a budget ends on the waterfall: per hop, the caller span's start plus each budget
    that names the hop (the engine holds a hop to all of them); for `budgets.trace`, the entry
    span's start plus that."""
    if not spec:
        return []
    try:
        flow_spec = parse_flow_spec(dict(spec))
    except FlowSpecError:
        return []
    markers: list[dict[str, Any]] = []
    for hop in result.hops:
        if not hop.caller_span_id:
            continue
        markers += [
            _marker(hop.caller_span_id, budget_ns, str(pattern))
            for pattern, budget_ns in flow_spec.expect.budgets.hops
            if hop_matches(pattern, hop)
        ]
    budget_ns = flow_spec.expect.budgets.trace_ns
    entry = entry_span(trace) if budget_ns is not None else None
    if budget_ns is not None and entry is not None:
        markers.append(_marker(entry.span_id, budget_ns, "trace"))
    return markers


def _marker(span_id: str, budget_ns: int, what: str) -> dict[str, Any]:
    return {"span_id": span_id, "budget_ns": str(budget_ns), "label": f"{what}: {budget_ns / 1e6:g} ms"}


def flow_view(
    *,
    run: Mapping[str, Any] | None,
    result: Mapping[str, Any],
    spec: Mapping[str, Any] | None,
    spans: Iterable[StoredSpan],
) -> dict[str, Any]:
    ordered = sorted(spans, key=lambda s: (s.start_unix_nano, s.span_id))
    truncated = len(ordered) > MAX_FLOW_SPANS
    shown = ordered[:MAX_FLOW_SPANS]
    judged = FlowResult.from_json(dict(result))
    # The engine's tree of the flow (duplicates collapsed, parent loops cut), with the traces
    # its hops reached hung below their callers: what the waterfall draws and the critical
    # path walks. `now` only dates findings, which the view does not show.
    latest = max((s.end_unix_nano for s in shown), default=0)
    trace = build_trace(judged.trace_id, shown, now_unix_nano=latest)
    hung = hand_off_parents(trace, judged.hops)
    blame = hop_blame(judged)
    return {
        "run": run,
        "result": result,
        "divergence": render_divergence(judged),
        "spec": spec,
        "spans": [span_json(s) for s in shown],
        "truncated": truncated,
        "critical_path": critical_path(trace, hung),
        "budgets": budget_markers(spec, judged, trace),
        "tree_parents": _tree_parents(trace, hung),
        "culprit_hops": list(blame.culprits),
        "implicated_hops": list(blame.implicated),
    }


def _tree_parents(trace: FlowTrace, hung: Mapping[str, str]) -> dict[str, str | None]:
    """Where the flow's tree puts a span other than under the parent its own id names (a
    hung top; a span whose parent loop was cut, or whose parent id names itself): only those,
    so the page stays small."""
    parents: dict[str, str | None] = {}
    for span in trace.spans:
        parent = trace.parent.get(span.span_id) or hung.get(span.span_id)
        named = span.parent_span_id if span.parent_span_id in trace.by_id else None
        if parent != named:
            parents[span.span_id] = parent
    return parents
