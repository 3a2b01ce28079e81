"""kill -9 in the middle of ingest: every acknowledged span is there after a restart."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import grpc
import httpx
import pytest
from conftest import start_server
from otlp_requests import new_trace_id, valid_request

pytestmark = pytest.mark.xdist_group("heavy")  # with the other heavy tests on one xdist worker

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def test_acknowledged_spans_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "crash.duckdb"
    server = start_server(db)
    acknowledged: list[str] = []          # trace ids whose request got a success answer
    lock = threading.Lock()
    enough = threading.Event()

    def sender() -> None:
        with grpc.insecure_channel(server.grpc) as channel:
            export = channel.unary_unary(EXPORT)
            while True:
                trace_id = new_trace_id()
                try:
                    export(valid_request(trace_id, 50).SerializeToString(), timeout=10)
                except grpc.RpcError:
                    return                 # the server is gone
                with lock:
                    acknowledged.append(trace_id.hex())
                    if len(acknowledged) >= 200:
                        enough.set()

    senders = [threading.Thread(target=sender) for _ in range(4)]
    for thread in senders:
        thread.start()
    assert enough.wait(120), "ingest did not get going"
    os.kill(server.process.pid, signal.SIGKILL)  # mid-stream: senders are still sending
    assert server.stop() == -signal.SIGKILL   # returns once the decode workers left too
    assert server.wait_session_gone() == [], "processes of the killed server outlived it"
    for thread in senders:
        thread.join(30)

    restarted = start_server(db)
    try:
        missing = [t for t in acknowledged
                   if len(httpx.get(f"{restarted.api}/api/traces/{t}").json().get("spans", [])) != 50]
        assert missing == [], f"{len(missing)} of {len(acknowledged)} acknowledged traces lost or partial"
    finally:
        assert restarted.stop() == 0
