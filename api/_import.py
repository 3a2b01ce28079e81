"""`POST /api/import`: OTLP/JSON, or JSON Lines as the OpenTelemetry file exporter writes them
(one ExportTraceServiceRequest per line), into the store.

All or nothing: every line is decoded before anything is stored, and then all of them go to
the store as one request, which it commits in one transaction. So a bad line 7 answers 400
naming line 7, and nothing of that body is stored; a re-sent body reads back once (the store
drops re-sent spans on read).
"""

from __future__ import annotations

import asyncio

import orjson
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.concurrency import run_in_threadpool

from tracebaton import OtlpDecodeError
from tracebaton.collector import PROTOBUF, IngestResult, SpanStore, decode_export_request_json

from ._common import ERRORS, json_response
from ._models import ImportResponse, Problem

_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "an OTLP/JSON ExportTraceServiceRequest, or JSON Lines of them (one per line)",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
    }
}


NOT_JSON_FIX = (
    "import takes OTLP/JSON: an export request ({\"resourceSpans\": [...]}), or JSON Lines of them as "
    "the OpenTelemetry file exporter writes; a protobuf or compressed export is not taken here (an "
    "exporter sends protobuf to the OTLP receivers instead)"
)
"""What a body of no JSON at all must be instead (a file given to `tracebaton import` too)."""


def _decode_line(line: bytes, number: int) -> ExportTraceServiceRequest:
    try:
        return decode_export_request_json(line)
    except OtlpDecodeError as error:
        raise HTTPException(
            400, f"line {number}: {error}; fix that line (nothing of this body was stored)"
        ) from None


def parse_import(body: bytes) -> tuple[ExportTraceServiceRequest, int]:
    """The body's requests merged into one, and how many there were; HTTPException 400 if bad."""
    lines = body.split(b"\n")
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    if not numbered:
        raise HTTPException(
            400,
            "the body is empty; send an OTLP/JSON export request "
            '({"resourceSpans": [...]}) or JSON Lines of them',
        )
    try:
        orjson.loads(numbered[0][1])
        json_lines = True  # the first line is a whole JSON value: one request per line
    except orjson.JSONDecodeError:
        json_lines = False  # pretty-printed: the whole body is one document
    if json_lines:
        requests = [_decode_line(line, number) for number, line in numbered]
    else:
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise HTTPException(400, f"it is not JSON ({error}); {NOT_JSON_FIX}") from None
        try:
            requests = [decode_export_request_json(body)]
        except OtlpDecodeError as error:
            raise HTTPException(
                400,
                f"{error} (read as one JSON document, because its first line is not a JSON value of its own)",
            ) from None
    merged = ExportTraceServiceRequest()
    for request in requests:
        merged.resource_spans.extend(request.resource_spans)
    if not merged.resource_spans:
        _refuse_another_format([line for _, line in numbered] if json_lines else [body])
    return merged, len(requests)


def _refuse_another_format(documents: list[bytes]) -> None:
    """A body that carries no trace at all, whose objects have keys but no `resourceSpans`, is
    a file of another format (a Jaeger UI download, Zipkin, OTLP metrics or logs): storing its
    nothing and answering 200 would pass a wrong file off as imported."""
    keys: list[str] = []
    for document in documents:
        value = orjson.loads(document)
        if not isinstance(value, dict) or "resourceSpans" in value:
            return
        keys.extend(key for key in value if key not in keys)
    if keys:
        shown = ", ".join(repr(key) for key in keys[:5])
        raise HTTPException(
            400,
            f"no trace in it: it has no resourceSpans, only {shown}; {NOT_JSON_FIX}. A Jaeger UI "
            "download ({\"data\": [...]}), a Zipkin file and OTLP metrics or logs are other formats",
        )


def import_router(store: SpanStore) -> APIRouter:
    router = APIRouter(tags=["traces"], responses=ERRORS)

    @router.post(
        "/api/import",
        response_model=ImportResponse,
        openapi_extra=_BODY_DOC,
        responses={
            413: {"model": Problem, "description": "the body is over the size limit"},
            503: {"model": Problem, "description": "ingest is saturated: retry after Retry-After"},
        },
    )
    async def import_spans(request: Request) -> Response:
        """Store spans from a file: OTLP/JSON, or JSON Lines (the OpenTelemetry file exporter's
        format). All or nothing: a bad line is answered 400 with its number, storing nothing."""
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", ""):
            raise HTTPException(
                415, f"Content-Encoding {encoding!r} is not taken here; send the file uncompressed"
            )
        body = await request.body()
        merged, count = await run_in_threadpool(parse_import, body)
        future = await run_in_threadpool(store.ingest, merged.SerializeToString(), PROTOBUF)
        result: IngestResult = await asyncio.wrap_future(future)
        return json_response(
            {
                "requests": count,
                "accepted_spans": result.accepted_spans,
                "rejected_spans": result.rejected_spans,
                "message": result.error_message,
            }
        )

    return router
