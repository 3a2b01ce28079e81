"""What the dashboard's Flow and Trace pages draw, computed once on the server: the verdict,
the spans of every trace the flow covers, the critical path and the budget markers.

Pure functions over public types: the flow engine judges, this only arranges the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tracebaton import FlowSpecError
from tracebaton.assertions import FlowResult, HopKind, HopPattern, parse_flow_spec, span_json
from tracebaton.collector import StoredSpan

MAX_FLOW_SPANS = 20_000
"""Spans one Flow page shows; a flow of more is cut (the `truncated` flag says so), because a
browser cannot lay out more rows than that usefully anyway."""
TEST_SERVICE = "test"


def critical_path(spans: Sequence[StoredSpan]) -> list[str]:
    """Span ids on the critical path of each tree: from a root, repeatedly the child that
    ended last before the time still to be explained, as tracing UIs define it."""
    by_id = {s.span_id: s for s in spans}
    children: dict[str, list[StoredSpan]] = {}
    roots = []
    for span in spans:
        if span.parent_span_id and span.parent_span_id in by_id and span.parent_span_id != span.span_id:
            children.setdefault(span.parent_span_id, []).append(span)
        else:
            roots.append(span)
    path: list[str] = []
    seen: set[str] = set()
    stack = [(root, root.end_unix_nano) for root in roots]
    while stack:  # iterative: a deep (or malformed) trace must not exhaust the recursion limit
        span, _ = stack.pop()
        if span.span_id in seen:
            continue
        seen.add(span.span_id)
        path.append(span.span_id)
        cursor = span.end_unix_nano
        kids = sorted(
            children.get(span.span_id, ()), key=lambda s: (s.end_unix_nano, s.span_id), reverse=True
        )
        for kid in kids:
            if kid.end_unix_nano <= cursor and kid.start_unix_nano >= span.start_unix_nano:
                stack.append((kid, cursor))
                cursor = kid.start_unix_nano
    return path


def _matches(pattern: HopPattern, hop: Mapping[str, Any]) -> bool:
    if pattern.asynchronous != (hop.get("kind") == HopKind.ASYNC.value):
        return False
    caller = hop.get("caller_service")
    if pattern.caller == "*" and caller == TEST_SERVICE:
        return False
    return pattern.caller in ("*", caller) and pattern.callee in ("*", hop.get("callee_service"))


def budget_markers(
    spec: Mapping[str, Any] | None, result: FlowResult | Mapping[str, Any], spans: Sequence[StoredSpan]
) -> list[dict[str, Any]]:
    """Where a budget ends on the waterfall: per hop, the caller span's start plus its
    budget; for `budgets.trace`, the entry span's start plus that."""
    if not spec:
        return []
    try:
        flow_spec = parse_flow_spec(dict(spec))
    except FlowSpecError:
        return []
    hops = result.to_json()["hops"] if isinstance(result, FlowResult) else result.get("hops", [])
    markers: list[dict[str, Any]] = []
    for hop in hops:
        caller_span = hop.get("caller_span_id")
        if not caller_span:
            continue
        for pattern, budget_ns in flow_spec.expect.budgets.hops:
            if _matches(pattern, hop):
                markers.append(
                    {
                        "span_id": caller_span,
                        "budget_ns": str(budget_ns),
                        "label": f"{pattern}: {budget_ns / 1e6:g} ms",
                    }
                )
                break
    if flow_spec.expect.budgets.trace_ns is not None:
        entry = _entry_span(
            spans, result.trace_id if isinstance(result, FlowResult) else result.get("trace_id")
        )
        if entry is not None:
            markers.append(
                {
                    "span_id": entry.span_id,
                    "budget_ns": str(flow_spec.expect.budgets.trace_ns),
                    "label": f"trace: {flow_spec.expect.budgets.trace_ns / 1e6:g} ms",
                }
            )
    return markers


def _entry_span(spans: Sequence[StoredSpan], trace_id: str | None) -> StoredSpan | None:
    """DESIGN §6: the earliest span whose parent is the flow's root (the test's) or absent."""
    own = [s for s in spans if s.trace_id == trace_id] or list(spans)
    ids = {s.span_id: s for s in own}
    candidates = [
        s
        for s in own
        if s.service != TEST_SERVICE
        and (
            s.parent_span_id is None
            or s.parent_span_id not in ids
            or ids[s.parent_span_id].service == TEST_SERVICE
        )
    ]
    return min(candidates, key=lambda s: (s.start_unix_nano, s.span_id), default=None)


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
    return {
        "run": run,
        "result": result,
        "spec": spec,
        "spans": [span_json(s) for s in shown],
        "truncated": truncated,
        "critical_path": critical_path(shown),
        "budgets": budget_markers(spec, result, shown),
    }
