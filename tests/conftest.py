"""Shared fixtures: real `tracebaton serve` processes on free ports, stopped at teardown."""

from __future__ import annotations

import dataclasses
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_backends import _capability_gate, make_store, store, store_backend  # noqa: F401  (fixtures)

# A shared fixture module (tests/dashboard): its asserts rewritten like a test's on first import.
pytest.register_assert_rewrite("chromium_pages")

REPO = Path(__file__).resolve().parents[1]
SUPPORT = Path(__file__).resolve().parent / "support"


@dataclasses.dataclass
class RunningServer:
    process: subprocess.Popen[str]
    grpc: str
    http: str
    api: str
    db: Path
    stderr_lines: list[str]
    pumps: list[threading.Thread]
    stderr_queue: queue.Queue[str | None] = dataclasses.field(default_factory=queue.Queue)
    """Each stderr line as it comes (None at EOF), for a test to wait on a log line."""

    @property
    def otlp_http_url(self) -> str:
        return f"http://{self.http}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout)
        for pump in self.pumps:
            pump.join(timeout)  # EOF comes when every process holding the pipes is gone
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return code

    def session_processes(self) -> list[int]:
        """Pids still alive in the server's session (its workers, if any outlived it)."""
        alive = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[3]) == self.process.pid and fields[0] != "Z":  # field 6: session id
                    alive.append(int(entry.name))
        return alive

    def wait_session_gone(self, timeout: float = 15) -> list[int]:
        """Wait (on pidfds, not a timer) until the session's processes exit; return survivors."""
        deadline = time.monotonic() + timeout
        for pid in self.session_processes():
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                continue
            try:
                select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            finally:
                os.close(fd)
        return self.session_processes()

    @property
    def stderr(self) -> str:
        return "".join(self.stderr_lines)


def _pump(stream: object, sink: queue.Queue[str | None], keep: list[str] | None) -> None:
    for line in iter(stream.readline, ""):  # type: ignore[attr-defined]
        if keep is not None:
            keep.append(line)
        sink.put(line)
    sink.put(None)


def start_server(db: Path, *args: str, env: dict[str, str] | None = None,
                 timeout: float = 60, logged: bool = False) -> RunningServer:
    """`tracebaton serve` on free ports; returns once it printed its ready line.

    `logged`: with the collector's log on stderr (`RunningServer.stderr_lines`), through
    support/serve_logged.py."""
    launcher = [str(SUPPORT / "serve_logged.py")] if logged else ["-m", "tracebaton"]
    command = [sys.executable, *launcher, "serve", "--db", str(db),
               "--grpc-port", "0", "--http-port", "0", "--api-port", "0", *args]
    # A session of its own: the processes it starts can be found, and must be gone, after it.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, **(env or {})}, start_new_session=True)
    stdout_lines: queue.Queue[str | None] = queue.Queue()
    stderr_lines: list[str] = []
    stderr_queue: queue.Queue[str | None] = queue.Queue()
    pumps = [
        threading.Thread(target=_pump, args=(process.stdout, stdout_lines, None), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, stderr_queue, stderr_lines), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    running = RunningServer(process, "", "", "", db, stderr_lines, pumps, stderr_queue)
    try:
        line = stdout_lines.get(timeout=timeout)
    except queue.Empty:
        running.stop(signal.SIGKILL)
        raise RuntimeError(f"tracebaton serve printed no ready line in {timeout}s") from None
    if line is None or not line.startswith("tracebaton: ready "):
        running.stop(signal.SIGKILL)
        raise RuntimeError(f"tracebaton serve did not start: {line!r}\n{running.stderr}")
    fields = dict(part.split("=", 1) for part in line.split()[2:])
    running.grpc, running.http, running.api = fields["grpc"], fields["http"], fields["api"]
    return running


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path / "store.duckdb")
    yield running
    code = running.stop()
    assert code == 0, f"serve exited {code} at SIGTERM:\n{running.stderr}"


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server for a module's read-mostly tests (each test uses its own trace ids)."""
    running = start_server(tmp_path_factory.mktemp("shared") / "store.duckdb",
                           env={"TRACEBATON_MAX_BODY_BYTES": str(1024 * 1024)})
    yield running
    code = running.stop()
    assert code == 0, f"serve exited {code} at SIGTERM:\n{running.stderr}"


def run_sdk_exporter(*args: str, timeout: float = 60) -> str:
    """The real OpenTelemetry SDK in its own process; returns what it printed."""
    done = subprocess.run([sys.executable, str(SUPPORT / "sdk_exporter.py"), *args],
                          capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise AssertionError(f"sdk_exporter {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout
