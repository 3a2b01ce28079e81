"""payment-gateway: a stub of an external card processor. Deliberately uninstrumented —
no OpenTelemetry at all, a plain stdlib HTTP server — so the shop has the hop every real
system has: a call into a peer that exports no spans (DESIGN §4, uninstrumented peer).

It still honours the demo's faults aimed at it (`slow`, `retry`, `format-mismatch`,
`expired-token`), since payment forwards x-demo-fault like every service.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NoReturn

from ._faults import ATTEMPT_HEADER, FAULT_HEADER, SLOW_S, FaultHeaderError, Faults
from ._process import announce_ready, exit_when_stdin_closes

SERVICE = "payment-gateway"


class _Handler(BaseHTTPRequestHandler):
    server_version = "payment-gateway-stub/1"
    protocol_version = "HTTP/1.1"  # keep-alive, as payment's pooled client expects

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._answer(200, {"service": SERVICE, "status": "ok"})
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path != "/v1/charges":
            self._answer(404, {"error": "not found"})
            return
        try:
            faults = Faults.parse(self.headers.get(FAULT_HEADER))
        except FaultHeaderError as error:
            self._answer(400, {"error": str(error)})
            return
        if faults.on("slow", SERVICE):
            time.sleep(SLOW_S)
        if faults.on("expired-token", SERVICE):
            self._answer(401, {"error": "api key expired"})
            return
        if faults.on("format-mismatch", SERVICE):
            self._answer(422, {"error": "request does not match the expected format"})
            return
        if faults.on("retry", SERVICE) and self.headers.get(ATTEMPT_HEADER, "1") == "1":
            self._answer(503, {"error": "temporarily unavailable, retry"})
            return
        try:
            charge = json.loads(raw or b"{}")
        except ValueError:
            self._answer(400, {"error": "body is not JSON"})
            return
        self._answer(
            200,
            {
                "id": "ch_" + uuid.uuid4().hex[:16],
                "status": "succeeded",
                "amount_cents": charge.get("amount_cents"),
            },
        )

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{SERVICE}: {self.address_string()} {format % args}\n")


def _exit_cleanly(signum: int, frame: object) -> NoReturn:
    # raised in the main thread, out of serve_forever, so the finally below closes the socket
    sys.exit(0)


def main(port: int, *, host: str = "127.0.0.1", watch_stdin: bool) -> None:
    server = ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    if watch_stdin:
        exit_when_stdin_closes()
    bound_host, bound = server.server_address[:2]
    announce_ready(SERVICE, f"http://{bound_host!s}:{bound}")
    try:
        server.serve_forever()
    finally:
        server.server_close()
