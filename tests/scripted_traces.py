"""Traces written out as OTLP/JSON, for tests that need exact spans in a real server fast:
they go in through `POST /api/import`, the path a user's exported file takes.

    checkout = scripted_checkout()          # a failing checkout, see below
    import_spans(api_url, checkout.requests)
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

import httpx

MS = 1_000_000
XSS_NAME = "<img src=x onerror=alert(1)>"


def new_id(size: int) -> str:
    return os.urandom(size).hex()


def _value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list | tuple):
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    return {"stringValue": str(value)}


@dataclasses.dataclass
class ScriptedSpan:
    service: str
    name: str
    kind: int  # 1 internal, 2 server, 3 client, 4 producer, 5 consumer
    start_ms: float
    end_ms: float
    span_id: str = dataclasses.field(default_factory=lambda: new_id(8))
    parent: ScriptedSpan | None = None
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None
    events: list[tuple[str, float, dict[str, Any]]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ScriptedTrace:
    trace_id: str
    spans: list[ScriptedSpan]
    t0: int

    def span(self, service: str, name: str) -> ScriptedSpan:
        return next(s for s in self.spans if s.service == service and s.name == name)

    def request(self) -> dict[str, Any]:
        by_service: dict[str, list[dict[str, Any]]] = {}
        for span in self.spans:
            out: dict[str, Any] = {
                "traceId": self.trace_id,
                "spanId": span.span_id,
                "name": span.name,
                "kind": span.kind,
                "startTimeUnixNano": str(self.t0 + int(span.start_ms * MS)),
                "endTimeUnixNano": str(self.t0 + int(span.end_ms * MS)),
                "attributes": [{"key": k, "value": _value(v)} for k, v in span.attributes.items()],
                "events": [
                    {
                        "name": name,
                        "timeUnixNano": str(self.t0 + int(at * MS)),
                        "attributes": [{"key": k, "value": _value(v)} for k, v in attrs.items()],
                    }
                    for name, at, attrs in span.events
                ],
                "status": {"code": 2, "message": span.error} if span.error else {},
            }
            if span.parent is not None:
                out["parentSpanId"] = span.parent.span_id
            by_service.setdefault(span.service, []).append(out)
        return {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                    "scopeSpans": [{"scope": {"name": "tests.scripted"}, "spans": spans}],
                }
                for service, spans in by_service.items()
            ]
        }

    def jsonl(self) -> bytes:
        """One request per service per line, as a file exporter in each service would write."""
        request = self.request()
        return b"".join(
            json.dumps({"resourceSpans": [rs]}).encode() + b"\n" for rs in request["resourceSpans"]
        )


def scripted_checkout(
    *, inventory_fails: bool = True, span_name: str = "POST /reserve", slow_cart_ms: float = 0,
    ended_ms_ago: float = 0,
) -> ScriptedTrace:
    """frontend -> auth, frontend -> cart, cart -> inventory (503 when `inventory_fails`),
    with captured headers on the server spans. Times are laid out so hops never overlap."""
    # Ended just now, as a service exporting promptly would: no export-lag finding (unless
    # `ended_ms_ago` makes the flow arrive that long after it ended).
    t0 = time.time_ns() - int((125 + slow_cart_ms + ended_ms_ago) * MS)
    root = ScriptedSpan(
        "frontend",
        "POST /checkout",
        2,
        0,
        120 + slow_cart_ms,
        attributes={"http.request.method": "POST", "url.path": "/checkout"},
    )
    auth_call = ScriptedSpan(
        "frontend",
        "POST /verify",
        3,
        2,
        10,
        parent=root,
        attributes={"server.address": "auth", "server.port": 80},
    )
    auth = ScriptedSpan(
        "auth",
        "POST /verify",
        2,
        3,
        9,
        parent=auth_call,
        attributes={"http.request.header.x_request_id": ["req-1"]},
    )
    cart_call = ScriptedSpan(
        "frontend",
        "POST /cart/checkout",
        3,
        12,
        60 + slow_cart_ms,
        parent=root,
        attributes={"server.address": "cart", "server.port": 80},
    )
    cart = ScriptedSpan(
        "cart",
        "POST /cart/checkout",
        2,
        13,
        59 + slow_cart_ms,
        parent=cart_call,
        attributes={"http.request.header.x_request_id": ["req-1"], "cart.items": 3},
    )
    reserve_call = ScriptedSpan(
        "cart",
        span_name,
        3,
        20,
        40,
        parent=cart,
        attributes={
            "server.address": "inventory",
            "server.port": 80,
            "http.response.status_code": 503 if inventory_fails else 200,
        },
        error="503 Service Unavailable" if inventory_fails else None,
    )
    reserve = ScriptedSpan(
        "inventory",
        span_name,
        2,
        21,
        39,
        parent=reserve_call,
        attributes={
            "http.request.header.x_request_id": ["req-1"],
            "http.response.status_code": 503 if inventory_fails else 200,
        },
        events=[("stock.checked", 30, {"sku": "A-1", "available": 0})],
    )
    return ScriptedTrace(new_id(16), [root, auth_call, auth, cart_call, cart, reserve_call, reserve], t0)


CHECKOUT_SPEC: dict[str, Any] = {
    "name": "checkout",
    "wait": {"timeout": "2s", "settle": "100ms"},
    "expect": {
        "hops": ["frontend -> auth", "frontend -> cart", "cart -> inventory", "cart -> payment"],
        "budgets": {"hops": {"cart -> inventory": "50ms"}},
    },
}


def import_spans(api_url: str, trace: ScriptedTrace, **headers: str) -> dict[str, Any]:
    response = httpx.post(f"{api_url}/api/import", content=trace.jsonl(), timeout=30, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def check(api_url: str, spec: dict[str, Any], trace_id: str, **fields: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{api_url}/api/check", json={"spec": spec, "trace_id": trace_id, **fields}, timeout=60
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def scripted_large_trace(spans: int = 500) -> ScriptedTrace:
    """A flow of `spans` spans: frontend calls a dozen services in turn, each answering with a
    SERVER span, an ASGI `http send` span (folded by the dashboard) and two database calls."""
    calls = max(1, (spans + 3) // 5)
    t0 = time.time_ns() - int((calls * 2 + 10) * MS)
    root = ScriptedSpan("frontend", "POST /checkout", 2, 0, calls * 2 + 5)
    out = [root]
    for i in range(calls):
        service = f"service-{i % 12}"
        start = 1 + i * 2
        call = ScriptedSpan(
            "frontend",
            f"POST /step/{i}",
            3,
            start,
            start + 1.8,
            parent=root,
            attributes={"server.address": service, "server.port": 80, "step": i},
        )
        server = ScriptedSpan(
            service,
            f"POST /step/{i}",
            2,
            start + 0.1,
            start + 1.7,
            parent=call,
            attributes={"http.request.header.x_request_id": ["req-9"]},
        )
        send = ScriptedSpan(service, f"POST /step/{i} http send", 1, start + 1.5, start + 1.6, parent=server)
        queries = [
            ScriptedSpan(
                service,
                "SELECT stock",
                3,
                start + 0.2 + q * 0.5,
                start + 0.6 + q * 0.5,
                parent=server,
                attributes={"db.system": "postgresql"},
            )
            for q in range(2)
        ]
        out += [call, server, send, *queries]
    return ScriptedTrace(new_id(16), out[:spans], t0)
