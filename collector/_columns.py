"""An OTLP request becomes columns for the store: the ingest hot path.

Reading attributes one by one costs about a microsecond each in Python, ten times the
rest of a span. So only the fields that queries filter on become columns; the span
itself is kept as its serialized protobuf (`body`), which keeps every attribute, event
and link with its OTLP type and is decoded when a trace is read. Attribute equality
search runs over those bodies (see `_anyvalue.attribute_patterns`).
"""

from __future__ import annotations

import dataclasses
import hashlib

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

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


def span_batch(request: ExportTraceServiceRequest) -> SpanBatch:
    """Columns for every span with valid ids; the others are counted and described."""
    trace_ids: list[bytes] = []
    span_ids: list[bytes] = []
    parent_ids: list[bytes | None] = []
    trace_states: list[str] = []
    flags: list[int] = []
    names: list[str] = []
    kinds: list[int] = []
    starts: list[int] = []
    ends: list[int] = []
    status_codes: list[int] = []
    status_messages: list[str] = []
    services: list[str] = []
    resource_ids: list[int] = []
    scope_ids: list[int] = []
    bodies: list[bytes] = []
    link_rows: list[tuple[bytes, bytes, bytes, bytes]] = []
    resources: dict[int, tuple[str, bytes]] = {}
    scopes: dict[int, bytes] = {}
    rejected = 0
    first_problem = ""

    for r_index, resource_spans in enumerate(request.resource_spans):
        resource_bytes = resource_spans.resource.SerializeToString()
        resource_id = content_id(resource_bytes)
        service = service_name(resource_spans.resource)
        resources[resource_id] = (service, resource_bytes)
        for s_index, scope_spans in enumerate(resource_spans.scope_spans):
            scope_bytes = scope_spans.scope.SerializeToString()
            scope_id = content_id(scope_bytes)
            scopes[scope_id] = scope_bytes
            before = len(trace_ids)
            for p_index, span in enumerate(scope_spans.spans):
                trace_id = span.trace_id
                span_id = span.span_id
                parent_id = span.parent_span_id
                if (len(trace_id) != 16 or len(span_id) != 8 or trace_id == _ZERO_TRACE_ID
                        or span_id == _ZERO_SPAN_ID or (parent_id and len(parent_id) != 8)):
                    rejected += 1
                    if not first_problem:
                        at = f"resourceSpans[{r_index}].scopeSpans[{s_index}].spans[{p_index}]"
                        first_problem = f"{at}: {_id_problem(trace_id, span_id, parent_id)}"
                    continue
                trace_ids.append(trace_id)
                span_ids.append(span_id)
                # An all-zero parent is how some SDKs write "no parent".
                parent_ids.append(parent_id if parent_id and parent_id != _ZERO_SPAN_ID else None)
                trace_states.append(span.trace_state)
                flags.append(span.flags)
                names.append(span.name)
                kinds.append(span.kind)
                starts.append(span.start_time_unix_nano)
                ends.append(span.end_time_unix_nano)
                status = span.status
                status_codes.append(status.code)
                status_messages.append(status.message)
                bodies.append(span.SerializeToString())
                if span.links:
                    for link in span.links:
                        link_rows.append((trace_id, span_id, link.trace_id, link.span_id))
            count = len(trace_ids) - before
            services.extend([service] * count)
            resource_ids.extend([resource_id] * count)
            scope_ids.extend([scope_id] * count)

    spans = pa.Table.from_arrays(
        [
            pa.array(trace_ids, pa.binary()),
            pa.array(span_ids, pa.binary()),
            pa.array(parent_ids, pa.binary()),
            pa.array(trace_states, pa.string()),
            pa.array(flags, pa.uint32()),
            pa.array(names, pa.string()),
            pa.array(kinds, pa.int32()),
            pa.array(starts, pa.uint64()),
            pa.array(ends, pa.uint64()),
            pa.array(status_codes, pa.int32()),
            pa.array(status_messages, pa.string()),
            pa.array(services, pa.string()),
            pa.array(resource_ids, pa.int64()),
            pa.array(scope_ids, pa.int64()),
            pa.array(bodies, pa.binary()),
        ],
        schema=SPAN_COLUMNS,
    )
    links = None
    if link_rows:
        links = pa.Table.from_arrays(
            [pa.array([row[i] for row in link_rows], pa.binary()) for i in range(4)],
            schema=LINK_COLUMNS,
        )
    message = ""
    if rejected:
        message = (
            f"rejected {rejected} of {rejected + len(trace_ids)} spans with invalid ids; first: "
            f"{first_problem}. Ids come from the SDK's id generator: check custom IdGenerators "
            "and hand-built spans"
        )
    return SpanBatch(
        spans=spans,
        links=links,
        resources=resources,
        scopes=scopes,
        # a span linking into a trace wakes that trace's waiters: its flow now covers this one
        trace_ids=frozenset(trace_ids).union(row[2] for row in link_rows),
        rejected_spans=rejected,
        rejection_message=message,
    )
