"""The REST API's request and response shapes (DESIGN §5 result, §7 routes), as pydantic
models: they validate requests and write the OpenAPI document.

Responses that can be large (a trace, a flow) are serialized straight from dicts with orjson
rather than validated through these models on every request; the models still document them,
and the API tests and schemathesis check that what is sent conforms.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TRACE_ID_PATTERN = r"^[0-9a-fA-F]{32}$"
RUN_ID_PATTERN = r"^r[0-9a-f]{20}$"
FLOW_KEY_PATTERN = r"^([0-9a-fA-F]{32}|r[0-9a-f]{20})$"

SpanKindLabel = Literal["unspecified", "internal", "server", "client", "producer", "consumer"]


class Problem(BaseModel):
    """Every 4xx and 5xx: what was wrong and what to change."""

    detail: str = Field(description="what was wrong with the request and how to fix it")


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    otlp_http: str | None = Field(None, description="where OTLP/HTTP listens, e.g. http://127.0.0.1:4318")
    otlp_grpc: str | None = Field(None, description="where OTLP/gRPC listens, e.g. 127.0.0.1:4317")


class TraceSummaryModel(BaseModel):
    trace_id: str
    root_service: str | None
    root_name: str | None
    start_unix_nano: str = Field(description="decimal string: nanoseconds exceed 2^53")
    end_unix_nano: str
    duration_ns: str
    span_count: int
    error_count: int
    services: list[str]
    last_arrival_unix_nano: str


class TraceList(BaseModel):
    traces: list[TraceSummaryModel]


class SpanStatus(BaseModel):
    code: Literal["ok", "error", "unset"]
    message: str


class Scope(BaseModel):
    name: str
    version: str


class SpanEventModel(BaseModel):
    name: str
    time_unix_nano: str
    attributes: dict[str, Any]


class SpanLinkModel(BaseModel):
    trace_id: str
    span_id: str
    trace_state: str
    flags: int
    attributes: dict[str, Any]


class Span(BaseModel):
    """A stored span. Attribute values keep their OTLP types; integers past ±2^53 and
    `*_unix_nano` times are decimal strings."""

    trace_id: str
    span_id: str
    parent_span_id: str | None = Field(description="null for a root span")
    service: str
    name: str
    kind: SpanKindLabel
    start_unix_nano: str
    end_unix_nano: str
    status: SpanStatus
    attributes: dict[str, Any]
    resource: dict[str, Any]
    scope: Scope
    events: list[SpanEventModel]
    links: list[SpanLinkModel]
    trace_state: str
    flags: int
    arrival_unix_nano: str


class TraceModel(BaseModel):
    trace_id: str
    spans: list[Span]


class CheckModel(BaseModel):
    check: str = Field(
        description="hops order times chains budgets.trace budgets.hops deadlines "
        "connected headers baggage errors spans[i]"
    )
    passed: bool
    state: Literal["pass", "fail", "pending"]
    message: str
    span_ids: list[str]
    hop: str | None
    more: list[str] = Field(
        default_factory=list,
        description="the check's other violations after the first, in full; `message` "
        "ends `(and N more)` for them",
    )


class HopModel(BaseModel):
    hop: str = Field(description="`caller -> callee`, or `caller ~> callee` when asynchronous")
    kind: Literal["sync", "async", "peer"]
    status: Literal["matched", "unexpected", "missing", "broken", "pending"] = Field(
        description="`pending`: expected and not seen yet when another check failed first (not judged)")
    caller_span_id: str | None
    callee_span_id: str | None
    caller_service: str
    callee_service: str
    start_unix_nano: str | None
    duration_ns: str | None
    detail: str


class FindingModel(BaseModel):
    kind: Literal[
        "propagation_broken",
        "missing_parent",
        "traceparent_mismatch",
        "export_lag",
        "clock_skew",
        "parent_cycle",
        "duplicate_span",
        "store_imprecise",
        "unmatched_rule",
    ]
    hop: str | None
    message: str
    span_ids: list[str]


class FlowResultModel(BaseModel):
    """A verdict (DESIGN §5 "Result")."""

    passed: bool
    name: str
    trace_id: str | None
    waited_ms: int
    waited_reason: Literal["satisfied", "settled", "violated", "quiet", "timeout"] = Field(
        description="why the engine stopped waiting: `satisfied` (passed before settling: only "
        "existential checks, all seen), `settled` (no new span for `settle`), `violated` (a universal "
        "check failed before settling), `quiet` (gave up early: the flow was complete and quiet), "
        "`timeout`; never `satisfied` on a failure")
    first_divergence: str | None
    checks: list[CheckModel]
    hops: list[HopModel]
    expected_hops: list[str]
    findings: list[FindingModel]
    trace_ids: list[str]
    span_count: int
    last_arrival_unix_nano: str | None


class CheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: dict[str, Any] | str = Field(
        description="a flow spec (DESIGN §5): a JSON object, or YAML text",
        examples=[{"name": "checkout", "expect": {"hops": ["frontend -> cart"]}}],
    )
    trace_id: str | None = Field(
        None,
        pattern=TRACE_ID_PATTERN,
        description="32 hex digits; without it the spec's `find:` locates the trace",
    )
    test_id: str | None = Field(
        None, max_length=4096, description="the test that checked it (a pytest node id)"
    )
    session_id: str | None = Field(None, max_length=256, description="the test session it belongs to")
    record: bool = Field(True, description="false: judge only, record no run (a look, not a check)")


class CheckResponse(FlowResultModel):
    run_id: str | None = Field(
        description="the recorded run (GET /api/runs/{run_id}, dashboard "
        "/flows/{run_id}); null when `record` was false"
    )


class RunSummaryModel(BaseModel):
    run_id: str
    name: str
    trace_id: str | None
    passed: bool
    test_id: str | None
    session_id: str | None
    recorded_unix_nano: str
    first_divergence: str | None
    waited_ms: int | None


class RunList(BaseModel):
    runs: list[RunSummaryModel]


class RunDetail(BaseModel):
    run: RunSummaryModel
    result: FlowResultModel
    spec: dict[str, Any] | None = Field(description="the spec it was judged by, when it was recorded")


class BudgetMarker(BaseModel):
    span_id: str = Field(description="the span the budget measures (a hop's caller span, or the entry span)")
    budget_ns: str
    label: str


class FlowView(BaseModel):
    """Everything the dashboard's Flow and Trace pages draw: a verdict, and the spans of every
    trace the flow covers."""

    run: RunSummaryModel | None = Field(
        description="the recorded run shown; null for a trace judged without a spec"
    )
    result: FlowResultModel
    divergence: str = Field(
        description="what went wrong first, as the verdict's text says it (for a pass: what was seen)")
    spec: dict[str, Any] | None
    spans: list[Span]
    truncated: bool = Field(description="true when the flow holds more spans than one page shows")
    critical_path: list[str] = Field(description="span ids on the critical path, root first")
    budgets: list[BudgetMarker] = Field(description="where each budget of the spec ends on the waterfall")
    tree_parents: dict[str, str | None] = Field(
        description="span id -> the span it is drawn under (a stitched or linked trace hangs below "
                    "the call that reached it); null for the flow's roots")
    culprit_hops: list[str] = Field(description="the hops the first divergence names, drawn red")
    implicated_hops: list[str] = Field(
        description="other hops the failed checks or findings name, drawn amber and dashed")


class SpecResponse(BaseModel):
    trace_id: str
    yaml: str = Field(description="the spec as YAML, ready to save and edit")
    spec: dict[str, Any]


class ImportResponse(BaseModel):
    requests: int = Field(description="OTLP export requests read from the body")
    accepted_spans: int
    rejected_spans: int
    message: str = Field(description="why spans were rejected (invalid ids), when some were")
