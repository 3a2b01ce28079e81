"""What both receivers share: bounded bodies, decoding by content type, status messages."""

from __future__ import annotations

import threading
import zlib
from concurrent.futures import Future
from typing import TYPE_CHECKING, cast

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tracebaton import OtlpDecodeError

from ._columns import span_batch
from ._model import IngestResult
from ._otlp_json_decode import decode_export_request_json
from ._store import DuckDBSpanStore

if TYPE_CHECKING:
    from ._decode_pool import DecodePool

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class BodyTooLargeError(Exception):
    """The body exceeds the limit (after decompression): 413 / RESOURCE_EXHAUSTED."""


class UnsupportedMediaError(Exception):
    """Unknown Content-Type or Content-Encoding: 415."""


def too_large_message(limit: int) -> str:
    return (
        f"request body exceeds {limit} bytes after decompression; export smaller batches "
        "(OTEL_BSP_MAX_EXPORT_BATCH_SIZE) or raise the server's TRACEBATON_MAX_BODY_BYTES"
    )


class GzipInflater:
    """Inflates a gzip stream chunk by chunk, refusing past `limit` output bytes.

    A gzip bomb stops at limit + 1 bytes of output: it is never inflated whole.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._out = bytearray()

    def feed(self, chunk: bytes) -> None:
        while chunk:
            if self._inflater.eof:
                # Concatenated members are valid gzip (RFC 1952): read the next one too.
                self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                data = self._inflater.decompress(chunk, self._limit + 1 - len(self._out))
            except zlib.error as error:
                raise OtlpDecodeError(
                    f"Content-Encoding is gzip but the body is not valid gzip ({error}); "
                    "compress the body or drop the Content-Encoding header") from None
            self._out += data
            if len(self._out) > self._limit or self._inflater.unconsumed_tail:
                raise BodyTooLargeError(too_large_message(self._limit))
            chunk = self._inflater.unused_data if self._inflater.eof else b""

    def finish(self) -> bytes:
        if not self._inflater.eof:
            raise OtlpDecodeError("gzip body is truncated; send the whole compressed body")
        return bytes(self._out)


def protobuf_body(body: bytes | bytearray, content_type: str) -> bytes | bytearray:
    """The request as protobuf bytes that are known to parse, attributes and events included.

    A protobuf body is parsed whole once, only to be checked: the store keeps each span's
    bytes as sent (see `_column_messages`), and a span that would not decode when read
    must be refused now, while the exporter can still hear of it.
    """
    if content_type == PROTOBUF:
        try:
            # upb reads any buffer; the stubs say bytes (a worker receives into a bytearray)
            ExportTraceServiceRequest.FromString(cast(bytes, body))
        except DecodeError as error:
            raise OtlpDecodeError(
                f"body is not an OTLP ExportTraceServiceRequest in protobuf ({error}); "
                "send a serialized request, or OTLP/JSON with Content-Type application/json"
            ) from None
        return body
    return bytes(decode_export_request_json(bytes(body)).SerializeToString())


# One request is decoded at a time. DuckDB's Python client takes the GIL back after every
# execution task to check for Ctrl-C; with several decoding threads holding the GIL in
# turn, each of those checks waits out a switch interval and a 10 ms commit takes 200 ms.
# Decoding one request at a time leaves the writer one rival, not thirty-two.
_DECODE_SLOT = threading.Lock()


def decode_and_submit(store: DuckDBSpanStore, body: bytes, content_type: str,
                      pool: DecodePool | None = None) -> Future[IngestResult]:
    """Decode (in a worker process when there is a pool) and queue for commit.

    Raises OtlpDecodeError, StoreSaturatedError or StoreClosedError.
    """
    with store.announce():
        if pool is not None:
            return store.ingest_batch(pool.decode(body, content_type))
        with _DECODE_SLOT:
            return store.ingest_batch(span_batch(protobuf_body(body, content_type)))


def export_response(result: IngestResult) -> ExportTraceServiceResponse:
    response = ExportTraceServiceResponse()
    if result.rejected_spans:
        response.partial_success.CopyFrom(ExportTracePartialSuccess(
            rejected_spans=result.rejected_spans, error_message=result.error_message))
    return response
