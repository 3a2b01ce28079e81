"""Hand-built OTLP requests for receiver tests."""

from __future__ import annotations

import os

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue


def new_trace_id() -> bytes:
    return os.urandom(16)


def request(spans: list[tuple[bytes, bytes, bytes]], service: str = "checkout",
            name: str = "GET /cart") -> ExportTraceServiceRequest:
    """One resource, one scope, spans given as (trace_id, span_id, parent_span_id)."""
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
    ss = rs.scope_spans.add()
    ss.scope.name = "tests"
    for i, (trace_id, span_id, parent) in enumerate(spans):
        span = ss.spans.add()
        span.trace_id, span.span_id, span.parent_span_id = trace_id, span_id, parent
        span.name = name
        span.kind = 2
        span.start_time_unix_nano = 1_763_700_000_000_000_000 + i
        span.end_time_unix_nano = 1_763_700_000_001_000_000 + i
    return req


def valid_request(trace_id: bytes, count: int = 3) -> ExportTraceServiceRequest:
    return request([(trace_id, os.urandom(8), b"") for _ in range(count)])
