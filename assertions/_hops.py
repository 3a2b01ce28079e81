"""Hops: the hand-offs between processes in a flow (DESIGN §4), found in a span forest.

Pure functions: a `FlowTrace` in, hops out. The engine supplies what needs the store —
root spans of other traces that a dangling call may have started (`stitches`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from tracebaton.collector import SpanKind, StoredSpan, call_address, served_address, served_at

from ._result import HopKind, HopResult
from ._selectors import header_values
from ._spec import HopPattern
from ._trace import FlowTrace

TEST_SERVICE = "test"
"""The reserved service of a flow's own root span (DESIGN §6): its hops are listed but
ignored by `*`, `exact` and `times` unless the spec names `test`."""

_CALLERS = (SpanKind.CLIENT, SpanKind.PRODUCER)
_CALLEES = (SpanKind.SERVER, SpanKind.CONSUMER)


@dataclasses.dataclass(frozen=True, slots=True)
class Hop:
    caller: str
    callee: str
    kind: HopKind
    anchor: StoredSpan
    """The caller span (the PRODUCER span of an async hop): what order and budgets measure."""
    callee_span: StoredSpan | None
    broken: bool = False
    detail: str = ""
    tentative: bool = False
    """Named before the flow settled from a call whose callee span has not arrived: its
    name may still change, so a universal check does not fail on it yet."""

    @property
    def asynchronous(self) -> bool:
        return self.kind is HopKind.ASYNC

    @property
    def text(self) -> str:
        return str(HopPattern(self.caller, self.callee, self.asynchronous))  # one way to write a hop

    @property
    def from_test(self) -> bool:
        return self.caller == TEST_SERVICE


@dataclasses.dataclass(frozen=True, slots=True)
class DanglingCall:
    """A CLIENT span whose callee is not in its trace: refused, uninstrumented, or broken."""

    span: StoredSpan
    peer_service: str | None
    address: tuple[str, int] | None

    @property
    def target(self) -> str | None:
        """What `SpanStore.roots` takes: the service, else `host:port`."""
        if self.peer_service:
            return self.peer_service
        return None if self.address is None else f"{self.address[0]}:{self.address[1]}"


def hop_matches(pattern: HopPattern, hop: Hop | HopResult) -> bool:
    """`*` is any service, but not the test's own root unless the pattern names `test`.

    The one rule for whether a spec's hop names a seen one: the engine's checks ask it of a
    `Hop`, the failure diff and the API's budget markers of a verdict's `HopResult`."""
    if isinstance(hop, HopResult):
        caller, callee, asynchronous = hop.caller_service, hop.callee_service, hop.kind is HopKind.ASYNC
    else:
        caller, callee, asynchronous = hop.caller, hop.callee, hop.asynchronous
    if pattern.asynchronous != asynchronous:
        return False
    if pattern.caller == "*":
        if caller == TEST_SERVICE:
            return False
    elif pattern.caller != caller:
        return False
    return pattern.callee in ("*", callee)


def names_test(patterns: Iterable[HopPattern]) -> bool:
    """Whether a spec's hops name the test's own service, which makes its hops count."""
    return any(TEST_SERVICE in (p.caller, p.callee) for p in patterns)


def is_hop_edge(parent: StoredSpan, child: StoredSpan) -> bool:
    remote = child.parent_is_remote
    if remote is not None:
        return remote
    return child.service != parent.service or (parent.kind in _CALLERS and child.kind in _CALLEES)


def imprecise_edges(trace: FlowTrace) -> list[tuple[StoredSpan, StoredSpan]]:
    """Edges whose hop-ness only an is-remote flag could decide, on spans that carry none: a
    SERVER/CONSUMER child under a parent of its own service that is not CLIENT/PRODUCER (a
    context propagated by hand, or an in-process queue the SDK marks remote)."""
    return [
        (parent, child)
        for parent in trace.spans
        for child in trace.children_of(parent)
        if child.parent_is_remote is None and child.service == parent.service
        and child.kind in _CALLEES and parent.kind not in _CALLERS
    ]


def callee_of(trace: FlowTrace, child: StoredSpan) -> StoredSpan:
    """The first SERVER/CONSUMER span reached from `child` through its own service's spans."""
    frontier = [child]
    while frontier:
        for span in frontier:
            if span.kind in _CALLEES:
                return span
        frontier = sorted(
            (
                c
                for s in frontier
                for c in trace.children_of(s)
                if c.service == child.service and not is_hop_edge(s, c)
            ),
            key=lambda s: (s.start_unix_nano, s.span_id),
        )
    return child


def _is_wrapper(trace: FlowTrace, span: StoredSpan) -> bool:
    """A CLIENT span with a CLIENT span of its own service beneath it only wraps the real call."""
    stack = list(trace.children_of(span))
    while stack:
        current = stack.pop()
        if current.service != span.service or is_hop_edge(span, current):
            continue
        if current.kind is SpanKind.CLIENT:
            return True
        stack.extend(trace.children_of(current))
    return False


def _hop(caller_span: StoredSpan, callee_span: StoredSpan, *, broken: bool = False, detail: str = "") -> Hop:
    kind = (
        HopKind.ASYNC
        if callee_span.kind is SpanKind.CONSUMER or caller_span.kind is SpanKind.PRODUCER
        else HopKind.SYNC
    )
    return Hop(caller_span.service, callee_span.service, kind, caller_span, callee_span, broken, detail)


def dangling_calls(trace: FlowTrace) -> list[DanglingCall]:
    """CLIENT spans with no callee beneath them (wrappers excluded), in start order."""
    calls = []
    for span in trace.spans:
        if span.kind is not SpanKind.CLIENT:
            continue
        if any(is_hop_edge(span, child) for child in trace.children_of(span)) or _is_wrapper(trace, span):
            continue
        peer = span.attributes.get("peer.service")
        calls.append(
            DanglingCall(
                span, peer if isinstance(peer, str) and peer else None, call_address(span.attributes)
            )
        )
    return calls


def orphan_candidates(trace: FlowTrace, call: DanglingCall, skew_ns: int) -> list[StoredSpan]:
    """Orphans in the flow that this call may have started (they got a wrong parent id)."""
    return [
        o
        for o in trace.orphans
        if o.kind in _CALLEES
        and answers_for(o, call)
        and call.span.start_unix_nano - skew_ns <= o.start_unix_nano <= call.span.end_unix_nano + skew_ns
    ]


def answers_for(span: StoredSpan, call: DanglingCall) -> bool:
    if call.peer_service is not None:
        return span.service == call.peer_service
    return call.address is not None and served_at(span.attributes, *call.address)


def choose_stitch(
    call: DanglingCall, candidates: Sequence[StoredSpan], correlation: Mapping[str, str]
) -> tuple[StoredSpan | None, str]:
    """The one root (or orphan) this call started, or None and why not.

    Several candidates in the window (concurrent tests) are told apart by a correlation
    header the flow carries elsewhere (`x-request-id` and kin); still several is no verdict.
    """
    if len(candidates) == 1:
        return candidates[0], ""
    if not candidates:
        return None, ""
    if correlation:
        chosen = [c for c in candidates if _carries(c, correlation)]
        if len(chosen) == 1:
            return chosen[0], ""
    return None, f"{len(candidates)} traces started in {candidates[0].service} during the call"


def _carries(span: StoredSpan, correlation: Mapping[str, str]) -> bool:
    for header, value in correlation.items():
        values = header_values(span.attributes, header)
        if values and value in values:
            return True
    return False


def extract_hops(
    trace: FlowTrace,
    *,
    peers: Mapping[str, str] | None = None,
    known_addresses: Mapping[tuple[str, int], str] | None = None,
    settled: bool = True,
) -> list[Hop]:
    """Every hop of the flow, sorted by anchor start then span id (deterministic output).

    `known_addresses` are host:port -> service answers seen outside this flow; before the
    flow `settled`, hops of calls with no callee span yet are marked tentative."""
    hops: list[Hop] = []
    for child_id, parent_id in trace.parent.items():
        parent, child = trace.by_id[parent_id], trace.by_id[child_id]
        if child_id in trace.stitched:
            callee = callee_of(trace, child)
            hops.append(
                _hop(
                    parent,
                    callee,
                    broken=True,
                    detail=(
                        f"{callee.service} started a new trace {child.trace_id}"
                        if child.trace_id != parent.trace_id
                        else f"{callee.service} named parent {child.parent_span_id}, which never arrived"
                    ),
                )
            )
        elif is_hop_edge(parent, child):
            hops.append(_hop(parent, callee_of(trace, child)))
    hops.extend(_link_hops(trace))
    hops.extend(_unanswered_hops(trace, peers or {}, known_addresses or {}))
    if not settled:
        hops = unsettled(hops)
    hops.sort(
        key=lambda h: (
            h.anchor.start_unix_nano,
            h.anchor.span_id,
            h.callee_span.span_id if h.callee_span else "",
        )
    )
    return hops


def unanswered(hop: Hop) -> bool:
    """A call whose callee span is not here (yet): named from an address or a peer."""
    return hop.callee_span is None and not hop.broken


def unsettled(hops: Iterable[Hop]) -> list[Hop]:
    """The same hops before the flow settled: unanswered ones may still be renamed when
    their callee span arrives, so universal checks hold them as tentative."""
    return [dataclasses.replace(h, tentative=True) if unanswered(h) else h for h in hops]


def _link_hops(trace: FlowTrace) -> list[Hop]:
    """A CONSUMER span linking to a span of the flow (an outbox worker, a batch receiver)."""
    hops = []
    for span in trace.spans:
        if span.kind is not SpanKind.CONSUMER:
            continue
        for link in span.links:
            producer = trace.by_id.get(link.span_id)
            if producer is None or producer.trace_id != link.trace_id or producer is span:
                continue
            if trace.parent.get(span.span_id) == producer.span_id:
                continue  # already the parent edge
            hop = _hop(producer, span)
            hops.append(dataclasses.replace(hop, kind=HopKind.ASYNC))
    return hops


def _unanswered_hops(
    trace: FlowTrace,
    peers: Mapping[str, str],
    known_addresses: Mapping[tuple[str, int], str],
) -> list[Hop]:
    """Dangling calls that broken propagation did not explain: a known service whose span is
    missing (refused, timed out before it started), else an uninstrumented peer."""
    by_address = {address.strip().lower(): name for name, address in peers.items()}
    servers = [s for s in trace.spans if s.kind is SpanKind.SERVER]
    known_services = {s.service for s in trace.spans}
    hops = []
    for call in dangling_calls(trace):
        if any(trace.parent.get(s) == call.span.span_id for s in trace.stitched):
            continue
        callee: str | None = None
        if call.peer_service is not None and call.peer_service in known_services:
            callee = call.peer_service
        elif call.address is not None:
            callee = next((s.service for s in servers if served_at(s.attributes, *call.address)), None)
            if callee is None:
                callee = known_addresses.get(call.address)
        if callee is not None:
            hops.append(
                Hop(
                    call.span.service,
                    callee,
                    HopKind.SYNC,
                    call.span,
                    None,
                    detail=f"no span of {callee} answered this call",
                )
            )
            continue
        name = (
            call.peer_service or (by_address.get(call.target or "") if call.target else None) or call.target
        )
        if name is not None:
            hops.append(
                Hop(
                    call.span.service,
                    name,
                    HopKind.PEER,
                    call.span,
                    None,
                    detail="uninstrumented peer",
                )
            )
    return hops


def server_addresses(spans: Iterable[StoredSpan]) -> dict[tuple[str, int], str]:
    """host:port -> service, for every SERVER span that says where it answered."""
    found: dict[tuple[str, int], str] = {}
    for span in spans:
        if span.kind is SpanKind.SERVER and (address := served_address(span.attributes)) is not None:
            found[address] = span.service
    return found
