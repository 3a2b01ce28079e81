"""The ClickHouse store on chdb beside the DuckDB store, on the reference workload.

    python benchmarks/bench_clickhouse.py [--spans 10000000] [--rate-spans 200000] [--queries 200]
                                          [--flows 100] [--no-duckdb] [--senders 16] [--decode-workers N]

Both stores are loaded through `ingest` (tracebaton's own receivers' path) with the same
requests of the reference workload (tests/support/otlp_workload.py: 512 spans a request,
traces of 20), renumbered as bench_trace_fetch.py renumbers them (every request new traces,
nothing of the whole load held in memory). The first `--rate-spans` spans are built before
they are sent, and their write rate is the store's; the rest are built while sending, in
this process, so the fill rate reported after them is lower than the store's. Reported, with
the store holding `--spans` spans:

- write rate (spans/s) and, for ClickHouse, where a request's time goes: building the
  exporter's rows as Arrow columns (`row_batch`: AsString() values), joining a group's
  batches into one table, the INSERT with tracebaton's materialized views and without (a bare
  copy of otel_traces);
- `trace(id)` p50/p99 over whole traces drawn evenly from the store (target p50 <= 20 ms on
  ClickHouse at 10 million spans), each checked to read back with all its spans;
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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_trace_fetch import Workload, sample  # noqa: E402
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


def load(store: SpanStore, bodies: Iterable[bytes], senders: int) -> float:
    """Ingest every body as receivers would, `senders` requests in flight (an exporter's
    thread each, waiting for its acknowledgement); returns spans/s."""
    pending = iter(bodies)
    lock = threading.Lock()
    sent = [0]

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
            with lock:
                sent[0] += 1
                if sent[0] % 2000 == 0:
                    print(f"  {512 * sent[0]:,} spans sent", file=sys.stderr, flush=True)

    started = time.perf_counter()
    threads = [threading.Thread(target=send) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return 512 * sent[0] / (time.perf_counter() - started)


class _Built:
    """Bodies built one at a time under the senders' lock: the generator is not thread-safe."""

    def __init__(self, workload: Workload, numbers: range) -> None:
        self._workload, self._numbers = workload, iter(numbers)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return self._workload.body(next(self._numbers))


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


def bench(name: str, url: str, workload: Workload, first: list[bytes], requests: int,
          traces: list[tuple[str, int]], args: argparse.Namespace) -> Any:
    options = StoreOptions(create_schema=url.startswith("chdb:"), max_pending_spans=1 << 20,
                           decode_workers=args.decode_workers)
    store = open_store(url, options).start()
    if args.decode_workers:  # a worker's imports take about a second; until then ingest decodes itself
        time.sleep(2)
    rate = load(store, first, args.senders)
    print(f"{name}: wrote {512 * len(first):,} spans at {rate:,.0f} spans/s "
          f"({args.senders} senders, {args.decode_workers} decoding workers)", flush=True)
    if requests > len(first):
        started = time.perf_counter()
        fill = load(store, _Built(workload, range(len(first), requests)), args.senders)
        print(f"{name}: filled to {512 * requests:,} spans at {fill:,.0f} spans/s, requests built "
              f"while sending ({time.perf_counter() - started:.0f} s)", flush=True)
    rnd = random.Random(1)
    wrong: list[str] = []

    def fetch_one() -> None:
        trace_id, count = rnd.choice(traces)
        got = len(store.trace(trace_id))
        if got != count:
            wrong.append(f"{trace_id}: {got} of {count} spans")

    fetch = timed(fetch_one, args.queries)
    if wrong:
        raise SystemExit(f"{name}: traces read back incomplete: {wrong[:3]}")
    print(f"{name}: trace(id) {percentiles(fetch)} (every read whole)", flush=True)
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

    some = bodies[: max(1, min(len(bodies), 40))]
    spans = 512 * len(some)
    started = time.perf_counter()
    batches = [row_batch(b) for b in some]
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
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--rate-spans", type=int, default=200_000,
                        help="spans built before sending, whose write rate is reported (default 200,000)")
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
    workload = Workload()
    requests = max(1, args.spans // workload.spans_per_request)
    first = [workload.body(number) for number in range(min(requests, max(1, args.rate_spans // 512)))]
    traces = sample(workload, requests, 200)
    print(f"{requests:,} requests ({512 * requests:,} spans) of the reference workload, the first "
          f"{len(first):,} built before sending", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        clickhouse = bench("clickhouse(chdb)", f"chdb:{folder}/ch?database=bench", workload, first,
                           requests, traces, args)
        clickhouse_breakdown(clickhouse, first, args.flows)
        clickhouse.shutdown()
        if not args.no_duckdb:
            bench("duckdb", f"duckdb:{folder}/bench.duckdb", workload, first, requests, traces,
                  args).shutdown()

if __name__ == "__main__":
    main()
