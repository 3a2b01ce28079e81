"""Spans as the REST API shapes them (DESIGN §7): pure functions, data in, JSON out."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from typing import Any

from tracebaton.collector import AttributeValue, StoredSpan

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
    }
