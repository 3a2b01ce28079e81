"""OTLP/HTTP: POST /v1/traces, protobuf or JSON, optionally gzip, as the spec says.

The body is read as a stream and refused past the limit (compressed bytes and inflated
bytes alike), so no request can make the server buffer more than the limit. Decoding
runs on a worker thread: the event loop only moves bytes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tracebaton import OtlpDecodeError, StoreError, StoreSaturatedError, whole_number

from ._auth import UNAUTHORIZED, bearer_matches
from ._ingest import BodyTooLargeError, GzipInflater, export_response, too_large_message
from ._model import IngestResult
from ._protocol import JSON, PROTOBUF, SpanStore

log = logging.getLogger("tracebaton.collector")


def _status_response(content_type: str, http_status: int, code: int, message: str,
                     retry_after_s: float | None = None) -> Response:
    headers = {}
    status = status_pb2.Status(code=code, message=message)
    if retry_after_s is not None:
        headers["Retry-After"] = str(max(1, round(retry_after_s)))
        detail = status.details.add()
        detail.Pack(error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=max(1, round(retry_after_s)))))
    if content_type == PROTOBUF:
        return Response(status.SerializeToString(), http_status, headers, media_type=PROTOBUF)
    body: dict[str, Any] = {"code": code, "message": message}
    if retry_after_s is not None:
        body["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                            "retryDelay": f"{max(1, round(retry_after_s))}s"}]
    return Response(orjson.dumps(body), http_status, headers, media_type=JSON)


def _success_response(content_type: str, result: IngestResult) -> Response:
    response = export_response(result)
    if content_type == PROTOBUF:
        return Response(response.SerializeToString(), 200, media_type=PROTOBUF)
    body: dict[str, Any] = {}
    if result.rejected_spans:
        body["partialSuccess"] = {"rejectedSpans": str(result.rejected_spans),
                                  "errorMessage": result.error_message}
    return Response(orjson.dumps(body), 200, media_type=JSON)


async def _read_body(request: Request, encoding: str, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    size = None if declared is None else whole_number(declared)
    if size is not None and size > limit:
        raise BodyTooLargeError(too_large_message(limit))
    if encoding == "gzip":
        inflater = GzipInflater(limit)
        async for chunk in request.stream():
            inflater.feed(chunk)
        return inflater.finish()
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise BodyTooLargeError(too_large_message(limit))
    return bytes(received)


def otlp_http_app(store: SpanStore, *, max_body_bytes: int,
                  ingest_token: str | None = None) -> Starlette:
    async def export(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        authorization = request.headers.get("authorization")
        if ingest_token is not None and not bearer_matches(authorization, ingest_token):
            return _status_response(JSON if content_type == JSON else PROTOBUF, 401,
                                    code_pb2.UNAUTHENTICATED, UNAUTHORIZED)
        if content_type not in (PROTOBUF, JSON):
            return _status_response(
                JSON, 415, code_pb2.INVALID_ARGUMENT,
                f"Content-Type {content_type or '(none)'!r} is not OTLP; send "
                f"{PROTOBUF} or {JSON}")
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("gzip", "identity", ""):
            return _status_response(
                content_type, 415, code_pb2.INVALID_ARGUMENT,
                f"Content-Encoding {encoding!r} is not supported; send gzip or no encoding")
        try:
            body = await _read_body(request, encoding, max_body_bytes)
            future = await run_in_threadpool(store.ingest, body, content_type)
            result: IngestResult = await asyncio.wrap_future(future)
        except BodyTooLargeError as error:
            return _status_response(content_type, 413, code_pb2.RESOURCE_EXHAUSTED, str(error))
        except OtlpDecodeError as error:
            return _status_response(content_type, 400, code_pb2.INVALID_ARGUMENT, str(error))
        except StoreSaturatedError as error:
            return _status_response(content_type, 503, code_pb2.UNAVAILABLE, str(error),
                                    retry_after_s=error.retry_after_s)
        except StoreError as error:
            log.warning("OTLP/HTTP export not stored: %s", error)
            return _status_response(content_type, 503, code_pb2.UNAVAILABLE, str(error),
                                    retry_after_s=1.0)
        return _success_response(content_type, result)

    return Starlette(routes=[Route("/v1/traces", export, methods=["POST"])],
                     exception_handlers={404: _not_here, 405: _not_here})


_SIGNALS = {"/v1/metrics": "METRICS", "/v1/logs": "LOGS"}


async def _not_here(request: Request, _: Exception) -> Response:
    """What this port is for, to an exporter of other signals or a client at the wrong port."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    path = request.url.path
    if path in _SIGNALS:
        message = (f"tracebaton receives traces only, not {path}: set "
                   f"OTEL_{_SIGNALS[path]}_EXPORTER=none in the service, or send them to an "
                   "OpenTelemetry Collector")
        return _status_response(content_type, 404, code_pb2.UNIMPLEMENTED, message)
    if path == "/v1/traces":
        message = f"{request.method} /v1/traces: OTLP export requests are POSTed here"
        return _status_response(content_type, 405, code_pb2.UNIMPLEMENTED, message)
    message = (f"{path} is not on tracebaton's OTLP/HTTP receiver, which takes POST /v1/traces "
               "only; the REST API and the dashboard are on the API port (7357 by default; the "
               "server's ready line names it)")
    return _status_response(content_type, 404, code_pb2.NOT_FOUND, message)
