"""Hand-built flows for the flow engine's unit tests, and one `judge` that runs the engine
on them the way `FlowEngine` does, minus the store and the waiting.

A plain module, imported by name from the test files beside it. It is the one place that
reaches into the engine's private modules (`_hops`, `_order`, `_situation`, `_verdict`):
when they move, only these imports change.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tracebaton.assertions import (
    CheckResult,
    CheckState,
    FlowResult,
    FlowSpec,
    FlowTrace,
    HopResult,
    build_trace,
    parse_flow_spec,
)
from tracebaton.assertions._hops import (
    DanglingCall,
    Hop,
    choose_stitch,
    dangling_calls,
    extract_hops,
    hop_matches,
    orphan_candidates,
)
from tracebaton.assertions._order import Relation, hop_relation, relation
from tracebaton.assertions._situation import Situation
from tracebaton.assertions._verdict import evaluate, first_divergence, overall, result_of
from tracebaton.collector import (
    AttributeValue,
    SpanKind,
    SpanLink,
    StatusCode,
    StoredSpan,
)
from tracebaton.collector._model import FLAG_HAS_IS_REMOTE, FLAG_IS_REMOTE  # not in the facade

__all__ = [
    "BASE_NS",
    "MS",
    "NOW_NS",
    "T1",
    "T2",
    "T3",
    "CheckResult",
    "CheckState",
    "DanglingCall",
    "FlowBuilder",
    "Hop",
    "HopResult",
    "Relation",
    "check",
    "choose_stitch",
    "dangling_calls",
    "evaluate",
    "extract_hops",
    "finding_kinds",
    "first_divergence",
    "flow_trace",
    "hop_matches",
    "hop_relation",
    "hop_rows",
    "hops_of",
    "judge",
    "orphan_candidates",
    "overall",
    "relation",
    "spec_of",
    "states",
    "traceparent",
]

MS = 1_000_000
BASE_NS = 1_763_700_000 * 10**9
"""Start of every hand-built flow: a plausible recent wall-clock time."""
NOW_NS = BASE_NS + 60_000 * MS
"""The judge's "now": a minute after the flow began, so no span is from the future."""
T1 = "4bf92f3577b34da6a3ce929d0e0e4736"
T2 = "9a3c5e1f0b2d4c6e8f1a3b5c7d9e0f21"
T3 = "0c1d2e3f405162738495a6b7c8d9eaf0"

_SAMPLED = 0x01


class FlowBuilder:
    """Spans of hand-built flows, with deterministic ids: span n is `f"{0xb0 << 56 | n:016x}"`.

    `remote` is what the exporter said about the parent: True/False set the OTLP is-remote
    bits, None leaves them unknown (old SDKs, other languages). By default SERVER/CONSUMER
    spans say their parent is remote and the other kinds say it is local, as the OTel SDKs do.
    """

    def __init__(self, trace_id: str = T1) -> None:
        self.trace_id = trace_id
        self.spans: list[StoredSpan] = []
        self._ids = itertools.count(1)

    def span(
        self,
        kind: SpanKind,
        service: str,
        name: str,
        *,
        parent: StoredSpan | str | None = None,
        start_ms: float = 0,
        end_ms: float | None = None,
        remote: bool | None = None,
        attrs: Mapping[str, AttributeValue] | None = None,
        status: StatusCode = StatusCode.UNSET,
        message: str = "",
        links: Iterable[StoredSpan | tuple[str, str]] = (),
        trace_id: str | None = None,
        span_id: str | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        arrival_ms: float | None = None,
    ) -> StoredSpan:
        """One span; `parent` is a span of this builder or a bare parent id (one that may never arrive).

        The trace id defaults to the parent's, else the builder's. Times are ms after BASE_NS
        unless `start_ns`/`end_ns` give absolute unix ns (1970, the far future, …).
        """
        parent_id = parent.span_id if isinstance(parent, StoredSpan) else parent
        if trace_id is None:
            trace_id = parent.trace_id if isinstance(parent, StoredSpan) else self.trace_id
        start = BASE_NS + round(start_ms * MS) if start_ns is None else start_ns
        if end_ns is not None:
            end = end_ns
        else:
            end = start + 10 * MS if end_ms is None else BASE_NS + round(end_ms * MS)
        flags = _SAMPLED
        if remote is not None:
            flags |= FLAG_HAS_IS_REMOTE | (FLAG_IS_REMOTE if remote else 0)
        stored = StoredSpan(
            trace_id=trace_id,
            span_id=span_id if span_id is not None else f"{0xB0 << 56 | next(self._ids):016x}",
            parent_span_id=parent_id,
            name=name,
            kind=kind,
            start_unix_nano=start,
            end_unix_nano=end,
            status_code=status,
            status_message=message,
            service=service,
            trace_state="",
            flags=flags,
            attributes=dict(attrs or {}),
            events=(),
            links=tuple(_link(target) for target in links),
            resource={"service.name": service},
            scope_name="tests",
            scope_version="",
            arrival_unix_nano=(end + 5 * MS) if arrival_ms is None else BASE_NS + round(arrival_ms * MS),
        )
        self.spans.append(stored)
        return stored

    def server(self, service: str, name: str, *, remote: bool | None = True, **kw: Any) -> StoredSpan:
        return self.span(SpanKind.SERVER, service, name, remote=remote, **kw)

    def consumer(self, service: str, name: str, *, remote: bool | None = True, **kw: Any) -> StoredSpan:
        return self.span(SpanKind.CONSUMER, service, name, remote=remote, **kw)

    def client(self, service: str, name: str, *, remote: bool | None = False, **kw: Any) -> StoredSpan:
        return self.span(SpanKind.CLIENT, service, name, remote=remote, **kw)

    def producer(self, service: str, name: str, *, remote: bool | None = False, **kw: Any) -> StoredSpan:
        return self.span(SpanKind.PRODUCER, service, name, remote=remote, **kw)

    def internal(self, service: str, name: str, *, remote: bool | None = False, **kw: Any) -> StoredSpan:
        return self.span(SpanKind.INTERNAL, service, name, remote=remote, **kw)

    def test_root(self, *, start_ms: float = 0, end_ms: float = 1000, **kw: Any) -> StoredSpan:
        """The flow's own root span, as `tracebaton.flow()` makes it: a CLIENT span of `test`."""
        return self.client("test", "flow checkout", start_ms=start_ms, end_ms=end_ms, remote=None, **kw)

    def call(
        self,
        caller: StoredSpan,
        callee_service: str,
        route: str,
        *,
        start_ms: float,
        end_ms: float,
        callee_attrs: Mapping[str, AttributeValue] | None = None,
        client_attrs: Mapping[str, AttributeValue] | None = None,
        client_status: StatusCode = StatusCode.UNSET,
        server_status: StatusCode = StatusCode.UNSET,
        capture: Mapping[str, str | None] | None = None,
    ) -> tuple[StoredSpan, StoredSpan]:
        """A synchronous HTTP call from the service of `caller` into `callee_service`:
        a CLIENT span under `caller` and a SERVER span under it, 1 ms inside on each side.

        `capture` holds the request headers the SERVER span captured, as the Python
        instrumentations write them (`http.request.header.x_request_id: [value]`); a
        `traceparent` of None is the one the CLIENT span sent."""
        client = self.client(
            caller.service, f"POST {route}", parent=caller, start_ms=start_ms, end_ms=end_ms,
            attrs=client_attrs, status=client_status,
        )
        attrs = dict(callee_attrs or {})
        for header, value in (capture or {}).items():
            sent = traceparent(client) if value is None and header == "traceparent" else value
            attrs[f"http.request.header.{header.replace('-', '_')}"] = [sent or ""]
        server = self.server(
            callee_service, f"POST {route}", parent=client, start_ms=start_ms + 1, end_ms=end_ms - 1,
            attrs=attrs, status=server_status,
        )
        return client, server


def _link(target: StoredSpan | tuple[str, str]) -> SpanLink:
    trace_id, span_id = (target.trace_id, target.span_id) if isinstance(target, StoredSpan) else target
    return SpanLink(trace_id=trace_id, span_id=span_id, trace_state="", flags=_SAMPLED, attributes={})


def traceparent(caller: StoredSpan, *, trace_id: str | None = None, parent_id: str | None = None) -> str:
    """The W3C traceparent `caller` would send (or a tampered one)."""
    return f"00-{trace_id or caller.trace_id}-{parent_id or caller.span_id}-01"


def spec_of(spec: Mapping[str, Any] | FlowSpec) -> FlowSpec:
    """A FlowSpec from a dict; `name` may be left out in tests."""
    if isinstance(spec, FlowSpec):
        return spec
    return parse_flow_spec({"name": "flow", **spec})


def flow_trace(
    spans: Sequence[StoredSpan],
    *,
    trace_id: str | None = T1,
    stitches: Mapping[str, str] | None = None,
    now_ns: int = NOW_NS,
) -> FlowTrace:
    return build_trace(trace_id, spans, now_unix_nano=now_ns, stitches=stitches)


def hops_of(
    spans: Sequence[StoredSpan],
    *,
    trace_id: str | None = T1,
    stitches: Mapping[str, str] | None = None,
    peers: Mapping[str, str] | None = None,
) -> list[Hop]:
    return extract_hops(flow_trace(spans, trace_id=trace_id, stitches=stitches), peers=peers)


def judge(
    spec: Mapping[str, Any] | FlowSpec,
    spans: Sequence[StoredSpan],
    *,
    settled: bool = True,
    final: bool = False,
    missing_parents: Sequence[StoredSpan] = (),
    stitches: Mapping[str, str] | None = None,
    trace_id: str | None = T1,
    now_ns: int = NOW_NS,
) -> FlowResult:
    """The verdict `FlowEngine` would give on these spans in this state of waiting."""
    flow_spec = spec_of(spec)
    trace = flow_trace(spans, trace_id=trace_id, stitches=stitches, now_ns=now_ns)
    situation = Situation(
        spec=flow_spec,
        trace=trace,
        # as the engine does: before settle, a hop named from a call with no callee is tentative
        hops=tuple(extract_hops(trace, peers=flow_spec.peers, settled=settled)),
        settled=settled,
        final=final,
        now_unix_nano=now_ns,
        missing_parents=tuple(missing_parents),
    )
    return result_of(situation, evaluate(situation), waited_ms=0)


def check(result: FlowResult, check_id: str) -> CheckResult:
    """The one result of `check_id`; fails the test if the engine did not run that check."""
    found = [c for c in result.checks if c.check == check_id]
    assert len(found) == 1, f"{check_id}: {[c.check for c in result.checks]}"
    return found[0]


def hop_rows(result: FlowResult) -> list[tuple[str, str, str]]:
    """(hop, kind, status) of every hop row, in the result's order."""
    return [(h.hop, h.kind.value, h.status.value) for h in result.hops]


def finding_kinds(result: FlowResult | FlowTrace) -> list[str]:
    return [f.kind.value for f in result.findings]


def states(result: FlowResult) -> dict[str, CheckState]:
    return {c.check: c.state for c in result.checks}

