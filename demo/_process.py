"""What every demo process shares: its readiness line and how it learns to stop.

No OpenTelemetry here: the uninstrumented payment-gateway stub uses it too.
"""

from __future__ import annotations

import os
import signal
import threading

READY_PREFIX = "tracebaton-demo: ready "


def ready_line(service: str, url: str | None = None) -> str:
    """`tracebaton-demo: ready service=cart url=http://127.0.0.1:41234` (no url for a worker)."""
    return READY_PREFIX + f"service={service}" + (f" url={url}" if url else "")


def announce_ready(service: str, url: str | None = None) -> None:
    # one line, flushed: `start_shop` blocks on it instead of sleeping or polling a port
    print(ready_line(service, url), flush=True)


def parse_ready_line(line: str) -> dict[str, str] | None:
    if not line.startswith(READY_PREFIX):
        return None
    return dict(part.split("=", 1) for part in line[len(READY_PREFIX) :].split() if "=" in part)


def exit_when_stdin_closes() -> None:
    """SIGTERM this process once stdin reaches EOF: the starter holds the pipe's other end,
    so a starter that dies without stopping the shop (kill -9, a crashed test run) leaves
    no service running. The process's own SIGTERM handling then shuts it down cleanly."""

    def watch() -> None:
        # os.read, not sys.stdin: a daemon thread blocked inside a buffered reader holds
        # its lock, and the interpreter aborts at exit when it cannot take that lock
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()
