"""The Jaeger-compatible routes' shapes for the OpenAPI document: Jaeger's JSON model
(`internal/uimodel`) and envelope as pydantic models, and each query parameter with the
pattern its parser holds it to (from `_jaeger_query`, so the document and the parser agree).

Answers are written from dicts (`_jaeger_json`); these models document them, and the API
tests and schemathesis check that what is sent conforms.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from ._jaeger_query import (
    BOOL_PATTERN,
    DURATION_PATTERN,
    LIMIT_PATTERN,
    LOOKBACK_PATTERN,
    MAX_LISTED,
    MICROS_PATTERN,
    MILLIS_PATTERN,
    SPAN_KINDS,
    TRACE_ID_PATTERN,
)


class JaegerError(BaseModel):
    code: int | None = Field(None, description="the HTTP status (absent for a trace a search did not find)")
    msg: str = Field(description="what was wrong and what to send instead")
    traceID: str | None = Field(None, description="the trace a `traceID` search did not find")


class _Envelope(BaseModel):
    total: int = Field(description="how many items `data` holds for lists of names; 0 for traces, "
                                   "as in Jaeger")
    limit: int
    offset: int
    errors: list[JaegerError] | None


class JaegerProblem(_Envelope):
    """Every 4xx: Jaeger's envelope with `data: null` and the message in `errors`."""

    data: None


class JaegerKeyValue(BaseModel):
    key: str
    type: Literal["string", "bool", "int64", "float64", "binary"]
    value: Any = Field(description="int64 past ±(2^53 − 1) is a decimal string; binary is base64")


class JaegerReference(BaseModel):
    refType: Literal["CHILD_OF", "FOLLOWS_FROM"]
    traceID: str
    spanID: str


class JaegerLog(BaseModel):
    timestamp: int = Field(description="microseconds since the epoch")
    fields: list[JaegerKeyValue]


class JaegerSpan(BaseModel):
    traceID: str
    spanID: str
    operationName: str
    references: list[JaegerReference]
    startTime: int = Field(description="microseconds since the epoch")
    duration: int = Field(description="microseconds")
    tags: list[JaegerKeyValue]
    logs: list[JaegerLog]
    processID: str
    warnings: list[str] | None


class JaegerProcess(BaseModel):
    serviceName: str
    tags: list[JaegerKeyValue]


class JaegerTrace(BaseModel):
    traceID: str
    spans: list[JaegerSpan]
    processes: dict[str, JaegerProcess]
    warnings: list[str] | None


class JaegerTraces(_Envelope):
    data: list[JaegerTrace]


class JaegerNames(_Envelope):
    data: list[str]


class JaegerOperation(BaseModel):
    name: str
    spanKind: Literal["server", "client", "producer", "consumer", "internal", ""]


class JaegerOperations(_Envelope):
    data: list[JaegerOperation]


class JaegerDependencyLink(BaseModel):
    parent: str
    child: str
    callCount: int


class JaegerDependencies(_Envelope):
    data: list[JaegerDependencyLink]


def _parameter(name: str, where: str, schema: dict[str, Any], description: str, *,
               required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "description": description, "schema": schema}


def query(name: str, pattern: str, description: str) -> dict[str, Any]:
    return _parameter(name, "query", {"type": "string", "pattern": pattern}, description)


TRACE_ID_PATH = _parameter(
    "traceID", "path", {"type": "string", "pattern": TRACE_ID_PATTERN},
    "1 to 32 hex digits (left-padded with zeros, as Jaeger does), or the id's bytes in base64",
    required=True,
)
SERVICE_PATH = _parameter("service", "path", {"type": "string"}, "a service name", required=True)
PRETTY = _parameter("prettyPrint", "query", {"type": "string"}, "any value but `false`: indented JSON")
RAW = query("raw", BOOL_PATTERN, "accepted for Jaeger's clients; tracebaton never adjusts spans")
TIME_HINT = ("accepted for Jaeger's clients (microseconds since the epoch); a trace is found by its id "
             "alone")

SEARCH_PARAMETERS = [
    _parameter("service", "query", {"type": "string"}, "a span of the trace is in this service"),
    _parameter("operation", "query", {"type": "string"}, "that span has this name (exactly)"),
    _parameter(
        "tags", "query",
        {"type": "object", "additionalProperties": {"type": "string"}},
        'a JSON object of strings, e.g. `{"http.status_code":"500","error":"true"}`: that span, its '
        "resource, events or links carry each (`error`, `span.kind`, `otel.status_code`, "
        "`otel.scope.name` match the span's fields; `resource.<key>` only the resource)",
    ),
    _parameter(
        "tag", "query",
        {"type": "array", "maxItems": MAX_LISTED, "items": {"type": "string", "pattern": ":"}},
        "repeatable `key:value`, the same as one entry of `tags`",
    ),
    query("minDuration", DURATION_PATTERN, "that span lasted at least this long (Go: `100ms`, `1.5s`)"),
    query("maxDuration", DURATION_PATTERN, "… and at most this long"),
    query("start", MICROS_PATTERN, "that span started at or after this (microseconds since the epoch; "
                                   "default: `lookback` before now, or two days)"),
    query("end", MICROS_PATTERN, "… and at or before this (default: now)"),
    query("lookback", LOOKBACK_PATTERN, "without `start`: the window before now (`1h`, `2d`); `custom`: "
                                        "use start and end"),
    query("limit", LIMIT_PATTERN, "at most this many traces, most recent first (default 100)"),
    _parameter(
        "traceID", "query",
        {"type": "array", "maxItems": MAX_LISTED, "items": {"type": "string", "pattern": TRACE_ID_PATTERN}},
        "repeatable: fetch these traces instead of searching; one not found is listed in `errors`",
    ),
    RAW,
    PRETTY,
]
# `tags` is JSON inside a query parameter: OpenAPI says so with `content`, not `schema`
SEARCH_PARAMETERS[2] = {
    **{k: v for k, v in SEARCH_PARAMETERS[2].items() if k != "schema"},
    "content": {"application/json": {"schema": SEARCH_PARAMETERS[2]["schema"]}},
}

OPERATIONS_PARAMETERS = [
    _parameter("service", "query", {"type": "string", "minLength": 1}, "the service", required=True),
    _parameter("spanKind", "query", {"type": "string", "enum": list(SPAN_KINDS)},
               "only operations of spans of this kind"),
    PRETTY,
]

DEPENDENCIES_PARAMETERS = [
    query("endTs", MILLIS_PATTERN, "the window's end, milliseconds since the epoch (default: now)"),
    query("lookback", MILLIS_PATTERN, "the window's length in milliseconds (default: a day)"),
    _parameter("service", "query", {"type": "string"}, "only links from or to this service"),
    PRETTY,
]
