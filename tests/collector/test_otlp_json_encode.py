"""Encoding OTLP/JSON: the forms it writes, proto3 JSON as a cross-check, and round trips."""

from __future__ import annotations

import base64
import math
from typing import Any

import orjson
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    EntityRef,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from otlp_json_helpers import I64_MAX, I64_MIN, OTLP_JSON_EXAMPLE, U64_MAX, assert_same, kv
from support.otlp_workload import build_request

from tracebaton.collector import decode_export_request_json, encode_export_request_json


def _full_request() -> ExportTraceServiceRequest:
    """Every message, every field, every AnyValue member, and the extremes."""
    nested_array = AnyValue(
        array_value=ArrayValue(
            values=[
                AnyValue(string_value="a"),
                AnyValue(int_value=-7),
                AnyValue(array_value=ArrayValue(values=[AnyValue(bool_value=False)])),
                AnyValue(array_value=ArrayValue()),
                AnyValue(kvlist_value=KeyValueList(values=[kv("inner", double_value=-0.0)])),
                AnyValue(),
            ]
        )
    )
    nested_kvlist = AnyValue(
        kvlist_value=KeyValueList(
            values=[
                kv("k1", string_value="v1"),
                KeyValue(key="k2", value=nested_array),
                KeyValue(key="no-value"),
                kv("deeper", kvlist_value=KeyValueList(values=[kv("x", bytes_value=b"\x00")])),
                kv("empty", kvlist_value=KeyValueList()),
            ]
        )
    )
    attributes = [
        kv("str", string_value='héllo ✓ \U0001f600 "quoted" \\ \n'),
        kv("empty-str", string_value=""),
        kv("true", bool_value=True),
        kv("false", bool_value=False),
        kv("zero", int_value=0),
        kv("neg", int_value=-42),
        kv("i64min", int_value=I64_MIN),
        kv("i64max", int_value=I64_MAX),
        kv("nan", double_value=math.nan),
        kv("inf", double_value=math.inf),
        kv("-inf", double_value=-math.inf),
        kv("-zero", double_value=-0.0),
        kv("zero-double", double_value=0.0),
        kv("tiny", double_value=5e-324),
        kv("huge", double_value=1.7976931348623157e308),
        kv("pi", double_value=math.pi),
        kv("bytes", bytes_value=bytes(range(256))),
        kv("empty-bytes", bytes_value=b""),
        KeyValue(key="array", value=nested_array),
        KeyValue(key="kvlist", value=nested_kvlist),
        KeyValue(key="empty-any", value=AnyValue()),
        KeyValue(key="unset-value"),
        kv("strindex", string_value_strindex=3),
        KeyValue(key_strindex=-5, value=AnyValue(int_value=1)),
    ]
    span = Span(
        trace_id=bytes.fromhex("5b8efff798038103d269b633813fc60c"),
        span_id=bytes.fromhex("eee19b7ec3c1b174"),
        trace_state="vendor=a,other=b",
        parent_span_id=bytes.fromhex("eee19b7ec3c1b173"),
        flags=2**32 - 1,
        name="every field",
        kind=Span.SPAN_KIND_CONSUMER,
        start_time_unix_nano=1,
        end_time_unix_nano=U64_MAX,
        attributes=attributes,
        dropped_attributes_count=2**32 - 1,
        events=[
            Span.Event(
                time_unix_nano=U64_MAX,
                name="exception",
                attributes=[kv("exception.type", string_value="ValueError")],
                dropped_attributes_count=1,
            ),
            Span.Event(),
        ],
        dropped_events_count=3,
        links=[
            Span.Link(
                trace_id=bytes(range(16)),
                span_id=bytes(range(8)),
                trace_state="k=v",
                attributes=[kv("link.attr", int_value=5)],
                dropped_attributes_count=4,
                flags=0x301,
            ),
            Span.Link(),
        ],
        dropped_links_count=5,
        status=Status(message="it broke", code=Status.STATUS_CODE_ERROR),
    )
    odd_span = Span(
        trace_id=b"\x01\x02\x03",  # wrong length: kept, for validation to reject later
        span_id=b"",
        kind=Span.SpanKind.ValueType(42),  # unknown to this version of the proto: kept
        status=Status(),  # present but empty
    )
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(
                    attributes=[kv("service.name", string_value="svc")],
                    dropped_attributes_count=7,
                    entity_refs=[
                        EntityRef(
                            schema_url="https://example.com/e",
                            type="service",
                            id_keys=["service.name"],
                            description_keys=["service.version", "host.name"],
                        ),
                        EntityRef(),
                    ],
                ),
                scope_spans=[
                    ScopeSpans(
                        scope=InstrumentationScope(
                            name="lib",
                            version="1.0",
                            attributes=[kv("scope.attr", bool_value=True)],
                            dropped_attributes_count=8,
                        ),
                        spans=[span, odd_span, Span()],
                        schema_url="https://opentelemetry.io/schemas/1.26.0",
                    ),
                    ScopeSpans(scope=InstrumentationScope()),
                    ScopeSpans(),
                ],
                schema_url="https://opentelemetry.io/schemas/1.25.0",
            ),
            ResourceSpans(resource=Resource()),
            ResourceSpans(),
        ]
    )


# --------------------------------------------------------------------------- round trips


def test_example_round_trips_through_the_encoder() -> None:
    request = decode_export_request_json(OTLP_JSON_EXAMPLE)
    encoded = orjson.loads(encode_export_request_json(request))
    span = encoded["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert span["traceId"] == "4f2a9c1d7e3b8a6052c4d1e9f0a7b3c8"  # lower case out
    assert span["startTimeUnixNano"] == "1763700000000000000"  # a decimal string out
    assert span["kind"] == 2
    assert_same(decode_export_request_json(encode_export_request_json(request)), request)


def test_reference_workload_round_trips() -> None:
    for seed in (0, 1, 7):
        request = build_request(seed=seed)
        assert_same(decode_export_request_json(encode_export_request_json(request)), request)


def test_every_field_and_value_type_round_trips() -> None:
    request = _full_request()
    assert_same(decode_export_request_json(encode_export_request_json(request)), request)


def test_empty_request_round_trips() -> None:
    assert encode_export_request_json(ExportTraceServiceRequest()) == b"{}"
    assert_same(decode_export_request_json(b"{}"), ExportTraceServiceRequest())
    assert_same(decode_export_request_json(b'{"resourceSpans": []}'), ExportTraceServiceRequest())


def _proto3_dict_with_hex_ids(request: ExportTraceServiceRequest) -> Any:
    """json_format's proto3 JSON of `request`, with ids re-encoded the OTLP way."""
    document = json_format.MessageToDict(request, use_integers_for_enums=True)

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: base64.b64decode(value).hex()
                if key in ("traceId", "spanId", "parentSpanId")
                else fix(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [fix(item) for item in node]
        return node

    return fix(document)


def test_encoding_is_proto3_json_except_for_ids() -> None:
    """Cross-check against the reference mapping: the only deviation is hex ids."""
    request = _full_request()
    # NaN != NaN, so compare a copy without the NaN attribute for dict equality
    span = request.resource_spans[0].scope_spans[0].spans[0]
    kept = [kv for kv in span.attributes if kv.key != "nan"]
    del span.attributes[:]
    span.attributes.extend(kept)
    assert orjson.loads(encode_export_request_json(request)) == _proto3_dict_with_hex_ids(request)


def test_encoding_of_workload_matches_proto3_json_except_for_ids() -> None:
    request = build_request(seed=3)
    assert orjson.loads(encode_export_request_json(request)) == _proto3_dict_with_hex_ids(request)


def test_encoder_writes_the_otlp_forms() -> None:
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                scope_spans=[
                    ScopeSpans(
                        spans=[
                            Span(
                                trace_id=bytes.fromhex("ABCDEF0123456789ABCDEF0123456789"),
                                kind=Span.SPAN_KIND_CLIENT,
                                start_time_unix_nano=U64_MAX,
                                attributes=[
                                    kv("i", int_value=I64_MIN),
                                    kv("d", double_value=math.nan),
                                    kv("b", bytes_value=b"\xfb\xff"),
                                ],
                                status=Status(code=Status.STATUS_CODE_OK),
                            )
                        ]
                    )
                ]
            )
        ]
    )
    span = orjson.loads(encode_export_request_json(request))["resourceSpans"][0]["scopeSpans"][0][
        "spans"
    ][0]
    assert span == {
        "traceId": "abcdef0123456789abcdef0123456789",
        "kind": 3,
        "startTimeUnixNano": str(U64_MAX),
        "attributes": [
            {"key": "i", "value": {"intValue": str(I64_MIN)}},
            {"key": "d", "value": {"doubleValue": "NaN"}},
            {"key": "b", "value": {"bytesValue": "+/8="}},
        ],
        "status": {"code": 1},
    }


def _nested_request(levels: int, kind: str) -> ExportTraceServiceRequest:
    """An event attribute `levels` AnyValues deep, the deepest place one can be.

    Built from dicts: nesting message objects copies them through upb's parser, which
    stops at 100 nested messages.
    """
    value: dict[str, Any] = {"string_value": "leaf"}
    for level in range(levels - 1):
        if kind == "array" or (kind == "alternating" and level % 2):
            value = {"array_value": {"values": [value, {"int_value": level}]}}
        else:
            value = {"kvlist_value": {"values": [{"key": "k", "value": value}]}}
    span = {"events": [{"attributes": [{"key": "a", "value": value}]}]}
    fields: dict[str, Any] = {"resource_spans": [{"scope_spans": [{"spans": [span]}]}]}
    return ExportTraceServiceRequest(**fields)


@pytest.mark.parametrize("kind", ["array", "kvlist", "alternating"])
def test_nesting_up_to_the_limit_round_trips(kind: str) -> None:
    request = _nested_request(32, kind)
    assert_same(decode_export_request_json(encode_export_request_json(request)), request)
    # and the limit is one protobuf itself can carry
    assert_same(ExportTraceServiceRequest.FromString(request.SerializeToString()), request)


def test_encoder_refuses_nesting_the_decoder_would_refuse() -> None:
    with pytest.raises(ValueError, match="deeper than 32 levels"):
        encode_export_request_json(_nested_request(33, "array"))
