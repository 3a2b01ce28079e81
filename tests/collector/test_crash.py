"""kill -9 in the middle of ingest, of a flush from the head to the file, and with a torn
last log record: every acknowledged span is there after a restart, and reads once."""

from __future__ import annotations

import os
import signal
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import pytest
from conftest import RunningServer, start_server
from otlp_requests import new_trace_id, valid_request

pytestmark = pytest.mark.xdist_group("heavy")  # with the other heavy tests on one xdist worker

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _send_until_killed(server: RunningServer, acknowledged: list[str], enough: threading.Event,
                       senders: int = 4) -> list[threading.Thread]:
    lock = threading.Lock()

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

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    return threads


def _kill(server: RunningServer, threads: list[threading.Thread]) -> None:
    os.kill(server.process.pid, signal.SIGKILL)  # mid-stream: senders are still sending
    assert server.stop() == -signal.SIGKILL   # returns once the decode workers left too
    assert server.wait_session_gone() == [], "processes of the killed server outlived it"
    for thread in threads:
        thread.join(30)


def _assert_all_there_once(db: Path, acknowledged: list[str]) -> RunningServer:
    restarted = start_server(db, logged=True)
    try:
        with httpx.Client(base_url=restarted.api) as client:  # one connection for thousands of reads
            missing = [t for t in acknowledged
                       if len(client.get(f"/api/traces/{t}").json().get("spans", [])) != 50]
        assert missing == [], (f"{len(missing)} of {len(acknowledged)} acknowledged traces lost, "
                               "partial or doubled")
    except BaseException:
        restarted.stop()
        raise
    return restarted


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    # Another process's files: nothing to wait on but the files themselves.
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def test_acknowledged_spans_survive_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "crash.duckdb"
    server = start_server(db)
    acknowledged: list[str] = []          # trace ids whose request got a success answer
    enough = threading.Event()
    senders = _send_until_killed(server, acknowledged, enough)
    assert enough.wait(120), "ingest did not get going"
    _kill(server, senders)
    assert _assert_all_there_once(db, acknowledged).stop() == 0


def test_acknowledged_spans_survive_kill_9_in_the_middle_of_a_flush(tmp_path: Path) -> None:
    """Killed while the head is being written to the file: the log has rotated (two
    segments), the older not yet deleted. Its spans are replayed, and read once, whether or
    not the flush's commit made it."""
    db = tmp_path / "crash.duckdb"
    segments = Path(f"{db}.ingest")
    server = start_server(db)
    acknowledged: list[str] = []
    enough = threading.Event()
    senders = _send_until_killed(server, acknowledged, enough)
    assert enough.wait(120), "ingest did not get going"
    _wait_for(lambda: len(list(segments.glob("*.log"))) >= 2, "a flush under way")
    _kill(server, senders)
    assert _assert_all_there_once(db, acknowledged).stop() == 0
    assert not segments.exists(), "a clean stop leaves no log beside the file"


def test_a_torn_last_log_record_is_dropped_and_the_store_starts(tmp_path: Path) -> None:
    """A crash in the middle of a log write leaves a record cut short; that request was never
    acknowledged. The restart drops it, says so, and keeps every acknowledged span."""
    db = tmp_path / "torn.duckdb"
    server = start_server(db)
    acknowledged: list[str] = []
    with grpc.insecure_channel(server.grpc) as channel:
        export = channel.unary_unary(EXPORT)
        for _ in range(5):
            trace_id = new_trace_id()
            export(valid_request(trace_id, 50).SerializeToString(), timeout=10)
            acknowledged.append(trace_id.hex())
    _kill(server, [])
    last = max(Path(f"{db}.ingest").glob("*.log"))
    torn = new_trace_id()
    body = valid_request(torn, 50).SerializeToString()
    with last.open("ab") as segment:  # the header says more bytes than made it to the disk
        segment.write(struct.pack("<4scqII", b"TBL1", b"p", time.time_ns(), len(body), 0) + body[:100])
    restarted = _assert_all_there_once(db, acknowledged)
    try:
        assert "dropped it and what follows in that segment" in restarted.stderr
        assert httpx.get(f"{restarted.api}/api/traces/{torn.hex()}").status_code == 404
    finally:
        assert restarted.stop() == 0
