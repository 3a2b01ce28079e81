"""The ClickHouse store on chdb beside the DuckDB store, on the reference workload.

    python benchmarks/bench_clickhouse.py [--spans 1000000] [--queries 200] [--flows 100] [--no-duckdb]
                                          [--senders 16] [--decode-workers N]

Both stores are loaded through `ingest` (tracebaton's own receivers' path) with the same
requests (tests/support/otlp_workload.py: 512 spans a request, traces of 20). Reported:

- write rate (spans/s) and, for ClickHouse, where a request's time goes: building the
  exporter's rows as Arrow columns (`row_batch`: AsString() values), joining a group's
  batches into one table, the INSERT with tracebaton's materialized views and without (a bare
  copy of otel_traces);
- `trace(id)` p50/p99 over random stored traces (target p50 <= 20 ms on ClickHouse);
- `traces()` by service and by attribute, p50/p99;
- verdict latency of an existential spec after the flow's last span, for spans tracebaton's
  receivers wrote (woken at once; target p99 <= 60 ms) and, on ClickHouse, for rows another
  writer inserted (found by polling tracebaton_arrivals; target p99 <= 300 ms).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "tests"))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from otlp_workload import requests  # noqa: E402
from scripted_traces import ScriptedSpan, ScriptedTrace, new_id  # noqa: E402

from tracebaton import StoreSaturatedError  # noqa: E402
from tracebaton.assertions import FlowEngine, parse_flow_spec  # noqa: E402
from tracebaton.collector import JSON, PROTOBUF, SpanStore, StoreOptions, TraceQuery, open_store  # noqa: E402

SPEC = parse_flow_spec({"name": "bench", "wait": {"timeout": "5s", "settle": "50ms"},
                        "expect": {"hops": ["frontend -> cart"], "errors": "any",
                                   "propagation": {"connected": False}}})


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"


def load(store: SpanStore, bodies: list[bytes], senders: int) -> float:
    """Ingest every body as receivers would, `senders` requests in flight (an exporter's
    thread each, waiting for its acknowledgement); returns spans/s."""
    pending = iter(bodies)
    lock = threading.Lock()

    def send() -> None:
        while True:
            with lock:
                body = next(pending, None)
            if body is None:
                return
            while True:
                try:
                    store.ingest(body, PROTOBUF).result(300)
                    break
                except StoreSaturatedError:
                    time.sleep(0.01)

    started = time.perf_counter()
    threads = [threading.Thread(target=send) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 512 * len(bodies) / (time.perf_counter() - started)


def timed(call: Callable[[], Any], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def flow_body() -> tuple[str, bytes]:
    t0 = time.time_ns() - 30_000_000
    root = ScriptedSpan("frontend", "POST /checkout", 2, 0, 20)
    call = ScriptedSpan("frontend", "POST /cart", 3, 2, 10, parent=root)
    cart = ScriptedSpan("cart", "POST /cart", 2, 3, 9, parent=call)
    trace = ScriptedTrace(new_id(16), [root, call, cart], t0)
    return trace.trace_id, json.dumps(trace.request()).encode()


def _judge(engine: FlowEngine, trace_id: str, done: list[float]) -> None:
    engine.check(SPEC, trace_id)
    done.append(time.perf_counter())


def verdict_latency(store: SpanStore, flows: int, write: Callable[[bytes], None]) -> list[float]:
    """Seconds from the moment the flow's spans were written to the verdict."""
    engine = FlowEngine(store)
    samples = []
    for _ in range(flows):
        trace_id, body = flow_body()
        done: list[float] = []
        judged = threading.Thread(target=_judge, args=(engine, trace_id, done))
        judged.start()
        time.sleep(0.05)  # the check is waiting before the spans come, as in a test
        write(body)
        written = time.perf_counter()
        judged.join(10)
        samples.append(done[0] - written)
    return samples


def bench(name: str, url: str, bodies: list[bytes], trace_ids: list[str], args: argparse.Namespace) -> Any:
    options = StoreOptions(create_schema=url.startswith("chdb:"), max_pending_spans=1 << 20,
                           decode_workers=args.decode_workers)
    store = open_store(url, options).start()
    if args.decode_workers:  # a worker's imports take about a second; until then ingest decodes itself
        time.sleep(2)
    rate = load(store, bodies, args.senders)
    print(f"{name}: wrote {512 * len(bodies):,} spans at {rate:,.0f} spans/s "
          f"({args.senders} senders, {args.decode_workers} decoding workers)", flush=True)
    rnd = random.Random(1)
    fetch = timed(lambda: store.trace(rnd.choice(trace_ids)), args.queries)
    print(f"{name}: trace(id) {percentiles(fetch)}", flush=True)
    searches = max(20, args.queries // 10)
    by_service = timed(lambda: store.traces(TraceQuery(service="shop-cart", limit=20)), searches)
    print(f"{name}: traces(service) {percentiles(by_service)}", flush=True)
    by_attribute = timed(
        lambda: store.traces(TraceQuery(attributes={"http.route": "/api/charges"}, limit=20)), searches)
    print(f"{name}: traces(attribute) {percentiles(by_attribute)}", flush=True)
    own = verdict_latency(store, args.flows, lambda body: store.ingest(body, JSON).result(30))
    print(f"{name}: verdict after spans its receivers wrote {percentiles(own)}", flush=True)
    return store


def clickhouse_breakdown(store: Any, bodies: list[bytes], flows: int) -> None:
    """Where a request's time goes on the ClickHouse writer, and polling for another writer."""
    import clickhouse_connect

    from tracebaton.collector._clickhouse_rows import arrow_rows, row_batch  # the writer's own steps

    sample = bodies[: max(1, min(len(bodies), 40))]
    spans = 512 * len(sample)
    started = time.perf_counter()
    batches = [row_batch(b) for b in sample]
    stringify = time.perf_counter() - started
    started = time.perf_counter()
    table = arrow_rows(batches)
    arrow = time.perf_counter() - started
    client = clickhouse_connect.get_client(dsn=f"chdb://{store.location.chdb_path}")
    t = store.tables
    client.command(f"CREATE TABLE IF NOT EXISTS {t.traces.rsplit('.', 1)[0]}.bench_bare AS {t.traces}")
    started = time.perf_counter()
    client.insert_arrow(t.traces_table, table, database=t.database)
    with_views = time.perf_counter() - started
    started = time.perf_counter()
    client.insert_arrow("bench_bare", table, database=t.database)
    bare = time.perf_counter() - started
    print(f"clickhouse writer, per {spans:,} spans: rows as Arrow columns {stringify:.2f} s "
          f"({spans / stringify:,.0f}/s), joined into one table {arrow:.2f} s, "
          f"INSERT with tracebaton's views {with_views:.2f} s, "
          f"without {bare:.2f} s ({spans / (stringify + arrow + with_views):,.0f} spans/s end to end "
          "on one thread)", flush=True)

    def other_writer(body: bytes) -> None:  # rows another writer (a Collector) inserts
        client.insert_arrow(t.traces_table, arrow_rows([row_batch(_protobuf(body))]), database=t.database)

    polled = verdict_latency(store, flows, other_writer)
    print(f"clickhouse: verdict after rows another writer inserted (polling) {percentiles(polled)}",
          flush=True)


def _protobuf(json_body: bytes) -> bytes:
    from tracebaton.collector import decode_export_request_json

    return bytes(decode_export_request_json(json_body).SerializeToString())


def main() -> None:
    # the first check starts before any flow span was written, and says it waits for services
    # the store has not seen: expected here, not news
    logging.getLogger("tracebaton.assertions").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--flows", type=int, default=100)
    parser.add_argument("--no-duckdb", action="store_true")
    parser.add_argument("--senders", type=int, default=16,
                        help="requests in flight, an exporter each (default 16: a CI farm's test "
                             "jobs, or a Collector's exporter with its default 10 consumers)")
    parser.add_argument("--decode-workers", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                        help="processes building rows and columns, as serve's TRACEBATON_DECODE_WORKERS "
                             "(default: serve's, cores - 1); 0 builds them in the receiving threads")
    args = parser.parse_args()
    count = max(1, args.spans // 512)
    print(f"building {count} requests ({512 * count:,} spans) of the reference workload", flush=True)
    bodies = list(requests(count))
    trace_ids = []
    for body in bodies[:: max(1, count // 200)]:
        request = ExportTraceServiceRequest.FromString(body)
        trace_ids.append(request.resource_spans[0].scope_spans[0].spans[0].trace_id.hex())
    with tempfile.TemporaryDirectory() as folder:
        clickhouse = bench("clickhouse(chdb)", f"chdb:{folder}/ch?database=bench", bodies, trace_ids, args)
        clickhouse_breakdown(clickhouse, bodies, args.flows)
        clickhouse.shutdown()
        if not args.no_duckdb:
            bench("duckdb", f"duckdb:{folder}/bench.duckdb", bodies, trace_ids, args).shutdown()


if __name__ == "__main__":
    main()
