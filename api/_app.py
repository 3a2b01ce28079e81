"""The REST API and dashboard server (FastAPI), over any SpanStore."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, HTTPException, Path

from tracebaton import __version__
from tracebaton.collector import SpanStore

from ._render import span_json

_TRACE_ID = r"^[0-9a-fA-F]{32}$"


def create_app(store: SpanStore) -> FastAPI:
    app = FastAPI(
        title="tracebaton",
        version=__version__,
        summary="Trace-based integration assertions over OpenTelemetry spans.",
    )

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """Liveness: answers whenever the server runs; never needs a token."""
        return {"status": "ok", "version": __version__}

    @app.get("/api/traces/{trace_id}", tags=["traces"])
    def get_trace(
        trace_id: str = Path(description="32 hex digits", examples=["4bf92f3577b34da6a3ce929d0e0e4736"]),
    ) -> dict[str, Any]:
        """One trace: every stored span, re-sent duplicates dropped, ordered by start time."""
        if not re.match(_TRACE_ID, trace_id):
            raise HTTPException(
                400, detail=f"trace id {trace_id!r} is not 32 hex digits; copy it from a "
                            "traceparent header (the second field) or a test failure message")
        spans = store.trace(trace_id.lower())
        if not spans:
            raise HTTPException(
                404, detail=f"no span of trace {trace_id.lower()} is stored; check that the "
                            "services export to this tracebaton and that retention has not pruned it")
        return {"trace_id": trace_id.lower(), "spans": [span_json(s) for s in spans]}

    return app
