"""OTLP spans as rows of the exporter's `otel_traces`, mapped exactly as the OpenTelemetry
Collector's `clickhouse` exporter maps them (`exporter_traces.go`, `pushTraceData`), so rows
tracebaton writes and rows the Collector writes read the same:

- ids: lower-case hex, `''` for an empty (all-zero) id, so a root has `ParentSpanId = ''`;
- kinds, status codes and attribute values as the exporter's text (`_clickhouse_values`);
- `Timestamp` is the start, `Duration` is end - start in ns (uint64, wrapping as Go's does),
  `ServiceName` the resource's `service.name`, events and links as Nested arrays.

Rows are built a column at a time from the columns the DuckDB store reads too (`span_batch`),
because stringifying attributes one by one in Python cost more than the INSERT: each distinct
attribute of a request is decoded once, from the bytes the exporter sent.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from ._clickhouse_values import as_string, attribute_items, kind_string, status_string
from ._column_messages import AttributeRequest, AttributeSpan
from ._columns import SpanBatch, span_batch
from ._decode import protobuf_body
from ._decode_pool import Decoding
from ._model import IngestResult

_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)


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
    """One request's valid spans as the exporter's rows (a `QueuedBatch`)."""

    rows: pa.Table
    trace_ids: frozenset[bytes]
    rejected_spans: int
    rejection_message: str

    @property
    def span_count(self) -> int:
        return int(self.rows.num_rows)

    def ingest_result(self) -> IngestResult:
        return IngestResult(self.span_count, self.rejected_spans, self.rejection_message)


_MAP = pa.map_(pa.string(), pa.string())
_DECODED_LIMIT = 1 << 16
# Raw KeyValue bytes -> (key, AsString value). Most attributes repeat from span to span (a
# method, a route, a host), so a value is stringified once, not once a span; emptied when
# full, so values seen once (request ids) cannot grow it without bound.
_decoded: dict[bytes, tuple[str, str]] = {}
_ATTRIBUTES = operator.attrgetter("attributes")
_EVENTS = operator.attrgetter("events")
_LINKS = operator.attrgetter("links")


def _decode_attribute(raw: bytes) -> tuple[str, str]:
    pair = _decoded.get(raw)
    if pair is None:
        kv = KeyValue.FromString(raw)
        value = kv.value
        text = value.string_value if value.WhichOneof("value") == "string_value" else as_string(value)
        pair = (kv.key, text)
        if len(_decoded) >= _DECODED_LIMIT:
            _decoded.clear()
        _decoded[raw] = pair
    return pair


def _offsets(lengths: Iterable[int]) -> pa.Array:
    return pa.array(itertools.accumulate(lengths, initial=0), pa.int32())


def _attribute_maps(per_span: list[Any], extra: list[list[tuple[str, str]]] | None = None) -> pa.Array:
    """A Map column of each span's attributes (raw KeyValue bytes), as `attribute_items` maps
    them: each distinct KeyValue decoded once, a key that repeats in a span kept once with its
    last value. `extra` are pairs appended to each span's own (the scope of an old table)."""
    offsets = _offsets(map(len, per_span))
    flat = pa.array(list(itertools.chain.from_iterable(per_span)), pa.binary()).dictionary_encode()
    pairs = [_decode_attribute(raw) for raw in flat.dictionary.to_pylist()]
    key_numbers: dict[str, int] = {}
    key_of_pair = pa.array([key_numbers.setdefault(p[0], len(key_numbers)) for p in pairs], pa.int64())
    keys = pa.array([p[0] for p in pairs], pa.string()).take(flat.indices)
    values = pa.array([p[1] for p in pairs], pa.string()).take(flat.indices)
    maps = pa.MapArray.from_arrays(offsets, keys, values, type=_MAP)
    if extra is None and not _repeats_a_key(offsets, key_of_pair.take(flat.indices), len(key_numbers)):
        return maps
    # the rare slow path: a key twice in one span, or pairs to add
    spans = maps.to_pylist()
    if extra is not None:
        spans = [span + added for span, added in zip(spans, extra, strict=True)]
    return pa.array([list(dict(span).items()) for span in spans], _MAP)


def _repeats_a_key(offsets: pa.Array, key_numbers: pa.Array, distinct_keys: int) -> bool:
    """Does a span hold a key twice? Each (span, key) pair as one number, all distinct or not."""
    if len(key_numbers) == 0:
        return False
    spans = pa.ListArray.from_arrays(offsets, key_numbers).value_parent_indices()
    pairs = pc.add(pc.multiply(spans, pa.scalar(distinct_keys, pa.int64())), key_numbers)
    return int(pc.count_distinct(pairs).as_py()) != len(key_numbers)


def _event(raw: bytes) -> tuple[int, str, list[tuple[str, str]]]:
    event = Span.Event.FromString(raw)
    return event.time_unix_nano, event.name, attribute_items(event.attributes)


def _link(raw: bytes) -> tuple[str, str, str, list[tuple[str, str]]]:
    link = Span.Link.FromString(raw)
    return (_hex_or_empty(link.trace_id, _ZERO_TRACE_ID), _hex_or_empty(link.span_id, _ZERO_SPAN_ID),
            link.trace_state, attribute_items(link.attributes))


def _nested(spans: list[Any], which: operator.attrgetter[Any], decode: Callable[[bytes], tuple[Any, ...]],
            fields: Sequence[pa.Field]) -> list[pa.Array]:
    """The Nested columns of each span's events or links: few spans have any, so only theirs are
    decoded, and every column is a list array over one offsets array."""
    raw = list(map(which, spans))
    offsets = _offsets(map(len, raw))
    decoded = [decode(item) for items in raw if items for item in items]
    return [pa.ListArray.from_arrays(offsets, pa.array([d[i] for d in decoded], f.type.value_type),
                                     type=f.type)
            for i, f in enumerate(fields)]


def _by_code(codes: pa.Array, spell: Callable[[int], str]) -> pa.Array:
    """Kinds or status codes spelled as pdata does, each distinct code spelled once."""
    distinct = codes.dictionary_encode()
    return pa.array([spell(c) for c in distinct.dictionary.to_pylist()], pa.string()).take(distinct.indices)


def _attribute_spans(body: bytes | bytearray, spans: SpanBatch) -> list[Any]:
    """Each stored span's attributes, events and links, unparsed, in the order of its row."""
    if spans.rejected_spans:  # the rows left out are not in the request's order of spans any more
        return [AttributeSpan.FromString(raw) for raw in spans.spans.column("body").to_pylist()]
    request = AttributeRequest.FromString(body)
    return [span for resource in request.resource_spans for scope in resource.scope_spans
            for span in scope.spans]


_EVENT_FIELDS = [ROW_SCHEMA.field(n) for n in ("Events.Timestamp", "Events.Name", "Events.Attributes")]
_LINK_FIELDS = [ROW_SCHEMA.field(n) for n in ("Links.TraceId", "Links.SpanId", "Links.TraceState",
                                               "Links.Attributes")]


def row_batch(body: bytes | bytearray, *, with_scope_columns: bool = True) -> RowBatch:
    """The rows the exporter would insert for this request (an ExportTraceServiceRequest
    known to parse), built a column at a time. Spans with ids W3C Trace Context forbids are
    left out and counted, as every tracebaton store rejects them (OTLP's partial success).

    `with_scope_columns`: False for a table of an exporter before ScopeName/ScopeVersion,
    which wrote the scope into SpanAttributes['otel.scope.name'/'otel.scope.version'].
    """
    spans = span_batch(body)  # ids checked; the columns every store reads
    table = spans.spans
    resource_of = table.column("resource_id").combine_chunks().dictionary_encode()
    resource_items = [attribute_items(Resource.FromString(spans.resources[rid][1]).attributes)
                      for rid in resource_of.dictionary.to_pylist()]
    services = pa.array([next((v for k, v in items if k == "service.name"), "") for items in resource_items],
                        pa.string())
    scope_of = table.column("scope_id").combine_chunks().dictionary_encode()
    scopes = [InstrumentationScope.FromString(spans.scopes[sid]) for sid in scope_of.dictionary.to_pylist()]
    scope_names = pa.array([scope.name for scope in scopes], pa.string()).take(scope_of.indices)
    scope_versions = pa.array([scope.version for scope in scopes], pa.string()).take(scope_of.indices)
    extra = None
    if not with_scope_columns:
        extra = [[(k, v) for k, v in (("otel.scope.name", name), ("otel.scope.version", version)) if v]
                 for name, version in zip(scope_names.to_pylist(), scope_versions.to_pylist(), strict=True)]

    parsed = _attribute_spans(body, spans)
    starts = table.column("start_ns").combine_chunks()
    columns = [
        starts.cast(pa.int64(), safe=False).cast(pa.timestamp("ns")),
        pa.array([i.hex() for i in table.column("trace_id").to_pylist()], pa.string()),
        pa.array([i.hex() for i in table.column("span_id").to_pylist()], pa.string()),
        pa.array([i.hex() if i else "" for i in table.column("parent_span_id").to_pylist()], pa.string()),
        table.column("trace_state"),
        table.column("name"),
        _by_code(table.column("kind").combine_chunks(), kind_string),
        services.take(resource_of.indices),
        pa.array(resource_items, _MAP).take(resource_of.indices),
        scope_names,
        scope_versions,
        _attribute_maps(list(map(_ATTRIBUTES, parsed)), extra),
        pc.subtract(table.column("end_ns").combine_chunks(), starts),  # wraps, as Go's uint64 does
        _by_code(table.column("status_code").combine_chunks(), status_string),
        table.column("status_message"),
        *_nested(parsed, _EVENTS, _event, _EVENT_FIELDS),
        *_nested(parsed, _LINKS, _link, _LINK_FIELDS),
    ]
    # trace_ids holds linked traces too: a span linking into a trace wakes that trace's waiters
    return RowBatch(pa.Table.from_arrays(columns, schema=ROW_SCHEMA), spans.trace_ids, spans.rejected_spans,
                    spans.rejection_message)


def _row_parts(body: bytes | bytearray, content_type: str, *,
               with_scope_columns: bool) -> tuple[pa.Table, None, Any]:
    batch = row_batch(protobuf_body(body, content_type), with_scope_columns=with_scope_columns)
    return batch.rows, None, (batch.trace_ids, batch.rejected_spans, batch.rejection_message)


def _rows_again(rows: pa.Table, _: pa.Table | None, small: Any) -> RowBatch:
    return RowBatch(rows, *small)


def exporter_rows(*, with_scope_columns: bool) -> Decoding[RowBatch]:
    """Building the exporter's rows in the decoding workers (`DecodePool`): most of the CPU
    of a ClickHouse store's ingest is turning OTLP into those rows, in Python."""
    return Decoding(functools.partial(_row_parts, with_scope_columns=with_scope_columns), _rows_again)


def arrow_rows(batches: Iterable[RowBatch], *, with_scope_columns: bool = True) -> pa.Table:
    """One Arrow table of the batches' rows, in the exporter's column names and types."""
    rows = pa.concat_tables([batch.rows for batch in batches] or [ROW_SCHEMA.empty_table()])
    if not with_scope_columns:
        rows = rows.drop_columns(["ScopeName", "ScopeVersion"])
    return rows
