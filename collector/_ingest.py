"""What both receivers share: bounded bodies, gzip, the success response."""

from __future__ import annotations

import zlib

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from tracebaton import OtlpDecodeError

from ._model import IngestResult


class BodyTooLargeError(Exception):
    """The body exceeds the limit (after decompression): 413 / RESOURCE_EXHAUSTED."""


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


def export_response(result: IngestResult) -> ExportTraceServiceResponse:
    response = ExportTraceServiceResponse()
    if result.rejected_spans:
        response.partial_success.CopyFrom(ExportTracePartialSuccess(
            rejected_spans=result.rejected_spans, error_message=result.error_message))
    return response
