"""orders: POST /orders stores the order and its confirmation message in a transactional
outbox, inside a PRODUCER span whose context travels with the message."""

from __future__ import annotations

import asyncio
import threading
import uuid
from pathlib import Path
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from pydantic import BaseModel

from . import _outbox
from ._faults import FAULT_HEADER, REQUEST_ID_HEADER
from ._service import Service, incoming


class OrderRequest(BaseModel):
    user: str
    items: list[dict[str, Any]]
    amount_cents: int
    charge_id: str


def build(service: Service, workdir: Path) -> None:
    db = _outbox.connect(workdir)
    lock = threading.Lock()  # one sqlite connection, used from worker threads
    tracer = service.provider.get_tracer("tracebaton.demo.orders")

    def store(order_id: str, body: dict[str, Any]) -> None:
        now = incoming()
        with tracer.start_as_current_span(
            f"send {_outbox.TOPIC}",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "outbox",
                "messaging.operation.type": "send",
                "messaging.destination.name": _outbox.TOPIC,
                "order.id": order_id,
            },
        ) as span:
            headers: dict[str, str] = {}
            propagate.inject(headers)  # this PRODUCER span's traceparent, and the baggage
            if now.request_id is not None:
                headers[REQUEST_ID_HEADER] = now.request_id
            if now.faults.header is not None:
                headers[FAULT_HEADER] = now.faults.header
            with lock:
                message_id = _outbox.write_order(db, order_id, body, headers)
            span.set_attribute("messaging.message.id", str(message_id))
        # after the commit: a nudge sooner would wake the worker to an empty outbox
        _outbox.nudge(workdir)

    @service.app.post("/orders")
    async def create_order(order: OrderRequest) -> dict[str, str]:
        order_id = "ord-" + uuid.uuid4().hex[:12]
        trace.get_current_span().set_attribute("order.id", order_id)
        # sqlite blocks: off the event loop; to_thread copies the context, so the PRODUCER
        # span is a child of this request's server span
        await asyncio.to_thread(store, order_id, order.model_dump())
        return {"order_id": order_id}
