"""Stored spans back into one OTLP request: for `Trace.to_otlp_json()` and the export
endpoint. Types survive the round trip (an int attribute is an int_value again)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, Span

from ._model import AttributeValue, StoredSpan


def _any_value(value: AttributeValue, into: AnyValue) -> None:
    if isinstance(value, bool):
        into.bool_value = value
    elif isinstance(value, int):
        into.int_value = value
    elif isinstance(value, float):
        into.double_value = value
    elif isinstance(value, str):
        into.string_value = value
    elif isinstance(value, bytes):
        into.bytes_value = value
    elif isinstance(value, Mapping):
        into.kvlist_value.SetInParent()
        _key_values(value, into.kvlist_value.values)
    elif isinstance(value, Sequence):
        into.array_value.SetInParent()
        for item in value:
            _any_value(item, into.array_value.values.add())
    # None: an empty AnyValue, as OTLP writes it


def _key_values(attributes: Mapping[str, AttributeValue], into: Iterable[KeyValue]) -> None:
    for key, value in attributes.items():
        kv = into.add()  # type: ignore[attr-defined]
        kv.key = key
        _any_value(value, kv.value)


def export_request_from_spans(spans: Iterable[StoredSpan]) -> ExportTraceServiceRequest:
    """Spans grouped by resource and scope, in the order given."""
    request = ExportTraceServiceRequest()
    resources: dict[tuple[object, ...], ResourceSpans] = {}
    scopes: dict[tuple[object, ...], object] = {}
    for stored in spans:
        resource_key = tuple(sorted((k, repr(v)) for k, v in stored.resource.items()))
        resource_spans = resources.get(resource_key)
        if resource_spans is None:
            resource_spans = resources[resource_key] = request.resource_spans.add()
            _key_values(stored.resource, resource_spans.resource.attributes)
        scope_key = (resource_key, stored.scope_name, stored.scope_version)
        scope_spans = scopes.get(scope_key)
        if scope_spans is None:
            scope_spans = scopes[scope_key] = resource_spans.scope_spans.add()
            scope_spans.scope.name = stored.scope_name
            scope_spans.scope.version = stored.scope_version
        span: Span = scope_spans.spans.add()  # type: ignore[attr-defined]
        span.trace_id = bytes.fromhex(stored.trace_id)
        span.span_id = bytes.fromhex(stored.span_id)
        if stored.parent_span_id:
            span.parent_span_id = bytes.fromhex(stored.parent_span_id)
        span.trace_state = stored.trace_state
        span.flags = stored.flags
        span.name = stored.name
        span.kind = int(stored.kind)  # type: ignore[assignment]
        span.start_time_unix_nano = stored.start_unix_nano
        span.end_time_unix_nano = stored.end_unix_nano
        _key_values(stored.attributes, span.attributes)
        for event in stored.events:
            out_event = span.events.add()
            out_event.name = event.name
            out_event.time_unix_nano = event.time_unix_nano
            _key_values(event.attributes, out_event.attributes)
        for link in stored.links:
            out_link = span.links.add()
            out_link.trace_id = bytes.fromhex(link.trace_id)
            out_link.span_id = bytes.fromhex(link.span_id)
            out_link.trace_state = link.trace_state
            out_link.flags = link.flags
            _key_values(link.attributes, out_link.attributes)
        span.status.code = int(stored.status_code)  # type: ignore[assignment]
        span.status.message = stored.status_message
    return request
