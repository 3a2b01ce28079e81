"""Order between hops, judged only where it can be proven (DESIGN §4 "Order").

Clocks of different hosts disagree, so two anchors are compared on the clock of the one
process that saw both happen: the service of their lowest common ancestor. Each anchor is
represented there by the last span of that process on the way down to it.
"""

from __future__ import annotations

import enum

from tracebaton.collector import StoredSpan

from ._hops import Hop
from ._trace import FlowTrace

_MS = 1_000_000


class Relation(enum.Enum):
    BEFORE = "before"
    AFTER = "after"
    OVERLAP = "overlap"
    UNKNOWN = "unknown"
    """No common ancestor on one clock: no inversion can be proven."""


def _path_up(trace: FlowTrace, span: StoredSpan) -> list[StoredSpan]:
    return [span, *trace.ancestors(span)]


def _representative(path: list[StoredSpan], lca_index: int) -> StoredSpan:
    lca = path[lca_index]
    representative = lca
    for span in reversed(path[:lca_index]):
        if span.service != lca.service:
            break
        representative = span
    return representative


def relation(trace: FlowTrace, a: StoredSpan, b: StoredSpan) -> Relation:
    """Where `a` lies relative to `b`: BEFORE means a ended before b started (or b is nested in a)."""
    if a.span_id == b.span_id:
        return Relation.OVERLAP  # two hops on one anchor (a message fanned out): no order between them
    path_a, path_b = _path_up(trace, a), _path_up(trace, b)
    index_a = {span.span_id: i for i, span in enumerate(path_a)}
    lca_b = next((i for i, span in enumerate(path_b) if span.span_id in index_a), None)
    if lca_b is None:
        if a.service != b.service:
            return Relation.UNKNOWN
        rep_a, rep_b = a, b
    else:
        lca_a = index_a[path_b[lca_b].span_id]
        if lca_a == 0:
            return Relation.BEFORE  # b happens inside a
        if lca_b == 0:
            return Relation.AFTER
        rep_a, rep_b = _representative(path_a, lca_a), _representative(path_b, lca_b)
    if rep_a.span_id == rep_b.span_id:
        return Relation.OVERLAP
    if rep_a.end_unix_nano <= rep_b.start_unix_nano + _coarse(rep_b):
        return Relation.BEFORE
    if rep_b.end_unix_nano <= rep_a.start_unix_nano + _coarse(rep_a):
        return Relation.AFTER
    return Relation.OVERLAP


def _coarse(span: StoredSpan) -> int:
    """A start on a whole millisecond may have been cut to it (the JavaScript SDK starts
    spans at Date.now() but ends them on a finer clock): it may really be up to 1 ms later."""
    return _MS if span.start_unix_nano % _MS == 0 else 0


def hop_relation(trace: FlowTrace, x: Hop, y: Hop) -> Relation:
    """A hop nested inside another hop's callee comes after it."""
    if y.callee_span is not None and _inside(trace, x.anchor, y.callee_span):
        return Relation.AFTER
    if x.callee_span is not None and _inside(trace, y.anchor, x.callee_span):
        return Relation.BEFORE
    return relation(trace, x.anchor, y.anchor)


def _inside(trace: FlowTrace, span: StoredSpan, container: StoredSpan) -> bool:
    return any(a.span_id == container.span_id for a in trace.ancestors(span))

