"""A FastAPI service that exports its spans to tracebaton, set up from the OTEL_* variables."""

import contextlib
import os
from collections.abc import AsyncIterator

import httpx
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

# The SDK does not configure itself (opentelemetry-instrument would): these three lines do,
# and each part reads its variables. The resource: OTEL_SERVICE_NAME. The exporter:
# OTEL_EXPORTER_OTLP_ENDPOINT (+ /v1/traces). The batch: OTEL_BSP_SCHEDULE_DELAY.
provider = TracerProvider()
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
trace.set_tracer_provider(provider)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    provider.shutdown()  # uvicorn ends on SIGTERM without running atexit: send the last batch now


app = FastAPI(lifespan=lifespan)
# SERVER spans, with the request headers OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST names
FastAPIInstrumentor.instrument_app(app)
# CLIENT spans for outgoing calls, which carry the traceparent on
HTTPXClientInstrumentor().instrument()

INVENTORY_URL = os.environ.get("INVENTORY_URL")


@app.post("/orders")
async def create_order() -> dict[str, str]:
    if INVENTORY_URL:  # the hop orders -> inventory
        async with httpx.AsyncClient() as client:
            (await client.post(f"{INVENTORY_URL}/reserve")).raise_for_status()
    return {"order": "A-1"}


@app.post("/reserve")
async def reserve() -> dict[str, int]:
    return {"reserved": 1}
