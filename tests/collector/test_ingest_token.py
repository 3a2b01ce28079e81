"""`--ingest-token` guards OTLP over gRPC and HTTP; exporters that send it as
OTEL_EXPORTER_OTLP_HEADERS (what `sut_env()` sets) get through, others get a 401 /
UNAUTHENTICATED that says what to send; the token never appears in what the server prints."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import grpc
import httpx
import pytest
from conftest import RunningServer, start_server
from otlp_requests import new_trace_id, valid_request

from tracebaton import sut_env

INGEST = "ingest-s3cret-token"
API = "api-s3cret-token"
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

SDK_EXPORT = """
import sys
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

provider = TracerProvider(resource=Resource.create({"service.name": "guarded"}))
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
span = provider.get_tracer("t").start_span("GET /guarded")
span.end()
provider.shutdown()
print(format(span.get_span_context().trace_id, "032x"))
"""


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("guarded") / "store.duckdb",
                           "--ingest-token", INGEST, "--token", API)
    yield running
    assert running.stop() == 0, running.stderr


def _post(server: RunningServer, authorization: str | None) -> httpx.Response:
    headers = {"content-type": "application/x-protobuf"}
    if authorization is not None:
        headers["authorization"] = authorization
    body = valid_request(new_trace_id()).SerializeToString()
    return httpx.post(f"{server.otlp_http_url}/v1/traces", content=body, headers=headers, timeout=10)


@pytest.mark.parametrize("authorization", [None, "", "Bearer wrong", f"Basic {INGEST}", f"Bearer {API}",
                                           f"Bearer {INGEST}x"])
def test_http_ingest_without_the_token_is_refused_with_what_to_send(guarded: RunningServer,
                                                                    authorization: str | None) -> None:
    response = _post(guarded, authorization)
    assert response.status_code == 401
    assert "OTEL_EXPORTER_OTLP_HEADERS" in response.text
    assert INGEST not in response.text


def test_http_ingest_with_the_token_is_stored(guarded: RunningServer) -> None:
    assert _post(guarded, f"Bearer {INGEST}").status_code == 200
    assert _post(guarded, f"bearer {INGEST}").status_code == 200, "the scheme is case-insensitive"


def test_grpc_ingest_needs_the_token(guarded: RunningServer) -> None:
    with grpc.insecure_channel(guarded.grpc) as channel:
        export = channel.unary_unary(EXPORT)
        body = valid_request(new_trace_id()).SerializeToString()
        with pytest.raises(grpc.RpcError) as refused:
            export(body, timeout=10)
        assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
        assert "--ingest-token" in (refused.value.details() or "")
        with pytest.raises(grpc.RpcError) as wrong:
            export(body, timeout=10, metadata=[("authorization", "Bearer nope")])
        assert wrong.value.code() is grpc.StatusCode.UNAUTHENTICATED
        export(body, timeout=10, metadata=[("authorization", f"Bearer {INGEST}")])


def test_an_sdk_exporter_configured_by_sut_env_gets_through(guarded: RunningServer) -> None:
    env = {**os.environ, **sut_env(guarded.otlp_http_url, ingest_token=INGEST)}
    done = subprocess.run([sys.executable, "-c", SDK_EXPORT], env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    trace_id = done.stdout.strip()
    response = httpx.get(f"http://{guarded.api.split('://')[1]}/api/traces/{trace_id}",
                         headers={"authorization": f"Bearer {API}"}, timeout=10)
    assert response.status_code == 200, response.text
    assert [s["name"] for s in response.json()["spans"]] == ["GET /guarded"]


def test_health_stays_open_and_the_server_prints_no_token(guarded: RunningServer) -> None:
    assert httpx.get(f"{guarded.api}/healthz", timeout=10).status_code == 200
    assert httpx.get(f"{guarded.api}/api/traces", timeout=10).status_code == 401
    printed = guarded.stderr
    assert INGEST not in printed
    assert API not in printed
