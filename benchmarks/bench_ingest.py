"""Ingest benchmark: the reference OTLP workload through the real gRPC receiver.

    python benchmarks/bench_ingest.py [--spans 2000000] [--rounds 3] [--senders 8]

Starts `tracebaton serve` on a fresh DuckDB file per round, sends pre-serialized requests
from `tests/support/otlp_workload.py` (512 spans each) over gRPC from concurrent senders,
and reports in one run:

- end-to-end spans/s: first request sent to last acknowledged (an acknowledgement means
  committed and readable; the benchmark reads traces back to check);
- the bare ExportTraceServiceRequest.ParseFromString rate of the same requests, and the
  ratio of the two (target: >= 150,000 spans/s, ratio >= 0.083);
- the server's peak RSS (VmHWM) while ingesting;
- request-to-readable latency under light load (one 20-span request at a time), p50/p99.

Figures are medians over rounds: the machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import json
import os
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
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from otlp_workload import build_request, span_count  # noqa: E402

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def start_server(db: Path) -> tuple[subprocess.Popen[str], dict[str, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tracebaton", "serve", "--db", str(db), "--grpc-port", "0",
         "--http-port", "0", "--api-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("tracebaton: ready"):
        raise SystemExit(f"server did not start: {line!r}")
    return process, dict(part.split("=", 1) for part in line.split()[2:])


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU of the server and its live child processes (the decoding workers)."""
    total = cpu_seconds(pid)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == pid:
                    total += cpu_seconds(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return total


def send_all(address: str, bodies: list[bytes], senders: int) -> float:
    """Send every body once over `senders` concurrent streams; returns elapsed seconds."""
    channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)])
    export = channel.unary_unary(EXPORT)
    next_index = iter(range(len(bodies)))
    lock = threading.Lock()
    failures: list[BaseException] = []

    def sender() -> None:
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            for attempt in range(100):
                try:
                    export(bodies[i], timeout=60)
                    break
                except grpc.RpcError as error:
                    if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == 99:
                        failures.append(error)
                        return
                    time.sleep(0.05)  # the server asked to retry later (bounded queue)

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    channel.close()
    if failures:
        raise SystemExit(f"export failed: {failures[0]}")
    return elapsed


def check_readable(api: str, requests: list[ExportTraceServiceRequest]) -> None:
    """Spot-check: traces from the last requests acknowledged read back whole."""
    for request in requests[-3:]:
        spans = request.resource_spans[-1].scope_spans[-1].spans
        trace_id = spans[-1].trace_id.hex()
        expected = sum(1 for rs in request.resource_spans for ss in rs.scope_spans
                       for s in ss.spans if s.trace_id.hex() == trace_id)
        got = httpx.get(f"{api}/api/traces/{trace_id}", timeout=30).json()["spans"]
        if len(got) < expected:
            raise SystemExit(f"trace {trace_id}: {len(got)} spans readable, {expected} acknowledged")


def trace_fetch_ms(api: str, bodies: list[bytes], count: int = 100) -> list[float]:
    """GET /api/traces/{id} for traces spread over the whole store (after all spans landed)."""
    step = max(1, len(bodies) // count)
    trace_ids = [ExportTraceServiceRequest.FromString(bodies[i]).resource_spans[0].scope_spans[0]
                 .spans[0].trace_id.hex() for i in range(0, len(bodies), step)][:count]
    timings = []
    with httpx.Client(timeout=30) as client:
        for trace_id in trace_ids:
            start = time.perf_counter()
            response = client.get(f"{api}/api/traces/{trace_id}")
            timings.append((time.perf_counter() - start) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"trace {trace_id} not readable: {response.status_code}")
    return sorted(timings)


def light_load_latency(address: str, count: int = 200) -> list[float]:
    channel = grpc.insecure_channel(address)
    export = channel.unary_unary(EXPORT)
    latencies = []
    for seed in range(count):
        body = build_request(seed=10_000_000 + seed, n_resources=1, spans_per_resource=20).SerializeToString()
        start = time.perf_counter()
        export(body, timeout=30)
        latencies.append(time.perf_counter() - start)
    channel.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--senders", type=int, default=16,
                        help="concurrent exporters (an OTel Collector's exporter uses 10 per pipeline)")
    args = parser.parse_args()

    n_requests = -(-args.spans // 512)
    print(f"building {n_requests} workload requests ...", file=sys.stderr, flush=True)
    bodies = [build_request(seed=i).SerializeToString() for i in range(n_requests)]
    # The baseline is measured before anything else holds memory in this process.
    parse_rates = []
    for _ in range(3):
        start = time.perf_counter()
        total_spans = sum(span_count(ExportTraceServiceRequest.FromString(body)) for body in bodies)
        parse_rates.append(total_spans / (time.perf_counter() - start))
    parse_rate = statistics.median(parse_rates)
    requests = [ExportTraceServiceRequest.FromString(body) for body in bodies[-3:]]

    rates, rss, p50s, p99s, server_cores, client_cores, fetch_p50s = [], [], [], [], [], [], []
    cpu_per_span: list[float] = []
    for round_no in range(args.rounds):
        with tempfile.TemporaryDirectory() as folder:
            process, addresses = start_server(Path(folder) / "bench.duckdb")
            try:
                server_before, client_before = cpu_seconds(process.pid), time.process_time()
                tree_before = tree_cpu_seconds(process.pid)
                elapsed = send_all(addresses["grpc"], bodies, args.senders)
                server_cores.append((cpu_seconds(process.pid) - server_before) / elapsed)
                cpu_per_span.append((tree_cpu_seconds(process.pid) - tree_before) / total_spans * 1e6)
                client_cores.append((time.process_time() - client_before) / elapsed)
                rates.append(total_spans / elapsed)
                rss.append(peak_rss_mib(process.pid))
                check_readable(addresses["api"], requests)
                fetches = trace_fetch_ms(addresses["api"], bodies)
                fetch_p50s.append(fetches[len(fetches) // 2])
                latencies = sorted(light_load_latency(addresses["grpc"]))
                p50s.append(latencies[len(latencies) // 2] * 1000)
                p99s.append(latencies[int(len(latencies) * 0.99) - 1] * 1000)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(120)
        print(f"round {round_no + 1}: {rates[-1]:,.0f} spans/s, peak RSS {rss[-1]:,.0f} MiB, "
              f"light-load p50 {p50s[-1]:.1f} ms p99 {p99s[-1]:.1f} ms; CPU server {server_cores[-1]:.2f} "
              f"cores ({cpu_per_span[-1]:.1f} µs a span with decoding workers), sender "
              f"{client_cores[-1]:.2f} cores; trace fetch p50 {fetch_p50s[-1]:.1f} ms among "
              f"{total_spans:,} spans", file=sys.stderr, flush=True)

    rate = statistics.median(rates)
    result = {
        "spans_per_round": total_spans,
        "senders": args.senders,
        "rounds": args.rounds,
        "end_to_end_spans_per_s_median": round(rate),
        "end_to_end_spans_per_s_all": [round(r) for r in rates],
        "parse_spans_per_s_median": round(parse_rate),
        "ratio_end_to_end_to_parse": round(rate / parse_rate, 4),
        "peak_rss_mib_max": round(max(rss)),
        "light_load_latency_ms_p50_median": round(statistics.median(p50s), 2),
        "light_load_latency_ms_p99_median": round(statistics.median(p99s), 2),
        "trace_fetch_ms_p50_median": round(statistics.median(fetch_p50s), 2),
        "server_cores_busy_median": round(statistics.median(server_cores), 2),
        "server_and_workers_cpu_us_per_span_median": round(statistics.median(cpu_per_span), 2),
        "sender_cores_busy_median": round(statistics.median(client_cores), 2),
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "ingest.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
