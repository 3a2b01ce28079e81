"""Jaeger's OTLP-based query API under /jaeger/api/v3 (DESIGN §7): what Jaeger UI asks for its
Search page (services, operations, trace summaries), and the rest of that API, trace search and
trace by id as OTLP JSON.

Routes as Jaeger's query service registers them (`apiv3/http_gateway.go`); answers in proto3
JSON, traces as OTLP JSON under `result` (the collector's encoder), errors as
`{"error": {"httpCode", "message"}}` with a message naming the parameter. A search is the v1
search (`search_traces`), so both APIs find the same traces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from tracebaton.collector import (
    SpanKind,
    SpanStore,
    StoredSpan,
    encode_export_request_json,
    export_request_from_spans,
)

from ._jaeger import search_traces
from ._jaeger_query import (
    BOOL_PATTERN,
    DURATION_PATTERN,
    LIMIT_PATTERN,
    SPAN_KINDS,
    TRACE_ID_PATTERN,
    JaegerBadRequest,
    jaeger_responses,
    parse_bool,
    parse_span_kind,
    parse_trace_id,
)
from ._jaeger_v3_models import V3Error, V3Operations, V3Services, V3Traces, V3TraceSummaries
from ._jaeger_v3_shapes import (
    ATTRIBUTES,
    DURATION_MAX,
    DURATION_MIN,
    OPERATION,
    SEARCH_DEPTH,
    SERVICE,
    SPAN_KIND,
    TIME_MAX,
    TIME_MIN,
    error_body,
    first,
    parse_rfc3339_ns,
    search_from,
    trace_summary,
)

_PREFIX = "/jaeger/api/v3"


class _NotFound(Exception):
    pass


def v3_problem(status: int, message: str) -> Response:
    return Response(error_body(status, message), status, media_type="application/json")


def _answer(compute: Callable[[], bytes]) -> Response:
    try:
        return Response(compute(), 200, media_type="application/json")
    except JaegerBadRequest as error:
        return v3_problem(400, str(error))
    except _NotFound as error:
        return v3_problem(404, str(error))


def _result(spans: list[StoredSpan]) -> bytes:
    """OTLP JSON `TracesData` under `result`, Jaeger's `GRPCGatewayWrapper`."""
    try:
        traces = encode_export_request_json(export_request_from_spans(spans))
    except ValueError as error:  # attribute values nested deeper than OTLP/JSON readers take
        raise JaegerBadRequest(f"this trace cannot be written as OTLP/JSON: {error}") from None
    return b'{"result":' + traces + b"}"


def _parameter(name: str, schema: dict[str, Any], description: str, *, where: str = "query",
               required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "description": description, "schema": schema}


# empty reads as absent, as Jaeger reads every v3 parameter
_TIME = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "maxLength": 0}]}
_SEARCH_PARAMETERS = [
    _parameter(SERVICE[0], {"type": "string"}, "a span of the trace is in this service"),
    _parameter(OPERATION[0], {"type": "string"}, "that span has this name"),
    {"name": ATTRIBUTES, "in": "query", "required": False,
     "description": 'a JSON object of strings, e.g. `{"http.status_code":"500"}`: that span carries each '
                    "(as v1's `tags`)",
     "content": {"application/json": {"schema": {"type": "object",
                                                 "additionalProperties": {"type": "string"}}}}},
    _parameter(TIME_MIN[0], _TIME, "that span started at or after this (RFC 3339; default two days ago)"),
    _parameter(TIME_MAX[0], _TIME, "… and at or before this (default now)"),
    _parameter(DURATION_MIN[0], {"type": "string", "pattern": DURATION_PATTERN},
               "that span lasted at least this long (Go: `100ms`, `1.5s`)"),
    _parameter(DURATION_MAX[0], {"type": "string", "pattern": DURATION_PATTERN}, "… and at most this long"),
    _parameter(SEARCH_DEPTH[0], {"type": "string", "pattern": LIMIT_PATTERN},
               "at most this many traces, most recent first (1 to 1500, default 100)"),
]
def _responses(ok: type, *, not_found: bool = False) -> dict[int | str, dict[str, Any]]:
    missing = "no span of that trace (or no trace of the search) is stored"
    return jaeger_responses(ok, "proto3 JSON", V3Error, missing if not_found else None)


def jaeger_v3_router(store: SpanStore) -> APIRouter:
    router = APIRouter(tags=["jaeger"])

    @router.get(f"{_PREFIX}/services", responses=_responses(V3Services))
    def services() -> Response:
        """`{"services": [...]}`: every service with a stored span, sorted."""
        return _answer(lambda: orjson.dumps({"services": store.services()}))

    @router.get(f"{_PREFIX}/operations", responses=_responses(V3Operations),
                openapi_extra={"parameters": [
                    _parameter("service", {"type": "string", "minLength": 1}, "the service", required=True),
                    _parameter(SPAN_KIND[0], {"type": "string", "enum": list(SPAN_KINDS)},
                               "only spans of this kind"),
                ]})
    def operations(request: Request) -> Response:
        """`{"operations": [{"name", "spanKind"}]}`: a service's span names and kinds (a span of no
        kind is `internal`, as Jaeger lists it)."""
        def compute() -> bytes:
            service = request.query_params.get("service")
            if not service:
                raise JaegerBadRequest(
                    "query parameter service is required: name the service whose operations to list, "
                    "e.g. /jaeger/api/v3/operations?service=cart (the services: /jaeger/api/v3/services)")
            kind_text, kind_name = first(request.query_params.get, SPAN_KIND)
            try:
                kind = parse_span_kind(kind_text)
            except JaegerBadRequest as error:
                raise JaegerBadRequest(str(error).replace("spanKind", kind_name, 1)) from None
            listed = [
                {"name": op.name,
                 "spanKind": "internal" if op.kind is SpanKind.UNSPECIFIED else op.kind.label}
                for op in store.operations(service)
                if kind is None or op.kind is kind
            ]
            return orjson.dumps({"operations": listed})
        return _answer(compute)

    @router.get(f"{_PREFIX}/trace-summaries", responses=_responses(V3TraceSummaries),
                openapi_extra={"parameters": _SEARCH_PARAMETERS})
    def trace_summaries(request: Request) -> Response:
        """`{"summaries": [...]}`: the search's traces, most recent first, each as Jaeger's
        TraceSummary (root service and operation, times in ns, span, error and orphan counts, per
        service counts): what Jaeger UI's Search page lists."""
        def compute() -> bytes:
            search = search_from(request.query_params.get)
            found = search_traces(store, search) if search.start_min_ns <= search.start_max_ns else []
            return orjson.dumps({"summaries": [trace_summary(trace_id, spans) for trace_id, spans in found]})
        return _answer(compute)

    @router.get(f"{_PREFIX}/traces", responses=_responses(V3Traces, not_found=True),
                openapi_extra={"parameters": _SEARCH_PARAMETERS})
    def traces(request: Request) -> Response:
        """The search's traces, together as one OTLP JSON `result`; 404 when none matches, as in Jaeger."""
        def compute() -> bytes:
            search = search_from(request.query_params.get)
            found = search_traces(store, search) if search.start_min_ns <= search.start_max_ns else []
            if not found:
                raise _NotFound("No traces found: no stored trace has a span matching every parameter of "
                                "the search; widen the time window or drop a parameter")
            return _result([span for _, spans in found for span in spans])
        return _answer(compute)

    @router.get(f"{_PREFIX}/traces/{{trace_id:jaeger_text}}", responses=_responses(V3Traces, not_found=True),
                openapi_extra={"parameters": [
                    _parameter("trace_id", {"type": "string", "pattern": TRACE_ID_PATTERN},
                               "1 to 32 hex digits (left-padded with zeros), or the id's bytes in base64",
                               where="path", required=True),
                    _parameter("startTime", _TIME, "accepted for Jaeger's clients; found by its id alone"),
                    _parameter("endTime", _TIME, "accepted for Jaeger's clients"),
                    _parameter("rawTraces", {"type": "string", "pattern": BOOL_PATTERN},
                               "accepted for Jaeger's clients; tracebaton never adjusts spans"),
                ]})
    def trace(request: Request) -> Response:
        """One trace as OTLP JSON under `result`."""
        def compute() -> bytes:
            try:
                wanted = parse_trace_id(request.path_params["trace_id"])
            except JaegerBadRequest as error:
                raise JaegerBadRequest(f"malformed parameter trace_id: {error}") from None
            get = request.query_params.get
            for names in (("startTime", "start_time"), ("endTime", "end_time")):
                text, name = first(get, names)
                parse_rfc3339_ns(name, text)
            raw, raw_name = first(get, ("rawTraces", "raw_traces"))
            parse_bool(raw_name, raw)
            spans = store.trace(wanted)
            if not spans:
                raise _NotFound(f"trace not found: no span of trace {wanted} is stored; check that the "
                                "services export to this tracebaton and that retention has not pruned it")
            return _result(spans)
        return _answer(compute)

    return router
