"""One service's spans, exported by the real OpenTelemetry SDK exactly as its environment says:
with `tracebaton.sut_env()` within 50 ms; with the SDK's defaults, its BatchSpanProcessor
holds them for the 5 s schedule delay before the first export.

    python held_exporter.py --service NAME TRACEPARENT...

For each traceparent, a SERVER span of NAME under it, ended at once (its caller propagated
the context without a CLIENT span, as an uninstrumented HTTP client does). Prints the new
spans' own traceparents, one a line, so another service can be called under them; then,
once the SDK exported them, "exported N spans, held S s", and exits. It never flushes by
hand: what holds the spans is the SDK's own batching.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator


class Announcing(SpanExporter):
    """The OTLP exporter, and an event once it has acknowledged a batch."""

    def __init__(self) -> None:
        self.inner = OTLPSpanExporter()  # endpoint and protocol from the OTEL_* environment
        self.exported = threading.Event()
        self.count = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        if result is SpanExportResult.SUCCESS:
            self.count += len(spans)
            self.exported.set()
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--service", required=True)
    parser.add_argument("traceparents", nargs="+")
    args = parser.parse_args()
    exporter = Announcing()
    provider = TracerProvider(resource=Resource.create({"service.name": args.service}))
    # no schedule delay given: OTEL_BSP_SCHEDULE_DELAY, else the SDK's default 5000 ms
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.held_exporter")
    propagator = TraceContextTextMapPropagator()
    for traceparent in args.traceparents:
        span = tracer.start_span("POST /audit", context=propagator.extract({"traceparent": traceparent}),
                                 kind=SpanKind.SERVER)
        span.end()
        carrier: dict[str, str] = {}
        propagator.inject(carrier, trace.set_span_in_context(span))
        print(carrier["traceparent"], flush=True)
    ended = time.monotonic()
    if not exporter.exported.wait(60):
        print("the SDK exported nothing in 60 s", file=sys.stderr)
        return 1
    print(f"exported {exporter.count} spans, held {time.monotonic() - ended:.2f} s", flush=True)
    provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
