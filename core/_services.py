"""Service processes under test: started with the collector's environment, awaited until
ready, stopped at the end, and their log tail kept for failure messages."""

from __future__ import annotations

import collections
import contextlib
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

from ._errors import ConfigurationError

_TAIL_LINES = 200
PORT_PLACEHOLDER = "{port}"
"""Replaced by a free port in a service's command, environment values and `ready_url`."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now. Another process may take it before the service
    binds it; a service that can bind port 0 and print the port it got has no such race
    (`ready_line` with a `(?P<port>...)` group)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


class ServiceProcess:
    """A started service. `stop()` is idempotent; `log_tail()` is its recent output; `port`
    and `url` say where it listens, when its ready line or the `{port}` placeholder told."""

    def __init__(self, name: str, process: subprocess.Popen[str], ready_line: str | None = None,
                 *, port: int | None = None) -> None:
        self.name = name
        self.process = process
        self.port: int | None = port
        """The port it listens on: the `port` group of its ready line, else the `{port}` given."""
        self._url: str | None = None
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
                match = None if self._ready or self._ready_line is None else self._ready_line.search(line)
                if match is not None:
                    told = match.groupdict()
                    if told.get("port"):
                        self.port = int(told["port"])
                    if told.get("url"):
                        self._url = told["url"].rstrip("/")
                    self._ready = True
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    @property
    def url(self) -> str:
        """Its base URL: the `url` group of its ready line, else http://127.0.0.1:PORT."""
        if self._url is not None:
            return self._url
        if self.port is None:
            raise ConfigurationError(
                f"service {self.name}: its port is not known; put {PORT_PLACEHOLDER} in its command "
                "(a free port is put there), or capture it in ready_line, e.g. "
                r"ready_line=r'Uvicorn running on http://[\d.]+:(?P<port>\d+)' with --port 0")
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, until: float) -> bool:
        """Whether the ready line was printed before the monotonic deadline."""
        with self._cond:
            while not self._ready:
                remaining = until - time.monotonic()
                if self._eof or remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    @property
    def output_closed(self) -> bool:
        """Whether its stdout and stderr have ended."""
        with self._cond:
            return self._eof

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

    - `command`: the program and its arguments (no shell).
    - `name`: the service's name in messages and its log thread. (The pytest fixture's
      `start_service` also exports it as OTEL_SERVICE_NAME, the `service.name` flow specs
      use; here, pass `sut_env(..., service_name=name)` in `env` for that.)
    - `env`: variables set over this process's environment (`sut_env()` for tracing).
    - `ready_line`: a regex; ready once a line of the process's stdout or stderr matches
      (uvicorn prints "Application startup complete"). A group named `port` (or `url`)
      sets `.port` (`.url`): give the service port 0 and read the port it bound, with no
      race, e.g. `r"Uvicorn running on http://[\\d.]+:(?P<port>\\d+)"`.
    - `ready_url`: ready once this URL answers HTTP (any status), after `ready_line` if both.
    - `timeout_s`: how long it may take to be ready (default 30); past it, or if it exits
      first, it is stopped and ConfigurationError carries its last output.
    - `cwd`: the directory it starts in (default: this process's).

    With neither `ready_line` nor `ready_url`, it is returned as soon as it started.
    `{port}` anywhere in `command`, in a value of `env` or in `ready_url` becomes one free
    port (`free_port()`), which `.port` and `.url` then hold.
    """
    arguments, environment = list(command), dict(env or {})
    port = None
    if any(PORT_PLACEHOLDER in text for text in [*arguments, *environment.values(), ready_url or ""]):
        port = free_port()
        arguments = [a.replace(PORT_PLACEHOLDER, str(port)) for a in arguments]
        environment = {k: v.replace(PORT_PLACEHOLDER, str(port)) for k, v in environment.items()}
        ready_url = ready_url.replace(PORT_PLACEHOLDER, str(port)) if ready_url else None
    process = subprocess.Popen(
        arguments, env={**os.environ, **environment}, cwd=cwd, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    service = ServiceProcess(name, process, ready_line, port=port)
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
        if code is None and service.output_closed:
            # its output ends a moment before its exit status can be read: a process that
            # closed its output is exiting, and "exited with 3" is what its author needs
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = process.wait(5)
        service.stop()
        awaited = " and ".join([*([f"a line matching {ready_line!r}"] if ready_line is not None else []),
                                *([f"{ready_url} to answer"] if ready_url is not None else [])])
        state = (f"exited with {code} before it was ready" if code is not None else
                 f"was not ready within timeout_s={timeout_s:g} (waited for {awaited}); raise timeout_s, "
                 "or fix ready_line/ready_url to what the service prints or serves")
        raise ConfigurationError(
            f"service {name} ({' '.join(arguments)}) {state}; its last output:\n{service.log_tail()}")
    return service
