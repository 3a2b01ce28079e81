"""Decoding OTLP/JSON: an example in the specification's shape, and what is accepted leniently."""

from __future__ import annotations

import gc
import math
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from otlp_json_helpers import I64_MAX, I64_MIN, OTLP_JSON_EXAMPLE, U64_MAX, assert_same, kv, one_span

import tracebaton.collector
from tracebaton import OtlpDecodeError
from tracebaton.collector import decode_export_request_json, encode_export_request_json


def _first_span(request: ExportTraceServiceRequest) -> Span:
    return request.resource_spans[0].scope_spans[0].spans[0]


def _attribute_value(value: Any) -> AnyValue:
    body = one_span(attributes=[{"key": "a", "value": value}])
    return _first_span(decode_export_request_json(body)).attributes[0].value


# --------------------------------------------------------------------------- the example


def test_example_decodes_to_the_right_values() -> None:
    request = decode_export_request_json(OTLP_JSON_EXAMPLE)

    assert len(request.resource_spans) == 1
    rs = request.resource_spans[0]
    assert list(rs.resource.attributes) == [kv("service.name", string_value="checkout")]
    assert len(rs.scope_spans) == 1
    scope = rs.scope_spans[0].scope
    assert (scope.name, scope.version) == ("shop.http", "2.3.0")
    assert list(scope.attributes) == [kv("shop.team", string_value="payments")]
    (span,) = rs.scope_spans[0].spans
    assert span.trace_id == bytes.fromhex("4F2A9C1D7E3B8A6052C4D1E9F0A7B3C8")
    assert span.span_id == bytes.fromhex("9A1B2C3D4E5F6071")
    assert span.parent_span_id == bytes.fromhex("0F1E2D3C4B5A6978")
    assert len(span.trace_id) == 16
    assert len(span.span_id) == 8
    assert span.name == "POST /orders"
    assert span.kind == Span.SPAN_KIND_SERVER
    assert span.start_time_unix_nano == 1763700000000000000
    assert span.end_time_unix_nano == 1763700000042000000
    (attribute,) = span.attributes
    assert attribute.key == "http.request.method"
    assert attribute.value.WhichOneof("value") == "string_value"
    assert attribute.value.string_value == "POST"
    assert not span.HasField("status")
    assert span.status.code == Status.STATUS_CODE_UNSET
    assert list(span.events) == []
    assert list(span.links) == []


# ------------------------------------------------------------------------------ leniency


def test_64_bit_integers_as_numbers_or_strings() -> None:
    as_numbers = one_span(
        startTimeUnixNano=U64_MAX,
        endTimeUnixNano=0,
        attributes=[
            {"key": "min", "value": {"intValue": I64_MIN}},
            {"key": "max", "value": {"intValue": I64_MAX}},
        ],
        events=[{"timeUnixNano": 12}],
        flags=256,
        droppedAttributesCount=3,
    )
    as_strings = one_span(
        startTimeUnixNano=str(U64_MAX),
        endTimeUnixNano="0",
        attributes=[
            {"key": "min", "value": {"intValue": str(I64_MIN)}},
            {"key": "max", "value": {"intValue": str(I64_MAX)}},
        ],
        events=[{"timeUnixNano": "12"}],
        flags="256",
        droppedAttributesCount="3",
    )
    a = decode_export_request_json(as_numbers)
    b = decode_export_request_json(as_strings)
    assert_same(a, b)
    span = _first_span(a)
    assert span.start_time_unix_nano == U64_MAX
    assert [kv.value.int_value for kv in span.attributes] == [I64_MIN, I64_MAX]
    assert span.events[0].time_unix_nano == 12
    assert (span.flags, span.dropped_attributes_count) == (256, 3)


def test_integral_json_floats_are_integers() -> None:
    span = _first_span(decode_export_request_json(one_span(startTimeUnixNano=1.5e15, flags=3.0)))
    assert (span.start_time_unix_nano, span.flags) == (1_500_000_000_000_000, 3)


def test_snake_case_keys_are_accepted() -> None:
    snake = orjson.dumps(
        {
            "resource_spans": [
                {
                    "resource": {"attributes": [], "dropped_attributes_count": 2},
                    "schema_url": "r",
                    "scope_spans": [
                        {
                            "schema_url": "s",
                            "spans": [
                                {
                                    "trace_id": "0102",
                                    "span_id": "03",
                                    "parent_span_id": "04",
                                    "trace_state": "x=y",
                                    "start_time_unix_nano": "5",
                                    "end_time_unix_nano": 6,
                                    "dropped_attributes_count": 1,
                                    "dropped_events_count": 2,
                                    "dropped_links_count": 3,
                                    "attributes": [
                                        {"key": "k", "value": {"string_value": "v"}},
                                        {"key": "i", "value": {"int_value": "9"}},
                                        {"key_strindex": 4, "value": {"bool_value": True}},
                                    ],
                                    "events": [{"time_unix_nano": "7"}],
                                    "links": [{"trace_id": "aa", "span_id": "bb"}],
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    )
    camel = orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": {"attributes": [], "droppedAttributesCount": 2},
                    "schemaUrl": "r",
                    "scopeSpans": [
                        {
                            "schemaUrl": "s",
                            "spans": [
                                {
                                    "traceId": "0102",
                                    "spanId": "03",
                                    "parentSpanId": "04",
                                    "traceState": "x=y",
                                    "startTimeUnixNano": "5",
                                    "endTimeUnixNano": 6,
                                    "droppedAttributesCount": 1,
                                    "droppedEventsCount": 2,
                                    "droppedLinksCount": 3,
                                    "attributes": [
                                        {"key": "k", "value": {"stringValue": "v"}},
                                        {"key": "i", "value": {"intValue": "9"}},
                                        {"keyStrindex": 4, "value": {"boolValue": True}},
                                    ],
                                    "events": [{"timeUnixNano": "7"}],
                                    "links": [{"traceId": "aa", "spanId": "bb"}],
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    )
    a = decode_export_request_json(snake)
    assert_same(a, decode_export_request_json(camel))
    span = _first_span(a)
    assert span.trace_id == b"\x01\x02"
    assert span.dropped_links_count == 3
    assert span.attributes[2].key_strindex == 4
    assert a.resource_spans[0].resource.dropped_attributes_count == 2


def test_unknown_keys_are_ignored() -> None:
    body = orjson.dumps(
        {
            "resourceSpans": [
                {
                    "futureField": {"anything": [1, 2]},
                    "scopeSpans": [
                        {
                            "spans": [
                                {
                                    "name": "n",
                                    "newThing": "x",
                                    "attributes": [
                                        {"key": "k", "value": {"stringValue": "v", "extra": 1}},
                                        {"key": "k2", "value": {"intValue": 1}, "extra": True},
                                        {"key": "k3", "value": {"newValueType": 1}},
                                    ],
                                    "status": {"code": 2, "details": "x"},
                                }
                            ]
                        }
                    ],
                }
            ],
            "partialSuccess": {},
        }
    )
    span = _first_span(decode_export_request_json(body))
    assert span.name == "n"
    assert span.attributes[0].value.string_value == "v"
    assert span.attributes[1].value.int_value == 1
    assert span.attributes[2].HasField("value")
    assert span.attributes[2].value.WhichOneof("value") is None
    assert span.status.code == Status.STATUS_CODE_ERROR


def test_null_means_default() -> None:
    body = orjson.dumps(
        {
            "resourceSpans": [
                {
                    "resource": None,
                    "schemaUrl": None,
                    "scopeSpans": [
                        {
                            "scope": None,
                            "spans": [
                                {
                                    "traceId": None,
                                    "name": None,
                                    "kind": None,
                                    "startTimeUnixNano": None,
                                    "attributes": [
                                        {"key": "k", "value": None},
                                        {"key": "k2", "value": {"stringValue": None}},
                                        {"key": None, "value": {"arrayValue": {"values": None}}},
                                    ],
                                    "events": None,
                                    "links": None,
                                    "status": None,
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    )
    request = decode_export_request_json(body)
    rs = request.resource_spans[0]
    assert not rs.HasField("resource")
    assert not rs.scope_spans[0].HasField("scope")
    span = rs.scope_spans[0].spans[0]
    assert span == Span(
        attributes=[
            KeyValue(key="k"),
            KeyValue(key="k2", value=AnyValue()),
            KeyValue(value=AnyValue(array_value=ArrayValue())),
        ]
    )
    assert decode_export_request_json(b'{"resourceSpans": null}') == ExportTraceServiceRequest()


def test_enum_names_are_accepted() -> None:
    span = _first_span(
        decode_export_request_json(
            one_span(kind="SPAN_KIND_SERVER", status={"code": "STATUS_CODE_ERROR"})
        )
    )
    assert span.kind == Span.SPAN_KIND_SERVER
    assert span.status.code == Status.STATUS_CODE_ERROR


def test_unknown_enum_integers_are_kept() -> None:
    span = _first_span(decode_export_request_json(one_span(kind=17, status={"code": 9})))
    assert (span.kind, span.status.code) == (17, 9)


def test_ids_in_either_case_and_of_any_even_length() -> None:
    span = _first_span(
        decode_export_request_json(
            one_span(traceId="5b8EFFF798038103d269b633813fc60c", spanId="abcd", parentSpanId="")
        )
    )
    assert span.trace_id == bytes.fromhex("5b8efff798038103d269b633813fc60c")
    assert span.span_id == b"\xab\xcd"  # wrong length: for validation to reject, not decoding
    assert span.parent_span_id == b""


def test_double_value_forms() -> None:
    assert math.isnan(_attribute_value({"doubleValue": "NaN"}).double_value)
    assert _attribute_value({"doubleValue": "Infinity"}).double_value == math.inf
    assert _attribute_value({"doubleValue": "-Infinity"}).double_value == -math.inf
    assert _attribute_value({"doubleValue": 2}).double_value == 2.0
    assert _attribute_value({"doubleValue": "1.5e3"}).double_value == 1500.0
    assert math.copysign(1, _attribute_value({"doubleValue": -0.0}).double_value) == -1


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("+/+/", b"\xfb\xff\xbf"),  # standard
        ("-_-_", b"\xfb\xff\xbf"),  # URL-safe
        ("+/8=", b"\xfb\xff"),  # padded
        ("-_8", b"\xfb\xff"),  # URL-safe, unpadded
        ("YQ", b"a"),  # unpadded
        ("", b""),
    ],
)
def test_bytes_value_forms(text: str, raw: bytes) -> None:
    value = _attribute_value({"bytesValue": text})
    assert value.WhichOneof("value") == "bytes_value"
    assert value.bytes_value == raw


def test_present_but_empty_messages_stay_present() -> None:
    body = (
        b'{"resourceSpans":[{"resource":{},"scopeSpans":[{"scope":{},"spans":[{"status":{}}]}]}]}'
    )
    rs = decode_export_request_json(body).resource_spans[0]
    assert rs.HasField("resource")
    assert rs.scope_spans[0].HasField("scope")
    assert rs.scope_spans[0].spans[0].HasField("status")


def test_decoder_leaves_the_garbage_collector_as_it_found_it() -> None:
    assert gc.isenabled()
    decode_export_request_json(OTLP_JSON_EXAMPLE)
    assert gc.isenabled()
    with pytest.raises(OtlpDecodeError):
        decode_export_request_json(b"[]")
    assert gc.isenabled()
    gc.disable()
    try:
        decode_export_request_json(OTLP_JSON_EXAMPLE)
        encode_export_request_json(ExportTraceServiceRequest())
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_public_names() -> None:
    assert {"decode_export_request_json", "encode_export_request_json"} <= set(
        tracebaton.collector.__all__
    )
    assert tracebaton.collector.decode_export_request_json is decode_export_request_json
    assert tracebaton.collector.encode_export_request_json is encode_export_request_json

