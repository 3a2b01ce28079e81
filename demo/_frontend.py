"""frontend: POST /checkout, the shop's entry point.

The call order (what a healthy checkout spec expects):

1. auth      POST /verify
2. cart      POST /cart/checkout (cart -> inventory POST /reserve) and, concurrently,
   catalog   GET /products/{sku} for each distinct sku — a group with no order inside it
3. payment   POST /charge (payment -> payment-gateway POST /v1/charges)
4. orders    POST /orders (orders ~> email through the outbox)

It mints x-request-id when the client sent none, and answers with the order id.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import Request
from opentelemetry import trace
from pydantic import BaseModel, Field

from ._backends import Item
from ._service import Service, incoming

SERVICE = "frontend"


class CheckoutRequest(BaseModel):
    items: list[Item] = Field(default_factory=lambda: [Item(sku="tea-earl-grey", quantity=2)])
    card: str = "4242 4242 4242 4242"


def build(service: Service, workdir: Path | None) -> None:
    call = service.downstream.call

    async def charge(amount_cents: int, card: str) -> Any:
        return await call(
            "payment",
            "POST",
            "/charge",
            json={"amount_cents": amount_cents, "card": card},
            template="/charge",
        )

    @service.app.post("/checkout")
    async def checkout(request: Request, body: CheckoutRequest | None = None) -> dict[str, Any]:
        cart = body or CheckoutRequest()
        items = [item.model_dump() for item in cart.items]
        wrong_order = incoming().faults.on("wrong-order", service.name)
        token = request.headers.get("authorization", "Bearer demo-user")
        user = await call("auth", "POST", "/verify", json={"token": token}, template="/verify")

        paid: Any = None
        if wrong_order:
            # the bug on show: charging before the cart is reserved and priced
            paid = await charge(1000 * sum(item.quantity for item in cart.items), cart.card)
        skus = sorted({item.sku for item in cart.items})
        reservation, *products = await asyncio.gather(
            call("cart", "POST", "/cart/checkout", json={"items": items}, template="/cart/checkout"),
            *(call("catalog", "GET", f"/products/{sku}", template="/products/{sku}") for sku in skus),
        )
        prices = {product["sku"]: product["price_cents"] for product in products}
        total = sum(prices[item.sku] * item.quantity for item in cart.items)
        if not wrong_order:
            paid = await charge(total, cart.card)

        order = await call(
            "orders",
            "POST",
            "/orders",
            json={
                "user": user["user"],
                "items": items,
                "amount_cents": total,
                "charge_id": paid["charge_id"],
            },
            template="/orders",
        )
        # searchable: `find: {attributes: {order.id: ...}}` and the Traces page
        trace.get_current_span().set_attribute("order.id", order["order_id"])
        return {
            "order_id": order["order_id"],
            "request_id": incoming().request_id,
            "reservation_id": reservation["reservation_id"],
            "charge_id": paid["charge_id"],
            "amount_cents": total,
        }
