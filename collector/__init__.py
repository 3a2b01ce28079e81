"""The collector: OTLP receivers and the span store.

Other components use only what is exported here: the `SpanStore` read protocol and its
model, the embedded `DuckDBSpanStore`, and the receivers.
"""

from __future__ import annotations

from ._addresses import call_address, served_address, served_at
from ._decode_pool import DecodePool
from ._grpc_receiver import GrpcReceiver
from ._http_receiver import otlp_http_app
from ._model import (
    AttributeValue,
    IngestResult,
    RunQuery,
    RunRecord,
    RunSummary,
    SpanEvent,
    SpanKind,
    SpanLink,
    StatusCode,
    StoredSpan,
    TraceQuery,
    TraceSummary,
)
from ._otlp_json_decode import decode_export_request_json
from ._otlp_json_encode import encode_export_request_json
from ._otlp_spans import export_request_from_spans
from ._protocol import SpanSink, SpanStore
from ._runs import is_run_id
from ._store import DuckDBSpanStore

__all__ = [
    "AttributeValue",
    "DecodePool",
    "DuckDBSpanStore",
    "GrpcReceiver",
    "IngestResult",
    "RunQuery",
    "RunRecord",
    "RunSummary",
    "SpanEvent",
    "SpanKind",
    "SpanLink",
    "SpanSink",
    "SpanStore",
    "StatusCode",
    "StoredSpan",
    "TraceQuery",
    "TraceSummary",
    "call_address",
    "decode_export_request_json",
    "encode_export_request_json",
    "export_request_from_spans",
    "is_run_id",
    "otlp_http_app",
    "served_address",
    "served_at",
]
