"""Stored spans in Jaeger's JSON, the model Jaeger UI and Grafana's Jaeger data source read
(the query service's `internal/uimodel`), converted as Jaeger converts OTLP.

The rules are Jaeger's and the OpenTelemetry Collector's Jaeger translator's
(`pkg/translator/jaeger/traces_to_jaegerproto.go`), applied after the query service's
`SortCollections` adjuster:

- one `process` per distinct resource, `p1`, `p2`, … in the order spans first name them:
  the service name, and the other resource attributes sorted by key as tags;
- span tags: `otel.scope.name`/`otel.scope.version`, the attributes sorted by key, then
  `span.kind` (not for UNSPECIFIED), `otel.status_code` (`OK`/`ERROR`, not for UNSET),
  `error: true` (ERROR), `otel.status_description` (a status message), `w3c.tracestate`;
- typed values: `string bool int64 float64 binary` (base64); integers past ±(2^53 − 1) as
  decimal strings; arrays and maps as their JSON text (type `string`);
- `references`: CHILD_OF the parent first, then one per link, FOLLOWS_FROM unless the link
  says `opentracing.ref_type: child_of` (a link to the parent retypes that reference);
- `logs` from events: an `event` field holding the name (unless the event has an `event`
  attribute), then the event's attributes sorted by key;
- times in microseconds since the epoch, durations in microseconds (truncated).

Where tracebaton differs from a Jaeger server, on purpose: trace ids are always 32 hex
digits (Jaeger prints 16 when the upper half is zero); events keep their time order (the
adjuster sorts them by name); no clock-skew adjustment is made, so every time is the one
the service sent, and the span warnings say what the flow engine found instead (a parent
that is not in the trace, a span sent twice, a clock that disagrees with its parent's).
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from tracebaton.assertions import build_trace
from tracebaton.collector import AttributeValue, SpanKind, StatusCode, StoredSpan

_JS_MAX_SAFE_INTEGER = 2**53 - 1
_LINK_REF_TYPE = "opentracing.ref_type"


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not an attribute value")


def value_text(value: AttributeValue) -> str:
    """A value as text, as OTLP's `AsString` writes it: what Jaeger shows and what a `tags`
    search compares with."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # as Go formats a float64 for JSON: 2.0 is "2", 72.5 is "72.5"
        if math.isfinite(value) and value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return orjson.dumps(value, default=_json_default).decode()


def tag(key: str, value: AttributeValue) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "type": "bool", "value": value}
    if isinstance(value, int):
        safe = -_JS_MAX_SAFE_INTEGER <= value <= _JS_MAX_SAFE_INTEGER
        return {"key": key, "type": "int64", "value": value if safe else str(value)}
    if isinstance(value, float):
        # JSON has no NaN or infinity: Jaeger's encoder would fail; their names stand in.
        return {"key": key, "type": "float64", "value": value if math.isfinite(value) else str(value)}
    if isinstance(value, bytes):
        return {"key": key, "type": "binary", "value": base64.b64encode(value).decode("ascii")}
    return {"key": key, "type": "string", "value": value_text(value)}


def _tags(attributes: Mapping[str, AttributeValue], *, skip: str | None = None) -> list[dict[str, Any]]:
    return [tag(key, attributes[key]) for key in sorted(attributes) if key != skip]


def span_tags(span: StoredSpan) -> list[dict[str, Any]]:
    tags: list[dict[str, Any]] = []
    if span.scope_name:
        tags.append(tag("otel.scope.name", span.scope_name))
    if span.scope_version:
        tags.append(tag("otel.scope.version", span.scope_version))
    tags += _tags(span.attributes)
    if span.kind is not SpanKind.UNSPECIFIED:
        tags.append(tag("span.kind", span.kind.label))
    if span.status_code is not StatusCode.UNSET:
        tags.append(tag("otel.status_code", span.status_code.name))
    if span.status_code is StatusCode.ERROR:
        tags.append(tag("error", True))
    if span.status_message:
        tags.append(tag("otel.status_description", span.status_message))
    if span.trace_state:
        tags.append(tag("w3c.tracestate", span.trace_state))
    return tags


def process_json(span: StoredSpan) -> dict[str, Any]:
    return {"serviceName": span.service, "tags": _tags(span.resource, skip="service.name")}


def _references(span: StoredSpan) -> list[dict[str, Any]]:
    refs: list[dict[str, Any]] = []
    if span.parent_span_id is not None:
        refs.append({"refType": "CHILD_OF", "traceID": span.trace_id, "spanID": span.parent_span_id})
    for link in span.links:
        ref_type = "CHILD_OF" if link.attributes.get(_LINK_REF_TYPE) == "child_of" else "FOLLOWS_FROM"
        if refs and link.trace_id == span.trace_id and link.span_id == span.parent_span_id:
            refs[0]["refType"] = ref_type
            continue
        refs.append({"refType": ref_type, "traceID": link.trace_id, "spanID": link.span_id})
    return refs


def _logs(span: StoredSpan) -> list[dict[str, Any]]:
    logs = []
    for event in span.events:
        fields = [] if not event.name or "event" in event.attributes else [tag("event", event.name)]
        logs.append({"timestamp": event.time_unix_nano // 1000, "fields": fields + _tags(event.attributes)})
    return logs


def span_warnings(spans: Sequence[StoredSpan], trace_id: str) -> dict[str, list[str]]:
    """span id -> warnings: a parent not in the trace, in Jaeger's words, and what the flow
    engine's span tree found (a span sent twice, a parent cycle, a clock off), on the first
    span each finding names."""
    tree = build_trace(trace_id, spans, now_unix_nano=time.time_ns())
    warnings: dict[str, list[str]] = {}
    for orphan in tree.orphans:
        warnings.setdefault(orphan.span_id, []).append(
            f"parent span ID={orphan.parent_span_id} is not in the trace"
        )
    for finding in tree.findings:
        if finding.span_ids:
            warnings.setdefault(finding.span_ids[0], []).append(finding.message)
    return warnings


def trace_json(trace_id: str, spans: Sequence[StoredSpan]) -> dict[str, Any]:
    """One trace in Jaeger's JSON; `spans` as the store returns them (start order)."""
    processes: dict[str, dict[str, Any]] = {}
    process_ids: dict[bytes, str] = {}
    warnings = span_warnings(spans, trace_id)
    out = []
    for span in spans:
        process = process_json(span)
        identity = orjson.dumps(process)
        process_id = process_ids.get(identity)
        if process_id is None:
            process_id = process_ids[identity] = f"p{len(process_ids) + 1}"
            processes[process_id] = process
        out.append(
            {
                "traceID": span.trace_id,
                "spanID": span.span_id,
                "operationName": span.name,
                "references": _references(span),
                "startTime": span.start_unix_nano // 1000,
                # Jaeger's durations are unsigned; a span that ends before it starts gets a
                # warning from the span tree instead
                "duration": max(0, span.end_unix_nano - span.start_unix_nano) // 1000,
                "tags": span_tags(span),
                "logs": _logs(span),
                "processID": process_id,
                "warnings": warnings.get(span.span_id),
            }
        )
    return {"traceID": trace_id, "spans": out, "processes": processes, "warnings": None}


def envelope(
    data: Any, *, total: int = 0, errors: Iterable[Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Jaeger's `structuredResponse`: every answer, data or error, has this shape."""
    listed = list(errors) if errors is not None else []
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": listed or None}


def error_body(status: int, message: str) -> bytes:
    return orjson.dumps(envelope(None, errors=[{"code": status, "msg": message}]))
