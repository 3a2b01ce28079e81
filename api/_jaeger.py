"""Jaeger-compatible reads under /jaeger/ (DESIGN §7): the HTTP JSON query API that Jaeger UI
and Grafana's Jaeger data source call, over any store through the `SpanStore` protocol.

Routes as Jaeger's query service registers them under `/api` (`cmd/query/app/http_handler.go`):
services, operations (both forms), trace search, trace by id, dependencies (v3: `_jaeger_v3`). Answers and
errors are Jaeger's envelope, `{"data", "total", "limit", "offset", "errors"}`; bad input is a
400 whose message names the parameter. Dependencies are the flow engine's hops
(DESIGN §4), counted by the service map over the most recent traces of the window.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.convertors import PathConvertor, register_url_convertor

from tracebaton.assertions import MAP_MAX_TRACES, ServiceMapper
from tracebaton.collector import SpanKind, SpanStore, StoredSpan

from ._jaeger_json import envelope, error_body, trace_json
from ._jaeger_models import (
    DEPENDENCIES_PARAMETERS,
    OPERATIONS_PARAMETERS,
    PRETTY,
    RAW,
    SEARCH_PARAMETERS,
    SERVICE_PATH,
    TIME_HINT,
    TRACE_ID_PATH,
    JaegerDependencies,
    JaegerNames,
    JaegerOperations,
    JaegerProblem,
    JaegerTraces,
    query,
)
from ._jaeger_query import (
    DEFAULT_DEPENDENCY_LOOKBACK_MS,
    MAX_LISTED,
    MAX_NS,
    MICROS_PATTERN,
    JaegerBadRequest,
    TraceSearch,
    jaeger_responses,
    parse_bool,
    parse_duration_ns,
    parse_limit,
    parse_lookback_ns,
    parse_micros_ns,
    parse_millis,
    parse_span_kind,
    parse_tags,
    parse_trace_id,
    search_window,
)

SEARCH_MAX_TRACES_READ = 500
"""A search reads at most this many candidate traces in full to apply what the store cannot
filter (time window, durations, derived tags): the most recent first."""
SEARCH_MAX_SPANS = 200_000
ARRIVAL_SLACK_NS = 60 * 10**9
"""Traces are preselected by arrival time; a service's clock may run this far ahead."""

_PREFIX = "/jaeger/api"
_ROUTES = ("services", "services/{service}/operations", "operations?service=", "traces?service=",
           "traces/{traceID}", "dependencies", "v3/services", "v3/operations?service=",
           "v3/trace-summaries", "v3/traces", "v3/traces/{trace_id}")


class _NotFound(Exception):
    pass


class _AnyText(PathConvertor):
    """A path segment or more, newlines included: Jaeger's clients percent-encode a service
    name or trace id whole (Starlette's `path` stops at a newline, and the route would vanish)."""

    regex = r"[\s\S]*"


register_url_convertor("jaeger_text", _AnyText())


def _documented(ok: type, *, not_found: bool = False) -> dict[int | str, dict[str, Any]]:
    return jaeger_responses(ok, "Jaeger's envelope, `data` holding the answer", JaegerProblem,
                            "no span of that trace is stored" if not_found else None)


def _answer(request: Request, compute: Callable[[], dict[str, Any]]) -> Response:
    """Run a route's work; its refusals become Jaeger's error envelope."""
    try:
        body, status = compute(), 200
    except JaegerBadRequest as error:
        return jaeger_problem(400, str(error))
    except _NotFound as error:
        return jaeger_problem(404, str(error))
    pretty = request.query_params.get("prettyPrint", "")
    option = orjson.OPT_INDENT_2 if pretty not in ("", "false") else 0
    return Response(orjson.dumps(body, option=option), status, media_type="application/json")


def jaeger_problem(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(status, message), status, headers, media_type="application/json")


def _one(request: Request, name: str) -> str | None:
    """A parameter given once (Jaeger reads the first of several)."""
    values = request.query_params.getlist(name)
    return values[0] if values else None


def _spans_of(store: SpanStore, trace_ids: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    data, errors = [], []
    for trace_id in dict.fromkeys(trace_ids):
        spans = store.trace(trace_id)
        if spans:
            data.append(trace_json(trace_id, spans))
        else:
            errors.append({"msg": "trace not found", "traceID": trace_id})
    return data, errors


def search_traces(store: SpanStore, search: TraceSearch) -> list[tuple[str, list[StoredSpan]]]:
    """The traces with a span matching `search`, most recent arrival first, at most its limit.

    The store filters what it can (service, operation, tags as span attributes, status, a
    window of arrival); the candidates are then read in full and matched span by span, up to
    SEARCH_MAX_TRACES_READ of them. When the tags find no candidate at all (a tag on a
    resource, an event or a link), the recent traces of the rest of the query are read."""
    found: list[tuple[str, list[StoredSpan]]] = []
    seen: set[str] = set()
    read = spans_read = 0
    queries = search.store_queries(limit=SEARCH_MAX_TRACES_READ, arrival_slack_ns=ARRIVAL_SLACK_NS)
    for candidates_query in queries:
        summaries = store.traces(candidates_query)
        for summary in summaries:
            if len(found) >= search.limit or read >= SEARCH_MAX_TRACES_READ or spans_read >= SEARCH_MAX_SPANS:
                return found
            if summary.trace_id in seen or not search.may_match(summary):
                continue
            seen.add(summary.trace_id)
            spans = store.trace(summary.trace_id)
            read, spans_read = read + 1, spans_read + len(spans)
            if any(search.span_matches(span) for span in spans):
                found.append((summary.trace_id, spans))
        if summaries:
            break
    return found


def jaeger_router(store: SpanStore, mapper: ServiceMapper) -> APIRouter:
    router = APIRouter(tags=["jaeger"])

    @router.get(f"{_PREFIX}/services", responses=_documented(JaegerNames),
                openapi_extra={"parameters": [PRETTY]})
    def services(request: Request) -> Response:
        """Every service with a stored span, sorted."""
        def compute() -> dict[str, Any]:
            names = store.services()
            return envelope(names, total=len(names))
        return _answer(request, compute)

    @router.get(f"{_PREFIX}/services/{{service:jaeger_text}}/operations", responses=_documented(JaegerNames),
                openapi_extra={"parameters": [SERVICE_PATH, PRETTY]})
    def service_operations(request: Request) -> Response:
        """The span names a service has used (every kind), sorted: Jaeger's older form."""
        def compute() -> dict[str, Any]:
            names = sorted({op.name for op in store.operations(request.path_params["service"])})
            return envelope(names, total=len(names))
        return _answer(request, compute)

    @router.get(f"{_PREFIX}/operations", responses=_documented(JaegerOperations),
                openapi_extra={"parameters": OPERATIONS_PARAMETERS})
    def operations(request: Request) -> Response:
        """The span names and kinds a service has used, sorted by name then kind."""
        def compute() -> dict[str, Any]:
            service = _one(request, "service")
            if not service:
                raise JaegerBadRequest(
                    "query parameter service is required: name the service whose operations to list, "
                    "e.g. /jaeger/api/operations?service=cart (the services: /jaeger/api/services)"
                )
            kind = parse_span_kind(_one(request, "spanKind"))
            ops = [
                {"name": op.name, "spanKind": "" if op.kind is SpanKind.UNSPECIFIED else op.kind.label}
                for op in store.operations(service)
                if kind is None or op.kind is kind
            ]
            return envelope(ops, total=len(ops))
        return _answer(request, compute)

    @router.get(f"{_PREFIX}/traces", responses=_documented(JaegerTraces),
                openapi_extra={"parameters": SEARCH_PARAMETERS})
    def traces(request: Request) -> Response:
        """Trace search, as Jaeger UI's Search page and Grafana's search query send it: the most
        recent traces with one span matching every given field; or, with `traceID`, those traces."""
        def compute() -> dict[str, Any]:
            params = request.query_params
            parse_bool("raw", _one(request, "raw"))
            trace_ids = params.getlist("traceID")
            if len(trace_ids) > MAX_LISTED:
                raise JaegerBadRequest(
                    f"query parameter traceID is given {len(trace_ids)} times; send at most {MAX_LISTED}"
                )
            wanted = [parse_trace_id(t) for t in trace_ids]
            tags = parse_tags(params.getlist("tag"), params.getlist("tags"))
            minimum = parse_duration_ns("minDuration", _one(request, "minDuration"))
            maximum = parse_duration_ns("maxDuration", _one(request, "maxDuration"))
            start, end = search_window(
                parse_micros_ns("start", _one(request, "start")),
                parse_micros_ns("end", _one(request, "end")),
                parse_lookback_ns(_one(request, "lookback")),
            )
            limit = parse_limit(_one(request, "limit"))
            if wanted:  # every parameter is still checked first, as Jaeger does
                data, errors = _spans_of(store, wanted)
                return envelope(data, errors=errors)
            search = TraceSearch(
                service=_one(request, "service") or None,
                operation=_one(request, "operation") or None,
                tags=tags,
                start_min_ns=start,
                start_max_ns=end,
                duration_min_ns=minimum,
                duration_max_ns=maximum,
                limit=limit,
            )
            if minimum and maximum and maximum < minimum:
                # Each is well formed, so this is no 400 (the OpenAPI document cannot say that
                # one bounds the other); the answer is empty and says why, as Jaeger's envelope
                # carries a search's partial errors.
                return envelope([], errors=[{"msg": (
                    f"query parameter maxDuration ({_one(request, 'maxDuration')}) is shorter than "
                    f"minDuration ({_one(request, 'minDuration')}): no span can match; swap them or drop one"
                )}])
            return envelope([trace_json(trace_id, spans) for trace_id, spans in search_traces(store, search)])
        return _answer(request, compute)

    @router.get(
        f"{_PREFIX}/traces/{{traceID:jaeger_text}}", responses=_documented(JaegerTraces, not_found=True),
        openapi_extra={"parameters": [TRACE_ID_PATH, query("start", MICROS_PATTERN, TIME_HINT),
                                      query("end", MICROS_PATTERN, TIME_HINT), RAW, PRETTY]},
    )
    def trace(request: Request) -> Response:
        """One trace in Jaeger's JSON (`data` holds it alone), whatever the time window."""
        def compute() -> dict[str, Any]:
            trace_id = parse_trace_id(request.path_params["traceID"])
            # Grafana sends milliseconds here and Jaeger reads microseconds; both are only a
            # hint for a storage that needs a window, and tracebaton finds a trace by its id.
            parse_micros_ns("start", _one(request, "start"))
            parse_micros_ns("end", _one(request, "end"))
            parse_bool("raw", _one(request, "raw"))
            spans = store.trace(trace_id)
            if not spans:
                raise _NotFound(
                    f"trace not found: no span of trace {trace_id} is stored; check that the services "
                    "export to this tracebaton and that retention has not pruned it"
                )
            return envelope([trace_json(trace_id, spans)])
        return _answer(request, compute)

    @router.get(
        f"{_PREFIX}/dependencies", responses=_documented(JaegerDependencies),
        openapi_extra={"parameters": DEPENDENCIES_PARAMETERS},
        description="Service links (`parent` calls `child`, `callCount` times) in the window `lookback` "
        f"before `endTs`: the service map's hops (DESIGN §4) of the window's most recent {MAP_MAX_TRACES} "
        "traces.",
    )
    def dependencies(request: Request) -> Response:
        def compute() -> dict[str, Any]:
            end_ms = parse_millis("endTs", _one(request, "endTs"))
            lookback_ms = parse_millis("lookback", _one(request, "lookback"), example="3600000 (an hour)")
            end_ns = time.time_ns() if end_ms is None else min(MAX_NS, end_ms * 10**6)
            window_ns = (DEFAULT_DEPENDENCY_LOOKBACK_MS if lookback_ms is None else lookback_ms) * 10**6
            service = _one(request, "service") or None
            counts: Counter[tuple[str, str]] = Counter()
            for link in mapper.service_map(max(0, end_ns - window_ns), end_ns).links:
                counts[(link.caller, link.callee)] += link.calls  # Jaeger has no async links
            links = [
                {"parent": parent, "child": child, "callCount": count}
                for (parent, child), count in sorted(counts.items())
                if service is None or service in (parent, child)
            ]
            return envelope(links)
        return _answer(request, compute)

    @router.get(f"{_PREFIX}/{{rest:jaeger_text}}", include_in_schema=False)
    def unknown(request: Request, rest: str) -> Response:
        routes = ", ".join(f"{_PREFIX}/{route}" for route in _ROUTES)
        return jaeger_problem(404, f"no Jaeger route {_PREFIX}/{rest[:80]}; tracebaton serves Jaeger's "
                                   f"query API (v1 and v3): {routes}")

    return router
