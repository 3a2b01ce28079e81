"""What the OTLP/JSON codec tests share: an example body, a one-span body, comparisons.

A plain module, imported by name from the test files beside it.
"""

from __future__ import annotations

from typing import Any

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

U64_MAX = 2**64 - 1
I64_MIN = -(2**63)
I64_MAX = 2**63 - 1

# An OTLP/JSON body in the shape of the specification's example (opentelemetry-proto's
# examples/trace.json): upper-case hex ids, times as JSON numbers, kind as an integer.
OTLP_JSON_EXAMPLE = b"""{
  "resourceSpans": [
    {
      "resource": {
        "attributes": [
          {
            "key": "service.name",
            "value": {
              "stringValue": "checkout"
            }
          }
        ]
      },
      "scopeSpans": [
        {
          "scope": {
            "name": "shop.http",
            "version": "2.3.0",
            "attributes": [
              {
                "key": "shop.team",
                "value": {
                  "stringValue": "payments"
                }
              }
            ]
          },
          "spans": [
            {
              "traceId": "4F2A9C1D7E3B8A6052C4D1E9F0A7B3C8",
              "spanId": "9A1B2C3D4E5F6071",
              "parentSpanId": "0F1E2D3C4B5A6978",
              "name": "POST /orders",
              "startTimeUnixNano": 1763700000000000000,
              "endTimeUnixNano": 1763700000042000000,
              "kind": 2,
              "attributes": [
                {
                  "key": "http.request.method",
                  "value": {
                    "stringValue": "POST"
                  }
                }
              ]
            }
          ]
        }
      ]
    }
  ]
}"""


def kv(key: str, **value: Any) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))


def assert_same(decoded: ExportTraceServiceRequest, original: ExportTraceServiceRequest) -> None:
    assert decoded == original
    assert decoded.SerializeToString(deterministic=True) == original.SerializeToString(
        deterministic=True
    )


def one_span(**span: Any) -> bytes:
    return orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]})

