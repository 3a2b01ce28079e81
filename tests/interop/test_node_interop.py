"""Interop with another language: a Node.js service instrumented with the OpenTelemetry JS SDK
(tests/interop/node/service.js) takes part in a flow between Python services, exporting
its spans once over OTLP protobuf/HTTP and once over OTLP JSON/HTTP. Its hops, captured
headers, baggage and budgets are judged exactly like the Python services'.

    test -> storefront (Node) -> catalog (Python), then storefront -> inventory (Python)
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tracebaton import Collector, ServiceProcess, start_service

pytestmark = pytest.mark.xdist_group("heavy")  # with the other heavy tests on one xdist worker

NODE_DIR = Path(__file__).resolve().parent / "node"
NODE = shutil.which("node")

if NODE is None or not (NODE_DIR / "node_modules").is_dir():
    missing = "node is not installed" if NODE is None else f"{NODE_DIR / 'node_modules'} is missing"
    if os.environ.get("CI"):
        raise RuntimeError(f"{missing}: CI must run `npm ci --prefix tests/interop/node` (.ci/run does)")
    pytest.skip(f"{missing}: run `npm ci --prefix tests/interop/node`", allow_module_level=True)

READY = r"(tracebaton-demo|tracebaton-interop): ready "

SPEC: dict[str, Any] = {
    "name": "buy",
    "wait": {"timeout": "5s"},
    "expect": {
        "hops": ["test -> storefront", "storefront -> catalog", "storefront -> inventory"],
        "times": {"storefront -> inventory": 1},
        # slack for a loaded 2-core machine; `slow@inventory` takes 1 s more
        "budgets": {
            "trace": "1s",
            "hops": {"storefront -> catalog": "250ms", "storefront -> inventory": "250ms"},
            "deadlines": True,
            "deadline_slack": "50ms",
        },
        "propagation": {
            "headers": {"traceparent": "valid", "x-request-id": "same"},
            "baggage": {"tenant": "acme"},
        },
        "spans": [
            {
                "select": {"service": "storefront", "kind": "server"},
                "count": 1,
                "attributes": {"http.response.status_code": 200, "http.request.method": "POST"},
            }
        ],
    },
}


FORWARDED = {"content-type", "content-encoding", "authorization"}


class WireTap:
    """An OTLP/HTTP relay in front of the collector that notes each request's content type:
    proof of which encoding the JS exporter really sent."""

    def __init__(self, upstream: str) -> None:
        tap = self
        self.content_types: set[str] = set()

        class Relay(BaseHTTPRequestHandler):
            def body(self) -> bytes:
                if "chunked" not in self.headers.get("transfer-encoding", "").lower():
                    return self.rfile.read(int(self.headers.get("content-length") or 0))
                chunks = []  # the JS exporters stream their requests: chunked, no content-length
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                self.rfile.readline()
                return b"".join(chunks)

            def do_POST(self) -> None:
                body = self.body()
                kind = self.headers.get("content-type", "")
                tap.content_types.add(kind.split(";")[0])
                forwarded = {k: v for k, v in self.headers.items() if k.lower() in FORWARDED}
                answer = httpx.post(upstream + self.path, content=body, headers=forwarded, timeout=30)
                self.send_response(answer.status_code)
                self.send_header("content-type", answer.headers.get("content-type", "application/json"))
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def url_of(service: ServiceProcess) -> str:
    match = re.search(r"ready .*url=(http://\S+)", service.log_tail(50))
    assert match is not None, service.log_tail(50)
    return match.group(1)


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    with Collector() as running:
        yield running


@pytest.fixture(scope="module")
def python_services(collector: Collector) -> Iterator[dict[str, str]]:
    started: list[ServiceProcess] = []
    try:
        for name in ("catalog", "inventory"):
            started.append(start_service(
                [sys.executable, "-m", "tracebaton.demo", name, "--port", "0"], name=name,
                env=collector.sut_env(service_name=name, headers=["x-request-id"]), ready_line=READY))
        yield {service.name: url_of(service) for service in started}
    finally:
        for service in started:
            assert service.stop() == 0, service.log_tail()


@pytest.fixture(scope="module", params=["http/protobuf", "http/json"], ids=["protobuf", "json"])
def storefront(
    request: pytest.FixtureRequest, collector: Collector, python_services: dict[str, str]
) -> Iterator[tuple[str, WireTap]]:
    protocol: str = request.param
    env = collector.sut_env(service_name="storefront", headers=["x-request-id"])
    tap = WireTap(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    env.update({
        "OTEL_EXPORTER_OTLP_ENDPOINT": tap.url,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "CATALOG_URL": python_services["catalog"],
        "INVENTORY_URL": python_services["inventory"],
        "PORT": "0",
    })
    service = start_service([str(NODE), str(NODE_DIR / "service.js")], name="storefront", env=env,
                            ready_line=READY, cwd=str(NODE_DIR))
    try:
        assert f"otlp={protocol}" in service.log_tail(), service.log_tail()
        url = url_of(service)
        for _ in range(2):  # connection set-up and lazy loading stay out of the budgets
            httpx.post(url + "/buy", json={}, timeout=10).raise_for_status()
        yield url, tap
    finally:
        code = service.stop()
        tap.close()
        assert code == 0, f"storefront exited {code}:\n{service.log_tail()}"
    expected = {"http/protobuf": "application/x-protobuf", "http/json": "application/json"}[protocol]
    assert tap.content_types == {expected}, tap.content_types


def buy(collector: Collector, url: str, fault: str | None = None) -> tuple[Any, httpx.Response]:
    with collector.flow("buy", baggage={"tenant": "acme"}) as flow:
        headers = {**flow.headers, "x-request-id": uuid.uuid4().hex}
        if fault:
            headers["x-demo-fault"] = fault
        response = httpx.post(url + "/buy", json={"sku": "mug"}, headers=headers, timeout=10)
    return flow, response


def test_a_node_service_passes_the_flow_like_a_python_one(
    collector: Collector, storefront: tuple[str, WireTap]
) -> None:
    flow, response = buy(collector, storefront[0])
    assert response.status_code == 200, response.text
    result = flow.check(SPEC)
    assert result.passed, flow.render(result, verbosity=2)
    hops = {h.hop: (h.kind.value, h.status.value) for h in result.hops}
    assert hops == {
        "test -> storefront": ("sync", "matched"),
        "storefront -> catalog": ("sync", "matched"),
        "storefront -> inventory": ("sync", "matched"),
    }
    # the Node spans are there as the JS SDK made them: its resource, its captured headers
    spans = flow.trace().spans
    node = [s for s in spans if s.service == "storefront"]
    assert {s.kind.label for s in node} == {"server", "client"}
    assert all(s.resource.get("telemetry.sdk.language") == "nodejs" for s in node)
    server = next(s for s in node if s.kind.label == "server")
    request_id = response.json()["request_id"]
    assert response.headers["x-request-id"] == request_id
    # JavaScript names captured headers as the semantic conventions do (dashes kept), where
    # Python's instrumentations write underscores: the header check reads both
    assert server.attributes["http.request.header.x-request-id"] == [request_id]
    assert server.attributes["http.request.header.traceparent"][0].split("-")[1] == flow.trace_id
    assert server.attributes["http.request.header.baggage"] == ["tenant=acme"]
    for service in ("catalog", "inventory"):
        callee = next(s for s in spans if s.service == service and s.kind.label == "server")
        assert list(callee.attributes["http.request.header.x_request_id"]) == [request_id]


@pytest.mark.parametrize(("fault", "check", "words"), [
    ("drop-request-id@storefront", "headers",
     "storefront -> catalog: x-request-id missing on catalog's request"),
    ("slow@inventory", "budgets.hops", "storefront -> inventory: took"),
    ("format-mismatch@catalog", "errors", "storefront -> catalog answered 422"),
])
def test_a_fault_on_a_node_hop_names_that_hop(
    collector: Collector, storefront: tuple[str, WireTap], fault: str, check: str, words: str
) -> None:
    flow, _ = buy(collector, storefront[0], fault)
    result = flow.check(SPEC)
    assert not result.passed
    failed = {c.check: c.message for c in result.checks if c.state.value == "fail"}
    assert check in failed, flow.render(result, verbosity=2)
    assert words in failed[check], failed[check]
    assert result.first_divergence is not None
    assert result.first_divergence.startswith(words.split(":")[0].split(" answered")[0])
