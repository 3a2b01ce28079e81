"""Spans as the REST API shapes them (DESIGN §7), both ways: the server writes them with
`span_json`, the remote `Client` reads them back with `span_from_json`. Pure functions."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

from tracebaton.collector import AttributeValue, SpanEvent, SpanKind, SpanLink, StatusCode, StoredSpan

_JSON_SAFE_INT = 2**53


def json_value(value: AttributeValue) -> Any:
    """A typed attribute value as JSON: ints beyond ±2^53 become decimal strings (JSON
    readers lose precision past that), bytes become base64, non-finite floats strings."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -_JSON_SAFE_INT <= value <= _JSON_SAFE_INT else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return {k: json_value(v) for k, v in value.items()}
    return [json_value(v) for v in value]


def json_attributes(attributes: Mapping[str, AttributeValue]) -> dict[str, Any]:
    return {key: json_value(value) for key, value in attributes.items()}


def span_json(span: StoredSpan) -> dict[str, Any]:
    return {
        "trace_id": span.trace_id,
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "service": span.service,
        "name": span.name,
        "kind": span.kind.label,
        "start_unix_nano": str(span.start_unix_nano),
        "end_unix_nano": str(span.end_unix_nano),
        "status": {"code": span.status_code.label, "message": span.status_message},
        "attributes": json_attributes(span.attributes),
        "resource": json_attributes(span.resource),
        "scope": {"name": span.scope_name, "version": span.scope_version},
        "events": [
            {"name": e.name, "time_unix_nano": str(e.time_unix_nano),
             "attributes": json_attributes(e.attributes)}
            for e in span.events
        ],
        "links": [
            {"trace_id": link.trace_id, "span_id": link.span_id, "trace_state": link.trace_state,
             "flags": link.flags, "attributes": json_attributes(link.attributes)}
            for link in span.links
        ],
        "trace_state": span.trace_state,
        "flags": span.flags,
        "arrival_unix_nano": str(span.arrival_unix_nano),
    }


def _status_code(label: str) -> StatusCode:
    return StatusCode[label.upper()]


def span_from_json(data: Mapping[str, Any]) -> StoredSpan:
    """The inverse of `span_json`. Integers past ±2^53 come back as the decimal strings the
    API sent; bytes stay base64 text (the API cannot tell them from strings)."""
    status = data.get("status") or {}
    scope = data.get("scope") or {}
    return StoredSpan(
        trace_id=data["trace_id"], span_id=data["span_id"], parent_span_id=data.get("parent_span_id"),
        name=data["name"], kind=SpanKind[str(data["kind"]).upper()],
        start_unix_nano=int(data["start_unix_nano"]), end_unix_nano=int(data["end_unix_nano"]),
        status_code=_status_code(status.get("code", "unset")), status_message=status.get("message", ""),
        service=data["service"], trace_state=data.get("trace_state", ""), flags=int(data.get("flags", 0)),
        attributes=dict(data.get("attributes") or {}),
        events=tuple(SpanEvent(e["name"], int(e["time_unix_nano"]), dict(e.get("attributes") or {}))
                     for e in data.get("events") or ()),
        links=tuple(SpanLink(link["trace_id"], link["span_id"], link.get("trace_state", ""),
                             int(link.get("flags", 0)), dict(link.get("attributes") or {}))
                    for link in data.get("links") or ()),
        resource=dict(data.get("resource") or {}), scope_name=scope.get("name", ""),
        scope_version=scope.get("version", ""), arrival_unix_nano=int(data.get("arrival_unix_nano", 0)),
    )
