"""Start and stop the whole shop: one process per service, each started as soon as the
services it calls are ready, each awaited on its readiness line (no sleeps, no port polls).

Light on purpose (no FastAPI, no OpenTelemetry): the test process imports it.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

from ._process import parse_ready_line

_TAIL_LINES = 500


@dataclasses.dataclass(frozen=True)
class ServiceSpec:
    name: str
    calls: tuple[str, ...] = ()
    """Services it calls: it starts once they are ready, and is told their URLs."""
    needs_workdir: bool = False
    listens: bool = True


SERVICES: dict[str, ServiceSpec] = {
    spec.name: spec
    for spec in (
        ServiceSpec("auth"),
        ServiceSpec("catalog"),
        ServiceSpec("inventory"),
        ServiceSpec("payment-gateway"),
        ServiceSpec("orders", needs_workdir=True),
        ServiceSpec("email", needs_workdir=True, listens=False),
        ServiceSpec("cart", calls=("inventory",)),
        ServiceSpec("payment", calls=("payment-gateway",)),
        ServiceSpec("frontend", calls=("auth", "catalog", "cart", "payment", "orders")),
    )
}
"""The shop's processes and who calls whom (email is fed by orders through the outbox)."""


class ShopError(RuntimeError):
    """The shop did not start: the message names the service and ends with its log tail."""


_Event = tuple[str, str, str | None]  # (service, "ready" | "exit", url)


class _Process:
    def __init__(
        self, name: str, popen: subprocess.Popen[str], log: Path, events: queue.Queue[_Event]
    ) -> None:
        self.name = name
        self.popen = popen
        self.log = log
        self._events = events
        self._lines: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._lock = threading.Lock()
        self._pump = threading.Thread(target=self._read, name=f"shop-log-{name}", daemon=True)
        self._pump.start()

    def _read(self) -> None:
        # stdout must be drained for as long as the service runs, or it blocks on a full
        # pipe; every line also goes to a log file for people to read afterwards
        assert self.popen.stdout is not None
        ready = False
        with self.log.open("a", encoding="utf-8") as log:
            for line in self.popen.stdout:
                log.write(line)
                log.flush()
                with self._lock:
                    self._lines.append(line.rstrip("\n"))
                if not ready and (fields := parse_ready_line(line)) is not None:
                    ready = True
                    self._events.put((self.name, "ready", fields.get("url")))
        self._events.put((self.name, "exit", None))

    def tail(self, lines: int) -> str:
        with self._lock:
            return "\n".join(list(self._lines)[-lines:]) if lines > 0 else ""

    def close(self, timeout: float) -> None:
        self._pump.join(timeout)
        if self.popen.stdout is not None:
            self.popen.stdout.close()


class Shop:
    """The running shop. `url` is the frontend's base URL (POST {url}/checkout)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.urls: dict[str, str] = {}
        """Base URL of each listening service, by name."""
        self.started_in = 0.0
        """Seconds `start_shop` took, from the first launch to the last readiness line."""
        self.exit_codes: dict[str, int] = {}
        """After `stop()`: how each process exited (0 = it shut down as asked)."""
        self._processes: dict[str, _Process] = {}
        self._stopped = False

    @property
    def url(self) -> str:
        return self.urls["frontend"]

    @property
    def ports(self) -> dict[str, int]:
        """The port of each listening service, by name (the email worker listens on none)."""
        return {name: int(urllib.parse.urlsplit(url).port or 0) for name, url in self.urls.items()}

    @property
    def pids(self) -> dict[str, int]:
        return {name: process.popen.pid for name, process in self._processes.items()}

    def log_tail(self, service: str, lines: int = 20) -> str:
        """The last `lines` lines the service printed (stdout and stderr)."""
        if service not in self._processes:
            known = ", ".join(self._processes) or "none started"
            raise KeyError(f"no service {service!r} in the shop ({known})")
        return self._processes[service].tail(lines)

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate every process and wait for it; kill what outlives `timeout`. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        processes = list(self._processes.values())
        for process in processes:  # all at once: each takes a moment to shut down gracefully
            if process.popen.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in processes:
            try:
                code = process.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.popen.kill()
                code = process.popen.wait()
            self.exit_codes[process.name] = code
            if process.popen.stdin is not None:
                with contextlib.suppress(OSError):
                    process.popen.stdin.close()
        for process in processes:
            process.close(timeout)

    def __enter__(self) -> Shop:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Shop({self.urls.get('frontend', 'not started')}, {len(self._processes)} processes)"

    # starting ----------------------------------------------------------------------------

    def _launch(self, spec: ServiceSpec, env: Mapping[str, str], events: queue.Queue[_Event]) -> None:
        command = [sys.executable, "-m", "tracebaton.demo", spec.name, "--port", "0", "--watch-stdin"]
        for callee in spec.calls:
            command += ["--url", f"{callee}={self.urls[callee]}"]
        if spec.needs_workdir:
            command += ["--workdir", str(self.workdir)]
        # an inherited OTEL_SERVICE_NAME (the test process's own) would name every service alike
        inherited = {k: v for k, v in os.environ.items() if k != "OTEL_SERVICE_NAME"}
        popen = subprocess.Popen(
            command,
            env={**inherited, **env, "PYTHONUNBUFFERED": "1"},
            cwd=self.workdir,
            # the service exits when this pipe closes: no orphan outlives a crashed starter
            stdin=subprocess.PIPE,
            # out of the terminal's process group: Ctrl-C reaches the starter, whose stop()
            # shuts the services down, instead of every process at once
            start_new_session=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._processes[spec.name] = _Process(
            spec.name, popen, self.workdir / "logs" / f"{spec.name}.log", events
        )

    def _failure(self, service: str, what: str) -> ShopError:
        tail = self._processes[service].tail(20) if service in self._processes else ""
        return ShopError(f"demo shop: {service} {what}" + (f"; its last output:\n{tail}" if tail else ""))


def start_shop(env: Callable[[str], dict[str, str]], *, workdir: Path, timeout: float = 60.0) -> Shop:
    """Start every service of the shop and return once all are ready.

    `env(name)` is merged into each process's environment, e.g.
    `lambda name: collector.sut_env(service_name=name, headers=["x-request-id"])`.
    `workdir` holds the outbox database and `logs/<service>.log`. Raises ShopError (after
    stopping what it started) when a service exits early or is not ready within `timeout`.
    """
    workdir = Path(workdir).resolve()
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    shop = Shop(workdir)
    events: queue.Queue[_Event] = queue.Queue()
    waiting = dict(SERVICES)
    ready: set[str] = set()
    deadline = time.monotonic() + timeout
    try:
        while len(ready) < len(SERVICES):
            # start whatever has all its callees ready; the rest waits for their lines
            for name, spec in list(waiting.items()):
                if all(callee in ready for callee in spec.calls):
                    shop._launch(spec, env(name), events)
                    del waiting[name]
            try:
                service, kind, url = events.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                late = sorted(set(shop._processes) - ready)
                raise shop._failure(late[0], f"was not ready within {timeout:g} s") from None
            if kind == "exit":
                code = shop._processes[service].popen.wait()
                when = "while the others started" if service in ready else "before it was ready"
                raise shop._failure(service, f"exited with code {code} {when}")
            ready.add(service)
            if url is not None:
                shop.urls[service] = url
    except BaseException:
        shop.stop()
        raise
    shop.started_in = time.monotonic() - (deadline - timeout)
    return shop
