"""Decoding an OTLP request by its content type, shared by the in-process path and the
decoding workers (`_decode_pool`)."""

from __future__ import annotations

from typing import cast

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tracebaton import OtlpDecodeError

from ._otlp_json_decode import decode_export_request_json
from ._protocol import JSON, PROTOBUF


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
                "send a serialized request (over OTLP/HTTP, OTLP/JSON with Content-Type "
                "application/json is taken too)"
            ) from None
        return body
    if content_type == JSON:
        return bytes(decode_export_request_json(bytes(body)).SerializeToString())
    raise OtlpDecodeError(
        f"content type {content_type!r} is not OTLP; send {PROTOBUF} or {JSON}")
