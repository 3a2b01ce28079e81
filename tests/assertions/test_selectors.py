"""Selectors, attribute aliases across semantic-convention versions, and captured headers."""

from __future__ import annotations

from typing import Any

import pytest

from tracebaton.assertions._selectors import (
    attribute_lookup,
    attribute_matches,
    captures_any_headers,
    header_values,
    selector_matches,
)
from tracebaton.assertions._spec import Selector
from tracebaton.assertions._spec_parse import parse_flow_spec
from tracebaton.collector import AttributeValue, SpanKind, StatusCode, StoredSpan


def make_span(service: str = "payment", name: str = "POST /charge", kind: SpanKind = SpanKind.SERVER,
              status: StatusCode = StatusCode.UNSET, attributes: dict[str, AttributeValue] | None = None,
              resource: dict[str, AttributeValue] | None = None) -> StoredSpan:
    return StoredSpan(
        trace_id="0af7651916cd43dd8448eb211c80319c", span_id="b7ad6b7169203331", parent_span_id=None,
        name=name, kind=kind, start_unix_nano=1_700_000_000_000_000_000,
        end_unix_nano=1_700_000_000_050_000_000, status_code=status, status_message="", service=service,
        trace_state="", flags=0, attributes=attributes or {}, events=(), links=(),
        resource={"service.name": service, **(resource or {})}, scope_name="test", scope_version="",
        arrival_unix_nano=1_700_000_000_060_000_000)


@pytest.mark.parametrize(("attributes", "key", "kind", "expected"), [
    # exact name first
    ({"http.response.status_code": 200}, "http.response.status_code", None, (True, 200)),
    # old <-> stable, both directions
    ({"http.status_code": 503}, "http.response.status_code", None, (True, 503)),
    ({"http.response.status_code": 503}, "http.status_code", None, (True, 503)),
    ({"http.method": "GET"}, "http.request.method", None, (True, "GET")),
    ({"http.request.method": "GET"}, "http.method", None, (True, "GET")),
    ({"http.url": "http://a/b"}, "url.full", None, (True, "http://a/b")),
    ({"url.full": "http://a/b"}, "http.url", None, (True, "http://a/b")),
    ({"http.scheme": "https"}, "url.scheme", None, (True, "https")),
    ({"http.user_agent": "curl"}, "user_agent.original", None, (True, "curl")),
    ({"http.client_ip": "10.0.0.9"}, "client.address", SpanKind.SERVER, (True, "10.0.0.9")),
    ({"net.sock.peer.addr": "10.0.0.7"}, "network.peer.address", None, (True, "10.0.0.7")),
    ({"network.peer.address": "10.0.0.7"}, "net.sock.peer.addr", None, (True, "10.0.0.7")),
    ({"net.peer.ip": "10.0.0.7"}, "network.peer.address", None, (True, "10.0.0.7")),
    ({"net.sock.peer.addr": "10.0.0.7"}, "net.peer.ip", None, (True, "10.0.0.7")),
    ({"http.flavor": "1.1"}, "network.protocol.version", None, (True, "1.1")),
    ({"messaging.destination": "orders"}, "messaging.destination.name", None, (True, "orders")),
    ({"messaging.destination.name": "orders"}, "messaging.destination", None, (True, "orders")),
    ({"db.statement": "SELECT 1"}, "db.query.text", None, (True, "SELECT 1")),
    # the stable name wins when a span carries both (OTEL_SEMCONV_STABILITY_OPT_IN=http/dup)
    ({"http.status_code": 200, "http.response.status_code": 201}, "http.response.status_code", None,
     (True, 201)),
    # server.address: net.peer.name on client spans, net.host.name on server spans
    ({"net.peer.name": "inventory"}, "server.address", SpanKind.CLIENT, (True, "inventory")),
    ({"net.peer.name": "10.1.1.1"}, "server.address", SpanKind.SERVER, (False, None)),
    ({"net.host.name": "shop.local"}, "server.address", SpanKind.SERVER, (True, "shop.local")),
    ({"net.host.name": "shop.local"}, "server.address", SpanKind.CLIENT, (False, None)),
    ({"net.peer.port": 51234, "net.host.port": 8080}, "server.port", SpanKind.SERVER, (True, 8080)),
    ({"net.peer.port": 8080}, "server.port", SpanKind.PRODUCER, (True, 8080)),
    ({"net.peer.port": 51234, "net.host.port": 8080}, "server.port", None, (True, 8080)),
    ({"server.address": "inventory"}, "net.peer.name", SpanKind.CLIENT, (True, "inventory")),
    ({"server.address": "shop.local"}, "net.peer.name", SpanKind.SERVER, (False, None)),
    ({"net.host.name": "shop.local"}, "net.peer.name", None, (False, None)),
    # http.target carries path and query; url.path and url.query split them
    ({"http.target": "/cart?id=7"}, "url.path", None, (True, "/cart")),
    ({"http.target": "/cart?id=7"}, "url.query", None, (True, "id=7")),
    ({"http.target": "/cart"}, "url.query", None, (False, None)),
    ({"url.path": "/cart", "url.query": "id=7"}, "http.target", None, (True, "/cart?id=7")),
    ({"url.path": "/cart"}, "http.target", None, (True, "/cart")),
    # absent, and present with an empty value
    ({}, "http.response.status_code", None, (False, None)),
    ({"custom.thing": None}, "custom.thing", None, (True, None)),
])
def test_attribute_lookup(attributes: dict[str, AttributeValue], key: str, kind: SpanKind | None,
                          expected: tuple[bool, AttributeValue]) -> None:
    assert attribute_lookup(attributes, key, kind=kind) == expected


@pytest.mark.parametrize(("expected", "actual", "matches"), [
    (200, 200, True),
    (200, 200.0, True),
    (200, 201, False),
    ("200", 200, True),
    (200, "200", True),
    ("2e2", 200, True),
    ("200 OK", 200, False),
    ("GET", "GET", True),
    ("GET", "get", False),
    ("*", "anything", True),
    ("*", 0, True),
    ("*", None, True),
    (True, True, True),
    (True, 1, False),
    (1, True, False),
    ("true", True, False),
    (False, False, True),
    (("a", "b"), ["a", "b"], True),
    (["a", "b"], ("a", "b"), True),
    (("a", "b"), ("b", "a"), False),
    (("a",), "a", False),
    ("a", ("a",), False),
    ((1, 2), ("1", "2"), True),
    (("*",), ("x",), True),
    (1.5, 1.5, True),
    (1.5, "1.5", True),
    (float("nan"), float("nan"), False),
    ("abc", b"abc", False),
    (None, None, True),
])
def test_attribute_matches(expected: AttributeValue, actual: AttributeValue, matches: bool) -> None:
    assert attribute_matches(expected, actual) is matches


@pytest.mark.parametrize(("selector", "span_fields", "matches"), [
    (Selector(), {}, True),
    (Selector(service="payment"), {}, True),
    (Selector(service="*"), {"service": "anything"}, True),
    (Selector(service="payment"), {"service": "payments"}, False),
    (Selector(name="POST /charge*"), {"name": "POST /charge/42"}, True),
    (Selector(name="POST /charge*"), {"name": "post /charge"}, False),
    (Selector(name="POST /charge"), {"name": "POST /charge/42"}, False),
    (Selector(name="GET /item/?"), {"name": "GET /item/7"}, True),
    (Selector(kind=SpanKind.SERVER), {"kind": SpanKind.SERVER}, True),
    (Selector(kind=SpanKind.SERVER), {"kind": SpanKind.CLIENT}, False),
    (Selector(status=StatusCode.ERROR), {"status": StatusCode.ERROR}, True),
    (Selector(status=StatusCode.ERROR), {"status": StatusCode.UNSET}, False),
    (Selector(attributes={"http.response.status_code": 200}), {"attributes": {"http.status_code": 200}},
     True),
    (Selector(attributes={"http.status_code": "200"}), {"attributes": {"http.response.status_code": 200}},
     True),
    (Selector(attributes={"http.response.status_code": 200}), {"attributes": {"http.status_code": 500}},
     False),
    (Selector(attributes={"retry": "*"}), {"attributes": {"retry": 0}}, True),
    (Selector(attributes={"retry": "*"}), {"attributes": {}}, False),
    (Selector(attributes={"deployment.environment": "test"}),
     {"resource": {"deployment.environment": "test"}}, True),
    (Selector(attributes={"env": "a"}), {"attributes": {"env": "a"}, "resource": {"env": "b"}}, True),
    (Selector(attributes={"server.address": "shop"}), {"kind": SpanKind.SERVER,
                                                       "attributes": {"net.host.name": "shop"}}, True),
    (Selector(service="payment", name="POST *", kind=SpanKind.SERVER, status=StatusCode.UNSET,
              attributes={"http.method": "POST"}),
     {"attributes": {"http.request.method": "POST"}}, True),
])
def test_selector_matches(selector: Selector, span_fields: dict[str, Any], matches: bool) -> None:
    assert selector_matches(selector, make_span(**span_fields)) is matches


def test_selector_from_spec_shorthand_matches() -> None:
    spec = parse_flow_spec({"name": "s", "expect": {"spans": [{"select": "payment:POST /charge*"}]}})
    select = spec.expect.spans[0].select
    assert selector_matches(select, make_span(name="POST /charge/9"))
    assert not selector_matches(select, make_span(service="cart", name="POST /charge/9"))


@pytest.mark.parametrize(("attributes", "header", "expected"), [
    ({"http.request.header.x_request_id": ("r-1",)}, "x-request-id", ["r-1"]),
    ({"http.request.header.x-request-id": ["r-1"]}, "x-request-id", ["r-1"]),
    ({"http.request.header.x-request-id": "r-1"}, "X-Request-ID", ["r-1"]),
    ({"http.request.header.X_Request_Id": ["r-1"]}, "x_request_id", ["r-1"]),
    ({"http.request.header.traceparent": ["00-ab-cd-01"]}, "traceparent", ["00-ab-cd-01"]),
    ({"http.request.header.x-request-id": ["a", "b"]}, "x-request-id", ["a", "b"]),
    ({"http.request.header.x-request-id": []}, "x-request-id", []),
    ({"rpc.grpc.request.metadata.x-request-id": ["g-1"]}, "x-request-id", ["g-1"]),
    ({"rpc.grpc.request.metadata.x_request_id": "g-1"}, "X-REQUEST-ID", ["g-1"]),
    ({"http.request.header.x-count": [7]}, "x-count", ["7"]),
    ({"http.request.header.authorization": ["Bearer t"]}, "x-request-id", None),
    ({"http.response.header.x-request-id": ["r-1"]}, "x-request-id", None),
    ({"x-request-id": "r-1"}, "x-request-id", None),
    ({}, "x-request-id", None),
])
def test_header_values(attributes: dict[str, AttributeValue], header: str,
                       expected: list[str] | None) -> None:
    assert header_values(attributes, header) == expected


@pytest.mark.parametrize(("attributes", "captures"), [
    ({"http.request.header.authorization": ["x"]}, True),
    ({"rpc.grpc.request.metadata.user-agent": ["grpc-python"]}, True),
    ({"http.response.header.content-type": ["json"]}, False),
    ({"http.request.method": "GET"}, False),
    ({}, False),
])
def test_captures_any_headers(attributes: dict[str, AttributeValue], captures: bool) -> None:
    assert captures_any_headers(attributes) is captures
