"""Ingest benchmark: the reference OTLP workload through the real gRPC receiver.

    python benchmarks/bench_ingest.py [--spans 2000000] [--rounds 3] [--senders 1,4,16,50]
                                      [--retention-max-spans N]

Starts `tracebaton serve` on a fresh DuckDB file for each number of concurrent exporters
and each round, sends pre-serialized requests from `tests/support/otlp_workload.py` (512
spans each) over gRPC, every exporter with one request in flight (as an OpenTelemetry
SDK's batch processor has), and prints one table row per number of exporters:

- end-to-end spans/s: first request sent to last acknowledged (an acknowledgement means
  durable and readable; the benchmark reads traces back to check), and its ratio to the
  bare ExportTraceServiceRequest.ParseFromString rate of the same requests, measured in
  this run beside it;
- CPU a span of the server and its decoding workers together;
- request latency under that load (send to acknowledgement, p50/p99) and the longest
  acknowledgement;
- the server's peak RSS (VmHWM);
- request-to-readable latency under light load (one 20-span request at a time), p50/p99
  and the longest, sent at once after the load, while the store folds it into the file
  and checkpoints (with `--retention-max-spans N`, also while retention deletes): what a
  checkpoint, flush or retention step holds an acknowledgement by;
- trace fetch through the API among every span ingested (the newest, with retention);
- once, after the table: light-load acknowledgements while checkpoints and retention
  deletes are made to run beside them (`upkeep_hold`), the longest among them.

Figures are medians over rounds (longest acknowledgement and RSS: the maximum): the
machines are shared and noisy, so compare ratios.
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

from tracebaton.collector import PROTOBUF, DuckDBSpanStore  # noqa: E402

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def start_server(db: Path, retention_max_spans: int | None = None,
                 ) -> tuple[subprocess.Popen[str], dict[str, str]]:
    retention = [] if retention_max_spans is None else ["--retention-max-spans", str(retention_max_spans)]
    process = subprocess.Popen(
        [sys.executable, "-m", "tracebaton", "serve", "--db", str(db), "--grpc-port", "0",
         "--http-port", "0", "--api-port", "0", *retention],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("tracebaton: ready"):
        process.kill()
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


def send_all(address: str, bodies: list[bytes], senders: int) -> tuple[float, list[float]]:
    """Send every body once over `senders` concurrent exporters, each with one request in
    flight; returns elapsed seconds and each request's send-to-acknowledgement seconds
    (retries after a refusal included)."""
    channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 64 << 20)])
    export = channel.unary_unary(EXPORT)
    next_index = iter(range(len(bodies)))
    lock = threading.Lock()
    failures: list[BaseException] = []
    latencies: list[float] = []

    def sender() -> None:
        mine = []
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                break
            sent = time.perf_counter()
            for attempt in range(100):
                try:
                    export(bodies[i], timeout=60)
                    break
                except grpc.RpcError as error:
                    if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == 99:
                        failures.append(error)
                        return
                    time.sleep(0.05)  # the server asked to retry later (bounded queue)
            mine.append(time.perf_counter() - sent)
        with lock:
            latencies.extend(mine)

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
    return elapsed, sorted(latencies)


def percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, max(0, int(len(sorted_values) * share) - 1))]


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


def one_round(bodies: list[bytes], total_spans: int, senders: int,
              requests: list[ExportTraceServiceRequest], retention_max_spans: int | None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        process, addresses = start_server(Path(folder) / "bench.duckdb", retention_max_spans)
        try:
            server_before, client_before = cpu_seconds(process.pid), time.process_time()
            tree_before = tree_cpu_seconds(process.pid)
            elapsed, acks = send_all(addresses["grpc"], bodies, senders)
            figures = {
                "spans_per_s": total_spans / elapsed,
                "server_cores": (cpu_seconds(process.pid) - server_before) / elapsed,
                "cpu_us_per_span": (tree_cpu_seconds(process.pid) - tree_before) / total_spans * 1e6,
                "sender_cores": (time.process_time() - client_before) / elapsed,
                "ack_ms_p50": percentile(acks, 0.5) * 1000,
                "ack_ms_p99": percentile(acks, 0.99) * 1000,
                "ack_ms_max": acks[-1] * 1000,
            }
            # At once after the load, while the store folds it into the file, checkpoints
            # the WAL and (with retention) deletes: what upkeep holds an acknowledgement by.
            light = sorted(light_load_latency(addresses["grpc"], 400))
            figures["light_ms_p50"] = percentile(light, 0.5) * 1000
            figures["light_ms_p99"] = percentile(light, 0.99) * 1000
            figures["light_ms_max"] = light[-1] * 1000
            figures["peak_rss_mib"] = peak_rss_mib(process.pid)
            check_readable(addresses["api"], requests)  # the newest: retention keeps them
            # with retention, the first traces sent are gone: the newest are fetched
            fetches = trace_fetch_ms(addresses["api"], bodies[-100:] if retention_max_spans else bodies)
            figures["trace_fetch_ms_p50"] = fetches[len(fetches) // 2]
            return figures
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(120)


def upkeep_hold(bodies: list[bytes], checkpoints: int = 3) -> dict[str, float]:
    """Light-load acknowledgements while checkpoints and retention deletes run on purpose.

    After a load the WAL is checkpointed once it is quiet, so a light sender right after it
    rarely meets one: here an upkeep thread puts 40 workload requests into the WAL, folds
    them into the file and prunes, round after round, while one 20-span request at a time
    is acknowledged beside it (the store embedded, as the plugin runs it); counted are the
    acknowledgements a checkpoint or a delete overlapped, not those beside the 40 requests.
    """
    with tempfile.TemporaryDirectory() as folder:
        store = DuckDBSpanStore(str(Path(folder) / "upkeep.duckdb"),
                                retention_max_spans=len(bodies) * 512 // 2).start()
        try:
            for body in bodies:
                store.ingest(body, PROTOBUF)
            store.flush_to_file(120_000)
            store.checkpoint()
            folds: list[float] = []
            folding = threading.Event()

            def upkeep() -> None:
                while len(folds) < checkpoints:
                    for body in bodies[:40]:
                        store.ingest(body, PROTOBUF)
                    store.flush_to_file(120_000)
                    folding.set()
                    start = time.perf_counter()
                    store.checkpoint()
                    folds.append(time.perf_counter() - start)
                    store.prune()
                    folding.clear()

            thread = threading.Thread(target=upkeep)
            thread.start()
            acks = []  # those that began while a checkpoint or a delete ran
            seed = 20_000_000
            while thread.is_alive():
                body = build_request(seed=seed, n_resources=1, spans_per_resource=20).SerializeToString()
                seed += 1
                during = folding.is_set()
                start = time.perf_counter()
                store.ingest(body, PROTOBUF).result(30)
                if during or folding.is_set():
                    acks.append(time.perf_counter() - start)
            thread.join()
        finally:
            store.shutdown()
    acks.sort()
    return {"checkpoints": len(folds), "checkpoint_ms_p50": statistics.median(folds) * 1000,
            "acks": len(acks), "ack_ms_p50": percentile(acks, 0.5) * 1000,
            "ack_ms_p99": percentile(acks, 0.99) * 1000, "ack_ms_max": acks[-1] * 1000}


_WORST = {"ack_ms_max", "light_ms_max", "peak_rss_mib"}
"""Figures reported as the worst round, not the median."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--senders", default="1,4,16,50",
                        help="comma-separated numbers of concurrent exporters, one row each")
    parser.add_argument("--retention-max-spans", type=int, metavar="N",
                        help="serve with this retention bound, so that deletes run during the load")
    args = parser.parse_args()
    sweep = [int(part) for part in args.senders.split(",")]

    n_requests = -(-args.spans // 512)
    print(f"building {n_requests} workload requests ...", file=sys.stderr, flush=True)
    bodies = [build_request(seed=i).SerializeToString() for i in range(n_requests)]
    requests = [ExportTraceServiceRequest.FromString(body) for body in bodies[-3:]]
    total_spans = sum(span_count(ExportTraceServiceRequest.FromString(body)) for body in bodies)

    def bare_parse_rate() -> float:
        start = time.perf_counter()
        for body in bodies:
            ExportTraceServiceRequest.FromString(body)
        return total_spans / (time.perf_counter() - start)

    rows = []
    for senders in sweep:
        rounds: list[dict[str, float]] = []
        parse_rates = []
        for round_no in range(args.rounds):
            # Beside each round, so that the ratio compares like with like on a shared machine.
            parse_rates.append(bare_parse_rate())
            rounds.append(one_round(bodies, total_spans, senders, requests, args.retention_max_spans))
            parse_rates.append(bare_parse_rate())
            figures = rounds[-1]
            print(f"{senders} exporters, round {round_no + 1}: {figures['spans_per_s']:,.0f} spans/s, "
                  f"{figures['cpu_us_per_span']:.1f} µs a span, ack p50 {figures['ack_ms_p50']:.1f} ms "
                  f"max {figures['ack_ms_max']:.0f} ms", file=sys.stderr, flush=True)
        row: dict[str, float] = {"senders": senders, "parse_spans_per_s": statistics.median(parse_rates)}
        for key in rounds[0]:
            values = [r[key] for r in rounds]
            row[key] = max(values) if key in _WORST else statistics.median(values)
        row["ratio"] = row["spans_per_s"] / row["parse_spans_per_s"]
        rows.append(row)

    print(f"{total_spans:,} spans a round, {args.rounds} rounds, {os.cpu_count()} cores (shared: "
          "compare ratios)")
    print("| exporters | spans/s | bare parse spans/s | ratio | CPU µs/span | server cores | "
          "ack p50 ms | ack p99 ms | longest ack ms | peak RSS MiB | light p50 ms | light p99 ms | "
          "light longest ms | trace fetch p50 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['senders']:.0f} | {row['spans_per_s']:,.0f} | {row['parse_spans_per_s']:,.0f} | "
              f"{row['ratio']:.3f} | {row['cpu_us_per_span']:.1f} | {row['server_cores']:.2f} | "
              f"{row['ack_ms_p50']:.1f} | {row['ack_ms_p99']:.1f} | {row['ack_ms_max']:.0f} | "
              f"{row['peak_rss_mib']:.0f} | {row['light_ms_p50']:.1f} | {row['light_ms_p99']:.1f} | "
              f"{row['light_ms_max']:.0f} | {row['trace_fetch_ms_p50']:.1f} |")
    held = upkeep_hold(bodies)
    print(f"beside upkeep (embedded store, {held['checkpoints']:.0f} checkpoints of p50 "
          f"{held['checkpoint_ms_p50']:.0f} ms, retention deleting): {held['acks']:.0f} light "
          f"acknowledgements p50 {held['ack_ms_p50']:.1f} ms, p99 {held['ack_ms_p99']:.1f} ms, "
          f"longest {held['ack_ms_max']:.0f} ms")
    result = {"spans_per_round": total_spans, "rounds": args.rounds, "cpu_count": os.cpu_count(),
              "retention_max_spans": args.retention_max_spans,
              "beside_upkeep": {k: round(v, 4) for k, v in held.items()},
              "rows": [{k: round(v, 4) for k, v in row.items()} for row in rows]}
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "ingest.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
