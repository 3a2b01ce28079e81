"""Jaeger's /api/v3 query parameters and answers, as its query service reads and writes them
(`cmd/jaeger/internal/extension/jaegerquery/internal/apiv3/query_parser.go`, `http_gateway.go`,
`querysvc/summary.go`).

Parameters are v3's names for the v1 search (`query.serviceName` for `service`, times in
RFC 3339 for microseconds, `query.searchDepth` for `limit`), read into the same `TraceSearch`
with the same rules, so the two APIs find the same traces. Answers are proto3 JSON, which
leaves out every field at its default (a zero count, an empty name).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from tracebaton.collector import StatusCode, StoredSpan

from ._jaeger_query import (
    DEFAULT_SEARCH_LIMIT,
    MAX_NS,
    JaegerBadRequest,
    TraceSearch,
    parse_duration_ns,
    parse_limit,
    parse_tags,
    search_window,
)

RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))"
)

# v3's canonical names, then the snake_case aliases Jaeger still reads
SERVICE = ("query.serviceName", "query.service_name")
OPERATION = ("query.operationName", "query.operation_name")
TIME_MIN = ("query.startTimeMin", "query.start_time_min")
TIME_MAX = ("query.startTimeMax", "query.start_time_max")
SEARCH_DEPTH = ("query.searchDepth", "query.search_depth", "query.num_traces")
DURATION_MIN = ("query.durationMin", "query.duration_min")
DURATION_MAX = ("query.durationMax", "query.duration_max")
ATTRIBUTES = "query.attributes"
SPAN_KIND = ("spanKind", "span_kind")


def first(get: Callable[[str], str | None], names: Sequence[str]) -> tuple[str | None, str]:
    """The first of a parameter's names that is given (and not empty), as Jaeger prefers the
    canonical one, with the name it came under (for a message)."""
    for name in names:
        value = get(name)
        if value:
            return value, name
    return None, names[0]


def parse_rfc3339_ns(name: str, text: str | None) -> int | None:
    """An RFC 3339 time (Go's `time.RFC3339Nano`, as Jaeger reads v3's times) in ns since the
    epoch; None when absent."""
    if text is None:
        return None
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise JaegerBadRequest(
            f"malformed parameter {name}: {text[:60]!r} is not an RFC 3339 time; send e.g. "
            "2026-01-02T15:04:05.123Z (Jaeger UI sends the search window this way)"
        )
    year, month, day, hour, minute, second = (int(g) for g in match.group(*range(1, 7)))
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year or 1, month)[1]
            and hour < 24 and minute < 60 and second < 60):
        raise JaegerBadRequest(f"malformed parameter {name}: {text!r} is not a date and time of day")
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if match.group(8):
        offset = (int(match.group(9)) * 60 + int(match.group(10))) * 60
        seconds -= offset if match.group(8) == "+" else -offset
    fraction_ns = int((match.group(7) or "").ljust(9, "0")[:9])
    return max(0, min(MAX_NS, seconds * 10**9 + fraction_ns))


def search_from(get: Callable[[str], str | None]) -> TraceSearch:
    """A v3 trace search's parameters as the v1 search they mean. Unlike Jaeger, a missing
    time window is the last two days (v1's default), not a refusal."""
    service, _ = first(get, SERVICE)
    operation, _ = first(get, OPERATION)
    attributes = get(ATTRIBUTES)
    tags = parse_tags([], [attributes] if attributes else [], json_name=ATTRIBUTES)
    minimum_text, minimum_name = first(get, DURATION_MIN)
    maximum_text, maximum_name = first(get, DURATION_MAX)
    minimum = parse_duration_ns(minimum_name, minimum_text)
    maximum = parse_duration_ns(maximum_name, maximum_text)
    start_text, start_name = first(get, TIME_MIN)
    end_text, end_name = first(get, TIME_MAX)
    start, end = search_window(parse_rfc3339_ns(start_name, start_text), parse_rfc3339_ns(end_name, end_text),
                               None)
    depth, depth_name = first(get, SEARCH_DEPTH)
    limit = parse_limit(depth, name=depth_name) if depth else DEFAULT_SEARCH_LIMIT
    return TraceSearch(service=service, operation=operation, tags=tags, start_min_ns=start, start_max_ns=end,
                       duration_min_ns=minimum, duration_max_ns=maximum, limit=limit)


def _proto3(fields: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in fields.items() if value not in (0, "", None, [])}


def trace_summary(trace_id: str, spans: Sequence[StoredSpan]) -> dict[str, Any]:
    """Jaeger's `TraceSummary` of one trace: the earliest span without a parent as the root,
    counts per service sorted by name, orphans (a parent not in the trace)."""
    span_ids = {span.span_id for span in spans}
    services: dict[str, list[int]] = {}
    root: StoredSpan | None = None
    errors = orphans = 0
    for span in spans:
        counts = services.setdefault(span.service, [0, 0])
        counts[0] += 1
        if span.status_code is StatusCode.ERROR:
            counts[1] += 1
            errors += 1
        if span.parent_span_id is None:
            if root is None or span.start_unix_nano < root.start_unix_nano:
                root = span
        elif span.parent_span_id not in span_ids:
            orphans += 1
    return _proto3({
        "traceId": trace_id,
        "rootServiceName": root.service if root else "",
        "rootOperationName": root.name if root else "",
        "minStartTimeUnixNano": str(min(s.start_unix_nano for s in spans)) if spans else "",
        "maxEndTimeUnixNano": str(max(s.end_unix_nano for s in spans)) if spans else "",
        "spanCount": len(spans),
        "errorSpanCount": errors,
        "orphanSpanCount": orphans,
        # a name is written even when empty: Jaeger UI's schema requires it
        "services": [{"name": name, **_proto3({"spanCount": n, "errorSpanCount": e})}
                     for name, (n, e) in sorted(services.items())],
    })


def error_body(status: int, message: str) -> bytes:
    """grpc-gateway's error, as Jaeger's v3 HTTP gateway writes it."""
    return orjson.dumps({"error": {"httpCode": status, "message": message}})
