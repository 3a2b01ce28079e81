"""One process of steady ingest: the reference workload over OTLP/gRPC at a fixed rate, until
told to stop, then a report of what was acknowledged.

    python steady_sender.py ADDRESS SPANS_PER_S THREADS [FIRST_REQUEST]

Prints "ready", starts at the first line on stdin, stops at the second (or at EOF), and
prints one JSON line: acknowledged spans, the first and last acknowledged request numbers,
refusals, and the trace ids of the first and last acknowledged requests (to check that
retention pruned the oldest first).

Every request is one of a few prebuilt workload requests with a request number written into
the first 8 bytes of each trace id and into its resources' `service.instance.id`, so requests
stay distinct (no re-sent duplicates, new resources as in the reference workload) while
building one costs about 1 ms, a tenth of `build_request`.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time

import grpc
from otlp_workload import build_request, span_count  # beside this script

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
BASES = 8


def main() -> None:
    address, rate, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    first = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    bases = [build_request(seed=seed) for seed in range(BASES)]
    spans_per_request = span_count(bases[0])
    interval = spans_per_request / rate  # seconds between requests, over all threads
    numbers = itertools.count(first)
    lock = threading.Lock()
    stop = threading.Event()
    state = {"acknowledged_spans": 0, "acknowledged_requests": 0, "refused": 0, "failed": 0}
    acknowledged: list[int] = []
    latencies_ms: list[float] = []

    def body(number: int) -> bytes:
        request = bases[number % BASES].__deepcopy__()
        prefix = number.to_bytes(8, "big")
        for index, resource_spans in enumerate(request.resource_spans):
            # A new service instance per request, as in the reference workload: each
            # request brings resources the store has not seen.
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.instance.id":
                    attribute.value.string_value = f"{number:028x}{index:04x}"
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    span.trace_id = prefix + span.trace_id[8:]
        return request.SerializeToString()

    print("ready", flush=True)
    sys.stdin.readline()
    started = time.monotonic()

    def sender() -> None:
        channel = grpc.insecure_channel(address)
        export = channel.unary_unary(EXPORT)
        while not stop.is_set():
            with lock:
                number = next(numbers)
            # Paced on a shared schedule: request k is due at started + (k - first) * interval,
            # so the rate holds however long each export takes.
            due = started + (number - first) * interval
            if stop.wait(max(0.0, due - time.monotonic())):
                break
            payload = body(number)
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    export(payload, timeout=30)
                except grpc.RpcError as error:
                    with lock:
                        if error.code() == grpc.StatusCode.UNAVAILABLE:
                            state["refused"] += 1
                        else:
                            state["failed"] += 1
                    stop.wait(0.2)
                    continue
                with lock:
                    latencies_ms.append((time.monotonic() - sent) * 1000)
                    state["acknowledged_spans"] += spans_per_request
                    state["acknowledged_requests"] += 1
                    acknowledged.append(number)
                break
        channel.close()

    workers = [threading.Thread(target=sender) for _ in range(threads)]
    for worker in workers:
        worker.start()
    sys.stdin.readline()
    stop.set()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - started
    acknowledged.sort()
    latencies_ms.sort()

    def quantile(q: float) -> float | None:
        return round(latencies_ms[min(len(latencies_ms) - 1, int(q * len(latencies_ms)))], 1) \
            if latencies_ms else None

    def trace_ids(number: int) -> list[str]:
        prefix = number.to_bytes(8, "big")
        request = bases[number % BASES]
        return sorted({(prefix + s.trace_id[8:]).hex() for rs in request.resource_spans
                       for ss in rs.scope_spans for s in ss.spans})

    print(json.dumps({
        **state,
        "seconds": round(elapsed, 2),
        "latency_ms": {"p50": quantile(0.5), "p99": quantile(0.99), "max": quantile(1.0)},
        "first": acknowledged[0] if acknowledged else None,
        "last": acknowledged[-1] if acknowledged else None,
        "first_traces": trace_ids(acknowledged[0]) if acknowledged else [],
        "last_traces": trace_ids(acknowledged[-1]) if acknowledged else [],
    }), flush=True)


if __name__ == "__main__":
    main()
