"""The REST API and dashboard server (FastAPI), over any SpanStore."""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import Body, FastAPI, HTTPException, Path, Query, Request

from tracebaton import ConfigurationError, FlowSpecError, __version__, parse_duration_ns
from tracebaton.assertions import FlowEngine, parse_flow_spec, span_json
from tracebaton.collector import SpanStore, StatusCode, TraceQuery

_TRACE_ID = r"^[0-9a-fA-F]{32}$"


def create_app(
    store: SpanStore, *, otlp_http_url: str | None = None, otlp_grpc: str | None = None
) -> FastAPI:
    """`otlp_http_url` and `otlp_grpc` are announced on /healthz, so a remote client can
    point services under test at this server knowing only its API URL."""
    engine = FlowEngine(store)

    app = FastAPI(
        title="tracebaton",
        version=__version__,
        summary="Trace-based integration assertions over OpenTelemetry spans.",
    )

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: answers whenever the server runs; never needs a token."""
        health = {"status": "ok", "version": __version__}
        if otlp_http_url:
            health["otlp_http"] = otlp_http_url
        if otlp_grpc:
            health["otlp_grpc"] = otlp_grpc
        return health

    @app.get("/api/traces", tags=["traces"])
    def list_traces(
        request: Request,
        service: str | None = Query(None, description="a span of the trace is in this service"),
        name: str | None = Query(None, description="a span name glob, e.g. `POST /checkout*`"),
        status: str | None = Query(None, description="ok | error | unset"),
        since: str | None = Query(None, description="look-back window, e.g. `15m`"),
        since_unix_nano: int | None = Query(None, ge=0),
        limit: int = Query(100, ge=1, le=10_000),
    ) -> dict[str, Any]:
        """Trace summaries, most recent first. `attr.<key>=<value>` filters by attribute equality."""
        status_code = None
        if status is not None:
            try:
                status_code = StatusCode[status.upper()]
            except KeyError:
                raise HTTPException(400, detail=f"status={status!r}: use ok, error or unset") from None
        since_ns = since_unix_nano
        if since is not None:
            try:
                since_ns = time.time_ns() - parse_duration_ns(since, what="since")
            except ConfigurationError as error:
                raise HTTPException(400, detail=str(error)) from None
        attributes = {
            key[5:]: value for key, value in request.query_params.items() if key.startswith("attr.")
        }
        summaries = store.traces(
            TraceQuery(
                service=service,
                name=name,
                attributes=attributes,
                status=status_code,
                since_unix_nano=since_ns,
                limit=limit,
            )
        )
        return {
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

    @app.post("/api/check", tags=["flows"])
    def check(
        spec: dict[str, Any] | str = Body(description="a flow spec (DESIGN §5) as JSON or YAML text"),
        trace_id: str | None = Body(None, description="32 hex digits; else the spec's `find` is used"),
        test_id: str | None = Body(None),
        session_id: str | None = Body(None),
    ) -> dict[str, Any]:
        """Judge a flow spec, waiting server-side up to the spec's `wait.timeout`."""
        try:
            flow_spec = parse_flow_spec(spec)
        except FlowSpecError as error:
            raise HTTPException(400, detail=str(error)) from None
        if trace_id is not None and not re.match(_TRACE_ID, trace_id):
            raise HTTPException(400, detail=f"trace_id {trace_id!r} is not 32 hex digits")
        if trace_id is None and flow_spec.find is None:
            raise HTTPException(
                400, detail="give trace_id, or a `find:` section in the spec to locate the trace"
            )
        result = engine.check(flow_spec, trace_id.lower() if trace_id else None)
        return result.to_json()

    @app.get("/api/traces/{trace_id}", tags=["traces"])
    def get_trace(
        trace_id: str = Path(description="32 hex digits", examples=["4bf92f3577b34da6a3ce929d0e0e4736"]),
    ) -> dict[str, Any]:
        """One trace: every stored span, re-sent duplicates dropped, ordered by start time."""
        if not re.match(_TRACE_ID, trace_id):
            raise HTTPException(
                400,
                detail=f"trace id {trace_id!r} is not 32 hex digits; copy it from a "
                "traceparent header (the second field) or a test failure message",
            )
        spans = store.trace(trace_id.lower())
        if not spans:
            raise HTTPException(
                404,
                detail=f"no span of trace {trace_id.lower()} is stored; check that the "
                "services export to this tracebaton and that retention has not pruned it",
            )
        return {"trace_id": trace_id.lower(), "spans": [span_json(s) for s in spans]}

    return app
