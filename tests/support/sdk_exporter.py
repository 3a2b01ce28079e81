"""Export a known set of spans with the real OpenTelemetry SDK, then print what was sent.

    python sdk_exporter.py --protocol grpc|http --endpoint URL [--gzip]

Spans are recorded in memory, then sent in one OTLPSpanExporter.export call so that the
exit code says whether the collector acknowledged them. The printed JSON is the truth the
test compares the stored spans with.
"""

from __future__ import annotations

import argparse
import json
import sys

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

T0 = 1_763_700_000_000_000_000  # fixed times, so the test can compare them exactly


def record() -> list:  # type: ignore[type-arg]
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({
        "service.name": "sdk-checker", "service.version": "2.0.1", "deployment.environment.name": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.sdk_exporter", "1.2.3")

    producer = tracer.start_span("orders publish", kind=trace.SpanKind.PRODUCER, start_time=T0)
    producer.end(end_time=T0 + 1_000)

    root = tracer.start_span("GET /orders/{id}", kind=trace.SpanKind.SERVER, start_time=T0 + 10_000,
                             attributes={"http.request.method": "GET", "http.response.status_code": 200,
                                         "big.int": 2**62, "ratio": 0.25, "cached": False,
                                         "tags": ["a", "b"], "codes": [1, 2, 3]})
    root.set_status(Status(StatusCode.OK))
    with trace.use_span(root, end_on_exit=False):
        client = tracer.start_span("POST /pay", kind=trace.SpanKind.CLIENT, start_time=T0 + 20_000,
                                   links=[Link(producer.get_span_context(), {"link.reason": "outbox"})])
        client.add_event("retry", {"attempt": 2}, timestamp=T0 + 25_000)
        client.set_status(Status(StatusCode.ERROR, "payment declined"))
        client.end(end_time=T0 + 90_000)
        internal = tracer.start_span("render", kind=trace.SpanKind.INTERNAL, start_time=T0 + 91_000)
        internal.end(end_time=T0 + 95_000)
    root.end(end_time=T0 + 100_000)

    # A server span whose parent came over the wire: OTLP flags carry "parent is remote".
    remote_parent = SpanContext(trace_id=0x0AF7651916CD43DD8448EB211C80319C, span_id=0x00F067AA0BA902B7,
                                is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    remote = tracer.start_span("GET /remote", kind=trace.SpanKind.SERVER, start_time=T0 + 200_000,
                               context=trace.set_span_in_context(NonRecordingSpan(remote_parent)))
    remote.end(end_time=T0 + 210_000)
    return list(memory.get_finished_spans())


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", choices=["grpc", "http"], required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--gzip", action="store_true")
    args = parser.parse_args()
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
    from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    spans = record()
    if args.protocol == "grpc":
        from grpc import Compression as GrpcCompression

        grpc_compression = GrpcCompression.Gzip if args.gzip else GrpcCompression.NoCompression
        exporter = GrpcExporter(endpoint=args.endpoint, insecure=True, timeout=20,
                                compression=grpc_compression)
    else:
        http_compression = HttpCompression.Gzip if args.gzip else HttpCompression.NoCompression
        exporter = HttpExporter(endpoint=args.endpoint + "/v1/traces", timeout=20,
                                compression=http_compression)
    result = exporter.export(spans)
    exporter.shutdown()
    if result is not SpanExportResult.SUCCESS:
        print(f"export failed: {result}", file=sys.stderr)
        return 1
    print(json.dumps([{
        "trace_id": format(s.context.trace_id, "032x"),
        "span_id": format(s.context.span_id, "016x"),
        "parent_span_id": format(s.parent.span_id, "016x") if s.parent else None,
        "name": s.name,
        "kind": s.kind.name.lower(),
        "start_unix_nano": str(s.start_time),
        "end_unix_nano": str(s.end_time),
    } for s in spans]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
