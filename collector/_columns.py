"""An OTLP request becomes columns for the store: the ingest hot path.

Reading attributes one by one costs about a microsecond each in Python, ten times the
rest of a span. So only the fields that queries filter on become columns; the span
itself is kept as the protobuf bytes the exporter sent (`body`, sliced out of the request
in C by `_column_messages`, never encoded again), which keeps every attribute, event and
link with its OTLP type and is decoded when a trace is read. Attribute equality search
runs over those bodies (see `_anyvalue.attribute_patterns`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import operator
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from ._column_messages import ColumnRequest, ColumnStatus, RawRequest
from ._model import IngestResult

SPAN_COLUMNS = pa.schema([
    ("trace_id", pa.binary()),
    ("span_id", pa.binary()),
    ("parent_span_id", pa.binary()),
    ("trace_state", pa.string()),
    ("flags", pa.uint32()),
    ("name", pa.string()),
    ("kind", pa.int32()),
    ("start_ns", pa.uint64()),
    ("end_ns", pa.uint64()),
    ("status_code", pa.int32()),
    ("status_message", pa.string()),
    ("service", pa.string()),
    ("resource_id", pa.int64()),
    ("scope_id", pa.int64()),
    ("body", pa.binary()),
])

LINK_COLUMNS = pa.schema([
    ("trace_id", pa.binary()),
    ("span_id", pa.binary()),
    ("linked_trace_id", pa.binary()),
    ("linked_span_id", pa.binary()),
])

UNKNOWN_SERVICE = "unknown_service"
_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)


@dataclasses.dataclass(frozen=True, slots=True)
class SpanBatch:
    """One request's valid spans as columns, ready for a single INSERT."""

    spans: pa.Table
    links: pa.Table | None
    resources: dict[int, tuple[str, bytes]]
    """resource_id -> (service name, serialized Resource)."""
    scopes: dict[int, bytes]
    """scope_id -> serialized InstrumentationScope."""
    trace_ids: frozenset[bytes]
    rejected_spans: int
    rejection_message: str

    @property
    def span_count(self) -> int:
        return int(self.spans.num_rows)

    def ingest_result(self) -> IngestResult:
        return IngestResult(self.span_count, self.rejected_spans, self.rejection_message)


def content_id(data: bytes) -> int:
    """A stable 64-bit id for a resource or scope (same content, same id, every process)."""
    digest = hashlib.blake2b(data, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def service_name(resource: Resource) -> str:
    for kv in resource.attributes:
        if kv.key == "service.name":
            return kv.value.string_value or UNKNOWN_SERVICE
    return UNKNOWN_SERVICE


def _id_problem(trace_id: bytes, span_id: bytes, parent_id: bytes) -> str | None:
    if len(trace_id) != 16:
        return f"trace_id is {len(trace_id)} bytes ({trace_id.hex()!r}); it must be 16"
    if trace_id == _ZERO_TRACE_ID:
        return "trace_id is all zeros, which W3C Trace Context forbids"
    if len(span_id) != 8:
        return f"span_id is {len(span_id)} bytes ({span_id.hex()!r}); it must be 8"
    if span_id == _ZERO_SPAN_ID:
        return "span_id is all zeros, which W3C Trace Context forbids"
    if parent_id and len(parent_id) != 8:
        return f"parent_span_id is {len(parent_id)} bytes ({parent_id.hex()!r}); it must be 8 or empty"
    return None


# Scalars made once: pyarrow converting a Python int on each call tries (and fails) to
# import numpy every time, which cost more than the comparisons.
_LENGTH_0 = pa.scalar(0, pa.int32())
_LENGTH_8 = pa.scalar(8, pa.int32())
_LENGTH_16 = pa.scalar(16, pa.int32())
_ZERO_TRACE_ID_SCALAR = pa.scalar(_ZERO_TRACE_ID, pa.binary())
_ZERO_SPAN_ID_SCALAR = pa.scalar(_ZERO_SPAN_ID, pa.binary())
_NO_BINARY = pa.scalar(None, pa.binary())


def _valid_ids(trace_ids: pa.Array, span_ids: pa.Array, parent_ids: pa.Array) -> pa.Array:
    """Per span: are its ids what W3C Trace Context allows? Computed a column at a time."""
    parent_length = pc.binary_length(parent_ids)
    return pc.and_(
        pc.and_(pc.equal(pc.binary_length(trace_ids), _LENGTH_16),
                pc.not_equal(trace_ids, _ZERO_TRACE_ID_SCALAR)),
        pc.and_(pc.and_(pc.equal(pc.binary_length(span_ids), _LENGTH_8),
                        pc.not_equal(span_ids, _ZERO_SPAN_ID_SCALAR)),
                pc.or_(pc.equal(parent_length, _LENGTH_0), pc.equal(parent_length, _LENGTH_8))))


def _first_problem(request: Any, valid: list[bool]) -> str:
    index = 0
    for r_index, resource_spans in enumerate(request.resource_spans):
        for s_index, scope_spans in enumerate(resource_spans.scope_spans):
            for p_index, span in enumerate(scope_spans.spans):
                if not valid[index]:
                    at = f"resourceSpans[{r_index}].scopeSpans[{s_index}].spans[{p_index}]"
                    return f"{at}: {_id_problem(span.trace_id, span.span_id, span.parent_span_id)}"
                index += 1
    return ""


_SPAN_FIELD_NAMES = ("trace_id", "span_id", "parent_span_id", "trace_state", "flags", "name", "kind",
                     "start_time_unix_nano", "end_time_unix_nano", "status", "links")
_SPAN_FIELDS = [operator.attrgetter(name) for name in _SPAN_FIELD_NAMES]


def _statuses(encoded: Sequence[bytes]) -> tuple[pa.Array, pa.Array]:
    """Status code and message columns; a request holds few distinct statuses, each
    decoded once."""
    distinct = pa.array(encoded, pa.binary()).dictionary_encode()
    statuses = [ColumnStatus.FromString(status) for status in distinct.dictionary.to_pylist()]
    codes = pa.array([status.code for status in statuses], pa.int32())
    messages = pa.array([status.message for status in statuses], pa.string())
    return codes.take(distinct.indices), messages.take(distinct.indices)


def span_batch(body: bytes | bytearray) -> SpanBatch:
    """Columns for every span with valid ids; the others are counted and described.

    `body` is a serialized ExportTraceServiceRequest that already parsed as one (so it
    is known to be well formed throughout, attributes and events included).
    """
    raw = RawRequest.FromString(body)
    request = ColumnRequest.FromString(body)
    spans: list[Any] = []
    bodies: list[bytes] = []
    services: list[str] = []
    resource_ids: list[int] = []
    scope_ids: list[int] = []
    resources: dict[int, tuple[str, bytes]] = {}
    scopes: dict[int, bytes] = {}

    for raw_resource, resource_spans in zip(raw.resource_spans, request.resource_spans, strict=True):
        resource_bytes = raw_resource.resource
        resource_id = content_id(resource_bytes)
        service = service_name(Resource.FromString(resource_bytes))
        resources[resource_id] = (service, resource_bytes)
        for raw_scope, scope_spans in zip(raw_resource.scope_spans, resource_spans.scope_spans, strict=True):
            scope_bytes = raw_scope.scope
            scope_id = content_id(scope_bytes)
            scopes[scope_id] = scope_bytes
            spans.extend(scope_spans.spans)
            bodies.extend(raw_scope.spans)
            count = len(raw_scope.spans)
            services.extend([service] * count)
            resource_ids.extend([resource_id] * count)
            scope_ids.extend([scope_id] * count)

    # A column at a time, each read a C call per span: reads in bytecode, or whole rows
    # transposed afterwards, cost half as much again.
    (trace_id_values, span_id_values, parent_values, trace_states, flags, names, kinds, starts, ends,
     statuses, span_links) = (list(map(field, spans)) for field in _SPAN_FIELDS)
    trace_ids = pa.array(trace_id_values, pa.binary())
    span_ids = pa.array(span_id_values, pa.binary())
    parents = pa.array(parent_values, pa.binary())
    codes, messages = _statuses(statuses)
    # An all-zero parent is how some SDKs write "no parent".
    no_parent = pc.or_(pc.equal(pc.binary_length(parents), _LENGTH_0),
                       pc.equal(parents, _ZERO_SPAN_ID_SCALAR))
    spans_table = pa.Table.from_arrays(
        [
            trace_ids,
            span_ids,
            pc.if_else(no_parent, _NO_BINARY, parents),
            pa.array(trace_states, pa.string()),
            pa.array(flags, pa.uint32()),
            pa.array(names, pa.string()),
            pa.array(kinds, pa.int32()),
            pa.array(starts, pa.uint64()),
            pa.array(ends, pa.uint64()),
            codes,
            messages,
            pa.array(services, pa.string()),
            pa.array(resource_ids, pa.int64()),
            pa.array(scope_ids, pa.int64()),
            pa.array(bodies, pa.binary()),
        ],
        schema=SPAN_COLUMNS,
    )
    link_table = None
    owners = [index for index, links in enumerate(span_links) if links for _ in links]
    if owners:
        pairs = [(link.trace_id, link.span_id) for links in span_links for link in links]
        link_table = pa.Table.from_arrays(
            [trace_ids.take(owners), span_ids.take(owners),
             pa.array([p[0] for p in pairs], pa.binary()), pa.array([p[1] for p in pairs], pa.binary())],
            schema=LINK_COLUMNS)

    valid = _valid_ids(trace_ids, span_ids, parents)
    rejected = len(valid) - pc.sum(valid).as_py() if len(valid) else 0
    message = ""
    if rejected:
        valid_list = valid.to_pylist()
        message = (
            f"rejected {rejected} of {len(valid_list)} spans with invalid ids; first: "
            f"{_first_problem(request, valid_list)}. Ids come from the SDK's id generator: check "
            "custom IdGenerators and hand-built spans"
        )
        spans_table = spans_table.filter(valid)
        if link_table is not None:
            link_table = link_table.filter(valid.take(owners))
            link_table = link_table if link_table.num_rows else None
    stored_trace_ids = set(spans_table.column("trace_id").to_pylist()) if rejected else set(trace_id_values)
    if link_table is not None:
        # a span linking into a trace wakes that trace's waiters: its flow now covers this one
        stored_trace_ids.update(link_table.column("linked_trace_id").to_pylist())
    return SpanBatch(
        spans=spans_table,
        links=link_table,
        resources=resources,
        scopes=scopes,
        trace_ids=frozenset(stored_trace_ids),
        rejected_spans=rejected,
        rejection_message=message,
    )
