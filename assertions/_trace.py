"""The span tree of a flow, made safe to walk whatever the exporters sent.

Real traces arrive malformed: a child that starts before its parent (clock skew), a span id
sent twice with different content, a parent chain that loops, timestamps from 1970. The
tree built here is always a forest — cycles are cut, duplicates collapsed — and each
oddity becomes a finding instead of a crash or a hang.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Mapping, Sequence

from tracebaton.collector import StoredSpan

from ._result import Finding, FindingKind, HopResult

_SKEW_TOLERANCE_NS = 5_000_000
"""Clocks of different hosts disagree by a few ms; below this a child "before" its parent is noise."""
_EARLIEST_PLAUSIBLE_NS = 946_684_800 * 10**9  # 2000-01-01
_FUTURE_TOLERANCE_NS = 24 * 3600 * 10**9


def span_order(span: StoredSpan) -> tuple[int, str]:
    return (span.start_unix_nano, span.span_id)


def _when(ns: int) -> str:
    try:
        return datetime.datetime.fromtimestamp(ns / 1e9, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return f"{ns} ns after the epoch"


@dataclasses.dataclass(frozen=True)
class FlowTrace:
    """Spans of one flow (its trace, linked traces, stitched traces) as a forest."""

    trace_id: str | None
    spans: tuple[StoredSpan, ...]
    """Deduplicated, sorted by start then span id."""
    by_id: Mapping[str, StoredSpan]
    parent: Mapping[str, str]
    """span id -> parent span id, only where the parent is present (and no cycle was cut)."""
    children: Mapping[str, tuple[StoredSpan, ...]]
    orphans: tuple[StoredSpan, ...]
    """Spans naming a parent that is not (yet) here."""
    roots: tuple[StoredSpan, ...]
    """Spans with no parent, and orphans: the tops of the forest."""
    findings: tuple[Finding, ...]
    stitched: frozenset[str] = frozenset()
    """Spans hung under a caller they did not name (broken propagation): their parent link
    is the engine's diagnosis, not the exporter's word."""
    _ancestry: dict[str, tuple[StoredSpan, ...]] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False)

    def parent_of(self, span: StoredSpan) -> StoredSpan | None:
        parent_id = self.parent.get(span.span_id)
        return None if parent_id is None else self.by_id[parent_id]

    def parent_awaited_since(self, orphan: StoredSpan) -> int:
        """When the grace for the parent `orphan` names started (unix ns): the trace's last
        arrival. A parent ends after its children and is exported once it ends, so a server
        span around a slow call is still working while its first children are long in, and
        the children still to come may be the next ones to arrive: while spans of the flow
        keep coming, its parent may too."""
        return max(orphan.arrival_unix_nano, self.last_arrival_unix_nano or 0)

    def children_of(self, span: StoredSpan) -> tuple[StoredSpan, ...]:
        return self.children.get(span.span_id, ())

    def ancestors(self, span: StoredSpan) -> tuple[StoredSpan, ...]:
        """Parent first, up to the top of its tree (the forest has no cycles)."""
        # Ordering asks for the same spans' paths once for every pair of hops: walked once.
        known = self._ancestry
        chain = known.get(span.span_id)
        if chain is not None:
            return chain
        walked: list[StoredSpan] = []  # span, its parent, ... up to a span whose chain is known
        current: StoredSpan | None = span
        while current is not None and current.span_id not in known:
            walked.append(current)
            current = self.parent_of(current)
        above: tuple[StoredSpan, ...] = () if current is None else (current, *known[current.span_id])
        for below in reversed(walked):
            known[below.span_id] = above
            above = (below, *above)
        return known[span.span_id]

    def descendants(self, span: StoredSpan) -> Iterable[StoredSpan]:
        stack = list(reversed(self.children_of(span)))
        while stack:
            current = stack.pop()
            yield current
            stack.extend(reversed(self.children_of(current)))

    @property
    def trace_ids(self) -> tuple[str, ...]:
        ids = sorted({span.trace_id for span in self.spans} - {self.trace_id})
        return ((self.trace_id,) if self.trace_id is not None else ()) + tuple(ids)

    @property
    def last_arrival_unix_nano(self) -> int | None:
        return max((span.arrival_unix_nano for span in self.spans), default=None)


def build_trace(
    trace_id: str | None,
    spans: Sequence[StoredSpan],
    *,
    now_unix_nano: int,
    stitches: Mapping[str, str] | None = None,
) -> FlowTrace:
    """`stitches` maps a callee span id to the caller span id it should have named: a root
    of another trace, or an orphan, diagnosed as a broken hand-off."""
    findings: list[Finding] = []
    by_id: dict[str, StoredSpan] = {}
    for span in sorted(spans, key=lambda s: (s.trace_id != trace_id, span_order(s), s.arrival_unix_nano)):
        kept = by_id.get(span.span_id)
        if kept is None:
            by_id[span.span_id] = span
        elif kept != dataclasses.replace(span, arrival_unix_nano=kept.arrival_unix_nano):
            findings.append(
                Finding(
                    FindingKind.DUPLICATE_SPAN,
                    f"span {span.span_id} ({span.service}: {span.name!r}) was sent twice with different "
                    f"content; the first ({kept.service}: {kept.name!r}) is used. Span ids must be unique: "
                    "check the id generator of the service that sent it",
                    span_ids=(span.span_id,),
                )
            )

    parent: dict[str, str] = {}
    for span in by_id.values():
        if span.parent_span_id is not None and span.parent_span_id in by_id:
            parent[span.span_id] = span.parent_span_id
    stitched: set[str] = set()
    for child_id, caller_id in (stitches or {}).items():
        if child_id in by_id and caller_id in by_id and child_id not in parent:
            parent[child_id] = caller_id
            stitched.add(child_id)
    _cut_cycles(parent, by_id, findings)

    children: dict[str, list[StoredSpan]] = {}
    for child_id, parent_id in parent.items():
        children.setdefault(parent_id, []).append(by_id[child_id])
    ordered = tuple(sorted(by_id.values(), key=span_order))
    orphans = tuple(
        s
        for s in ordered
        if s.parent_span_id is not None and s.span_id not in parent and s.parent_span_id not in by_id
    )
    roots = tuple(s for s in ordered if s.span_id not in parent)

    for span in ordered:
        real_parent = None if span.span_id in stitched else by_id.get(parent.get(span.span_id, ""))
        _time_findings(span, real_parent, now_unix_nano, findings)

    return FlowTrace(
        trace_id=trace_id,
        spans=ordered,
        by_id=by_id,
        parent=parent,
        children={k: tuple(sorted(v, key=span_order)) for k, v in children.items()},
        orphans=orphans,
        roots=roots,
        findings=tuple(findings),
        stitched=frozenset(stitched),
    )


def hand_off_parents(trace: FlowTrace, hops: Iterable[HopResult]) -> dict[str, str]:
    """Where the tops of other trees of the flow hang, so each hand-off reads as one tree:
    span id -> the caller span it hangs under. A hop whose callee's tree is not its caller's
    (a broken hand-off's callee trace, a linked consumer's) hangs that tree's top under the
    hop's caller; the flow's own root stays the trunk, and no hanging makes a cycle.

    The failure message's span tree, the dashboard's waterfall and the critical path are all
    drawn on this one tree."""
    hung: dict[str, str] = {}

    def top_of(span: StoredSpan) -> StoredSpan:
        while True:
            parent_id = trace.parent.get(span.span_id) or hung.get(span.span_id)
            if parent_id is None:
                return span
            span = trace.by_id[parent_id]

    for hop in hops:
        caller = trace.by_id.get(hop.caller_span_id or "")
        callee = trace.by_id.get(hop.callee_span_id or "")
        if caller is None or callee is None:
            continue
        top = top_of(callee)
        if top is top_of(caller):
            continue  # same tree already; hanging it again would make a cycle
        if top.parent_span_id is None and top.trace_id == trace.trace_id:
            continue  # the flow's own root stays the trunk
        hung[top.span_id] = caller.span_id
    return hung


def critical_path(trace: FlowTrace, hung: Mapping[str, str] | None = None) -> list[str]:
    """Span ids on the critical path of each tree, tops in start order, each span before the
    spans below it: from a top, repeatedly the child that ended last before the time still to
    be explained, as tracing UIs define it. `hung` (`hand_off_parents`) hangs the tops of
    other trees under their callers first, so the path follows a hand-off into them."""
    hung = hung or {}
    below: dict[str, list[StoredSpan]] = {}
    for child_id, parent_id in hung.items():
        below.setdefault(parent_id, []).append(trace.by_id[child_id])
    path: list[str] = []
    # iterative: a deep trace must not exhaust the recursion limit
    stack = [top for top in reversed(trace.roots) if top.span_id not in hung]
    while stack:
        span = stack.pop()
        path.append(span.span_id)
        cursor = span.end_unix_nano
        critical = []
        kids = [*trace.children_of(span), *below.get(span.span_id, ())]
        for kid in sorted(kids, key=lambda s: (s.end_unix_nano, s.span_id), reverse=True):
            if kid.end_unix_nano <= cursor and kid.start_unix_nano >= span.start_unix_nano:
                critical.append(kid)
                cursor = kid.start_unix_nano
        stack.extend(critical)  # chosen latest first, so the earliest pops first: time order
    return path


def _cut_cycles(parent: dict[str, str], by_id: Mapping[str, StoredSpan], findings: list[Finding]) -> None:
    done: set[str] = set()
    for start in sorted(parent):
        path: list[str] = []
        on_path: set[str] = set()
        current: str | None = start
        while current is not None and current not in done:
            if current in on_path:
                loop = path[path.index(current) :]
                del parent[current]  # the span where the walk re-entered the loop becomes a top
                findings.append(
                    Finding(
                        FindingKind.PARENT_CYCLE,
                        "spans " + " -> ".join(f"{s} ({by_id[s].service})" for s in loop) + f" -> {current} "
                        "name each other as parents; the loop was cut. A span's parent id must name a "
                        "span that started it: check the propagation code of these services",
                        span_ids=tuple(loop),
                    )
                )
                break
            path.append(current)
            on_path.add(current)
            current = parent.get(current)
        done.update(path)


def implausible_start(span: StoredSpan, now_unix_nano: int) -> bool:
    """Before 2000 or more than a day ahead: a wrong clock or a wrong unit, not a time."""
    return (
        span.start_unix_nano < _EARLIEST_PLAUSIBLE_NS
        or span.start_unix_nano > now_unix_nano + _FUTURE_TOLERANCE_NS
    )


def _time_findings(
    span: StoredSpan, parent: StoredSpan | None, now_unix_nano: int, findings: list[Finding]
) -> None:
    if implausible_start(span, now_unix_nano):
        findings.append(
            Finding(
                FindingKind.CLOCK_SKEW,
                f"{span.service}: span {span.span_id} ({span.name!r}) starts at "
                f"{_when(span.start_unix_nano)}; "
                f"the clock of {span.service} is wrong or it sends times in the wrong unit "
                "(OTLP wants unix ns)",
                span_ids=(span.span_id,),
            )
        )
    elif span.end_unix_nano < span.start_unix_nano:
        findings.append(
            Finding(
                FindingKind.CLOCK_SKEW,
                f"{span.service}: span {span.span_id} ({span.name!r}) ends before it starts",
                span_ids=(span.span_id,),
            )
        )
    if parent is not None and span.start_unix_nano + _SKEW_TOLERANCE_NS < parent.start_unix_nano:
        ahead_ms = (parent.start_unix_nano - span.start_unix_nano) / 1e6
        findings.append(
            Finding(
                FindingKind.CLOCK_SKEW,
                f"{span.service}: span {span.span_id} ({span.name!r}) starts {ahead_ms:.1f} ms "
                "before its parent "
                f"in {parent.service}; their clocks disagree — order across them is judged on one clock only",
                span_ids=(span.span_id, parent.span_id),
            )
        )
