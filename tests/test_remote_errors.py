"""A remote tracebaton that fails says whose failure it is: no answer (ServerUnreachableError),
the server's (ServerError, 5xx), or the request's (RequestRejectedError, 4xx) — from the
Python `Client` and from the CLI alike. The server here is a real HTTP server on a free
port that answers what each test tells it to."""

from __future__ import annotations

import http.server
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.rpc import status_pb2

from tracebaton import (
    Client,
    ConfigurationError,
    RemoteError,
    RequestRejectedError,
    ServerError,
    ServerUnreachableError,
)

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class Answering(http.server.ThreadingHTTPServer):
    """Answers every request with `status`, `body` and `content_type`; notes each path asked."""

    daemon_threads = True
    status = 200
    body = b"{}"
    content_type = "application/json"

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.paths: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def answer(self, status: int, body: bytes | str, content_type: str = "application/json") -> None:
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.content_type = content_type


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Answering

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        self.server.paths.append(self.path)
        self.send_response(self.server.status)
        self.send_header("content-type", self.server.content_type)
        self.send_header("content-length", str(len(self.server.body)))
        self.end_headers()
        self.wfile.write(self.server.body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:  # keep pytest's output clean
        pass


@pytest.fixture
def server() -> Iterator[Answering]:
    answering = Answering()
    thread = threading.Thread(target=answering.serve_forever, daemon=True)
    thread.start()
    yield answering
    answering.shutdown()
    answering.server_close()
    thread.join(5)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but not listening: a connection to it is refused, and no other process
    can take it meanwhile (a closed free port could be taken by anyone)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_a_500_is_a_server_error_with_status_and_body(server: Answering) -> None:
    body = json.dumps({"detail": "the server log has the details — please report it"})
    server.answer(500, body)
    with Client(server.url) as client, pytest.raises(ServerError) as caught:
        client.trace(TRACE_ID)
    error = caught.value
    assert (error.status, error.body) == (500, body)
    assert error.url == f"{server.url}/api/traces/{TRACE_ID}"
    assert str(error) == (
        f"{server.url}/api/traces/{TRACE_ID} answered 500: the server log has the details — please "
        "report it; that is the server failing, not the request: its log says why"
    )
    assert isinstance(error, RemoteError)
    assert not isinstance(error, ConfigurationError), "a 500 is not the user's misconfiguration"
    assert error.__cause__ is None


def test_a_503_says_to_retry_and_keeps_a_body_that_is_not_json(server: Answering) -> None:
    server.answer(503, "upstream overloaded\n", content_type="text/plain")
    with Client(server.url) as client, pytest.raises(ServerError) as caught:
        client.find(service="cart")
    assert caught.value.status == 503
    assert caught.value.body == "upstream overloaded\n"
    assert "answered 503: upstream overloaded" in str(caught.value)
    assert str(caught.value).endswith("retry once it has caught up")
    assert server.paths == ["/api/traces?limit=500&service=cart"]


def test_a_400_is_a_rejected_request_with_the_servers_detail(server: Answering) -> None:
    detail = "spec: expect.hops[0]: 'a => b' is not a hop; write 'caller -> callee'"
    server.answer(400, json.dumps({"detail": detail}))
    with Client(server.url) as client, pytest.raises(RequestRejectedError) as caught:
        client.check({"name": "x", "expect": {"hops": ["a -> b"]}}, TRACE_ID)
    error = caught.value
    assert (error.status, error.detail) == (400, detail)
    assert str(error) == f"{server.url}/api/check answered 400: {detail}"
    assert not isinstance(error, ServerError)


def test_a_closed_port_is_unreachable_and_keeps_the_transport_error_as_cause(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    with Client(url) as client, pytest.raises(ServerUnreachableError) as caught:
        client.sut_env()  # asks /healthz where OTLP listens
    error = caught.value
    assert error.url == url
    assert not error.timed_out
    assert isinstance(error.__cause__, httpx.ConnectError)
    assert str(error).startswith(f"tracebaton at {url} cannot be reached (ConnectError: ")
    assert "start it with `tracebaton serve`" in str(error)


def test_an_answer_that_is_not_json_is_a_wrong_url(server: Answering) -> None:
    server.answer(200, "<html>Grafana</html>", content_type="text/html")
    with Client(server.url) as client, pytest.raises(ConfigurationError) as caught:
        client.find()
    assert str(caught.value) == (
        f"{server.url}/api/traces?limit=500 answered 200 but not JSON: is this a tracebaton server? "
        "Point --tracebaton-url or TRACEBATON_URL at its API port (7357 by default)"
    )
    assert isinstance(caught.value.__cause__, json.JSONDecodeError)


def test_an_otlp_503_for_the_flows_own_span_is_a_server_error(server: Answering) -> None:
    """The receiver answers OTLP/HTTP errors as a protobuf google.rpc.Status: its message is shown."""
    status = status_pb2.Status(code=14, message="ingest is saturated: 4096 spans pending")
    server.answer(503, status.SerializeToString(), content_type="application/x-protobuf")
    with Client("http://127.0.0.1:1", otlp_http_endpoint=server.url) as client:
        flow = client.flow("checkout")
        with pytest.raises(ServerError) as caught, flow:
            pass
    assert caught.value.status == 503
    assert caught.value.body == "ingest is saturated: 4096 spans pending"
    assert caught.value.url == f"{server.url}/v1/traces"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracebaton", *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (500, "answered 500: boom; that is the server failing, not the request: its log says why"),
        (404, "answered 404: boom"),
    ],
)
def test_the_cli_says_whose_failure_it_is(server: Answering, status: int, says: str) -> None:
    server.answer(status, json.dumps({"detail": "boom"}))
    done = run_cli("spec", TRACE_ID, "--server", server.url)
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"tracebaton spec: error: {server.url}/api/traces/{TRACE_ID}/spec {says}\n"


def test_the_cli_names_an_unreachable_server(closed_port: int, tmp_path: Path) -> None:
    spans = tmp_path / "spans.json"
    spans.write_text("{}")
    done = run_cli("import", str(spans), "--server", f"http://127.0.0.1:{closed_port}")
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"tracebaton import: error: tracebaton at http://127.0.0.1:{closed_port} cannot be reached "
        "(ConnectError: "
    )
    assert "Traceback" not in done.stderr
