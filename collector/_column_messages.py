"""Message types that read an OTLP request for the store's columns and nothing more.

Protobuf cannot tell a length-delimited message field from a `bytes` field on the wire.
So a request parsed as `RawRequest` hands over each span, resource and scope as the exact
bytes the exporter sent, sliced by upb in C: the store keeps those as the span's body
without serializing it again (re-serializing cost about 1.7 µs a span, more than a third
of decoding). Parsed as `ColumnRequest`, the same bytes give only the fields that become
columns; attributes and events stay unparsed, kept by upb as unknown fields, so reading a
span's columns costs a fraction of reading a full `Span`. Kinds and status codes are read
as the int32 varints that enums are on the wire, so a value this release does not know is
kept as its number, as proto3's open enums are.

Field numbers are those of opentelemetry-proto's trace.proto and common.proto; the tests
compare these types against the real ones field by field.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_PACKAGE = "tracebaton.columns"
_F = descriptor_pb2.FieldDescriptorProto

# name -> [(field, number, type, repeated, message type name)]
_MESSAGES: dict[str, list[tuple[str, int, int, bool, str]]] = {
    "RawRequest": [("resource_spans", 1, _F.TYPE_MESSAGE, True, "RawResourceSpans")],
    "RawResourceSpans": [
        ("resource", 1, _F.TYPE_BYTES, False, ""),
        ("scope_spans", 2, _F.TYPE_MESSAGE, True, "RawScopeSpans"),
    ],
    "RawScopeSpans": [
        ("scope", 1, _F.TYPE_BYTES, False, ""),
        ("spans", 2, _F.TYPE_BYTES, True, ""),
    ],
    "ColumnRequest": [("resource_spans", 1, _F.TYPE_MESSAGE, True, "ColumnResourceSpans")],
    "ColumnResourceSpans": [("scope_spans", 2, _F.TYPE_MESSAGE, True, "ColumnScopeSpans")],
    "ColumnScopeSpans": [("spans", 2, _F.TYPE_MESSAGE, True, "ColumnSpan")],
    "ColumnSpan": [
        ("trace_id", 1, _F.TYPE_BYTES, False, ""),
        ("span_id", 2, _F.TYPE_BYTES, False, ""),
        ("trace_state", 3, _F.TYPE_STRING, False, ""),
        ("parent_span_id", 4, _F.TYPE_BYTES, False, ""),
        ("name", 5, _F.TYPE_STRING, False, ""),
        ("kind", 6, _F.TYPE_INT32, False, ""),
        ("start_time_unix_nano", 7, _F.TYPE_FIXED64, False, ""),
        ("end_time_unix_nano", 8, _F.TYPE_FIXED64, False, ""),
        ("links", 13, _F.TYPE_MESSAGE, True, "ColumnLink"),
        # As bytes: most spans have no status, and a message field costs a wrapper object
        # per span; the few distinct statuses of a request are parsed once each.
        ("status", 15, _F.TYPE_BYTES, False, ""),
        ("flags", 16, _F.TYPE_FIXED32, False, ""),
    ],
    "ColumnLink": [
        ("trace_id", 1, _F.TYPE_BYTES, False, ""),
        ("span_id", 2, _F.TYPE_BYTES, False, ""),
    ],
    "ColumnStatus": [
        ("message", 2, _F.TYPE_STRING, False, ""),
        ("code", 3, _F.TYPE_INT32, False, ""),
    ],
    # A span's attributes, events and links as the bytes the exporter sent: the ClickHouse
    # writer decodes each distinct attribute once, not once a span.
    "AttributeRequest": [("resource_spans", 1, _F.TYPE_MESSAGE, True, "AttributeResourceSpans")],
    "AttributeResourceSpans": [("scope_spans", 2, _F.TYPE_MESSAGE, True, "AttributeScopeSpans")],
    "AttributeScopeSpans": [("spans", 2, _F.TYPE_MESSAGE, True, "AttributeSpan")],
    "AttributeSpan": [
        ("attributes", 9, _F.TYPE_BYTES, True, ""),
        ("events", 11, _F.TYPE_BYTES, True, ""),
        ("links", 13, _F.TYPE_BYTES, True, ""),
    ],
}

def _file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name="tracebaton/columns.proto", package=_PACKAGE, syntax="proto3")
    for message_name, fields in _MESSAGES.items():
        message = file.message_type.add(name=message_name)
        for name, number, kind, repeated, type_name in fields:
            field = message.field.add(
                name=name, number=number, type=kind,
                label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
            if type_name:
                field.type_name = f".{_PACKAGE}.{type_name}"
    return file


def _classes() -> dict[str, Any]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(_file())
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{_PACKAGE}.{name}"))
            for name in _MESSAGES}


_CLASSES = _classes()
RawRequest: Any = _CLASSES["RawRequest"]
ColumnRequest: Any = _CLASSES["ColumnRequest"]
ColumnStatus: Any = _CLASSES["ColumnStatus"]
AttributeRequest: Any = _CLASSES["AttributeRequest"]
AttributeSpan: Any = _CLASSES["AttributeSpan"]
FIELDS = _MESSAGES
