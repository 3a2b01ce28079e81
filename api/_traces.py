"""Trace routes: search, one trace, its OTLP form, the spec it satisfies, and the flow view
the dashboard draws (of a recorded run, or of a trace judged without a spec)."""

from __future__ import annotations

import time
from typing import Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import Response

from tracebaton import DURATION_PATTERN
from tracebaton.assertions import (
    FlowEngine,
    FlowSpec,
    Trace,
    build_trace,
    flow_spec_to_dict,
    flow_spec_to_yaml,
    span_json,
)
from tracebaton.collector import (
    RunRecord,
    SpanStore,
    StatusCode,
    StoredSpan,
    TraceQuery,
    encode_export_request_json,
    export_request_from_spans,
    is_run_id,
)

from ._common import (
    ERRORS,
    NOT_FOUND,
    is_trace_id,
    json_response,
    newest_run,
    run_summary_json,
    since_ns,
    trace_id_or_400,
)
from ._models import (
    FLOW_KEY_PATTERN,
    TRACE_ID_PATTERN,
    FlowView,
    SpecResponse,
    TraceList,
    TraceModel,
)
from ._views import MAX_FLOW_SPANS, flow_view

MAX_TRACE_LIMIT = 1000
_MAX_FLOW_TRACES = 64


def _spans_or_404(store: SpanStore, trace_id: str) -> list[StoredSpan]:
    spans = store.trace(trace_id)
    if not spans:
        raise HTTPException(
            404,
            f"no span of trace {trace_id} is stored; check that the services export to this "
            "tracebaton and that retention has not pruned it",
        )
    return spans


def flow_spans(store: SpanStore, trace_ids: list[str]) -> list[StoredSpan]:
    """Spans of every trace of a flow, stopping once a page's worth is read."""
    spans: list[StoredSpan] = []
    for trace_id in dict.fromkeys(trace_ids[:_MAX_FLOW_TRACES]):
        if is_trace_id(trace_id):
            spans += store.trace(trace_id.lower())
        if len(spans) > MAX_FLOW_SPANS:
            break
    return spans


def traces_router(store: SpanStore, engine: FlowEngine) -> APIRouter:
    router = APIRouter(tags=["traces"], responses=ERRORS)

    @router.get("/api/traces", response_model=TraceList)
    def list_traces(
        request: Request,
        service: str | None = Query(
            None, max_length=512, description="a span of the trace is in this service"
        ),
        name: str | None = Query(
            None, max_length=1024, description="a span name glob, e.g. `POST /checkout*`"
        ),
        status: Literal["ok", "error", "unset"] | None = Query(
            None, description="a span of the trace has it"
        ),
        since: str | None = Query(
            None, pattern=DURATION_PATTERN, description="look-back window by arrival, e.g. `15m`"
        ),
        since_unix_nano: int | None = Query(None, ge=0, le=2**63 - 1),
        limit: int = Query(100, ge=1, le=MAX_TRACE_LIMIT, description=f"at most {MAX_TRACE_LIMIT}"),
    ) -> Response:
        """Trace summaries, most recent arrival first. `attr.<key>=<value>` (repeatable, any key)
        keeps traces with a span whose attribute equals the value."""
        status_code = None if status is None else StatusCode[status.upper()]
        attributes: dict[str, str | int | float | bool] = {}
        for key, value in request.query_params.multi_items():
            if key.startswith("attr."):
                if len(key) == 5:
                    raise HTTPException(
                        400,
                        "query parameter `attr.` names no attribute; write attr.<key>=<value>, "
                        "e.g. attr.order.id=A-17",
                    )
                attributes[key[5:]] = value
        if len(attributes) > 16:
            raise HTTPException(400, "at most 16 attr.<key> filters; narrow the search with fewer")
        summaries = store.traces(
            TraceQuery(
                service=service,
                name=name,
                attributes=attributes,
                status=status_code,
                since_unix_nano=since_ns(since, since_unix_nano),
                limit=limit,
            )
        )
        return json_response(
            {
                "traces": [
                    {
                        "trace_id": t.trace_id,
                        "root_service": t.root_service,
                        "root_name": t.root_name,
                        "start_unix_nano": str(t.start_unix_nano),
                        "end_unix_nano": str(t.end_unix_nano),
                        "duration_ns": str(t.duration_ns),
                        "span_count": t.span_count,
                        "error_count": t.error_count,
                        "services": list(t.services),
                        "last_arrival_unix_nano": str(t.last_arrival_unix_nano),
                    }
                    for t in summaries
                ]
            }
        )

    @router.get("/api/traces/{trace_id}", response_model=TraceModel, responses=NOT_FOUND)
    def get_trace(
        trace_id: str = Path(
            pattern=TRACE_ID_PATTERN,
            description="32 hex digits",
            examples=["4bf92f3577b34da6a3ce929d0e0e4736"],
        ),
    ) -> Response:
        """One trace: every stored span, re-sent duplicates dropped, ordered by start time."""
        trace_id = trace_id_or_400(trace_id)
        spans = _spans_or_404(store, trace_id)
        return json_response({"trace_id": trace_id, "spans": [span_json(s) for s in spans]})

    @router.get(
        "/api/traces/{trace_id}/otlp",
        responses={
            **NOT_FOUND,
            200: {
                "description": "an OTLP/JSON ExportTraceServiceRequest",
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
        },
    )
    def get_trace_otlp(
        trace_id: str = Path(pattern=TRACE_ID_PATTERN, description="32 hex digits"),
    ) -> Response:
        """The trace as one OTLP/JSON export request: what `tracebaton import` and any OTLP tool read."""
        trace_id = trace_id_or_400(trace_id)
        spans = _spans_or_404(store, trace_id)
        try:
            body = encode_export_request_json(export_request_from_spans(spans))
        except ValueError as error:  # attribute values nested deeper than OTLP/JSON readers take
            raise HTTPException(422, f"this trace cannot be written as OTLP/JSON: {error}") from None
        return Response(
            body,
            media_type="application/json",
            headers={"content-disposition": f'attachment; filename="{trace_id}.otlp.json"'},
        )

    @router.get("/api/traces/{trace_id}/spec", response_model=SpecResponse, responses=NOT_FOUND)
    def get_trace_spec(
        trace_id: str = Path(pattern=TRACE_ID_PATTERN, description="32 hex digits"),
        name: str = Query("flow", min_length=1, max_length=200, description="the spec's name"),
    ) -> Response:
        """The spec this trace satisfies (its hops in order, how often each happened, budgets with
        headroom): the starting point to save and edit. Traces linking into it are included."""
        trace_id = trace_id_or_400(trace_id)
        spans = _spans_or_404(store, trace_id)
        linked = store.linked(trace_id)[:_MAX_FLOW_TRACES]
        spans += flow_spans(store, linked)
        spec: FlowSpec = Trace(build_trace(trace_id, spans, now_unix_nano=time.time_ns()), name=name).to_spec(
            name
        )
        return json_response(
            {"trace_id": trace_id, "yaml": flow_spec_to_yaml(spec), "spec": flow_spec_to_dict(spec)}
        )

    @router.get("/api/flows/{key}", response_model=FlowView, responses=NOT_FOUND, tags=["flows"])
    def get_flow(
        key: str = Path(
            pattern=FLOW_KEY_PATTERN, description="a run id (`r` and 20 hex digits), or a trace id"
        ),
        recorded: bool = Query(
            True,
            description="for a trace id: show its newest recorded run if there "
            "is one (false: judge the trace without a spec)",
        ),
    ) -> Response:
        """What the dashboard draws for one flow: the verdict (a recorded run's, or the trace's
        judged with no spec: hops, errors, broken hand-offs), the spans of every trace it
        covers, the critical path and the budget markers."""
        record: RunRecord | None = None
        if is_run_id(key):
            record = store.run(key)
            if record is None:
                raise HTTPException(404, f"no run {key} is recorded; list runs at /api/runs")
        else:
            trace_id = trace_id_or_400(key)
            if recorded:
                record = newest_run(store, trace_id)
        if record is not None:
            stored = dict(record.result)
            spec = stored.pop("spec", None)
            listed = stored.get("trace_ids") or [stored.get("trace_id")]
            trace_ids = [t for t in listed if isinstance(t, str)] if isinstance(listed, list) else []
            return json_response(
                flow_view(
                    run=run_summary_json(record.summary),
                    result=stored,
                    spec=spec if isinstance(spec, dict) else None,
                    spans=flow_spans(store, trace_ids),
                )
            )
        _spans_or_404(store, trace_id)
        # No spec: every hop is "matched" unless broken; judged at once (timeout 0), so the
        # page never waits for a settle window.
        result = engine.check(FlowSpec(name="trace"), trace_id, timeout_ns=0)
        return json_response(
            flow_view(
                run=None,
                result=result.to_json(),
                spec=None,
                spans=flow_spans(store, list(result.trace_ids) or [trace_id]),
            )
        )

    return router
