"""OpenTelemetry for a demo service, configured only from the standard OTEL_* environment
(what `tracebaton.sut_env()` returns), as any service under test would be."""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter


def _exporter() -> SpanExporter:
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    if protocol.strip() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    # http/protobuf, the SDK's default; the Python exporter has no http/json
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def setup_tracing(default_service_name: str) -> TracerProvider:
    """The process's global TracerProvider: OTLP exporter (endpoint, headers, timeouts from
    OTEL_EXPORTER_OTLP_*) behind a BatchSpanProcessor (OTEL_BSP_* delays and sizes)."""
    # OTEL_SERVICE_NAME wins, as the specification says; Resource.create would let an
    # explicit service.name override it, so the default is only passed when it is unset
    name = os.environ.get("OTEL_SERVICE_NAME") or default_service_name
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    exporters = {e.strip() for e in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")}
    if "otlp" in exporters:
        provider.add_span_processor(BatchSpanProcessor(_exporter()))
    # global: the instrumentations and propagators of this process use it
    trace.set_tracer_provider(provider)
    return provider
