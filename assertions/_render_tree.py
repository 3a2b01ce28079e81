"""The span tree near a flow's divergence, as indented text lines (DESIGN §6).

A failure message has room for a screenful, not a whole trace: the tree is cut to the
subtree around the spans that went wrong (the culprits), keeps the path from them to the
top whatever the limit, and folds instrumentation noise. Traces stitched in by a broken or
linked hop are hung below their caller so the hand-off reads as one tree.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from typing import NamedTuple

from tracebaton import format_duration_ns
from tracebaton.collector import SpanKind, StoredSpan

from ._result import CheckState, FlowResult, HopResult, divergent_hops
from ._trace import FlowTrace, hand_off_parents, span_order

MAX_SPAN_LINES = 25
"""Span lines at verbosity < 2; culprits and their ancestors are shown even beyond it."""
CULPRIT_MARK = "◀"
_NOISE_SUFFIXES = (" http send", " http receive")
_STATUS_MESSAGE_MAX = 60


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def is_noise(span: StoredSpan) -> bool:
    """FastAPI/ASGI's per-message spans: never hops, and they double the height of a tree."""
    name = f" {span.name}"
    return span.kind is SpanKind.INTERNAL and name.endswith(_NOISE_SUFFIXES)


def culprit_span_ids(result: FlowResult, trace: FlowTrace) -> set[str]:
    """Spans of failed checks, plus the divergent hop's caller and callee.

    A hop's spans are used only when no failed check about that hop named spans itself: with
    a retry both attempts carry the hop's name, and the check knows which attempt failed.
    """
    ids: set[str] = set()
    precise: set[str] = set()
    for check in result.checks:
        if check.state is CheckState.FAIL:
            ids.update(check.span_ids)
            if check.hop is not None and check.span_ids:
                precise.add(check.hop)
    for hop in divergent_hops(result):
        if hop.hop not in precise:
            ids.update(i for i in (hop.caller_span_id, hop.callee_span_id) if i is not None)
    return {i for i in ids if i in trace.by_id}


class _Row(NamedTuple):
    depth: int
    span: StoredSpan
    under_culprit: bool


class _View:
    """The trace as the reader should see it: stitched traces hung below their callers,
    noise folded into its parent."""

    def __init__(self, trace: FlowTrace, hops: Sequence[HopResult], *, fold: bool, keep: Collection[str]):
        self.trace = trace
        self.folded = {s.span_id for s in trace.spans if fold and is_noise(s) and s.span_id not in keep}
        self.stitched_parent = hand_off_parents(trace, hops)
        self.stitched_children: dict[str, list[StoredSpan]] = {}
        for child_id, parent_id in self.stitched_parent.items():
            self.stitched_children.setdefault(parent_id, []).append(trace.by_id[child_id])

    def _raw_parent(self, span: StoredSpan) -> StoredSpan | None:
        parent = self.trace.parent_of(span)
        if parent is None and span.span_id in self.stitched_parent:
            parent = self.trace.by_id[self.stitched_parent[span.span_id]]
        return parent

    def parent(self, span: StoredSpan) -> StoredSpan | None:
        parent = self._raw_parent(span)
        while parent is not None and parent.span_id in self.folded:
            parent = self._raw_parent(parent)
        return parent

    def children(self, span: StoredSpan) -> list[StoredSpan]:
        return self._unfold([*self.trace.children_of(span), *self.stitched_children.get(span.span_id, ())])

    def tops(self) -> list[StoredSpan]:
        return self._unfold([s for s in self.trace.roots if s.span_id not in self.stitched_parent])

    def _unfold(self, spans: list[StoredSpan]) -> list[StoredSpan]:
        shown: list[StoredSpan] = []
        pending = list(spans)
        while pending:
            span = pending.pop()
            if span.span_id in self.folded:
                pending.extend(self.children(span))
            else:
                shown.append(span)
        return sorted(shown, key=span_order)

    def path(self, span: StoredSpan) -> list[StoredSpan]:
        """From the top of its tree down to `span` itself."""
        chain = [span]
        parent = self.parent(span)
        while parent is not None:
            chain.append(parent)
            parent = self.parent(parent)
        return chain[::-1]

    def walk(self, top: StoredSpan, depth: int, culprits: Collection[str]) -> Iterator[_Row]:
        stack = [_Row(depth, top, top.span_id in culprits)]
        while stack:
            row = stack.pop()
            yield row
            for child in reversed(self.children(row.span)):
                stack.append(_Row(row.depth + 1, child, row.under_culprit or child.span_id in culprits))


def render_span_tree(result: FlowResult, trace: FlowTrace, *, verbosity: int = 0) -> list[str]:
    """The tree section of a verdict: a heading and one line per span; [] when there is nothing
    worth showing (no spans, or a passed flow below -vv)."""
    full = verbosity >= 2
    if not trace.spans or (result.passed and not full):
        return []
    culprits = culprit_span_ids(result, trace)
    view = _View(trace, result.hops, fold=not full, keep=culprits)
    paths = [view.path(trace.by_id[i]) for i in sorted(culprits)]
    must = {s.span_id for path in paths for s in path}
    if full or not culprits:
        rows = [row for top in view.tops() for row in view.walk(top, 0, culprits)]
    else:
        rows = _rows_near(view, paths, culprits)
    shown = _choose(rows, must, None if full else MAX_SPAN_LINES)
    count = sum(1 for row in rows if row.span.span_id in shown)
    if full:
        heading = f"spans ({len(trace.spans)}):"
    else:
        near = " near the divergence" if culprits else ""
        heading = f"spans{near} ({count} of {len(trace.spans)}):"
    main_trace = result.trace_id or trace.trace_id
    return [heading, *_format(rows, shown, culprits, main_trace)]


def _rows_near(view: _View, paths: list[list[StoredSpan]], culprits: Collection[str]) -> list[_Row]:
    """Per tree that holds culprits: the path to their nearest common ancestor, then its subtree."""
    groups: dict[str, list[list[StoredSpan]]] = {}
    for path in paths:
        groups.setdefault(path[0].span_id, []).append(path)
    rows: list[_Row] = []
    for group in sorted(groups.values(), key=lambda g: span_order(g[0][0])):
        common = group[0]
        for path in group[1:]:
            size = 0
            while size < min(len(common), len(path)) and common[size].span_id == path[size].span_id:
                size += 1
            common = common[:size]
        if common[-1].span_id in culprits and len(common) > 1:
            common = common[:-1]  # a culprit alone says little; its parent shows who called it
        rows.extend(_Row(depth, span, False) for depth, span in enumerate(common[:-1]))
        rows.extend(view.walk(common[-1], len(common) - 1, culprits))
    return rows


def _choose(rows: list[_Row], must: Collection[str], limit: int | None) -> set[str]:
    """Culprits and their ancestors first, then what runs below a culprit, then the rest."""
    if limit is None:
        return {row.span.span_id for row in rows}
    ranked = sorted(range(len(rows)), key=lambda i: (
        0 if rows[i].span.span_id in must else 1 if rows[i].under_culprit else 2, i))
    keep = max(limit, sum(1 for row in rows if row.span.span_id in must))
    return {rows[i].span.span_id for i in ranked[:keep]}


class _Line(NamedTuple):
    depth: int
    text: str = ""
    duration: str = ""
    status: str = ""
    tags: str = ""
    hidden: int = 0
    """When non-zero, the line stands for this many spans left out."""


def _format(rows: list[_Row], shown: Collection[str], culprits: Collection[str],
            main_trace: str | None) -> list[str]:
    cells: list[_Line] = []
    for row in rows:
        if row.span.span_id not in shown:
            if cells and cells[-1].hidden:
                cells[-1] = cells[-1]._replace(hidden=cells[-1].hidden + 1)
            else:
                cells.append(_Line(row.depth, hidden=1))
            continue
        span = row.span
        tags = [f"[trace {span.trace_id[:8]}]"] if main_trace and span.trace_id != main_trace else []
        if span.span_id in culprits:
            tags.append(CULPRIT_MARK)
        cells.append(_Line(row.depth, "  " * row.depth + f"{span.service}  {span.kind.label}  {span.name}",
                           _duration(span.duration_ns), _status(span), "  ".join(tags)))
    spans = [c for c in cells if not c.hidden]
    left = max((len(c.text) for c in spans), default=0)
    width = max((len(c.duration) for c in spans), default=0)
    status = max((len(c.status) for c in spans), default=0)
    return [
        "  " + "  " * c.depth + f"… {plural(c.hidden, 'more span')}" if c.hidden else
        f"  {c.text.ljust(left)}  {c.duration.rjust(width)}  {c.status.ljust(status)}  {c.tags}".rstrip()
        for c in cells
    ]


def _duration(ns: int) -> str:
    return format_duration_ns(ns) if ns >= 0 else "-" + format_duration_ns(-ns)


def _status(span: StoredSpan) -> str:
    message = span.status_message.strip().splitlines()[0] if span.status_message.strip() else ""
    if len(message) > _STATUS_MESSAGE_MAX:
        message = message[:_STATUS_MESSAGE_MAX - 1] + "…"
    return f"{span.status_code.label}: {message}" if message else span.status_code.label
