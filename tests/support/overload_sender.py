"""One process of an overload: N threads export distinct workload requests as fast as the
server takes them, honouring UNAVAILABLE + RetryInfo, and report what was acknowledged.

    python overload_sender.py ADDRESS FIRST_SEED COUNT THREADS
"""

from __future__ import annotations

import collections
import json
import sys
import threading
import time

import grpc
from google.rpc import error_details_pb2, status_pb2
from otlp_workload import build_request  # beside this script

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def main() -> None:
    address, first, count, threads = sys.argv[1], *map(int, sys.argv[2:5])
    requests = [build_request(seed=seed) for seed in range(first, first + count)]
    bodies = [r.SerializeToString() for r in requests]
    expected = [collections.Counter(s.trace_id.hex() for rs in r.resource_spans for ss in rs.scope_spans
                                    for s in ss.spans) for r in requests]
    next_index = iter(range(count))
    lock = threading.Lock()
    acknowledged: collections.Counter[str] = collections.Counter()
    refused = 0
    delays: set[float] = set()
    print("ready", flush=True)
    sys.stdin.readline()  # the test says go

    def sender() -> None:
        nonlocal refused
        channel = grpc.insecure_channel(address)
        export = channel.unary_unary(EXPORT)
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                break
            while True:
                try:
                    export(bodies[i], timeout=60)
                except grpc.RpcError as error:
                    if error.code() != grpc.StatusCode.UNAVAILABLE:
                        raise
                    status = status_pb2.Status.FromString(
                        dict(error.trailing_metadata())["grpc-status-details-bin"])
                    retry = error_details_pb2.RetryInfo()
                    status.details[0].Unpack(retry)
                    delay = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
                    with lock:
                        refused += 1
                        delays.add(delay)
                    time.sleep(min(delay, 0.2))  # an exporter backs off; shortened to keep pressure on
                    continue
                with lock:
                    acknowledged.update(expected[i])
                break
        channel.close()

    workers = [threading.Thread(target=sender) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(json.dumps({"acknowledged": acknowledged, "refused": refused, "delays": sorted(delays)}))


if __name__ == "__main__":
    main()
