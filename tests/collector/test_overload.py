"""50 concurrent exporters sending faster than the store can write.

Memory stays bounded, the excess is refused with UNAVAILABLE and a retry delay, the API
keeps answering, and every acknowledged span is stored. `make test-slow` runs it.

Meanwhile two OpenTelemetry SDK processes send a burst each (test_sdk_overload.py): one that
fits the SDK's queue arrives in full; one ten times that overflows it, and the SDK's own
accounting (dropped for a full queue, exported, failed) adds up with what was stored.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import duckdb
import httpx
import pytest
from conftest import SUPPORT, start_server
from test_sdk_overload import MAX_QUEUE_SIZE, SdkBurst, check_accounting, stored_by_service

PROCESSES, THREADS = 4, [13, 13, 12, 12]          # 50 exporters
pytestmark = pytest.mark.xdist_group("heavy")  # with the other heavy tests on one xdist worker

REQUESTS_PER_PROCESS = 150                          # 4 x 150 x 512 = 307,200 spans
MAX_PENDING_SPANS = 4_096
RSS_BOUND_MIB = 1536


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@pytest.mark.slow
def test_overload_is_refused_politely_and_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "overload.duckdb"
    server = start_server(db, env={"TRACEBATON_MAX_PENDING_SPANS": str(MAX_PENDING_SPANS)})
    senders = [
        subprocess.Popen([sys.executable, str(SUPPORT / "overload_sender.py"), server.grpc,
                          str(p * REQUESTS_PER_PROCESS), str(REQUESTS_PER_PROCESS), str(THREADS[p])],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for p in range(PROCESSES)
    ]
    for sender in senders:
        assert sender.stdout is not None
        assert sender.stdout.readline().strip() == "ready"
    bursts = [SdkBurst(server, MAX_QUEUE_SIZE, "burst-fits"),
              SdkBurst(server, 10 * MAX_QUEUE_SIZE, "burst-overflows")]
    rss: list[float] = []
    health_ms: list[float] = []
    done = threading.Event()

    def observe() -> None:   # samples while the senders run; a measurement, not a wait
        with httpx.Client() as client:
            while not done.is_set():
                rss.append(_rss_mib(server.process.pid))
                started = time.perf_counter()
                assert client.get(f"{server.api}/healthz", timeout=10).status_code == 200
                health_ms.append((time.perf_counter() - started) * 1000)
                done.wait(0.25)

    observer = threading.Thread(target=observe)
    observer.start()
    for sender in senders:
        assert sender.stdin is not None
        sender.stdin.write("go\n")
        sender.stdin.flush()
    try:
        for burst in bursts:
            burst.create()
        for burst in bursts:
            burst.wait_created()
        burst_reports = [burst.finish() for burst in bursts]
    finally:
        for burst in bursts:
            burst.kill()
    reports = []
    for sender in senders:
        out, _ = sender.communicate(timeout=600)
        assert sender.returncode == 0
        reports.append(json.loads(out.strip().splitlines()[-1]))
    done.set()
    observer.join()
    assert server.stop() == 0

    acknowledged: Counter[str] = Counter()
    for report in reports:
        acknowledged.update(report["acknowledged"])
    refused = sum(r["refused"] for r in reports)
    delays = {d for r in reports for d in r["delays"]}
    with duckdb.connect(str(db), read_only=True) as connection:
        stored = dict(connection.execute(
            "SELECT lower(hex(trace_id)), count(DISTINCT span_id) FROM spans GROUP BY 1").fetchall())
    lost = {t: n for t, n in acknowledged.items() if stored.get(t, 0) < n}
    print(f"\noverload: {sum(acknowledged.values())} spans acknowledged, {refused} requests refused "
          f"(retry delays {sorted(delays)} s), peak RSS {max(rss):.0f} MiB, /healthz median "
          f"{statistics.median(health_ms):.1f} ms max {max(health_ms):.1f} ms")
    assert lost == {}, f"{len(lost)} acknowledged traces are missing spans"
    assert sum(acknowledged.values()) == PROCESSES * REQUESTS_PER_PROCESS * 512
    assert refused > 0, "the senders never outran the store: the test did not overload it"
    assert delays == {1.0}
    assert max(rss) < RSS_BOUND_MIB
    assert max(health_ms) < 2000

    by_service = stored_by_service(db)
    fits, overflows = burst_reports
    print(f"sdk burst that fits the queue: {json.dumps(fits)}, stored {by_service.get('burst-fits', 0)}\n"
          f"sdk burst 10x the queue: {json.dumps(overflows)}, stored {by_service.get('burst-overflows', 0)}")
    check_accounting(fits, by_service.get("burst-fits", 0), fits=True)
    check_accounting(overflows, by_service.get("burst-overflows", 0), fits=False)
    assert fits["retries"] + overflows["retries"] > 0, "the SDKs' exports never met the overload"
    # The SDK waited as long as the server asked (RetryInfo), not its own exponential backoff.
    assert set(fits["retry_delays_s"] + overflows["retry_delays_s"]) == {1.0}
