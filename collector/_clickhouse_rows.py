"""OTLP spans as rows of the exporter's `otel_traces`, mapped exactly as the OpenTelemetry
Collector's `clickhouse` exporter maps them (`exporter_traces.go`, `pushTraceData`), so rows
tracebaton writes and rows the Collector writes read the same:

- ids: lower-case hex, `''` for an empty (all-zero) id, so a root has `ParentSpanId = ''`;
- `SpanKind` is `ptrace.SpanKind.String()` (`Server`, …), `StatusCode` is
  `ptrace.StatusCode.String()` (`Unset`, `Ok`, `Error`);
- every attribute value is `pcommon.Value.AsString()`: strings as they are, bools
  `true`/`false`, ints in decimal, doubles as ES6 number text (`2.0` -> `2`), bytes in base64,
  arrays and maps as Go's `encoding/json` writes them (sorted keys, HTML characters escaped);
- `Timestamp` is the start, `Duration` is end - start in ns (uint64, wrapping as Go's does),
  `ServiceName` the resource's `service.name`, events and links as Nested arrays.
"""

from __future__ import annotations

import base64
import dataclasses
import decimal
import math
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from ._columns import _id_problem
from ._model import IngestResult

SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
"""`ptrace.SpanKind.String()` by OTLP enum value."""
STATUS_CODES = ("Unset", "Ok", "Error")
"""`ptrace.StatusCode.String()` by OTLP enum value."""

_U64 = 1 << 64
_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)


def kind_string(kind: int) -> str:
    # pdata prints an unknown enum value as its number
    return SPAN_KINDS[kind] if 0 <= kind < len(SPAN_KINDS) else str(kind)


def status_string(code: int) -> str:
    return STATUS_CODES[code] if 0 <= code < len(STATUS_CODES) else str(code)


def float_string(value: float) -> str:
    """pcommon's `float64AsString`: Go's encoding/json number text (ES6 number to string)."""
    if math.isinf(value) or math.isnan(value):
        return "json: unsupported value: " + ("NaN" if math.isnan(value) else "+Inf" if value > 0 else "-Inf")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = repr(value)  # shortest digits, e-notation in this range, as Go's 'e' with -1
        mantissa, _, exponent = text.partition("e")
        sign, digits = exponent[0], exponent[1:].lstrip("0") or "0"
        return f"{mantissa}e{sign}{digits.zfill(2) if sign == '+' else digits}"
    # shortest digits that round-trip, written without an exponent (Go's 'f' with -1)
    return format(decimal.Decimal(repr(value)).normalize(), "f")


# Go's encoding/json escapes these inside strings (HTMLEscape, and the JS line separators)
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029",
               '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _json_string(text: str) -> str:
    out = ['"']
    for char in text:
        escaped = _GO_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _json(value: AnyValue) -> str:
    """`json.Marshal(value.AsRaw())` as Go writes it."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return _json_string(value.string_value)
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "int_value":
        return str(value.int_value)
    if which == "double_value":
        return float_string(value.double_value)
    if which == "bytes_value":
        return '"' + base64.b64encode(value.bytes_value).decode() + '"'
    if which == "array_value":
        return "[" + ",".join(_json(v) for v in value.array_value.values) + "]"
    if which == "kvlist_value":
        # a Go map: one entry per key (the last wins), keys sorted by their bytes
        entries = {kv.key: kv.value for kv in value.kvlist_value.values}
        return "{" + ",".join(f"{_json_string(k)}:{_json(entries[k])}"
                              for k in sorted(entries, key=lambda k: k.encode())) + "}"
    return "null"


def as_string(value: AnyValue) -> str:
    """`pcommon.Value.AsString()`."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return str(value.int_value)
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "double_value":
        return float_string(value.double_value)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if which in ("array_value", "kvlist_value"):
        return _json(value)
    return ""


def attribute_items(key_values: Iterable[KeyValue]) -> list[tuple[str, str]]:
    """`internal.AttributesToMap`: each key once (the last value wins, as a map keeps it)."""
    items: dict[str, str] = {}
    for kv in key_values:
        value = kv.value
        which = value.WhichOneof("value")
        items[kv.key] = value.string_value if which == "string_value" else as_string(value)
    return list(items.items())


def _hex_or_empty(raw: bytes, zero: bytes) -> str:
    return "" if not raw or raw == zero else raw.hex()


ROW_SCHEMA = pa.schema([
    ("Timestamp", pa.timestamp("ns")),
    ("TraceId", pa.string()),
    ("SpanId", pa.string()),
    ("ParentSpanId", pa.string()),
    ("TraceState", pa.string()),
    ("SpanName", pa.string()),
    ("SpanKind", pa.string()),
    ("ServiceName", pa.string()),
    ("ResourceAttributes", pa.map_(pa.string(), pa.string())),
    ("ScopeName", pa.string()),
    ("ScopeVersion", pa.string()),
    ("SpanAttributes", pa.map_(pa.string(), pa.string())),
    ("Duration", pa.uint64()),
    ("StatusCode", pa.string()),
    ("StatusMessage", pa.string()),
    ("Events.Timestamp", pa.list_(pa.timestamp("ns"))),
    ("Events.Name", pa.list_(pa.string())),
    ("Events.Attributes", pa.list_(pa.map_(pa.string(), pa.string()))),
    ("Links.TraceId", pa.list_(pa.string())),
    ("Links.SpanId", pa.list_(pa.string())),
    ("Links.TraceState", pa.list_(pa.string())),
    ("Links.Attributes", pa.list_(pa.map_(pa.string(), pa.string()))),
])


@dataclasses.dataclass(frozen=True, slots=True)
class RowBatch:
    """One request's valid spans as the exporter's columns (a `QueuedBatch`)."""

    columns: dict[str, list[Any]]
    span_count: int
    trace_ids: frozenset[bytes]
    rejected_spans: int
    rejection_message: str

    def ingest_result(self) -> IngestResult:
        return IngestResult(self.span_count, self.rejected_spans, self.rejection_message)


def row_batch(body: bytes | bytearray, *, with_scope_columns: bool = True) -> RowBatch:
    """The rows the exporter would insert for this request (an ExportTraceServiceRequest
    known to parse). Spans with ids W3C Trace Context forbids are left out and counted, as
    every tracebaton store rejects them (OTLP's partial success).

    `with_scope_columns`: False for a table of an exporter before ScopeName/ScopeVersion,
    which wrote the scope into SpanAttributes['otel.scope.name'/'otel.scope.version'].
    """
    request = ExportTraceServiceRequest.FromString(bytes(body))
    names = ROW_SCHEMA.names
    columns: dict[str, list[Any]] = {name: [] for name in names}
    (timestamps, trace_ids, span_ids, parent_ids, trace_states, span_names, kinds, services, resources,
     scope_names, scope_versions, span_attributes, durations, status_codes, status_messages,
     event_times, event_names, event_attributes, link_trace_ids, link_span_ids, link_states,
     link_attributes) = (columns[name] for name in names)
    stored_trace_ids: set[bytes] = set()
    rejected = 0
    first_problem = ""
    for r_index, resource_spans in enumerate(request.resource_spans):
        resource_items = attribute_items(resource_spans.resource.attributes)
        service = next((v for k, v in resource_items if k == "service.name"), "")
        for s_index, scope_spans in enumerate(resource_spans.scope_spans):
            scope_name, scope_version = scope_spans.scope.name, scope_spans.scope.version
            for p_index, span in enumerate(scope_spans.spans):
                trace_id, span_id, parent_id = span.trace_id, span.span_id, span.parent_span_id
                problem = _id_problem(trace_id, span_id, parent_id)
                if problem is not None:
                    rejected += 1
                    if not first_problem:
                        first_problem = (f"resourceSpans[{r_index}].scopeSpans[{s_index}]"
                                         f".spans[{p_index}]: {problem}")
                    continue
                stored_trace_ids.add(trace_id)
                start, end = span.start_time_unix_nano, span.end_time_unix_nano
                timestamps.append(start)
                trace_ids.append(trace_id.hex())
                span_ids.append(span_id.hex())
                parent_ids.append(_hex_or_empty(parent_id, _ZERO_SPAN_ID))
                trace_states.append(span.trace_state)
                span_names.append(span.name)
                kinds.append(kind_string(span.kind))
                services.append(service)
                resources.append(resource_items)
                attributes = attribute_items(span.attributes)
                if not with_scope_columns:
                    if scope_name:
                        attributes.append(("otel.scope.name", scope_name))
                    if scope_version:
                        attributes.append(("otel.scope.version", scope_version))
                scope_names.append(scope_name)
                scope_versions.append(scope_version)
                span_attributes.append(attributes)
                durations.append((end - start) % _U64)
                status_codes.append(status_string(span.status.code))
                status_messages.append(span.status.message)
                events = span.events
                event_times.append([e.time_unix_nano for e in events])
                event_names.append([e.name for e in events])
                event_attributes.append([attribute_items(e.attributes) for e in events])
                links = span.links
                link_trace_ids.append([_hex_or_empty(link.trace_id, _ZERO_TRACE_ID) for link in links])
                link_span_ids.append([_hex_or_empty(link.span_id, _ZERO_SPAN_ID) for link in links])
                link_states.append([link.trace_state for link in links])
                link_attributes.append([attribute_items(link.attributes) for link in links])
                for link in links:  # a span linking into a trace wakes that trace's waiters
                    if len(link.trace_id) == 16:
                        stored_trace_ids.add(link.trace_id)
    message = ""
    if rejected:
        message = (f"rejected {rejected} of {rejected + len(timestamps)} spans with invalid ids; first: "
                   f"{first_problem}. Ids come from the SDK's id generator: check custom IdGenerators "
                   "and hand-built spans")
    return RowBatch(columns, len(timestamps), frozenset(stored_trace_ids), rejected, message)


def arrow_rows(batches: Iterable[RowBatch], *, with_scope_columns: bool = True) -> pa.Table:
    """One Arrow table of the batches' rows, in the exporter's column names and types."""
    merged: dict[str, list[Any]] = {name: [] for name in ROW_SCHEMA.names}
    for batch in batches:
        for name, values in batch.columns.items():
            merged[name].extend(values)
    schema = ROW_SCHEMA
    if not with_scope_columns:
        schema = pa.schema([f for f in ROW_SCHEMA if f.name not in ("ScopeName", "ScopeVersion")])
    return pa.Table.from_arrays([pa.array(merged[f.name], f.type) for f in schema], schema=schema)
