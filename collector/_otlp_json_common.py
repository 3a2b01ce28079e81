"""What both directions of the OTLP/JSON codec must agree on.

The encoder must never write a request the decoder refuses, so what they share is
defined once, here: how deep attribute values may nest, and the messages of a trace
export request with their fields, by name and kind. Each direction maps a field's kind
to its own converter (`_otlp_json_decode`, `_otlp_json_encode`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

#: AnyValue levels (arrayValue / kvlistValue inside one another) accepted by both
#: directions. Protobuf (upb, C++) parses at most 100 nested messages; an event's
#: attribute is 7 deep and each kvlistValue level adds 3, so 32 levels is the most a
#: decoded request can hold and still be serialized and parsed back anywhere.
_MAX_DEPTH: Final = 32


class _Scalar(enum.Enum):
    """The kind of a field that is not a message of the schema below."""

    ID = enum.auto()  # trace or span id: bytes, hex in OTLP/JSON
    STRING = enum.auto()
    STRINGS = enum.auto()  # repeated string
    COUNT = enum.auto()  # uint32
    FLAGS = enum.auto()  # fixed32 bits
    TIME = enum.auto()  # fixed64 nanoseconds since the epoch, a decimal string in OTLP/JSON
    ATTRIBUTES = enum.auto()  # repeated KeyValue
    SPAN_KIND = enum.auto()  # enum Span.SpanKind, an integer in OTLP/JSON
    STATUS_CODE = enum.auto()  # enum Status.StatusCode, an integer in OTLP/JSON


@dataclass(frozen=True)
class _Message:
    """A message: how an error names one ("a status"), and its fields in the order they
    are checked and written."""

    what: str
    fields: tuple[_Field, ...]


@dataclass(frozen=True)
class _Repeated:
    """The kind of a repeated message field."""

    message: _Message


#: A field: its OTLP/JSON (lowerCamelCase) name, its proto name, and its kind.
_Field = tuple[str, str, _Scalar | _Message | _Repeated]

_ATTRIBUTES: Final[_Field] = ("attributes", "attributes", _Scalar.ATTRIBUTES)
_DROPPED_ATTRIBUTES: Final[_Field] = (
    "droppedAttributesCount",
    "dropped_attributes_count",
    _Scalar.COUNT,
)
_SCHEMA_URL: Final[_Field] = ("schemaUrl", "schema_url", _Scalar.STRING)

_EVENT: Final = _Message(
    "an event",
    (
        ("timeUnixNano", "time_unix_nano", _Scalar.TIME),
        ("name", "name", _Scalar.STRING),
        _ATTRIBUTES,
        _DROPPED_ATTRIBUTES,
    ),
)

_LINK: Final = _Message(
    "a link",
    (
        ("traceId", "trace_id", _Scalar.ID),
        ("spanId", "span_id", _Scalar.ID),
        ("traceState", "trace_state", _Scalar.STRING),
        _ATTRIBUTES,
        _DROPPED_ATTRIBUTES,
        ("flags", "flags", _Scalar.FLAGS),
    ),
)

_STATUS: Final = _Message(
    "a status",
    (("message", "message", _Scalar.STRING), ("code", "code", _Scalar.STATUS_CODE)),
)

_SPAN: Final = _Message(
    "a span",
    (
        ("traceId", "trace_id", _Scalar.ID),
        ("spanId", "span_id", _Scalar.ID),
        ("traceState", "trace_state", _Scalar.STRING),
        ("parentSpanId", "parent_span_id", _Scalar.ID),
        ("flags", "flags", _Scalar.FLAGS),
        ("name", "name", _Scalar.STRING),
        ("kind", "kind", _Scalar.SPAN_KIND),
        ("startTimeUnixNano", "start_time_unix_nano", _Scalar.TIME),
        ("endTimeUnixNano", "end_time_unix_nano", _Scalar.TIME),
        _ATTRIBUTES,
        _DROPPED_ATTRIBUTES,
        ("events", "events", _Repeated(_EVENT)),
        ("droppedEventsCount", "dropped_events_count", _Scalar.COUNT),
        ("links", "links", _Repeated(_LINK)),
        ("droppedLinksCount", "dropped_links_count", _Scalar.COUNT),
        ("status", "status", _STATUS),
    ),
)

_ENTITY_REF: Final = _Message(
    "an entity reference",
    (
        _SCHEMA_URL,
        ("type", "type", _Scalar.STRING),
        ("idKeys", "id_keys", _Scalar.STRINGS),
        ("descriptionKeys", "description_keys", _Scalar.STRINGS),
    ),
)

_RESOURCE: Final = _Message(
    "a resource",
    (_ATTRIBUTES, _DROPPED_ATTRIBUTES, ("entityRefs", "entity_refs", _Repeated(_ENTITY_REF))),
)

_SCOPE: Final = _Message(
    "an instrumentation scope",
    (
        ("name", "name", _Scalar.STRING),
        ("version", "version", _Scalar.STRING),
        _ATTRIBUTES,
        _DROPPED_ATTRIBUTES,
    ),
)

_SCOPE_SPANS: Final = _Message(
    "a scopeSpans entry",
    (("scope", "scope", _SCOPE), ("spans", "spans", _Repeated(_SPAN)), _SCHEMA_URL),
)

_RESOURCE_SPANS: Final = _Message(
    "a resourceSpans entry",
    (
        ("resource", "resource", _RESOURCE),
        ("scopeSpans", "scope_spans", _Repeated(_SCOPE_SPANS)),
        _SCHEMA_URL,
    ),
)

#: ExportTraceServiceRequest, the request body.
_REQUEST: Final = _Message(
    "an export request",
    (("resourceSpans", "resource_spans", _Repeated(_RESOURCE_SPANS)),),
)
