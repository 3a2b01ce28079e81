"""The environment of a service process under test: export here, fast, with headers captured.

Every variable is a standard OpenTelemetry SDK or instrumentation setting, so any
language's SDK honours it; nothing tracebaton-specific is asked of the service.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable

PROPAGATED_HEADERS = ("traceparent", "tracestate", "baggage")
"""Captured on every server span so header and baggage checks can read them."""


def sut_env(
    otlp_http_endpoint: str,
    *,
    service_name: str | None = None,
    headers: Iterable[str] = (),
    ingest_token: str | None = None,
    host: str | None = None,
) -> dict[str, str]:
    """Environment variables pointing a service's OTLP exporter at `otlp_http_endpoint`.

    `headers` adds request headers to capture (those the specs name, e.g. x-request-id);
    `host` replaces the endpoint's host, for services in containers that reach the
    collector under another name (`host.docker.internal`).
    """
    endpoint = otlp_http_endpoint.rstrip("/")
    if host is not None:
        parts = urllib.parse.urlsplit(endpoint)
        endpoint = urllib.parse.urlunsplit(parts._replace(netloc=f"{host}:{parts.port}"))
    captured = ",".join(dict.fromkeys([*PROPAGATED_HEADERS, *(h.lower() for h in headers)]))
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        # tracebaton stores traces only; metrics and logs exporters would get 404s
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        # the default 5 s batch delay would make every verdict wait 5 s for the last span
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_PROPAGATORS": "tracecontext,baggage",
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": captured,
        "OTEL_SEMCONV_STABILITY_OPT_IN": "http",
    }
    if service_name is not None:
        env["OTEL_SERVICE_NAME"] = service_name
    if ingest_token:
        env["OTEL_EXPORTER_OTLP_HEADERS"] = "authorization=" + urllib.parse.quote(f"Bearer {ingest_token}")
    return env
