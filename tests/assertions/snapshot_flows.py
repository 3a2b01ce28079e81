"""Hand-built flows for the golden-flow tests: the demo shop's checkout with knobs for
how its concurrent calls interleave and for the faults a snapshot must catch."""

from __future__ import annotations

import random
from collections.abc import Sequence

from spans import FlowBuilder, flow_trace, hops_of

from tracebaton.assertions._snapshot import FlowShape, flow_shape
from tracebaton.collector import StatusCode, StoredSpan

__all__ = ["checkout", "shape_of"]

CAPTURE = {"traceparent": None, "x-request-id": "r-1", "baggage": "tenant=acme"}


def _call(b: FlowBuilder, caller: StoredSpan, service: str, route: str, start: float, end: float,
          capture: dict[str, str | None]) -> None:
    """A call of any length, however short: the callee's span inside the caller's."""
    client = b.client(caller.service, f"GET {route}", parent=caller, start_ms=start, end_ms=end)
    attrs = {f"http.request.header.{h.replace('-', '_')}": [v or f"00-{client.trace_id}-{client.span_id}-01"]
             for h, v in capture.items()}
    span = end - start
    b.server(service, f"GET {route}", parent=client, start_ms=start + span / 10, end_ms=end - span / 10,
             attrs=attrs)


def checkout(
    *,
    catalog_at: float = 0.3,
    catalog_ms: float = 5,
    cart_ms: float = 12,
    payment_first: bool = False,
    retry: bool = False,
    drop: str | None = None,
    inventory_ms: float = 4,
    lost_message: bool = False,
    expired_token: bool = False,
    seed: int | None = None,
) -> list[StoredSpan]:
    """A checkout as the demo shop makes it: auth, then cart (-> inventory) and catalog launched
    together, then payment (-> an uninstrumented gateway), then orders ~> email. `catalog_at`
    is how long after cart the catalog call starts (negative: before it); `seed` shuffles the
    spans (the order they arrive in). The faults: `retry` (inventory answers 503 once),
    `drop` (a header cart does not forward), `inventory_ms` (slow), `lost_message` (no
    consumer), `expired_token` (auth answers 401 and the checkout stops there)."""
    b = FlowBuilder()
    root = b.test_root(end_ms=600)
    capture = dict(CAPTURE)
    answered = {"http.response.status_code": 401 if expired_token else 200}
    _, frontend = b.call(root, "frontend", "/checkout", start_ms=1, end_ms=590, callee_attrs=answered,
                         capture={"traceparent": None, "baggage": "tenant=acme"})
    b.call(frontend, "auth", "/verify", start_ms=5, end_ms=10, capture=capture,
           client_attrs=answered, client_status=StatusCode.ERROR if expired_token else StatusCode.UNSET,
           callee_attrs=answered)
    if expired_token:
        return list(b.spans)
    at = 12.0
    if payment_first:
        _, payment = b.call(frontend, "payment", "/charge", start_ms=at, end_ms=at + 8, capture=capture)
        b.client("payment", "POST /v1/charges", parent=payment, start_ms=at + 2, end_ms=at + 6,
                 attrs={"peer.service": "payment-gateway"})
        at += 10
    cart_ms = max(cart_ms, 1.5 + (3 if retry else 0) + inventory_ms + 1)  # it waits for inventory
    _, cart = b.call(frontend, "cart", "/cart/checkout", start_ms=at, end_ms=at + cart_ms, capture=capture)
    inner = at + 1.5
    if retry:
        b.call(cart, "inventory", "/reserve", start_ms=inner, end_ms=inner + 2, capture=capture,
               client_attrs={"http.response.status_code": 503}, client_status=StatusCode.ERROR,
               callee_attrs={"http.response.status_code": 503})
        inner += 3
    inventory_capture = {k: v for k, v in capture.items() if k != drop}
    b.call(cart, "inventory", "/reserve", start_ms=inner, end_ms=inner + inventory_ms,
           capture=inventory_capture)
    _call(b, frontend, "catalog", "/products/tea", at + catalog_at, at + catalog_at + catalog_ms, capture)
    at = max(at + cart_ms, at + catalog_at + catalog_ms) + 1.5
    if not payment_first:
        _, payment = b.call(frontend, "payment", "/charge", start_ms=at, end_ms=at + 8, capture=capture)
        b.client("payment", "POST /v1/charges", parent=payment, start_ms=at + 2, end_ms=at + 6,
                 attrs={"peer.service": "payment-gateway"})
        at += 10
    _, orders = b.call(frontend, "orders", "/orders", start_ms=at, end_ms=at + 6, capture=capture)
    producer = b.producer("orders", "send order-confirmation", parent=orders, start_ms=at + 2, end_ms=at + 3)
    if not lost_message:
        b.consumer("email", "process order-confirmation", start_ms=at + 4, end_ms=at + 5, links=[producer],
                   trace_id="9a3c5e1f0b2d4c6e8f1a3b5c7d9e0f21", remote=None)
    spans = list(b.spans)
    if seed is not None:
        random.Random(seed).shuffle(spans)
    return spans


def shape_of(spans: Sequence[StoredSpan]) -> FlowShape:
    return flow_shape(flow_trace(spans), hops_of(spans))
