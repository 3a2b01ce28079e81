"""Helpers every route module shares: JSON responses, id and window parameters, error docs."""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
from fastapi import HTTPException
from fastapi.responses import Response

from tracebaton import ConfigurationError, parse_duration_ns
from tracebaton.collector import RunQuery, RunRecord, RunSummary, SpanStore

from ._models import TRACE_ID_PATTERN, Problem

_TRACE_ID = re.compile(TRACE_ID_PATTERN)

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "bad input: the message says what to change"},
    401: {"model": Problem, "description": "the server has a token and the request did not carry it"},
    422: {
        "model": Problem,
        "description": "the body or a parameter does not validate: the message says which",
    },
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "nothing stored by that id"}
}


def json_response(data: Any, status: int = 200) -> Response:
    """Large answers (a trace of thousands of spans) go out through orjson, not a model."""
    return Response(orjson.dumps(data), status, media_type="application/json")


def is_trace_id(text: str) -> bool:
    return bool(_TRACE_ID.match(text))


def trace_id_or_400(trace_id: str, what: str = "trace id") -> str:
    if not _TRACE_ID.match(trace_id):
        raise HTTPException(
            400,
            f"{what} {trace_id[:80]!r} is not 32 hex digits; copy it from a traceparent header "
            "(its second field) or from a test failure message",
        )
    return trace_id.lower()


def since_ns(since: str | None, since_unix_nano: int | None) -> int | None:
    if since is None:
        return since_unix_nano
    try:
        window = parse_duration_ns(since, what="query parameter since")
    except ConfigurationError as error:
        raise HTTPException(400, str(error)) from None
    return max(0, time.time_ns() - window)  # a window longer than the epoch: everything


def run_summary_json(summary: RunSummary) -> dict[str, Any]:
    return {
        "run_id": summary.run_id,
        "name": summary.name,
        "trace_id": summary.trace_id,
        "passed": summary.passed,
        "test_id": summary.test_id,
        "session_id": summary.session_id,
        "recorded_unix_nano": str(summary.recorded_unix_nano),
        "first_divergence": summary.first_divergence,
        "waited_ms": summary.waited_ms,
    }


def newest_run(store: SpanStore, trace_id: str) -> RunRecord | None:
    """The newest recorded run that covered `trace_id` (a valid id), as a Flow page shows it."""
    newest = store.runs(RunQuery(trace_id=trace_id, limit=1))
    return store.run(newest[0].run_id) if newest else None
