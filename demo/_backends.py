"""The shop's small services behind the frontend: auth, catalog, cart, inventory, payment.

Each `build_*` adds its routes to a `Service`; faults and forwarding live in `_service`, so
these handlers read as the happy path they are.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import HTTPException
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
    @service.app.post("/reserve")
    async def reserve(request: Items) -> dict[str, Any]:
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
