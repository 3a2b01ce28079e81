"""Service map latency over 10,000 traces: `GET /api/service-map`, cold and warm.

    python benchmarks/bench_service_map.py [--traces 10000] [--cold 1] [--warm 30]

Ingests the reference workload (tests/support/otlp_workload.py: requests of 512 spans over
four services, traces of 20) through the real OTLP/HTTP receiver into a file-backed store,
timed ten minutes back so a one-hour window holds them, until `--traces` traces are stored.
Then, once they settled (the map keeps a trace's hop summary once nothing arrived for it
for five seconds):

- cold: a fresh `tracebaton serve` on the store and its first map request, which summarises
  what it can in its time budget and says how many traces are pending; then how long until a
  request (asked every 200 ms, as the Map page does) has none pending; `--cold` restarts;
- warm: `--warm` further requests on that server (the kept summaries, the window listed).

Reported: p50 and p99 (nearest rank) of each, and how many traces the map added up.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "support")]

from conftest import start_server  # noqa: E402
from otlp_workload import build_request  # noqa: E402

SETTLE_S = 5.5
"""A little over the map's wait before it keeps a trace's summary (KEEP_AFTER_NS)."""


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def timed_map(client: httpx.Client) -> tuple[float, dict[str, object]]:
    started = time.perf_counter()
    response = client.get("/api/service-map", params={"window": "1h"})
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed, response.json()


def report(label: str, samples: list[float]) -> None:
    p50, p99 = quantile(samples, 0.5) * 1000, quantile(samples, 0.99) * 1000
    print(f"  {label:24} p50 {p50:9.1f} ms   p99 {p99:9.1f} ms   ({len(samples)} samples)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--traces", type=int, default=10_000)
    parser.add_argument("--cold", type=int, default=1)
    parser.add_argument("--warm", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "store.duckdb"
        server = start_server(db)
        base_ns = time.time_ns() - 600 * 10**9
        trace_ids: set[bytes] = set()
        seed = 0
        started = time.perf_counter()
        with httpx.Client(base_url=server.otlp_http_url, timeout=60) as otlp:
            while len(trace_ids) < args.traces:
                request = build_request(seed=seed, base_ns=base_ns + seed * 10**9)
                trace_ids.update(span.trace_id for resource in request.resource_spans
                                 for scope in resource.scope_spans for span in scope.spans)
                answer = otlp.post("/v1/traces", content=request.SerializeToString(),
                                   headers={"content-type": "application/x-protobuf"})
                assert answer.status_code == 200, answer.text
                seed += 1
        print(f"ingested {len(trace_ids)} traces ({seed} requests of 512 spans) in "
              f"{time.perf_counter() - started:.1f} s")
        time.sleep(SETTLE_S)  # the map keeps summaries of settled traces only
        cold: list[float] = []
        complete: list[float] = []
        warm: list[float] = []
        body: dict[str, object] = {}
        try:
            for round_ in range(args.cold):
                if round_:
                    assert server.stop() == 0, server.stderr
                    server = start_server(db)
                with httpx.Client(base_url=server.api, timeout=600) as client:
                    asked = time.perf_counter()
                    elapsed, body = timed_map(client)
                    cold.append(elapsed)
                    print(f"cold round {round_ + 1}: first answer in {elapsed * 1000:.0f} ms, "
                          f"{body['pending']} traces pending")
                    while body["pending"]:
                        time.sleep(0.2)
                        body = timed_map(client)[1]
                    complete.append(time.perf_counter() - asked)
                    if round_ == args.cold - 1:
                        for _ in range(args.warm):
                            warm.append(timed_map(client)[0])
        finally:
            server.stop()
        links = body.get("links")
        print(f"map over a one-hour window: {body.get('traces')} traces added up "
              f"(truncated: {body.get('truncated')}), {len(links) if isinstance(links, list) else 0} hops")
        report("cold, first answer", cold)
        report("cold, until none pending", complete)
        report("warm", warm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
