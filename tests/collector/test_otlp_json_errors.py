"""Rejecting malformed OTLP/JSON: each bad body, and the message that points at the fault."""

from __future__ import annotations

import gc
from typing import Any

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from otlp_json_helpers import one_span

from tracebaton import OtlpDecodeError
from tracebaton.collector import decode_export_request_json


def _deep_array_body(levels: int) -> bytes:
    """A span attribute nested `levels` arrayValues deep (too deep for orjson.dumps)."""
    return (
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":'
        + b'{"arrayValue":{"values":[' * levels
        + b'{"stringValue":"leaf"}'
        + b"]}}" * levels
        + b"}]}]}]}]}"
    )


def _deep_path_body() -> bytes:
    spans = [{"name": f"s{i}", "startTimeUnixNano": "1"} for i in range(5)]
    spans[4]["startTimeUnixNano"] = "abc"
    return orjson.dumps(
        {"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "ok"}]}, {"spans": spans}]}]}
    )


SPAN0 = "resourceSpans[0].scopeSpans[0].spans[0]"

MALFORMED: list[Any] = [
    pytest.param(
        b'{"resourceSpans": [',
        ["not valid JSON", "line 1", "application/x-protobuf"],
        id="not-json",
    ),
    pytest.param(b"", ["not valid JSON"], id="empty-body"),
    pytest.param(b'{"a": "\xff"}', ["not valid JSON"], id="invalid-utf8"),
    pytest.param(
        ExportTraceServiceRequest(
            resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[Span(name="x")])])]
        ).SerializeToString(),
        ["not valid JSON", "application/x-protobuf"],
        id="protobuf-body",
    ),
    pytest.param(b"[]", ["request body is a list, not a JSON object"], id="top-level-list"),
    pytest.param(b'"hello"', ["not a JSON object"], id="top-level-string"),
    pytest.param(b"null", ["not a JSON object"], id="top-level-null"),
    pytest.param(
        one_span(traceId="W47/95gDgQPSabYzgT/GDA=="),
        [f"{SPAN0}.traceId:", "hex", "looks like base64", "application/x-protobuf", "encoder"],
        id="base64-trace-id",
    ),
    pytest.param(
        one_span(spanId="7uGbfsPBsXQ="),
        [f"{SPAN0}.spanId:", "looks like base64"],
        id="base64-span-id",
    ),
    pytest.param(
        orjson.dumps(
            {"resourceSpans": [{"scopeSpans": [{"spans": [{"links": [{}, {"traceId": "+/+/"}]}]}]}]}
        ),
        [f"{SPAN0}.links[1].traceId:", "looks like base64"],
        id="base64-link-id",
    ),
    pytest.param(
        one_span(parentSpanId="abc"),
        [f"{SPAN0}.parentSpanId:", "odd number of hex digits (3)"],
        id="odd-length-hex",
    ),
    pytest.param(
        one_span(traceId="5b 8e"), [f"{SPAN0}.traceId:", "is not hex"], id="hex-with-space"
    ),
    pytest.param(one_span(spanId=123), [f"{SPAN0}.spanId:", "not a string"], id="id-number"),
    pytest.param(
        _deep_path_body(),
        [
            "resourceSpans[0].scopeSpans[1].spans[4].startTimeUnixNano: 'abc' is not an integer",
            "nanoseconds since the epoch",
        ],
        id="wrong-type-deep-path",
    ),
    pytest.param(
        one_span(
            attributes=[
                {"key": "ok", "value": {"stringValue": "v"}},
                {
                    "key": "deep",
                    "value": {
                        "arrayValue": {
                            "values": [
                                {"intValue": 1},
                                {
                                    "kvlistValue": {
                                        "values": [{"key": "x", "value": {"intValue": []}}]
                                    }
                                },
                            ]
                        }
                    },
                },
            ]
        ),
        [
            f"{SPAN0}.attributes[1].value.arrayValue.values[1].kvlistValue.values[0].value"
            ".intValue: a list is not an integer"
        ],
        id="wrong-type-in-nested-attribute",
    ),
    pytest.param(
        orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": {"name": "x"}}]}]}),
        ["resourceSpans[0].scopeSpans[0].spans: an object is not a list"],
        id="spans-not-a-list",
    ),
    pytest.param(
        orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{}, "span"]}]}]}),
        ["resourceSpans[0].scopeSpans[0].spans[1]: 'span' is not an object"],
        id="span-not-an-object",
    ),
    pytest.param(
        orjson.dumps({"resourceSpans": "x"}),
        ["resourceSpans: 'x' is not a list"],
        id="resource-spans-not-a-list",
    ),
    pytest.param(
        orjson.dumps({"resourceSpans": [{"resource": []}]}),
        ["resourceSpans[0].resource: a list is not an object"],
        id="resource-not-an-object",
    ),
    pytest.param(
        orjson.dumps({"resourceSpans": [{"scopeSpans": [{"scope": {"name": 5}}]}]}),
        ["resourceSpans[0].scopeSpans[0].scope.name: 5 is not a string"],
        id="scope-name-not-a-string",
    ),
    pytest.param(
        one_span(status="ERROR"), [f"{SPAN0}.status: 'ERROR' is not an object"], id="status-str"
    ),
    pytest.param(one_span(name=["x"]), [f"{SPAN0}.name: a list is not a string"], id="name-list"),
    pytest.param(
        one_span(attributes={"k": "v"}),
        [f"{SPAN0}.attributes: an object is not a list"],
        id="attributes-not-a-list",
    ),
    pytest.param(
        one_span(attributes=["k=v"]),
        [f"{SPAN0}.attributes[0]: 'k=v' is not an object"],
        id="attribute-not-an-object",
    ),
    pytest.param(
        one_span(attributes=[{"key": 1, "value": {"stringValue": "v"}}]),
        [f"{SPAN0}.attributes[0].key: 1 is not a string"],
        id="attribute-key-not-a-string",
    ),
    pytest.param(
        one_span(attributes=[{"key": "k", "value": "v"}]),
        [f"{SPAN0}.attributes[0].value: 'v' is not an object"],
        id="attribute-value-not-an-object",
    ),
    pytest.param(
        one_span(kind="SPAN_KIND_BOGUS"),
        [f"{SPAN0}.kind: 'SPAN_KIND_BOGUS' is not a known kind", "SPAN_KIND_SERVER (2)"],
        id="enum-unknown-name",
    ),
    pytest.param(
        one_span(status={"code": "ERROR"}),
        [f"{SPAN0}.status.code: 'ERROR' is not a known code", "STATUS_CODE_ERROR (2)"],
        id="status-code-unknown-name",
    ),
    pytest.param(one_span(kind=True), [f"{SPAN0}.kind: true is not an integer"], id="enum-bool"),
    pytest.param(
        one_span(kind=2**31), [f"{SPAN0}.kind: 2147483648 is out of range"], id="enum-big"
    ),
    pytest.param(
        one_span(startTimeUnixNano=-1),
        [f"{SPAN0}.startTimeUnixNano: -1 is out of range", "0 to 18446744073709551615"],
        id="negative-time",
    ),
    pytest.param(
        one_span(endTimeUnixNano="-5"),
        [f"{SPAN0}.endTimeUnixNano: -5 is out of range"],
        id="negative-time-string",
    ),
    pytest.param(
        one_span(startTimeUnixNano="18446744073709551616"),
        [f"{SPAN0}.startTimeUnixNano: 18446744073709551616 is out of range"],
        id="time-above-u64",
    ),
    pytest.param(
        one_span(startTimeUnixNano=1.5),
        [f"{SPAN0}.startTimeUnixNano: 1.5 is not an integer"],
        id="fractional-time",
    ),
    pytest.param(
        one_span(startTimeUnixNano=" 12"),
        [f"{SPAN0}.startTimeUnixNano: ' 12' is not an integer"],
        id="time-string-with-space",
    ),
    pytest.param(
        one_span(startTimeUnixNano="1_000"),
        [f"{SPAN0}.startTimeUnixNano: '1_000' is not an integer"],
        id="time-string-with-underscore",
    ),
    pytest.param(
        one_span(startTimeUnixNano="١٢"),
        [f"{SPAN0}.startTimeUnixNano: '١٢' is not an integer"],
        id="time-string-non-ascii-digits",
    ),
    pytest.param(
        one_span(startTimeUnixNano=True),
        [f"{SPAN0}.startTimeUnixNano: true is not an integer"],
        id="time-bool",
    ),
    pytest.param(
        one_span(attributes=[{"key": "k", "value": {"intValue": "9223372036854775808"}}]),
        [f"{SPAN0}.attributes[0].value.intValue: 9223372036854775808 is out of range"],
        id="int-value-above-int64-string",
    ),
    pytest.param(
        one_span(attributes=[{"key": "k", "value": {"intValue": 9223372036854775808}}]),
        [f"{SPAN0}.attributes[0].value.intValue: 9223372036854775808 is out of range"],
        id="int-value-above-int64-number",
    ),
    pytest.param(
        one_span(attributes=[{"key": "k", "value": {"intValue": "-9223372036854775809"}}]),
        [f"{SPAN0}.attributes[0].value.intValue: -9223372036854775809 is out of range"],
        id="int-value-below-int64-string",
    ),
    pytest.param(
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"attributes":[{"key":"k","value":'
        b'{"intValue":-9223372036854775809}}]}]}]}]}',
        [f"{SPAN0}.attributes[0].value.intValue:", "may have been rounded", "decimal string"],
        id="int-value-below-int64-number-read-as-float",
    ),
    pytest.param(
        b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"startTimeUnixNano":1e400}]}]}]}',
        ["not valid JSON", "infinity"],
        id="huge-number-infinite",
    ),
    pytest.param(
        b'{"resourceSpans":[{"scopeSpans":[{"spans":'
        b'[{"startTimeUnixNano":123456789012345678901234567890}]}]}]}',
        [f"{SPAN0}.startTimeUnixNano: 1.2345678901234568e+29 is out of range"],
        id="huge-number-integer-literal",
    ),
    pytest.param(
        one_span(attributes=[{"key": "k", "value": {"doubleValue": "1e999"}}]),
        [f"{SPAN0}.attributes[0].value.doubleValue: '1e999' is out of range"],
        id="double-string-overflow",
    ),
    pytest.param(
        one_span(attributes=[{"key": "k", "value": {"doubleValue": "nan"}}]),
        [f"{SPAN0}.attributes[0].value.doubleValue: 'nan' is not a number", '"NaN"'],
        id="double-lowercase-nan",
    ),
    pytest.param(
        one_span(attributes=[{"key": "k", "value": {"boolValue": "true"}}]),
        [f"{SPAN0}.attributes[0].value.boolValue: 'true' is not a boolean"],
        id="bool-as-string",
    ),
    pytest.param(
        one_span(attributes=[{"key": "k", "value": {"boolValue": 1}}]),
        [f"{SPAN0}.attributes[0].value.boolValue: 1 is not a boolean"],
        id="bool-as-number",
    ),
    pytest.param(
        one_span(attributes=[{"key": "k", "value": {"stringValue": 5}}]),
        [f"{SPAN0}.attributes[0].value.stringValue: 5 is not a string"],
        id="string-value-number",
    ),
    pytest.param(
        one_span(attributes=[{"key": "k", "value": {"stringValue": "a", "intValue": 1}}]),
        [f"{SPAN0}.attributes[0].value: sets more than one value", "exactly one"],
        id="two-members",
    ),
    pytest.param(
        one_span(attributes=[{"key": "k", "value": {"bytesValue": "not base64!"}}]),
        [f"{SPAN0}.attributes[0].value.bytesValue: 'not base64!' is not base64"],
        id="bytes-not-base64",
    ),
    pytest.param(
        one_span(attributes=[{"key": "k", "value": {"bytesValue": "YQ=YQ"}}]),
        [f"{SPAN0}.attributes[0].value.bytesValue:", "is not base64"],
        id="bytes-bad-padding",
    ),
    pytest.param(
        one_span(attributes=[{"key": "k", "value": {"arrayValue": []}}]),
        [f"{SPAN0}.attributes[0].value.arrayValue: a list is not an object"],
        id="array-value-list",
    ),
    pytest.param(
        _deep_array_body(100),
        [f"{SPAN0}.attributes[0].value.arrayValue.values[0]", "deeper than 32 levels"],
        id="too-deep-100",
    ),
    pytest.param(
        _deep_array_body(32),
        ["deeper than 32 levels", "100 nested messages"],
        id="too-deep-33-levels",
    ),
    pytest.param(
        _deep_array_body(10_000),
        ["deeper than 1024", "at most 32 levels"],
        id="too-deep-10000",
    ),
    pytest.param(
        one_span(flags=2**32), [f"{SPAN0}.flags: 4294967296 is out of range"], id="flags-u32"
    ),
    pytest.param(
        one_span(droppedAttributesCount=-1),
        [f"{SPAN0}.droppedAttributesCount: -1 is out of range"],
        id="negative-count",
    ),
    pytest.param(
        one_span(events=[{"timeUnixNano": "x"}]),
        [f"{SPAN0}.events[0].timeUnixNano: 'x' is not an integer"],
        id="event-time",
    ),
    pytest.param(
        one_span(links=[{"flags": -1}]),
        [f"{SPAN0}.links[0].flags: -1 is out of range"],
        id="link-flags",
    ),
    pytest.param(
        orjson.dumps({"resourceSpans": [{"resource": {"entityRefs": [{"idKeys": [1]}]}}]}),
        ["resourceSpans[0].resource.entityRefs[0].idKeys[0]: 1 is not a string"],
        id="entity-ref-id-key",
    ),
]


@pytest.mark.parametrize(("body", "fragments"), MALFORMED)
def test_malformed_input_is_rejected_with_a_pointed_message(
    body: bytes, fragments: list[str]
) -> None:
    with pytest.raises(OtlpDecodeError) as caught:
        decode_export_request_json(body)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert gc.isenabled()


def test_rejections_do_not_chain_internal_exceptions() -> None:
    with pytest.raises(OtlpDecodeError) as caught:
        decode_export_request_json(one_span(traceId="W47/95gDgQPSabYzgT/GDA=="))
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize("value", ["xyz", "trace", "0x5b8e"])
def test_an_id_that_is_plainly_no_base64_is_not_blamed_on_base64(value: str) -> None:
    with pytest.raises(OtlpDecodeError) as caught:
        decode_export_request_json(one_span(traceId=value))
    message = str(caught.value)
    assert f"{SPAN0}.traceId: {value!r} is not hex; traceId must be written in hex" in message
    assert "base64" not in message
