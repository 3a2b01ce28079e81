"""OTLP/JSON encoding of trace export requests (the decoder is `_otlp_json_decode`).

Why this exists rather than `google.protobuf.json_format`: that writes proto3 JSON, with
ids in base64 where OTLP/JSON writes hex, so its output is not OTLP/JSON; and it is pure
Python over descriptors. Here plain dicts are built from the messages and orjson writes
them. Whatever this writes, the decoder reads back to an equal request; attribute values
nested deeper than the decoder accepts are refused rather than written.
"""

from __future__ import annotations

import binascii
import math
from typing import Any

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    EntityRef,
    InstrumentationScope,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from ._otlp_json_common import _MAX_DEPTH

__all__ = ["encode_export_request_json"]


def _encode_double(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _encode_any(value: AnyValue, depth: int) -> dict[str, Any]:
    which = value.WhichOneof("value")
    if which == "string_value":
        return {"stringValue": value.string_value}
    if which == "int_value":
        return {"intValue": str(value.int_value)}
    if which == "bool_value":
        return {"boolValue": value.bool_value}
    if which == "double_value":
        return {"doubleValue": _encode_double(value.double_value)}
    if which in ("array_value", "kvlist_value"):
        if depth >= _MAX_DEPTH:
            raise ValueError(
                f"an attribute value nests deeper than {_MAX_DEPTH} levels of "
                "arrayValue/kvlistValue, which the decoder refuses (protobuf parses at most "
                "100 nested messages)"
            )
        encoded: dict[str, Any]
        if which == "array_value":
            values = [_encode_any(v, depth + 1) for v in value.array_value.values]
            encoded = {"arrayValue": {"values": values} if values else {}}
        else:
            kvs = _encode_key_values(value.kvlist_value.values, depth + 1)
            encoded = {"kvlistValue": {"values": kvs} if kvs else {}}
        return encoded
    if which == "bytes_value":
        return {"bytesValue": binascii.b2a_base64(value.bytes_value, newline=False).decode()}
    if which == "string_value_strindex":
        return {"stringValueStrindex": value.string_value_strindex}
    return {}


def _encode_key_values(items: Any, depth: int = 1) -> list[dict[str, Any]]:
    out = []
    for kv in items:
        item: dict[str, Any] = {}
        if kv.key:
            item["key"] = kv.key
        if kv.HasField("value"):
            item["value"] = _encode_any(kv.value, depth)
        if kv.key_strindex:
            item["keyStrindex"] = kv.key_strindex
        out.append(item)
    return out


def _encode_resource(resource: Resource) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if resource.attributes:
        out["attributes"] = _encode_key_values(resource.attributes)
    if resource.dropped_attributes_count:
        out["droppedAttributesCount"] = resource.dropped_attributes_count
    if resource.entity_refs:
        out["entityRefs"] = [_encode_entity_ref(ref) for ref in resource.entity_refs]
    return out


def _encode_entity_ref(ref: EntityRef) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ref.schema_url:
        out["schemaUrl"] = ref.schema_url
    if ref.type:
        out["type"] = ref.type
    if ref.id_keys:
        out["idKeys"] = list(ref.id_keys)
    if ref.description_keys:
        out["descriptionKeys"] = list(ref.description_keys)
    return out


def _encode_scope(scope: InstrumentationScope) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if scope.name:
        out["name"] = scope.name
    if scope.version:
        out["version"] = scope.version
    if scope.attributes:
        out["attributes"] = _encode_key_values(scope.attributes)
    if scope.dropped_attributes_count:
        out["droppedAttributesCount"] = scope.dropped_attributes_count
    return out


def _encode_span(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if span.trace_id:
        out["traceId"] = span.trace_id.hex()
    if span.span_id:
        out["spanId"] = span.span_id.hex()
    if span.trace_state:
        out["traceState"] = span.trace_state
    if span.parent_span_id:
        out["parentSpanId"] = span.parent_span_id.hex()
    if span.flags:
        out["flags"] = span.flags
    if span.name:
        out["name"] = span.name
    if span.kind:
        out["kind"] = span.kind
    if span.start_time_unix_nano:
        out["startTimeUnixNano"] = str(span.start_time_unix_nano)
    if span.end_time_unix_nano:
        out["endTimeUnixNano"] = str(span.end_time_unix_nano)
    if span.attributes:
        out["attributes"] = _encode_key_values(span.attributes)
    if span.dropped_attributes_count:
        out["droppedAttributesCount"] = span.dropped_attributes_count
    if span.events:
        out["events"] = [_encode_event(event) for event in span.events]
    if span.dropped_events_count:
        out["droppedEventsCount"] = span.dropped_events_count
    if span.links:
        out["links"] = [_encode_link(link) for link in span.links]
    if span.dropped_links_count:
        out["droppedLinksCount"] = span.dropped_links_count
    if span.HasField("status"):
        status = span.status
        encoded: dict[str, Any] = {}
        if status.message:
            encoded["message"] = status.message
        if status.code:
            encoded["code"] = status.code
        out["status"] = encoded
    return out


def _encode_event(event: Span.Event) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if event.time_unix_nano:
        out["timeUnixNano"] = str(event.time_unix_nano)
    if event.name:
        out["name"] = event.name
    if event.attributes:
        out["attributes"] = _encode_key_values(event.attributes)
    if event.dropped_attributes_count:
        out["droppedAttributesCount"] = event.dropped_attributes_count
    return out


def _encode_link(link: Span.Link) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if link.trace_id:
        out["traceId"] = link.trace_id.hex()
    if link.span_id:
        out["spanId"] = link.span_id.hex()
    if link.trace_state:
        out["traceState"] = link.trace_state
    if link.attributes:
        out["attributes"] = _encode_key_values(link.attributes)
    if link.dropped_attributes_count:
        out["droppedAttributesCount"] = link.dropped_attributes_count
    if link.flags:
        out["flags"] = link.flags
    return out


def encode_export_request_json(request: ExportTraceServiceRequest) -> bytes:
    """Encode a trace export request as OTLP/JSON (UTF-8 bytes).

    Hex ids, integer enums, 64-bit integers as decimal strings, lowerCamelCase keys, and
    fields at their default left out (a message field that is set is written, if empty
    as {}). Raises ValueError for attribute values nested deeper than the decoder takes.
    """
    return orjson.dumps(_encode_request(request))


def _encode_request(request: ExportTraceServiceRequest) -> dict[str, Any]:
    resource_spans = []
    for rs in request.resource_spans:
        entry: dict[str, Any] = {}
        if rs.HasField("resource"):
            entry["resource"] = _encode_resource(rs.resource)
        scope_spans = []
        for ss in rs.scope_spans:
            scope_entry: dict[str, Any] = {}
            if ss.HasField("scope"):
                scope_entry["scope"] = _encode_scope(ss.scope)
            if ss.spans:
                scope_entry["spans"] = [_encode_span(span) for span in ss.spans]
            if ss.schema_url:
                scope_entry["schemaUrl"] = ss.schema_url
            scope_spans.append(scope_entry)
        if scope_spans:
            entry["scopeSpans"] = scope_spans
        if rs.schema_url:
            entry["schemaUrl"] = rs.schema_url
        resource_spans.append(entry)
    return {"resourceSpans": resource_spans} if resource_spans else {}
