"""Requests into columns: what the store keeps of each span, read without a full parse."""

from __future__ import annotations

import os

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from otlp_requests import new_trace_id, request

from tracebaton.collector._column_messages import FIELDS
from tracebaton.collector._columns import span_batch

_REAL: dict[str, Descriptor] = {
    "RawRequest": ExportTraceServiceRequest.DESCRIPTOR,
    "RawResourceSpans": ResourceSpans.DESCRIPTOR,
    "RawScopeSpans": ScopeSpans.DESCRIPTOR,
    "ColumnRequest": ExportTraceServiceRequest.DESCRIPTOR,
    "ColumnResourceSpans": ResourceSpans.DESCRIPTOR,
    "ColumnScopeSpans": ScopeSpans.DESCRIPTOR,
    "ColumnSpan": Span.DESCRIPTOR,
    "ColumnLink": Span.Link.DESCRIPTOR,
    "ColumnStatus": Status.DESCRIPTOR,
    "AttributeRequest": ExportTraceServiceRequest.DESCRIPTOR,
    "AttributeResourceSpans": ResourceSpans.DESCRIPTOR,
    "AttributeScopeSpans": ScopeSpans.DESCRIPTOR,
    "AttributeSpan": Span.DESCRIPTOR,
}
_LENGTH_DELIMITED = {FieldDescriptor.TYPE_MESSAGE, FieldDescriptor.TYPE_BYTES, FieldDescriptor.TYPE_STRING}
_VARINT = {FieldDescriptor.TYPE_ENUM, FieldDescriptor.TYPE_INT32}


@pytest.mark.parametrize("name", sorted(FIELDS))
def test_column_messages_read_the_wire_format_of_opentelemetry_proto(name: str) -> None:
    real = _REAL[name]
    for field, number, kind, repeated, _ in FIELDS[name]:
        counterpart = real.fields_by_name[field]
        assert counterpart.number == number, f"{name}.{field}"
        assert counterpart.is_repeated == repeated, f"{name}.{field}"
        same_wire = (kind == counterpart.type or {kind, counterpart.type} <= _LENGTH_DELIMITED
                     or {kind, counterpart.type} <= _VARINT)
        assert same_wire, f"{name}.{field}: {kind} cannot read {counterpart.type}"


def _one_span(span: Span) -> ExportTraceServiceRequest:
    req = request([])
    req.resource_spans[0].scope_spans[0].spans.append(span)
    return req


def _full_span(trace_id: bytes) -> Span:
    span = Span(trace_id=trace_id, span_id=os.urandom(8), parent_span_id=os.urandom(8), name="POST /pay",
                kind=Span.SPAN_KIND_CLIENT, start_time_unix_nano=10, end_time_unix_nano=20,
                trace_state="k=v", flags=0x301,
                status=Status(code=Status.STATUS_CODE_ERROR, message="card declined"))
    span.attributes.append(KeyValue(key="http.response.status_code", value=AnyValue(int_value=402)))
    span.events.add(name="exception", time_unix_nano=15)
    span.links.add(trace_id=new_trace_id(), span_id=os.urandom(8))
    return span


def test_every_column_comes_from_its_field() -> None:
    span = _full_span(new_trace_id())
    batch = span_batch(_one_span(span).SerializeToString())
    row = batch.spans.to_pylist()[0]
    assert row["trace_id"] == span.trace_id
    assert row["span_id"] == span.span_id
    assert row["parent_span_id"] == span.parent_span_id
    assert (row["name"], row["kind"], row["start_ns"], row["end_ns"]) == ("POST /pay", 3, 10, 20)
    assert (row["trace_state"], row["flags"]) == ("k=v", 0x301)
    assert (row["status_code"], row["status_message"]) == (2, "card declined")
    assert row["service"] == "checkout"
    assert batch.links is not None
    assert batch.links.to_pylist() == [{
        "trace_id": span.trace_id, "span_id": span.span_id,
        "linked_trace_id": span.links[0].trace_id, "linked_span_id": span.links[0].span_id}]
    assert batch.trace_ids == {span.trace_id, span.links[0].trace_id}


def test_the_body_is_the_span_as_the_exporter_encoded_it() -> None:
    span = _full_span(new_trace_id())
    # Fields in descending order: valid protobuf that upb itself would never write.
    reordered = b"".join(reversed([
        Span(**{field.name: value}).SerializeToString() if not field.is_repeated
        else b"".join(Span(**{field.name: [item]}).SerializeToString() for item in value)
        for field, value in span.ListFields()]))
    assert reordered != span.SerializeToString()
    # The envelope written by hand around it: field 2 of ScopeSpans and of ResourceSpans,
    # field 1 of the request, each length-delimited.
    envelope = request([]).resource_spans[0]
    scope_bytes = envelope.scope_spans[0].SerializeToString() + _field(2, reordered)
    resource_bytes = ResourceSpans(resource=envelope.resource).SerializeToString() + _field(2, scope_bytes)
    body = _field(1, resource_bytes)

    stored = span_batch(body).spans.to_pylist()[0]
    assert stored["body"] == reordered
    assert Span.FromString(stored["body"]) == span
    assert stored["name"] == "POST /pay"


def _field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_an_unknown_kind_and_status_code_are_kept_as_numbers() -> None:
    span = Span(trace_id=new_trace_id(), span_id=os.urandom(8), name="x", kind=9,  # type: ignore[arg-type]
                status=Status(code=7))  # type: ignore[arg-type]
    row = span_batch(_one_span(span).SerializeToString()).spans.to_pylist()[0]
    assert (row["kind"], row["status_code"]) == (9, 7)


def test_spans_with_invalid_ids_are_counted_named_and_dropped_with_their_links() -> None:
    good = _full_span(new_trace_id())
    bad = _full_span(bytes(16))
    req = _one_span(bad)
    req.resource_spans[0].scope_spans[0].spans.append(good)
    batch = span_batch(req.SerializeToString())
    assert batch.rejected_spans == 1
    assert batch.rejection_message.startswith(
        "rejected 1 of 2 spans with invalid ids; first: resourceSpans[0].scopeSpans[0].spans[0]: "
        "trace_id is all zeros")
    assert [row["span_id"] for row in batch.spans.to_pylist()] == [good.span_id]
    assert batch.links is not None
    assert batch.links.column("span_id").to_pylist() == [good.span_id]
    assert bytes(16) not in batch.trace_ids


def test_an_all_zero_or_empty_parent_means_a_root() -> None:
    trace_id = new_trace_id()
    req = request([(trace_id, os.urandom(8), bytes(8)), (trace_id, os.urandom(8), b"")])
    assert span_batch(req.SerializeToString()).spans.column("parent_span_id").to_pylist() == [None, None]


def test_a_request_without_spans_gives_an_empty_batch() -> None:
    batch = span_batch(ExportTraceServiceRequest().SerializeToString())
    assert batch.span_count == 0
    assert batch.rejected_spans == 0
    assert batch.links is None
