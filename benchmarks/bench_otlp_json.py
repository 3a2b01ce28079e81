"""Decode throughput of the OTLP/JSON codec against google.protobuf.json_format.

    .venv/bin/python benchmarks/bench_otlp_json.py [--requests 50] [--rounds 5]

Builds requests with the reference workload (tests/support/otlp_workload.py, 512 spans
each), encodes them once with each encoder, then times decoding all of them per round and
prints the median spans/s of each decoder and their ratio. `json_format` parses proto3
JSON (base64 ids), which is what it can read; the work is otherwise the same.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time
from collections.abc import Callable

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tracebaton.collector import decode_export_request_json, encode_export_request_json

REPO = pathlib.Path(__file__).resolve().parents[1]
WORKLOADS = REPO / "tests" / "support"


def _median_seconds(decode_all: Callable[[], None], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        decode_all()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if not (WORKLOADS / "otlp_workload.py").is_file():
        sys.exit(f"reference workload not found at {WORKLOADS}/otlp_workload.py")
    sys.path.insert(0, str(WORKLOADS))
    from otlp_workload import build_request, span_count  # type: ignore[import-not-found]

    requests = [build_request(seed=seed) for seed in range(args.requests)]
    spans = sum(span_count(r) for r in requests)
    otlp_bodies = [encode_export_request_json(r) for r in requests]
    proto3_bodies = [json_format.MessageToJson(r) for r in requests]
    for request, body in zip(requests, otlp_bodies, strict=True):
        assert decode_export_request_json(body) == request, "round trip failed"

    def ours() -> None:
        for body in otlp_bodies:
            decode_export_request_json(body)

    def reference() -> None:
        for text in proto3_bodies:
            json_format.Parse(text, ExportTraceServiceRequest())

    mib = sum(len(b) for b in otlp_bodies) / 2**20
    print(f"{len(requests)} requests, {spans} spans, OTLP/JSON {mib:.1f} MiB")
    ours_s = _median_seconds(ours, args.rounds)
    ref_s = _median_seconds(reference, args.rounds)
    print(f"decode_export_request_json: {spans / ours_s:12,.0f} spans/s (median of {args.rounds})")
    print(f"json_format.Parse:          {spans / ref_s:12,.0f} spans/s (median of {args.rounds})")
    print(f"ratio: {ref_s / ours_s:.1f}x")


if __name__ == "__main__":
    main()
