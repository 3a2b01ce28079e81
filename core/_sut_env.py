"""The environment of a service process under test: export here, fast, with headers captured.

Every variable is a standard OpenTelemetry SDK or instrumentation setting, so any
language's SDK honours it; nothing tracebaton-specific is asked of the service.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterable

PROPAGATED_HEADERS = ("traceparent", "tracestate", "baggage")
"""Captured on every server span so header and baggage checks can read them."""
EXPORT_DELAY_MS = 50
"""The batch export delay services under test get (OTEL_BSP_SCHEDULE_DELAY)."""
EXPORT_DELAY_ATTRIBUTE = "tracebaton.export_delay_ms"
"""The resource attribute that tells the flow engine that delay (assertions/_quiet.py reads
it by the same name): a flow gives up early only when every service in it declares one."""


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
    collector under another name (`host.docker.internal`). The 50 ms batch delay is also
    declared as the resource attribute `tracebaton.export_delay_ms`; if you change
    OTEL_BSP_SCHEDULE_DELAY, change that too (or drop it: the flow then waits to its timeout).
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
        "OTEL_BSP_SCHEDULE_DELAY": str(EXPORT_DELAY_MS),
        # ... and says so in the resource, so a complete flow may give up before the timeout
        "OTEL_RESOURCE_ATTRIBUTES": _resource_attributes(),
        "OTEL_PROPAGATORS": "tracecontext,baggage",
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST": captured,
        "OTEL_SEMCONV_STABILITY_OPT_IN": "http",
    }
    if service_name is not None:
        env["OTEL_SERVICE_NAME"] = service_name
    if ingest_token:
        env["OTEL_EXPORTER_OTLP_HEADERS"] = "authorization=" + urllib.parse.quote(f"Bearer {ingest_token}")
    return env


def _resource_attributes() -> str:
    """The delay declaration after the resource attributes this process already sets (the
    service's environment is usually os.environ overlaid with this one: replacing them would
    drop the user's own). A later OTEL_RESOURCE_ATTRIBUTES overrides the declaration, and a
    service without one is waited for to the timeout, never judged early."""
    own = [
        item
        for item in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(",")
        if item.strip() and item.split("=", 1)[0].strip() != EXPORT_DELAY_ATTRIBUTE
    ]
    return ",".join([*own, f"{EXPORT_DELAY_ATTRIBUTE}={EXPORT_DELAY_MS}"])
