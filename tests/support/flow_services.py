"""A scripted checkout across several services, recorded with the real OpenTelemetry SDK
and exported over OTLP/HTTP (endpoint and delays from the OTEL_* environment that
`tracebaton.sut_env()` gives). Each service has its own TracerProvider and resource, and
context crosses every hop through the W3C propagators, as between real processes.

    python flow_services.py --traceparent TP [--baggage B] --scenario NAME [--late-ms N] [--stdin]

With --stdin, each flow's "done" line says when its last export was acknowledged (ns).

The flow: frontend -> auth, frontend -> cart, cart -> inventory, frontend -> payment,
payment -> stripe (an uninstrumented peer at 127.0.0.1:9001), frontend -> orders,
orders ~> email (a PRODUCER span, consumed through an outbox in a trace of its own, linked).
Times are laid out on a virtual clock so order and durations are exact.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

MS = 1_000_000
PROVIDERS: dict[str, TracerProvider] = {}
BAGGAGE = ""
PORTS = {"frontend": 8001, "auth": 8002, "cart": 8003, "inventory": 8004, "payment": 8005, "orders": 8006}
SCENARIOS = (
    "healthy",
    "broken",
    "wrong-order",
    "slow",
    "retry",
    "drop-request-id",
    "late-error",
    "lost-message",
    "outlive-timeout",
)


class AcknowledgedExporter(SpanExporter):
    """The OTLP exporter, noting when the collector last acknowledged an export: the clock
    a benchmark measures verdict latency from."""

    last_ack_ns = 0

    def __init__(self) -> None:
        self._exporter = OTLPSpanExporter()

    def export(self, spans: Any) -> SpanExportResult:
        result = self._exporter.export(spans)
        if result is SpanExportResult.SUCCESS:
            AcknowledgedExporter.last_ack_ns = max(AcknowledgedExporter.last_ack_ns, time.time_ns())
        return result

    def shutdown(self) -> None:
        self._exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._exporter.force_flush(timeout_millis)


def tracer(service: str) -> trace.Tracer:
    if service not in PROVIDERS:
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(BatchSpanProcessor(AcknowledgedExporter()))
        PROVIDERS[service] = provider
    return PROVIDERS[service].get_tracer("tests.flow_services")


class Clock:
    def __init__(self) -> None:
        self.t = time.time_ns()

    def at(self, offset_ms: float) -> int:
        return self.t + int(offset_ms * MS)


def server_span(
    service: str,
    name: str,
    headers: dict[str, str],
    start: int,
    *,
    new_trace: bool = False,
    capture: tuple[str, ...] = ("traceparent", "x-request-id", "baggage"),
) -> Any:
    ctx = Context() if new_trace else TraceContextTextMapPropagator().extract(headers)
    ctx = W3CBaggagePropagator().extract(headers, ctx)
    attributes: dict[str, Any] = {
        "http.request.method": "POST",
        "url.path": name.split(" ", 1)[-1],
        "server.address": "127.0.0.1",
        "server.port": PORTS[service],
    }
    for header in capture:
        if header in headers:
            attributes[f"http.request.header.{header.replace('-', '_')}"] = (headers[header],)
    return tracer(service).start_span(
        name, context=ctx, kind=SpanKind.SERVER, start_time=start, attributes=attributes
    )


def call(
    caller: Any,
    caller_service: str,
    callee: str,
    name: str,
    clock: Clock,
    start_ms: float,
    end_ms: float,
    request_id: str | None,
    *,
    status: int = 200,
    new_trace: bool = False,
    callee_end_ms: float | None = None,
    body: Any = None,
) -> None:
    """caller_service's CLIENT span -> callee's SERVER span, with headers propagated."""
    ctx = trace.set_span_in_context(caller)
    client = tracer(caller_service).start_span(
        name,
        context=ctx,
        kind=SpanKind.CLIENT,
        start_time=clock.at(start_ms),
        attributes={
            "http.request.method": "POST",
            "server.address": "127.0.0.1",
            "server.port": PORTS[callee],
        },
    )
    if status:
        client.set_attribute("http.response.status_code", status)
    else:  # the caller timed out: no answer, an error
        client.set_status(Status(StatusCode.ERROR, "ReadTimeout"))
    headers: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(headers, trace.set_span_in_context(client))
    if BAGGAGE:
        headers["baggage"] = BAGGAGE  # each service forwards what it received
    if request_id is not None:
        headers["x-request-id"] = request_id
    server = server_span(callee, name, headers, clock.at(start_ms + 1), new_trace=new_trace)
    if body is not None:
        body(server, headers.get("x-request-id"))
    server.set_attribute("http.response.status_code", status or 200)
    if status >= 500:
        server.set_status(Status(StatusCode.ERROR))
    if status >= 400:
        client.set_status(Status(StatusCode.ERROR))
    server.end(end_time=clock.at(callee_end_ms if callee_end_ms is not None else end_ms - 1))
    client.end(end_time=clock.at(end_ms))


def run(traceparent: str, baggage: str | None, scenario: str, late_ms: int) -> None:
    global BAGGAGE
    BAGGAGE = baggage or ""
    clock = Clock()
    incoming = {"traceparent": traceparent, "x-request-id": "req-1"}
    if baggage:
        incoming["baggage"] = baggage
    frontend = server_span("frontend", "POST /checkout", incoming, clock.at(0))
    forwarded = "req-1"

    def cart_body(cart: Any, request_id: str | None) -> None:
        onward = None if scenario == "drop-request-id" else request_id
        if scenario == "retry":
            call(cart, "cart", "inventory", "POST /reserve", clock, 22, 30, onward, status=503)
            call(cart, "cart", "inventory", "POST /reserve", clock, 32, 40, onward)
        else:
            slow = 300 if scenario == "slow" else 0
            call(cart, "cart", "inventory", "POST /reserve", clock, 22, 40 + slow, onward)

    def payment_body(payment: Any, request_id: str | None) -> None:
        stripe = tracer("payment").start_span(
            "POST /v1/charges",
            context=trace.set_span_in_context(payment),
            kind=SpanKind.CLIENT,
            start_time=clock.at(offset + 3),
            attributes={"server.address": "127.0.0.1", "server.port": 9001},
        )
        stripe.end(end_time=clock.at(offset + 8))

    def orders_body(orders: Any, request_id: str | None) -> None:
        producer = tracer("orders").start_span(
            "outbox publish",
            context=trace.set_span_in_context(orders),
            kind=SpanKind.PRODUCER,
            start_time=clock.at(offset2 + 2),
        )
        producer.end(end_time=clock.at(offset2 + 3))
        if scenario != "lost-message":
            consumer = tracer("email").start_span(
                "outbox process",
                context=Context(),
                kind=SpanKind.CONSUMER,
                start_time=clock.at(offset2 + 20),
                links=[Link(producer.get_span_context())],
            )
            consumer.end(end_time=clock.at(offset2 + 25))

    call(frontend, "frontend", "auth", "POST /verify", clock, 2, 8, forwarded)
    cart_start, offset = (60, 10) if scenario == "wrong-order" else (10, 60)
    call(
        frontend,
        "frontend",
        "cart",
        "POST /cart/checkout",
        clock,
        cart_start,
        cart_start + 40 + (300 if scenario == "slow" else 0),
        forwarded,
        new_trace=scenario == "broken",
        body=cart_body,
    )
    if scenario == "slow":
        offset += 300
    pay_end = offset + 20
    call(
        frontend,
        "frontend",
        "payment",
        "POST /charge",
        clock,
        offset,
        pay_end,
        forwarded,
        body=payment_body,
        callee_end_ms=pay_end + 200 if scenario == "outlive-timeout" else None,
        status=0 if scenario == "outlive-timeout" else 200,
    )
    offset2 = pay_end + 5
    call(
        frontend,
        "frontend",
        "orders",
        "POST /orders",
        clock,
        offset2,
        offset2 + 10,
        forwarded,
        body=orders_body,
    )
    frontend.end(end_time=clock.at(offset2 + 12))
    # spans must not end in the future: the flow's own root ends when this process exits
    time.sleep(max(0.0, (clock.at(offset2 + 30) - time.time_ns()) / 1e9))
    for provider in PROVIDERS.values():
        provider.force_flush()
    if scenario == "late-error":
        time.sleep(late_ms / 1000)
        late = tracer("inventory").start_span(
            "audit",
            context=trace.set_span_in_context(frontend),
            kind=SpanKind.INTERNAL,
            start_time=clock.at(45),
        )
        late.set_status(Status(StatusCode.ERROR, "audit write failed"))
        late.end(end_time=clock.at(50))
    for provider in PROVIDERS.values():
        provider.force_flush()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traceparent", required=True)
    parser.add_argument("--baggage")
    parser.add_argument("--scenario", choices=SCENARIOS, default="healthy")
    parser.add_argument("--late-ms", type=int, default=100)
    parser.add_argument("--stdin", action="store_true", help="then one flow per line: TRACEPARENT SCENARIO")
    args = parser.parse_args()
    run(args.traceparent, args.baggage, args.scenario, args.late_ms)
    print("done", flush=True)
    if args.stdin:  # a long-lived service process, as benchmarks drive it
        for line in sys.stdin:
            traceparent, scenario = line.split()
            run(traceparent, args.baggage, scenario, args.late_ms)
            # when the flow's last export was acknowledged, on this host's clock
            print(f"done {AcknowledgedExporter.last_ack_ns}", flush=True)
    for provider in PROVIDERS.values():
        provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
