"""GET /api/service-map: the flow engine's service map over a time window, for the
dashboard's Map page (Jaeger's dependencies answer from the same map)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from tracebaton import ConfigurationError, parse_duration_ns, whole_number
from tracebaton.assertions import MAP_MAX_TRACES, ServiceMap, ServiceMapper

from ._common import ERRORS, json_response

MAX_WINDOW_NS = 31 * 24 * 3600 * 10**9
"""A month: far longer than retention keeps spans by default, short enough to stay a window."""
DEFAULT_WINDOW = "1h"


def _nanos(name: str, text: str | None) -> int | None:
    if text is None:
        return None
    value = whole_number(text)
    if value is None or len(text) > 19:
        raise HTTPException(
            422, f"query parameter {name}: {text[:40]!r} is not a time in nanoseconds since the epoch; "
                 "write a whole number such as 1700000000000000000, or use window=15m",
        )
    return value


def map_window(window: str | None, start: str | None, end: str | None, now_ns: int) -> tuple[int, int]:
    """[start, end] in ns: `window` back from `end` (default now), or `start` to `end`."""
    start_ns, end_ns = _nanos("start_unix_nano", start), _nanos("end_unix_nano", end)
    if window is not None and start_ns is not None:
        raise HTTPException(422, "give either window (back from end_unix_nano or now) or start_unix_nano "
                                 f"(to end_unix_nano or now), not both: got window={window[:40]!r} too")
    end_ns = now_ns if end_ns is None else end_ns
    if start_ns is None:
        try:
            length = parse_duration_ns(window or DEFAULT_WINDOW, what="query parameter window")
        except ConfigurationError as error:
            raise HTTPException(422, str(error)) from None
        if length <= 0:
            raise HTTPException(422, f"query parameter window: {window!r} holds no time; give a length "
                                     "back from now, e.g. 15m or 1h")
        if length > MAX_WINDOW_NS:
            raise HTTPException(422, f"query parameter window: {window!r} is longer than 31 days (744h); "
                                     "pick a shorter window")
        start_ns = max(0, end_ns - length)
    if start_ns >= end_ns:
        raise HTTPException(422, f"start_unix_nano {start_ns} is not before end_unix_nano {end_ns}; "
                                 "swap them or widen the window")
    if end_ns - start_ns > MAX_WINDOW_NS:
        raise HTTPException(422, "the window from start_unix_nano to end_unix_nano is longer than 31 days; "
                                 "narrow it")
    return start_ns, end_ns


def service_map_json(found: ServiceMap, start_ns: int, end_ns: int, took_ms: float) -> dict[str, Any]:
    return {
        "start_unix_nano": str(start_ns),
        "end_unix_nano": str(end_ns),
        "traces": found.traces,
        "truncated": found.truncated,
        "pending": found.pending,
        "max_traces": MAP_MAX_TRACES,
        "took_ms": round(took_ms, 1),
        "services": [{"name": name, "depth": depth} for name, depth in sorted(found.depths.items())],
        "links": [
            {
                "hop": link.text,
                "caller": link.caller,
                "callee": link.callee,
                "async": link.asynchronous,
                "calls": link.calls,
                "errors": link.errors,
                "error_rate": round(link.error_rate, 4),
                "p50_ns": str(link.p50_ns),
                "p99_ns": str(link.p99_ns),
            }
            for link in found.links
        ],
    }


def service_map_router(mapper: ServiceMapper) -> APIRouter:
    router = APIRouter(tags=["service map"], responses=ERRORS)

    @router.get("/api/service-map")
    def service_map(
        window: str | None = Query(None, description="how far back from the end: 15m, 1h, 24h (default 1h)"),
        start_unix_nano: str | None = Query(None, description="a custom window's start (instead of window)"),
        end_unix_nano: str | None = Query(None, description="the window's end (default now)"),
    ) -> Response:
        """Services and the hops between them (DESIGN §4) over the traces of a time window, the
        most recent `MAP_MAX_TRACES`: per hop its calls, failed calls, error rate and the caller
        span's p50 and p99 duration; per service its call depth."""
        started = time.perf_counter()
        start_ns, end_ns = map_window(window, start_unix_nano, end_unix_nano, time.time_ns())
        found = mapper.service_map(start_ns, end_ns)
        return json_response(service_map_json(found, start_ns, end_ns, (time.perf_counter() - started) * 1e3))

    return router
