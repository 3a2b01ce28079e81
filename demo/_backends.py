"""The shop's small services behind the frontend: auth, catalog, cart, inventory, payment.

Each `build_*` adds its routes to a `Service`; faults and forwarding live in `_service`, so
these handlers read as the happy path they are.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import HTTPException
from opentelemetry import trace
from pydantic import BaseModel, Field

from ._service import Service

PRODUCTS: dict[str, dict[str, Any]] = {
    "tea-earl-grey": {"name": "Earl Grey, 100 g", "price_cents": 650},
    "tea-sencha": {"name": "Sencha, 100 g", "price_cents": 890},
    "mug": {"name": "Mug, stoneware", "price_cents": 1200},
}


class Item(BaseModel):
    sku: str
    quantity: int = Field(default=1, ge=1)


class Items(BaseModel):
    items: list[Item]


class StockLevel(BaseModel):
    quantity: int = Field(ge=0)
    rendezvous: int = Field(default=0, ge=0, le=16)
    """The next `rendezvous` reservations of the SKU wait for each other between their stock
    check and their write: the interleaving that oversells, made certain for the demo."""


STOCK_WRITE_S = 0.02
"""A reservation's write to the stock database (simulated): the window between check and act."""
RENDEZVOUS_TIMEOUT_S = 5.0
"""How long a reservation waits for the others of its rendezvous before it writes alone."""


class VerifyRequest(BaseModel):
    token: str


class ChargeRequest(BaseModel):
    amount_cents: int = Field(ge=0)
    currency: str = "EUR"
    card: str


def build_auth(service: Service, workdir: Path | None) -> None:
    @service.app.post("/verify")
    async def verify(request: VerifyRequest) -> dict[str, Any]:
        # any token is valid in the demo; `expired-token@auth` answers 401 before this runs
        user = request.token.removeprefix("Bearer ").strip() or "guest"
        return {"user": user, "scopes": ["checkout"]}


def build_catalog(service: Service, workdir: Path | None) -> None:
    @service.app.get("/products/{sku}")
    async def product(sku: str) -> dict[str, Any]:
        if sku not in PRODUCTS:
            raise HTTPException(404, f"no product {sku!r}")
        return {"sku": sku, **PRODUCTS[sku]}


def build_inventory(service: Service, workdir: Path | None) -> None:
    # Stock is counted only for SKUs given a level (PUT /stock/{sku}, demo-only); the rest
    # is unlimited, as it always was. The counted path has the bug on show: check, then a
    # write round trip, then act on the level read before it — and no lock in between.
    stock: dict[str, int] = {}
    meetings: dict[str, asyncio.Barrier] = {}

    @service.app.put("/stock/{sku}")
    async def set_stock(sku: str, level: StockLevel) -> dict[str, Any]:
        stock[sku] = level.quantity
        if level.rendezvous > 1:
            meetings[sku] = asyncio.Barrier(level.rendezvous)
        else:
            meetings.pop(sku, None)
        return {"sku": sku, "quantity": level.quantity, "rendezvous": level.rendezvous}

    async def write_round_trip(sku: str) -> None:
        meeting = meetings.get(sku)
        if meeting is not None:
            try:
                async with asyncio.timeout(RENDEZVOUS_TIMEOUT_S):
                    if await meeting.wait() == 0:
                        meetings.pop(sku, None)  # one meeting per PUT: later reservations go alone
            except (TimeoutError, asyncio.BrokenBarrierError):
                meetings.pop(sku, None)
        await asyncio.sleep(STOCK_WRITE_S)

    @service.app.post("/reserve")
    async def reserve(request: Items) -> dict[str, Any]:
        span = trace.get_current_span()
        for item in request.items:
            level = stock.get(item.sku)
            if level is None:
                continue
            # searchable: the cross-trace check finds the reservations of one SKU by it
            span.set_attribute("inventory.sku", item.sku)
            span.set_attribute("inventory.stock.before", level)
            if level < item.quantity:
                raise HTTPException(409, f"{item.sku}: {level} in stock, {item.quantity} asked")
            await write_round_trip(item.sku)
            stock[item.sku] = level - item.quantity  # check-then-act: `level` may be stale by now
            span.set_attribute("inventory.stock.after", stock[item.sku])
        return {
            "reservation_id": "res-" + uuid.uuid4().hex[:12],
            "items": [i.model_dump() for i in request.items],
        }


def build_cart(service: Service, workdir: Path | None) -> None:
    @service.app.post("/cart/checkout")
    async def checkout(request: Items) -> dict[str, Any]:
        reservation = await service.downstream.call(
            "inventory", "POST", "/reserve", json=request.model_dump(), template="/reserve"
        )
        return {"reservation_id": reservation["reservation_id"], "items": reservation["items"]}


def build_payment(service: Service, workdir: Path | None) -> None:
    @service.app.post("/charge")
    async def charge(request: ChargeRequest) -> dict[str, Any]:
        answer = await service.downstream.call(
            "payment-gateway",
            "POST",
            "/v1/charges",
            json={"amount_cents": request.amount_cents, "currency": request.currency, "source": request.card},
            template="/v1/charges",
            uninstrumented=True,
        )
        return {"charge_id": answer["id"], "amount_cents": request.amount_cents}


BUILDERS: dict[str, Callable[[Service, Path | None], None]] = {
    "auth": build_auth,
    "catalog": build_catalog,
    "inventory": build_inventory,
    "cart": build_cart,
    "payment": build_payment,
}
