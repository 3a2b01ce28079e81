"""Service processes under test: started with the collector's environment, awaited until
ready, stopped at the end, and their log tail kept for failure messages."""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

from ._errors import ConfigurationError

_TAIL_LINES = 200


class ServiceProcess:
    """A started service. `stop()` is idempotent; `log_tail()` is its recent output."""

    def __init__(self, name: str, process: subprocess.Popen[str], ready_line: str | None = None) -> None:
        self.name = name
        self.process = process
        self._lines: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._ready_line = re.compile(ready_line) if ready_line is not None else None
        self._ready = False
        self._cond = threading.Condition()
        self._eof = False
        self._pump = threading.Thread(target=self._read, name=f"tracebaton-log-{name}", daemon=True)
        self._pump.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in iter(self.process.stdout.readline, ""):
            with self._cond:
                self._lines.append(line.rstrip("\n"))
                if self._ready_line is not None and self._ready_line.search(line):
                    self._ready = True
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait_ready(self, until: float) -> bool:
        """Whether the ready line was printed before the monotonic deadline."""
        with self._cond:
            while not self._ready:
                remaining = until - time.monotonic()
                if self._eof or remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def log_tail(self, lines: int = 20) -> str:
        with self._cond:
            return "\n".join(list(self._lines)[-lines:])

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)
        self._pump.join(timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answered; the status is the service's business
    except (urllib.error.URLError, OSError):
        return False


def start_service(
    command: Sequence[str],
    *,
    name: str,
    env: Mapping[str, str] | None = None,
    ready_line: str | None = None,
    ready_url: str | None = None,
    timeout_s: float = 30.0,
    cwd: str | None = None,
) -> ServiceProcess:
    """Start `command` with `env` over this environment; return once it is ready.

    Ready means a printed line matching the regex `ready_line` (uvicorn prints
    "Application startup complete"), or `ready_url` answering HTTP. With neither, the
    process is returned as soon as it started.
    """
    process = subprocess.Popen(
        list(command), env={**os.environ, **(env or {})}, cwd=cwd, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    service = ServiceProcess(name, process, ready_line)
    until = time.monotonic() + timeout_s
    ready = True
    if ready_line is not None:
        ready = service.wait_ready(until)
    if ready and ready_url is not None:
        delay = 0.01  # a URL gives no event to wait on: back off up to 0.1 s
        while not (ready := _answers(ready_url)) and process.poll() is None and time.monotonic() < until:
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
    if not ready:
        code = process.poll()
        service.stop()
        state = f"exited with {code}" if code is not None else f"was not ready within {timeout_s:g} s"
        raise ConfigurationError(
            f"service {name} ({' '.join(command)}) {state}; its last output:\n{service.log_tail()}")
    return service
