"""OTLP/JSON decoding of trace export requests (the encoder is `_otlp_json_encode`).

Why this exists rather than `google.protobuf.json_format`:

* OTLP/JSON is not proto3 JSON. Trace and span ids are hex, not base64, so
  `json_format` silently turns a valid 16-byte trace id into 24 bytes of garbage and a
  span that can never be matched to its trace; enums travel as integers.
* `json_format` is pure Python over descriptors and about ten times too slow for a
  receiver: here orjson parses the body and the messages are built by upb's C
  constructors from plain dicts, after one pass of Python that checks every value.
* A receiver answers a bad body with 400 and a message, and the message is the only
  help the sender gets. Every rejection here names the JSON path of the offending value
  (lowerCamelCase names, as OTLP/JSON writes them), the rule it broke and how to fix it.

Leniency is deliberate where it costs nothing and loses nothing: enum names and the
original snake_case field names, both refused by the OTLP specification, are accepted
because SDKs and hand-written payloads use them. Ids of the wrong length are decoded as
they are, so that validation downstream can reject just those spans (partial success)
instead of the whole request.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tracebaton import OtlpDecodeError

from ._otlp_json_common import _MAX_DEPTH
from ._otlp_json_decode_values import (
    _U64_MAX,
    _Bad,
    _enum,
    _get,
    _id,
    _key_values,
    _list,
    _object,
    _show,
    _string,
    _string_list,
    _time,
    _u32,
)

__all__ = ["decode_export_request_json"]

_SPAN_KINDS: Final[dict[str, int]] = dict(Span.SpanKind.items())
_STATUS_CODES: Final[dict[str, int]] = dict(Status.StatusCode.items())
_FLAGS_HINT: Final = "write the 32 flag bits as a JSON number from 0 to 4294967295"


def _resource(value: Any) -> dict[str, Any]:
    d = _object(value, "a resource", ["resource"])
    out: dict[str, Any] = {}
    try:
        v = d.get("attributes")
        if v is not None:
            out["attributes"] = _key_values(v, "attributes")
        v = _get(d, "droppedAttributesCount")
        if v is not None:
            out["dropped_attributes_count"] = _u32(v, "droppedAttributesCount")
        v = _get(d, "entityRefs")
        if v is not None:
            out["entity_refs"] = _entity_refs(v)
    except _Bad as bad:
        bad.path.append("resource")
        raise
    return out


def _entity_refs(value: Any) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_list(value, "entityRefs")):
        try:
            d = _object(item, "an entity reference", [])
            ref: dict[str, Any] = {}
            for camel, snake, convert in (
                ("schemaUrl", "schema_url", _string),
                ("type", "type", _string),
                ("idKeys", "id_keys", _string_list),
                ("descriptionKeys", "description_keys", _string_list),
            ):
                v = _get(d, camel)
                if v is not None:
                    ref[snake] = convert(v, camel)
            out.append(ref)
        except _Bad as bad:
            bad.path.append(f"entityRefs[{i}]")
            raise
    return out


def _scope(value: Any) -> dict[str, Any]:
    d = _object(value, "an instrumentation scope", ["scope"])
    out: dict[str, Any] = {}
    try:
        v = d.get("name")
        if v is not None:
            out["name"] = _string(v, "name")
        v = d.get("version")
        if v is not None:
            out["version"] = _string(v, "version")
        v = d.get("attributes")
        if v is not None:
            out["attributes"] = _key_values(v, "attributes")
        v = _get(d, "droppedAttributesCount")
        if v is not None:
            out["dropped_attributes_count"] = _u32(v, "droppedAttributesCount")
    except _Bad as bad:
        bad.path.append("scope")
        raise
    return out


def _span(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    v = d.get("traceId")
    if v is None:
        v = d.get("trace_id")
    if v is not None:
        out["trace_id"] = _id(v, "traceId")
    v = d.get("spanId")
    if v is None:
        v = d.get("span_id")
    if v is not None:
        out["span_id"] = _id(v, "spanId")
    v = d.get("traceState")
    if v is None:
        v = d.get("trace_state")
    if v is not None:
        out["trace_state"] = _string(v, "traceState")
    v = d.get("parentSpanId")
    if v is None:
        v = d.get("parent_span_id")
    if v is not None:
        out["parent_span_id"] = _id(v, "parentSpanId")
    v = d.get("flags")
    if v is not None:
        out["flags"] = _u32(v, "flags", _FLAGS_HINT)
    v = d.get("name")
    if v is not None:
        if type(v) is not str:
            raise _Bad(f"{_show(v)} is not a string; write name as a JSON string", ["name"])
        out["name"] = v
    v = d.get("kind")
    if v is not None:
        out["kind"] = v if type(v) is int and 0 <= v <= 5 else _enum(v, "kind", _SPAN_KINDS)
    v = d.get("startTimeUnixNano")
    if v is None:
        v = d.get("start_time_unix_nano")
    if v is not None:
        if type(v) is not int or not 0 <= v <= _U64_MAX:
            if type(v) is str and len(v) < 20 and v.isdecimal() and v.isascii():
                v = int(v)  # below 10**19, so in range
            else:
                v = _time(v, "startTimeUnixNano")
        out["start_time_unix_nano"] = v
    v = d.get("endTimeUnixNano")
    if v is None:
        v = d.get("end_time_unix_nano")
    if v is not None:
        if type(v) is not int or not 0 <= v <= _U64_MAX:
            if type(v) is str and len(v) < 20 and v.isdecimal() and v.isascii():
                v = int(v)  # below 10**19, so in range
            else:
                v = _time(v, "endTimeUnixNano")
        out["end_time_unix_nano"] = v
    v = d.get("attributes")
    if v is not None:
        out["attributes"] = _key_values(v, "attributes")
    v = d.get("droppedAttributesCount")
    if v is None:
        v = d.get("dropped_attributes_count")
    if v is not None:
        out["dropped_attributes_count"] = _u32(v, "droppedAttributesCount")
    v = d.get("events")
    if v is not None:
        out["events"] = _events(v)
    v = d.get("droppedEventsCount")
    if v is None:
        v = d.get("dropped_events_count")
    if v is not None:
        out["dropped_events_count"] = _u32(v, "droppedEventsCount")
    v = d.get("links")
    if v is not None:
        out["links"] = _links(v)
    v = d.get("droppedLinksCount")
    if v is None:
        v = d.get("dropped_links_count")
    if v is not None:
        out["dropped_links_count"] = _u32(v, "droppedLinksCount")
    v = d.get("status")
    if v is not None:
        out["status"] = _status(v)
    return out


def _status(value: Any) -> dict[str, Any]:
    d = _object(value, "a status", ["status"])
    out: dict[str, Any] = {}
    try:
        v = d.get("message")
        if v is not None:
            out["message"] = _string(v, "message")
        v = d.get("code")
        if v is not None:
            out["code"] = v if type(v) is int and 0 <= v <= 2 else _enum(v, "code", _STATUS_CODES)
    except _Bad as bad:
        bad.path.append("status")
        raise
    return out


def _events(value: Any) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_list(value, "events")):
        try:
            d = _object(item, "an event", [])
            event: dict[str, Any] = {}
            v = _get(d, "timeUnixNano")
            if v is not None:
                event["time_unix_nano"] = _time(v, "timeUnixNano")
            v = d.get("name")
            if v is not None:
                event["name"] = _string(v, "name")
            v = d.get("attributes")
            if v is not None:
                event["attributes"] = _key_values(v, "attributes")
            v = _get(d, "droppedAttributesCount")
            if v is not None:
                event["dropped_attributes_count"] = _u32(v, "droppedAttributesCount")
            out.append(event)
        except _Bad as bad:
            bad.path.append(f"events[{i}]")
            raise
    return out


def _links(value: Any) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_list(value, "links")):
        try:
            d = _object(item, "a link", [])
            link: dict[str, Any] = {}
            v = _get(d, "traceId")
            if v is not None:
                link["trace_id"] = _id(v, "traceId")
            v = _get(d, "spanId")
            if v is not None:
                link["span_id"] = _id(v, "spanId")
            v = _get(d, "traceState")
            if v is not None:
                link["trace_state"] = _string(v, "traceState")
            v = d.get("attributes")
            if v is not None:
                link["attributes"] = _key_values(v, "attributes")
            v = _get(d, "droppedAttributesCount")
            if v is not None:
                link["dropped_attributes_count"] = _u32(v, "droppedAttributesCount")
            v = d.get("flags")
            if v is not None:
                link["flags"] = _u32(v, "flags", _FLAGS_HINT)
            out.append(link)
        except _Bad as bad:
            bad.path.append(f"links[{i}]")
            raise
    return out


def _scope_spans(value: Any) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_list(value, "scopeSpans")):
        try:
            d = _object(item, "a scopeSpans entry", [])
            entry: dict[str, Any] = {}
            v = d.get("scope")
            if v is not None:
                entry["scope"] = _scope(v)
            v = d.get("spans")
            if v is not None:
                spans = []
                for j, span in enumerate(_list(v, "spans")):
                    try:
                        spans.append(_span(_object(span, "a span", [])))
                    except _Bad as bad:
                        bad.path.append(f"spans[{j}]")
                        raise
                entry["spans"] = spans
            v = _get(d, "schemaUrl")
            if v is not None:
                entry["schema_url"] = _string(v, "schemaUrl")
            out.append(entry)
        except _Bad as bad:
            bad.path.append(f"scopeSpans[{i}]")
            raise
    return out


def _resource_spans(value: Any) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_list(value, "resourceSpans")):
        try:
            d = _object(item, "a resourceSpans entry", [])
            entry: dict[str, Any] = {}
            v = d.get("resource")
            if v is not None:
                entry["resource"] = _resource(v)
            v = _get(d, "scopeSpans")
            if v is not None:
                entry["scope_spans"] = _scope_spans(v)
            v = _get(d, "schemaUrl")
            if v is not None:
                entry["schema_url"] = _string(v, "schemaUrl")
            out.append(entry)
        except _Bad as bad:
            bad.path.append(f"resourceSpans[{i}]")
            raise
    return out


def decode_export_request_json(body: bytes) -> ExportTraceServiceRequest:
    """Decode an OTLP/JSON trace export request body (Content-Type: application/json).

    Raises OtlpDecodeError, whose message names the JSON path of the first bad value,
    when the body is not JSON, not an object, or holds a value of the wrong type or
    out of range. Ids of the wrong length are not an error here.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in exc.msg:
            raise OtlpDecodeError(
                f"the request body nests JSON deeper than 1024 levels ({exc}); attribute "
                f"values may nest at most {_MAX_DEPTH} levels of arrayValue/kvlistValue"
            ) from None
        raise OtlpDecodeError(
            f"the request body is not valid JSON ({exc}); if it is protobuf, send it with "
            "Content-Type: application/x-protobuf"
        ) from None
    if type(document) is not dict:
        raise OtlpDecodeError(
            f"the request body is {_show(document)}, not a JSON object; an OTLP/JSON trace "
            'export request is an object like {"resourceSpans": [...]}'
        )
    try:
        v = _get(document, "resourceSpans")
        fields: dict[str, Any] = {} if v is None else {"resource_spans": _resource_spans(v)}
    except _Bad as bad:
        raise OtlpDecodeError(bad.render()) from None
    try:
        return ExportTraceServiceRequest(**fields)
    except (TypeError, ValueError) as exc:  # every value was checked above: a bug if reached
        raise OtlpDecodeError(f"the request cannot be built ({type(exc).__name__}: {exc})") from exc
