"""Trace fetch among 10 million spans, built through ingest; and the restart time at that size.

    python benchmarks/bench_trace_fetch.py [--spans 10000000] [--senders 4] [--keep DIR]

Starts `tracebaton serve` on a fresh DuckDB file and sends the reference workload
(`tests/support/otlp_workload.py`, 512 spans a request, traces of 20) over OTLP/gRPC until
the store holds `--spans` spans. The requests are made while sending, from a few workload
requests whose trace ids are renumbered (the first four bytes of each trace id become the
request's number), so that every request carries new traces and nothing of the whole
workload is held in memory. Then it reports, over traces drawn evenly from the whole
store (so nearly all of them are read from the file, not from memory):

- `GET /api/traces/{id}` p50/p99 through the running server;
- the store's `trace()` p50/p99, in this process on the file the server left (`SIGTERM`
  flushes), the read the engine and the API make;
- the restart time: `tracebaton serve` on that file until it reports ready, after a clean
  shutdown and after `kill -9` in the middle of ingest (the ingest log is replayed);
  every spot-checked trace reads back whole after the crash.

Figures are medians of the reads (and of `--restarts` restarts): the machines are shared
and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_ingest  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from otlp_workload import build_request  # noqa: E402

from tracebaton.collector import duckdb_url, open_store  # noqa: E402

EXPORT = bench_ingest.EXPORT
BASES = 16
"""Workload requests whose trace ids are renumbered into the requests sent."""


class Workload:
    """Request number `i` is base request `i % BASES` with every trace id's first four bytes
    set to `i`: new traces in every request, the workload's shape kept."""

    def __init__(self) -> None:
        self._bases = [build_request(seed=seed) for seed in range(BASES)]
        self.spans_per_request = sum(
            len(ss.spans) for rs in self._bases[0].resource_spans for ss in rs.scope_spans)
        # Every trace of a base request and its span count, for picking traces to read.
        self._traces: list[list[tuple[bytes, int]]] = []
        for base in self._bases:
            counts: dict[bytes, int] = {}
            for rs in base.resource_spans:
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        counts[span.trace_id[4:]] = counts.get(span.trace_id[4:], 0) + 1
            self._traces.append(list(counts.items()))

    def body(self, number: int) -> bytes:
        request = ExportTraceServiceRequest()
        request.CopyFrom(self._bases[number % BASES])
        prefix = number.to_bytes(4, "big")
        for rs in request.resource_spans:
            for ss in rs.scope_spans:
                for span in ss.spans:
                    span.trace_id = prefix + span.trace_id[4:]
        return request.SerializeToString()

    def whole_traces(self, number: int) -> list[tuple[str, int]]:
        """The traces of request `number` that it carries whole: (trace id, span count). A
        trace that continues into the next request is left out."""
        prefix = number.to_bytes(4, "big")
        return [((prefix + rest).hex(), count) for rest, count in self._traces[number % BASES][1:-1]]


def start_server(db: Path) -> tuple[subprocess.Popen[str], dict[str, str], float]:
    """`bench_ingest.start_server`, timed until the server reports ready."""
    started = time.perf_counter()
    process, addresses = bench_ingest.start_server(db)
    return process, addresses, time.perf_counter() - started


def stop(process: subprocess.Popen[str]) -> float:
    started = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    process.wait(600)
    return time.perf_counter() - started


def send(address: str, workload: Workload, numbers: range, senders: int,
         progress: bool = True) -> None:
    """Every request of `numbers` once, over `senders` exporters with one request in flight
    each; a refusal (the head at its bound) is retried as an SDK would."""
    channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)])
    export = channel.unary_unary(EXPORT)
    todo = iter(numbers)
    lock = threading.Lock()
    failures: list[BaseException] = []
    done = [0]
    started = time.perf_counter()

    def sender() -> None:
        while not failures:
            with lock:
                number = next(todo, None)
            if number is None:
                return
            body = workload.body(number)
            for attempt in range(200):
                try:
                    export(body, timeout=60)
                    break
                except grpc.RpcError as error:
                    if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == 199:
                        failures.append(error)
                        return
                    time.sleep(0.05)
            with lock:
                done[0] += 1
                if progress and done[0] % 2000 == 0:
                    rate = done[0] * workload.spans_per_request / (time.perf_counter() - started)
                    print(f"  {done[0] * workload.spans_per_request:,} spans sent, {rate:,.0f} spans/s",
                          file=sys.stderr, flush=True)

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    channel.close()
    if failures:
        raise SystemExit(f"export failed: {failures[0]}")


def sample(workload: Workload, requests: int, count: int) -> list[tuple[str, int]]:
    """`count` whole traces drawn evenly over the requests sent, in a shuffled order."""
    step = max(1, requests // count)
    picked = [workload.whole_traces(number)[number % 7] for number in range(0, requests, step)][:count]
    random.Random(1).shuffle(picked)
    return picked


def api_fetch_ms(api: str, traces: list[tuple[str, int]]) -> list[float]:
    timings = []
    with httpx.Client(timeout=30) as client:
        for trace_id, expected in traces:
            start = time.perf_counter()
            response = client.get(f"{api}/api/traces/{trace_id}")
            timings.append((time.perf_counter() - start) * 1000)
            got = len(response.json()["spans"]) if response.status_code == 200 else 0
            if got != expected:
                raise SystemExit(f"trace {trace_id}: {got} spans read through the API, {expected} sent")
    return timings


def store_fetch_ms(db: Path, traces: list[tuple[str, int]]) -> tuple[list[float], float]:
    """`trace()` on the store in this process; and how long opening the store took."""
    started = time.perf_counter()
    store = open_store(duckdb_url(str(db)))
    store.start()
    opened = time.perf_counter() - started
    try:
        timings = []
        for trace_id, expected in traces:
            start = time.perf_counter()
            spans = store.trace(trace_id)
            timings.append((time.perf_counter() - start) * 1000)
            if len(spans) != expected:
                raise SystemExit(f"trace {trace_id}: {len(spans)} spans read from the store, {expected} sent")
        return timings, opened
    finally:
        store.shutdown()


def crash_restart(db: Path, workload: Workload, first: int, traces: list[tuple[str, int]]) -> float:
    """kill -9 while four exporters send; the restart's time to ready, checked whole."""
    process, addresses, _ = start_server(db)
    numbers = range(first, first + 400)
    sending = threading.Thread(target=send, args=(addresses["grpc"], workload, numbers, 4, False))
    sending.start()
    time.sleep(1.5)
    process.kill()
    process.wait()
    sending.join()  # the rest of its requests fail: the server is gone
    process, addresses, ready = start_server(db)
    try:
        api_fetch_ms(addresses["api"], traces)
    finally:
        stop(process)
    return ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--reads", type=int, default=200, help="traces read, drawn evenly from the store")
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--keep", type=Path,
                        help="build the file here and keep it (default: a temporary folder)")
    args = parser.parse_args()

    workload = Workload()
    requests = -(-args.spans // workload.spans_per_request)
    folder = args.keep or Path(tempfile.mkdtemp(prefix="tracebaton-fetch-"))
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "fetch.duckdb"
    try:
        process, addresses, _ = start_server(db)
        print(f"sending {requests * workload.spans_per_request:,} spans ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            send(addresses["grpc"], workload, range(requests), args.senders)
            built_s = time.perf_counter() - started
            traces = sample(workload, requests, args.reads)
            api = api_fetch_ms(addresses["api"], traces)
        finally:
            shutdown_s = stop(process)
        store, opened_s = store_fetch_ms(db, traces)
        clean = []
        for _ in range(args.restarts):
            process, _, ready = start_server(db)
            stop(process)
            clean.append(ready)
        crashed = [crash_restart(db, workload, requests + 400 * i, traces) for i in range(args.restarts)]
        size_mib = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 2**20
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)

    spans = requests * workload.spans_per_request
    figures = {
        "spans": spans,
        "build_spans_per_s": round(spans / built_s),
        "file_mib": round(size_mib),
        "api_ms_p50": round(statistics.median(api), 2),
        "api_ms_p99": round(bench_ingest.percentile(sorted(api), 0.99), 2),
        "store_ms_p50": round(statistics.median(store), 2),
        "store_ms_p99": round(bench_ingest.percentile(sorted(store), 0.99), 2),
        "store_open_s": round(opened_s, 2),
        "shutdown_s": round(shutdown_s, 2),
        "restart_clean_s": round(statistics.median(clean), 2),
        "restart_after_kill_s": round(statistics.median(crashed), 2),
    }
    print(f"{spans:,} spans built through OTLP/gRPC at {figures['build_spans_per_s']:,} spans/s; "
          f"file and log {figures['file_mib']:,} MiB; {len(traces)} traces of 20 spans read, "
          f"{os.cpu_count()} cores (shared)")
    print("| read | p50 ms | p99 ms | target p50 |")
    print("|---|---|---|---|")
    print(f"| store `trace()` | {figures['store_ms_p50']} | {figures['store_ms_p99']} | 1 ms |")
    print(f"| `GET /api/traces/{{id}}` | {figures['api_ms_p50']} | {figures['api_ms_p99']} | 3 ms |")
    print(f"restart to ready: {figures['restart_clean_s']} s after SIGTERM, "
          f"{figures['restart_after_kill_s']} s after kill -9 mid-ingest (medians of {args.restarts}); "
          f"SIGTERM shutdown after the build {figures['shutdown_s']} s")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "trace_fetch.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
