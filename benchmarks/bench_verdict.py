"""Verdict latency: from the arrival of the span that completes a flow to the verdict.

    python benchmarks/bench_verdict.py [--flows 200] [--settle 100ms]

An embedded collector judges a scripted 8-hop checkout (15 spans in 2 traces) that a
separate, long-lived process exports with the OpenTelemetry SDK over OTLP/HTTP. Each
check starts before the flow's spans are exported, as in a test, and waits on the store's
arrival notifications. Latency = verdict time - arrival (commit) time of the flow's last
span, on one clock. Reported, p50 and p99 over `--flows` flows each:

- existential-only spec (hops; errors: any, connected: false): target p99 <= 20 ms;
- full spec (hops, times, budgets, deadlines, headers, baggage, errors, connected):
  target p99 <= settle + 20 ms.

For scale: Tracetest's default polling waits at least 5 s per test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tracebaton import Collector, FlowResult, parse_duration_ns

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


def measure(
    collector: Collector, services: subprocess.Popen[str], spec: dict[str, Any], flows: int
) -> list[float]:
    assert services.stdin is not None
    assert services.stdout is not None
    latencies = []
    for _ in range(flows):
        with collector.flow("checkout", baggage={"tenant": "acme"}) as flow:
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
        if services.stdout.readline().strip() != "done":
            raise RuntimeError("the services process died")
        judging.join(30)
        result = results[0]
        if not result.passed or result.last_arrival_unix_nano is None:
            raise RuntimeError(f"a healthy flow failed: {result.first_divergence}")
        latencies.append((done[0] - result.last_arrival_unix_nano) / 1e6)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=200)
    parser.add_argument("--settle", default="100ms")
    args = parser.parse_args()
    settle_ms = parse_duration_ns(args.settle) / 1e6
    with Collector() as collector:
        with collector.flow("warm-up") as warm:
            pass
        services = subprocess.Popen(
            [
                sys.executable,
                str(SERVICES),
                "--traceparent",
                warm.headers["traceparent"],
                "--baggage",
                "tenant=acme",
                "--stdin",
            ],
            env={**os.environ, **collector.sut_env()},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert services.stdout is not None
            services.stdout.readline()
            for kind, spec in specs(args.settle).items():
                latencies = measure(collector, services, spec, args.flows)
                target = 20.0 if kind == "existential" else settle_ms + 20.0
                p50, p99 = statistics.median(latencies), quantile(latencies, 0.99)
                print(
                    f"{kind:12s} flows={len(latencies)} p50={p50:.1f} ms p99={p99:.1f} ms "
                    f"target p99<={target:.0f} ms {'OK' if p99 <= target else 'MISSED'}",
                    flush=True,
                )
        finally:
            if services.stdin:
                services.stdin.close()
            services.wait(30)


if __name__ == "__main__":
    main()
