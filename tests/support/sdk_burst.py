"""A burst of spans through the real OpenTelemetry SDK (BatchSpanProcessor + OTLP/gRPC
exporter), and the SDK's own account of what became of them.

    python sdk_burst.py ENDPOINT SPANS MAX_QUEUE_SIZE SERVICE_NAME

Prints "ready"; at the first line on stdin creates SPANS spans as fast as it can and prints
"created"; at the second line shuts the provider down (which exports what is queued) and
prints one JSON line with the SDK's internal metrics (OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED):

* processed: spans the BatchSpanProcessor handed to the exporter;
* dropped_queue_full: spans it dropped because its queue (MAX_QUEUE_SIZE) was full;
* exported / export_failed: spans the exporter had acknowledged / gave up on;
* retries and retry_delays_s: the exporter's "retrying in N s" log records (the delay
  the server asked for in RetryInfo, or the SDK's own backoff).

Drops are counted from the metrics, not from the "Queue full" log line, which the SDK logs
at most once per 20 s.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from typing import Any

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_RETRY = re.compile(r"retrying in ([\d.]+)s")


class Retries(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.delays: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = _RETRY.search(record.getMessage())
        if match:
            self.delays.append(float(match.group(1)))


def _sums(reader: InMemoryMetricReader) -> dict[tuple[str, str | None], int]:
    """(metric name, error.type or None) -> the sum over the run."""
    sums: dict[tuple[str, str | None], int] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else []:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in getattr(metric.data, "data_points", []):
                    key = (metric.name, (point.attributes or {}).get("error.type"))
                    sums[key] = sums.get(key, 0) + int(getattr(point, "value", 0))
    return sums


def main() -> None:
    endpoint, spans, max_queue, service = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    # Read when the processor and exporter are built: their metrics are the SDK's accounting.
    os.environ["OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED"] = "true"
    retries = Retries()
    logging.getLogger("opentelemetry.exporter.otlp.proto.grpc.exporter").addHandler(retries)
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10, meter_provider=meters)
    provider.add_span_processor(BatchSpanProcessor(
        exporter, max_queue_size=max_queue, max_export_batch_size=512, schedule_delay_millis=50,
        meter_provider=meters))
    tracer = provider.get_tracer("tests.sdk_burst")
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(spans):
        tracer.start_span(f"burst {i}").end()
    print("created", flush=True)
    sys.stdin.readline()
    provider.shutdown()
    sums = _sums(reader)
    processed = "otel.sdk.processor.span.processed"
    exported = "otel.sdk.exporter.span.exported"
    report: dict[str, Any] = {
        "created": spans,
        "processed": sums.get((processed, None), 0),
        "dropped_queue_full": sums.get((processed, "queue_full"), 0),
        "exported": sums.get((exported, None), 0),
        "export_failed": sum(n for (name, error), n in sums.items() if name == exported and error),
        "retries": len(retries.delays),
        "retry_delays_s": sorted(set(retries.delays)),
    }
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
