"""Verdict latency: from the acknowledgement of a flow's last export to the verdict.

    python benchmarks/bench_verdict.py [--flows 200] [--settle 100ms] [--modes embedded,remote]

A scripted 8-hop checkout (15 spans in 2 traces) is exported with the OpenTelemetry SDK over
OTLP/HTTP by a separate, long-lived process, one BatchSpanProcessor per service, as real
services export. Each check starts before the flow's spans are exported, as in a test, and
waits on the store's arrival notifications. Latency = the time the check returned its
verdict - the time the collector acknowledged the flow's last export (the services process
notes it as its exporter returns; one host, one clock). Two modes:

- embedded: `tracebaton.Collector()` in this process, as the pytest plugin runs by default;
- remote: `tracebaton serve` in its own process, judged through `POST /api/check` with
  `tracebaton.Client`, as `--tracebaton-url` does.

Reported per mode, p50 and p99 over `--flows` flows each:

- existential-only spec (hops; errors: any, connected: false): target p99 <= 10 ms;
- full spec (hops, times, budgets, deadlines, headers, baggage, errors, connected):
  target p99 <= settle + 20 ms.

For scale: Tracetest's default polling waits at least 5 s per test.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tracebaton import Client, Collector, FlowResult, parse_duration_ns
from tracebaton.assertions import FlowHost

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ROOT / "tests" / "support" / "flow_services.py"

HOPS = [
    "test -> frontend",
    "frontend -> auth",
    "frontend -> cart",
    "cart -> inventory",
    "frontend -> payment",
    "payment -> stripe",
    "frontend -> orders",
    "orders ~> email",
]


def specs(settle: str) -> dict[str, dict[str, Any]]:
    wait = {"timeout": "10s", "settle": settle}
    return {
        "existential": {
            "name": "checkout",
            "wait": wait,
            "peers": {"stripe": "127.0.0.1:9001"},
            "expect": {"hops": HOPS, "errors": "any", "propagation": {"connected": False}},
        },
        "full": {
            "name": "checkout",
            "wait": wait,
            "peers": {"stripe": "127.0.0.1:9001"},
            "expect": {
                "hops": HOPS,
                "times": {"cart -> inventory": 1},
                "budgets": {"trace": "2s", "hops": {"cart -> inventory": "200ms"}, "deadlines": True},
                "propagation": {
                    "headers": {"traceparent": "valid", "x-request-id": "same"},
                    "baggage": {"tenant": "acme"},
                },
            },
        },
    }


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(host: FlowHost, services: subprocess.Popen[str], spec: dict[str, Any], flows: int) -> list[float]:
    assert services.stdin is not None
    assert services.stdout is not None
    latencies = []
    for _ in range(flows):
        with host.flow("checkout", baggage={"tenant": "acme"}) as flow:
            pass
        results: list[FlowResult] = []
        done = [0]

        def judge(flow: Any = flow, results: list[FlowResult] = results, done: list[int] = done) -> None:
            results.append(flow.check(spec))
            done[0] = time.time_ns()

        judging = threading.Thread(target=judge)
        judging.start()
        services.stdin.write(f"{flow.headers['traceparent']} healthy\n")
        services.stdin.flush()
        word, _, acknowledged = services.stdout.readline().partition(" ")
        if word != "done":
            raise RuntimeError("the services process died")
        judging.join(30)
        result = results[0]
        if not result.passed:
            raise RuntimeError(f"a healthy flow failed: {result.first_divergence}")
        latencies.append((done[0] - int(acknowledged)) / 1e6)
    return latencies


@contextlib.contextmanager
def embedded() -> Iterator[FlowHost]:
    with Collector() as collector:
        yield collector


@contextlib.contextmanager
def remote() -> Iterator[FlowHost]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tracebaton", "serve", "--db", ":memory:", "--grpc-port", "0",
         "--http-port", "0", "--api-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("tracebaton: ready"):
            raise SystemExit(f"tracebaton serve did not start: {line!r}")
        addresses = dict(part.split("=", 1) for part in line.split()[2:])
        with Client(addresses["api"], otlp_http_endpoint=f"http://{addresses['http']}") as client:
            yield client
    finally:
        process.terminate()
        process.wait(60)


MODES = {"embedded": embedded, "remote": remote}


def run_mode(mode: str, host: FlowHost, args: argparse.Namespace, settle_ms: float) -> None:
    with host.flow("warm-up") as warm:
        pass
    services = subprocess.Popen(
        [sys.executable, str(SERVICES), "--traceparent", warm.headers["traceparent"],
         "--baggage", "tenant=acme", "--stdin"],
        env={**os.environ, **host.sut_env()}, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert services.stdout is not None
        services.stdout.readline()
        for kind, spec in specs(args.settle).items():
            if kind not in args.specs.split(","):
                continue
            measure(host, services, spec, 5)  # warm-up: imports, first reads
            latencies = measure(host, services, spec, args.flows)
            target = 10.0 if kind == "existential" else settle_ms + 20.0
            p50, p99 = statistics.median(latencies), quantile(latencies, 0.99)
            print(f"{mode:9s} {kind:12s} flows={len(latencies)} p50={p50:.1f} ms p99={p99:.1f} ms "
                  f"target p99<={target:.0f} ms {'OK' if p99 <= target else 'MISSED'}", flush=True)
    finally:
        if services.stdin:
            services.stdin.close()
        services.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--settle", default="100ms")
    parser.add_argument("--modes", default="embedded,remote", help="comma-separated: embedded, remote")
    parser.add_argument("--specs", default="existential,full", help="comma-separated: existential, full")
    args = parser.parse_args()
    settle_ms = parse_duration_ns(args.settle) / 1e6
    for mode in args.modes.split(","):
        if mode not in MODES:
            raise SystemExit(f"--modes: {mode!r} is not one of {', '.join(MODES)}")
        with MODES[mode]() as host:
            run_mode(mode, host, args, settle_ms)


if __name__ == "__main__":
    main()
