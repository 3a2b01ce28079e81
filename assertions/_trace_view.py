"""`Trace`: a settled flow as a test reads it — spans, hops, tree — and what it turns into:
a polars DataFrame, OTLP JSON, and the spec a healthy flow satisfies."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tracebaton.collector import StoredSpan, encode_export_request_json, export_request_from_spans

from ._checks_budgets import entry_span
from ._hops import Hop, extract_hops
from ._order import Relation, hop_relation
from ._result import FlowResult, HopKind
from ._spec import Budgets, Expectations, FlowSpec, HopPattern
from ._spec_parse import parse_flow_spec
from ._trace import FlowTrace, build_trace
from ._verdict import judge_settled

if TYPE_CHECKING:
    import polars

    from ._backends import FlowBackend

_NICE_MS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10_000, 20_000, 30_000, 60_000)


def _headroom_ns(observed_ns: int) -> int:
    """Twice what was observed, rounded up to a round number: a budget people can read."""
    wanted_ms = max(observed_ns * 2 / 1e6, 1)
    return next((ms for ms in _NICE_MS if ms >= wanted_ms), int(wanted_ms) + 1) * 1_000_000


class Trace:
    def __init__(self, tree: FlowTrace, *, name: str = "flow") -> None:
        self.tree = tree
        self.name = name
        self.hops: list[Hop] = extract_hops(tree)

    @classmethod
    def load(
        cls,
        backend: FlowBackend,
        trace_ids: Sequence[str],
        *,
        root_trace_id: str | None = None,
        name: str = "flow",
    ) -> Trace:
        spans = backend.spans(list(dict.fromkeys(trace_ids)))
        return cls(
            build_trace(
                root_trace_id or (trace_ids[0] if trace_ids else None), spans, now_unix_nano=time.time_ns()
            ),
            name=name,
        )

    @property
    def trace_id(self) -> str | None:
        return self.tree.trace_id

    @property
    def spans(self) -> tuple[StoredSpan, ...]:
        return self.tree.spans

    def check(self, spec: FlowSpec | Mapping[str, Any] | str) -> FlowResult:
        """Judge a spec on this trace as it stands, without waiting: pending is failed."""
        parsed = parse_flow_spec(
            {"name": self.name, **spec} if isinstance(spec, Mapping) and "name" not in spec else spec
        )
        return judge_settled(parsed, self.tree, now_unix_nano=time.time_ns())

    def __eq__(self, other: object) -> bool:
        """`assert trace == spec` judges the spec; pytest shows the verdict when it fails."""
        if isinstance(other, FlowSpec | Mapping | str):
            return self.check(other).passed
        if isinstance(other, Trace):
            return self.tree.spans == other.tree.spans
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def to_polars(self) -> polars.DataFrame:
        """One row per span; times as unix ns, durations in ns, attributes as a JSON string."""
        import json

        import polars as pl

        rows: dict[str, list[Any]] = {
            key: []
            for key in (
                "trace_id",
                "span_id",
                "parent_span_id",
                "service",
                "name",
                "kind",
                "status",
                "start_unix_nano",
                "end_unix_nano",
                "duration_ns",
                "attributes",
            )
        }
        for span in self.spans:
            rows["trace_id"].append(span.trace_id)
            rows["span_id"].append(span.span_id)
            rows["parent_span_id"].append(span.parent_span_id)
            rows["service"].append(span.service)
            rows["name"].append(span.name)
            rows["kind"].append(span.kind.label)
            rows["status"].append(span.status_code.label)
            rows["start_unix_nano"].append(span.start_unix_nano)
            rows["end_unix_nano"].append(span.end_unix_nano)
            rows["duration_ns"].append(span.duration_ns)
            rows["attributes"].append(json.dumps(span.attributes, default=str, sort_keys=True))
        return pl.DataFrame(
            rows,
            schema={
                "trace_id": pl.String,
                "span_id": pl.String,
                "parent_span_id": pl.String,
                "service": pl.String,
                "name": pl.String,
                "kind": pl.String,
                "status": pl.String,
                "start_unix_nano": pl.Int64,
                "end_unix_nano": pl.Int64,
                "duration_ns": pl.Int64,
                "attributes": pl.String,
            },
        )

    def hops_frame(self) -> polars.DataFrame:
        """One row per hop: its text, kind, caller and callee span ids, and the caller's duration."""
        import polars as pl

        return pl.DataFrame(
            {
                "trace_id": [self.trace_id] * len(self.hops),
                "hop": [h.text for h in self.hops],
                "kind": [h.kind.value for h in self.hops],
                "caller_span_id": [h.anchor.span_id for h in self.hops],
                "callee_span_id": [h.callee_span.span_id if h.callee_span else None for h in self.hops],
                "duration_ns": [h.anchor.duration_ns for h in self.hops],
            },
            schema={
                "trace_id": pl.String,
                "hop": pl.String,
                "kind": pl.String,
                "caller_span_id": pl.String,
                "callee_span_id": pl.String,
                "duration_ns": pl.Int64,
            },
        )

    def to_otlp_json(self) -> bytes:
        """The flow as one OTLP/JSON request: `tracebaton import` and any OTLP tool read it."""
        return encode_export_request_json(export_request_from_spans(self.spans))

    def to_spec(self, name: str | None = None) -> FlowSpec:
        """The spec this healthy flow satisfies: its hops in order (concurrent ones grouped),
        how often each happened, and budgets with headroom. The starting point to edit."""
        hops = [h for h in self.hops if not h.from_test and not h.broken]
        groups: list[list[Hop]] = []
        for hop in hops:
            if groups and any(
                hop_relation(self.tree, other, hop) is not Relation.BEFORE for other in groups[-1]
            ):
                groups[-1].append(hop)
            else:
                groups.append([hop])
        ordered: list[tuple[HopPattern, ...]] = []
        seen: set[HopPattern] = set()
        for group in groups:
            patterns = tuple(dict.fromkeys(_pattern(h) for h in group if _pattern(h) not in seen))
            seen.update(patterns)
            if patterns:
                ordered.append(patterns)
        counts: dict[HopPattern, int] = {}
        worst: dict[HopPattern, int] = {}
        for hop in hops:
            pattern = _pattern(hop)
            counts[pattern] = counts.get(pattern, 0) + 1
            worst[pattern] = max(worst.get(pattern, 0), hop.anchor.duration_ns)
        entry = entry_span(self.tree)
        budgets = Budgets(
            trace_ns=_headroom_ns(entry.duration_ns) if entry is not None else None,
            hops=tuple(
                (p, _headroom_ns(ns)) for p, ns in worst.items() if p.callee != "*" and not p.asynchronous
            ),
        )
        return FlowSpec(
            name=name or self.name,
            expect=Expectations(hops=tuple(ordered), times=tuple(counts.items()), budgets=budgets),
        )


def _pattern(hop: Hop) -> HopPattern:
    return HopPattern(hop.caller, hop.callee, hop.kind is HopKind.ASYNC)
