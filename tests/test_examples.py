"""examples/: the README's instrumented FastAPI service, run as a newcomer runs it — two
uvicorn processes configured with the variables "Point a service at it" exports and nothing
else (no `sut_env()`), exporting to a real `tracebaton serve` — and its flow spec checked."""

from __future__ import annotations

import re
import shlex
import signal
import sys
from collections.abc import Iterator

import httpx
import pytest
from conftest import REPO, RunningServer, start_server

from tracebaton import Client, ServiceProcess, TraceAssertionError, start_service

EXAMPLE = REPO / "examples" / "fastapi_service"
README = REPO / "README.md"
# port 0, and the port uvicorn bound read from the line it prints once it listens
UVICORN = [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", "0"]
LISTENING = r"Uvicorn running on http://[\d.]+:(?P<port>\d+)"


def readme_exports() -> dict[str, str]:
    """The variables of the README's `export` block under "Point a service at it"."""
    section = README.read_text("utf-8").split("## Point a service at it", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "the section lost its ```sh block of exports"
    exported: dict[str, str] = {}
    for line in block.group(1).splitlines():
        words = shlex.split(line, comments=True)
        assert words[0] == "export", line
        exported.update(word.split("=", 1) for word in words[1:])
    return exported


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("examples") / "store.duckdb")
    yield running
    assert running.stop() == 0, running.stderr


def start_pair(server: RunningServer, env: dict[str, str]) -> tuple[ServiceProcess, ServiceProcess]:
    """inventory, then orders calling it: the example app twice, as the README runs it."""
    env = {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": server.otlp_http_url}  # its free port, not 4318
    inventory = start_service(UVICORN, name="inventory", env={**env, "OTEL_SERVICE_NAME": "inventory"},
                              ready_line=LISTENING, cwd=str(EXAMPLE))
    try:
        orders = start_service(UVICORN, name="orders", ready_line=LISTENING, cwd=str(EXAMPLE),
                               env={**env, "OTEL_SERVICE_NAME": "orders", "INVENTORY_URL": inventory.url})
    except BaseException:
        inventory.stop()
        raise
    return inventory, orders


def send_order(client: Client, orders: ServiceProcess, spec: str | dict[str, object]) -> str:
    with client.flow("orders") as flow:
        httpx.post(f"{orders.url}/orders", headers=flow.headers, timeout=10).raise_for_status()
    return flow.assert_spec(spec).trace_id or ""


def test_the_readme_shows_the_example_app_whole() -> None:
    app = (EXAMPLE / "app.py").read_text("utf-8").rstrip("\n")
    assert f"```python\n{app}\n```" in README.read_text("utf-8"), (
        "README.md's copy of examples/fastapi_service/app.py differs: paste the file again")


def test_the_readme_variables_are_all_a_service_needs_for_traceparent_valid(serve: RunningServer) -> None:
    exported = readme_exports()
    assert {"OTEL_SERVICE_NAME", "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST",
            "OTEL_SEMCONV_STABILITY_OPT_IN"} <= set(exported)
    inventory, orders = start_pair(serve, exported)
    try:
        with Client(serve.api) as client:
            send_order(client, orders, str(EXAMPLE / "orders.yaml"))
            # the stable HTTP conventions' names, which the opt-in asks for
            trace = client.trace(send_order(client, orders, {"expect": {"hops": ["orders -> inventory"]}}))
    finally:
        for service in (orders, inventory):
            # uvicorn re-raises SIGTERM after its graceful shutdown (the lifespan's flush)
            assert service.stop() == -signal.SIGTERM, service.log_tail()
    server_spans = [s for s in trace.spans if s.service == "inventory"]
    assert server_spans, [s.service for s in trace.spans]
    assert "http.request.method" in server_spans[0].attributes, server_spans[0].attributes
    assert "http.request.header.traceparent" in server_spans[0].attributes


def test_without_the_header_capture_variable_traceparent_valid_says_what_to_set(
    serve: RunningServer,
) -> None:
    exported = readme_exports()
    del exported["OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST"]
    inventory, orders = start_pair(serve, exported)
    try:
        with Client(serve.api) as client, pytest.raises(TraceAssertionError) as failure:
            send_order(client, orders, str(EXAMPLE / "orders.yaml"))
    finally:
        for service in (orders, inventory):
            service.stop()
    assert "captures no request headers" in str(failure.value)
    assert "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST" in str(failure.value)
