"""A store of a million spans, built with SQL (INSERT … SELECT from range()), not over OTLP:
seconds instead of minutes. Used by the large-store API test and the dashboard benchmark.

Spans are realistic where the reads look: 20 spans a trace (a root SERVER span and CLIENT/SERVER
children), twelve services, one span in a hundred an error, arrival times increasing, and a
body that is a real serialized span with attributes (one of a thousand templates), so that
attribute search scans real bytes.
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tracebaton.collector import duckdb_url, open_store

SPANS_PER_TRACE = 20
TEMPLATES = 1000
SERVICES = 12


def _template(k: int) -> bytes:
    span = Span(name=f"GET /items/{k % 50}", kind=Span.SpanKind.SPAN_KIND_SERVER)
    for key, value in (
        ("http.request.method", AnyValue(string_value="GET")),
        ("url.path", AnyValue(string_value=f"/items/{k % 50}")),
        ("http.response.status_code", AnyValue(int_value=200)),
        ("order.id", AnyValue(string_value=f"B-{k}")),
        ("server.address", AnyValue(string_value="10.1.2.3")),
        ("server.port", AnyValue(int_value=8080)),
    ):
        span.attributes.append(KeyValue(key=key, value=value))
    return span.SerializeToString()


def build_big_store(path: Path, spans: int = 1_000_000) -> float:
    """Create `path` holding `spans` spans; returns the seconds it took."""
    started = time.monotonic()
    open_store(duckdb_url(str(path))).start().shutdown()  # the schema, exactly as the server makes it
    now = time.time_ns()
    base = now - spans * 1_000  # arrivals one microsecond apart, ending now
    with duckdb.connect(str(path)) as db:
        db.execute("SET enable_progress_bar = false")
        db.execute("CREATE TEMP TABLE templates (k BIGINT, body BLOB)")
        db.executemany("INSERT INTO templates VALUES (?, ?)", [(k, _template(k)) for k in range(TEMPLATES)])
        resource = Resource(attributes=[KeyValue(key="service.name", value=AnyValue(string_value="svc-0"))])
        db.execute("INSERT INTO resources VALUES (1, 'svc-0', ?)", [resource.SerializeToString()])
        db.execute(
            "INSERT INTO scopes VALUES (1, ?)", [InstrumentationScope(name="bench").SerializeToString()]
        )
        db.execute(f"""
            INSERT INTO spans
            SELECT unhex(md5('t' || (i // {SPANS_PER_TRACE}))),
                   unhex(substr(md5('s' || i), 1, 16)),
                   CASE WHEN i % {SPANS_PER_TRACE} = 0 THEN NULL
                        ELSE unhex(substr(md5('s' || (i - i % {SPANS_PER_TRACE})), 1, 16)) END,
                   '', 769,
                   CASE WHEN i % {SPANS_PER_TRACE} = 0 THEN 'POST /checkout'
                        ELSE 'GET /items/' || (i % 50) END,
                   CASE WHEN i % {SPANS_PER_TRACE} = 0 THEN 2 WHEN i % 2 = 0 THEN 3 ELSE 2 END,
                   ({base} + i * 1000 - 5000000)::UBIGINT,
                   ({base} + i * 1000 - 5000000 + 200000 + (i % 7) * 100000)::UBIGINT,
                   CASE WHEN i % 100 = 99 THEN 2 ELSE 0 END,
                   '',
                   'svc-' || (i % {SERVICES}),
                   1, 1,
                   t.body,
                   {base} + i * 1000
            FROM range({spans}) r(i) JOIN templates t ON t.k = i % {TEMPLATES}
        """)
        db.execute("CHECKPOINT")
    return time.monotonic() - started
