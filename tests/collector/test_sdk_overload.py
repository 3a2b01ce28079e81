"""The OpenTelemetry SDK's side of overload: what fits its queue arrives, what does not is
dropped by the SDK itself, and its own accounting says how much.

Here the collector stalls (SIGSTOP, as in a long GC or disk pause) while two SDK processes
each create a burst: one of exactly `max_queue_size` spans, one of ten times that. The
exporters block on the stalled collector, the queues fill, the bigger burst overflows; then
the collector resumes and the SDKs export what they kept. test_overload.py does the same
during the 50-exporter overload (refusals instead of a stall); `make test-slow` runs it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from conftest import SUPPORT, RunningServer, start_server

pytestmark = pytest.mark.xdist_group("heavy")  # with the other heavy tests on one xdist worker

MAX_QUEUE_SIZE = 2048  # the SDK's default


class SdkBurst:
    """sdk_burst.py in its own process: SPANS spans through a BatchSpanProcessor."""

    def __init__(self, server: RunningServer, spans: int, service: str) -> None:
        self.service = service
        self.process = subprocess.Popen(
            [sys.executable, str(SUPPORT / "sdk_burst.py"), server.grpc, str(spans), str(MAX_QUEUE_SIZE),
             service], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert self._line() == "ready"

    def _line(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def _say(self, word: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(word + "\n")
        self.process.stdin.flush()

    def create(self) -> None:
        self._say("go")

    def wait_created(self) -> None:
        assert self._line() == "created"

    def finish(self) -> dict[str, Any]:
        out, err = self.process.communicate("flush\n", timeout=120)
        assert self.process.returncode == 0, err
        report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        # The SDK's own log line for a drop (logged at most once per 20 s, so not a count).
        report["queue_full_logged"] = "Queue full, dropping Span" in err
        return report

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)


def stored_by_service(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as connection:
        return dict(connection.execute(
            "SELECT service, count(DISTINCT span_id) FROM spans GROUP BY service").fetchall())


def check_accounting(report: dict[str, Any], stored: int, *, fits: bool) -> None:
    """What the SDK says it did adds up with what the collector stored."""
    # Every span created was handed to the exporter or dropped for a full queue (none is
    # left queued: shutdown exported the rest).
    assert report["processed"] + report["dropped_queue_full"] == report["created"], report
    assert report["exported"] + report["export_failed"] == report["processed"], report
    # Nothing acknowledged is lost; nothing stored that the SDK did not send.
    assert report["exported"] <= stored <= report["processed"], (report, stored)
    assert report["queue_full_logged"] == (report["dropped_queue_full"] > 0), report
    if fits:
        assert report["dropped_queue_full"] == 0, report
        assert stored == report["created"], "a burst that fits the SDK's queue was not delivered in full"


def test_sdk_queue_overflow_is_counted_and_what_fits_arrives(tmp_path: Path) -> None:
    db = tmp_path / "sdk.duckdb"
    server = start_server(db)
    bursts = []
    try:
        bursts = [SdkBurst(server, MAX_QUEUE_SIZE, "burst-fits"),
                  SdkBurst(server, 10 * MAX_QUEUE_SIZE, "burst-overflows")]
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            for burst in bursts:
                burst.create()
            for burst in bursts:
                burst.wait_created()
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        fits, overflows = (burst.finish() for burst in bursts)
    finally:
        for burst in bursts:
            burst.kill()
        code = server.stop()
    assert code == 0, server.stderr
    stored = stored_by_service(db)
    print(f"\nsdk burst that fits the queue: {json.dumps(fits)}, stored {stored.get('burst-fits', 0)}"
          f"\nsdk burst 10x the queue: {json.dumps(overflows)}, stored {stored.get('burst-overflows', 0)}")
    check_accounting(fits, stored.get("burst-fits", 0), fits=True)
    check_accounting(overflows, stored.get("burst-overflows", 0), fits=False)
    assert overflows["dropped_queue_full"] > 0, "the stall did not overflow the SDK's queue"
    assert overflows["export_failed"] == 0, "an export to the resumed collector failed"
