"""Malformed OTLP input: a clear status and message, the server keeps serving, nothing lost.

The shared server runs with TRACEBATON_MAX_BODY_BYTES=1 MiB so that size limits are cheap
to reach.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import orjson
import pytest
from conftest import RunningServer
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from otlp_requests import new_trace_id, request, valid_request

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}
LIMIT = 1024 * 1024
EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@pytest.fixture(scope="module")
def sentinel(shared_server: RunningServer) -> str:
    """A trace stored before any bad input: it must still read back after each case."""
    trace_id = new_trace_id()
    response = httpx.post(f"{shared_server.otlp_http_url}/v1/traces", headers=PROTOBUF,
                          content=valid_request(trace_id, 5).SerializeToString())
    assert response.status_code == 200
    return trace_id.hex()


def _assert_still_serving(server: RunningServer, sentinel: str) -> None:
    assert httpx.get(f"{server.api}/healthz").status_code == 200
    spans = httpx.get(f"{server.api}/api/traces/{sentinel}").json()["spans"]
    assert len(spans) == 5, "an acknowledged span went missing"
    # And ingest still works.
    trace_id = new_trace_id()
    ok = httpx.post(f"{server.otlp_http_url}/v1/traces", headers=PROTOBUF,
                    content=valid_request(trace_id, 1).SerializeToString())
    assert ok.status_code == 200


def _truncated_protobuf() -> bytes:
    body = valid_request(new_trace_id(), 20).SerializeToString()
    cut = body[: len(body) // 2 + 3]
    with pytest.raises(Exception):  # noqa: B017,PT011 - precondition: it really does not parse
        ExportTraceServiceRequest.FromString(cut)
    return cut


def _json_with_base64_ids() -> bytes:
    return orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": "W47/95gDgQPSabYzgT/GDA==", "spanId": "AAAAAAAAAAE=", "name": "x", "kind": 2,
        "startTimeUnixNano": "1", "endTimeUnixNano": "2"}]}]}]})


HTTP_CASES = [
    # id, headers, body, expected status, fragment of the message
    ("garbage-bytes", PROTOBUF, b"\xff\xfe not protobuf \x00\x01", 400,
     "not an OTLP ExportTraceServiceRequest"),
    ("truncated-protobuf", PROTOBUF, _truncated_protobuf, 400, "not an OTLP ExportTraceServiceRequest"),
    ("wrong-content-type", {"Content-Type": "text/plain"}, b"hello", 415, "application/x-protobuf"),
    ("no-content-type", {}, b"hello", 415, "is not OTLP"),
    ("unknown-encoding", {**PROTOBUF, "Content-Encoding": "br"}, b"x", 415, "gzip"),
    ("gzip-bomb", {**PROTOBUF, "Content-Encoding": "gzip"}, lambda: gzip.compress(bytes(64 * LIMIT)),
     413, "after decompression"),
    ("oversized-body", PROTOBUF, lambda: os.urandom(LIMIT + 1), 413, "TRACEBATON_MAX_BODY_BYTES"),
    ("not-gzip", {**PROTOBUF, "Content-Encoding": "gzip"}, b"plain bytes", 400, "not valid gzip"),
    ("truncated-gzip", {**PROTOBUF, "Content-Encoding": "gzip"},
     lambda: gzip.compress(valid_request(new_trace_id()).SerializeToString())[:-12], 400, "truncated"),
    ("invalid-json", JSON, b'{"resourceSpans": [', 400, "not valid JSON"),
    ("json-base64-ids", JSON, _json_with_base64_ids, 400, "base64"),
    ("json-wrong-type", JSON, b'{"resourceSpans": {"oops": 1}}', 400, "resourceSpans"),
]


@pytest.mark.parametrize(("headers", "body", "status", "fragment"),
                         [case[1:] for case in HTTP_CASES], ids=[case[0] for case in HTTP_CASES])
def test_http_rejects_bad_input_clearly(shared_server: RunningServer, sentinel: str,
                                        headers: dict[str, str], body: object, status: int,
                                        fragment: str) -> None:
    content = body() if callable(body) else body
    response = httpx.post(f"{shared_server.otlp_http_url}/v1/traces", headers=headers, content=content)
    assert response.status_code == status, response.text
    if headers.get("Content-Type") == "application/x-protobuf":
        assert response.headers["content-type"] == "application/x-protobuf"
        message = status_pb2.Status.FromString(response.content).message
    else:
        message = response.json()["message"]
    assert fragment in message
    _assert_still_serving(shared_server, sentinel)


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_http_partial_success_keeps_the_valid_spans(shared_server: RunningServer, sentinel: str,
                                                    encoding: str) -> None:
    trace_id = new_trace_id()
    good = [(trace_id, os.urandom(8), b"") for _ in range(3)]
    bad = [(bytes(16), os.urandom(8), b""), (new_trace_id(), bytes(8), b""), (trace_id, b"\x01\x02", b"")]
    req = request(good[:1] + bad + good[1:])
    if encoding == "protobuf":
        response = httpx.post(f"{shared_server.otlp_http_url}/v1/traces", headers=PROTOBUF,
                              content=req.SerializeToString())
        assert response.status_code == 200
        partial = ExportTraceServiceResponse.FromString(response.content).partial_success
        rejected, message = partial.rejected_spans, partial.error_message
    else:
        from tracebaton.collector import encode_export_request_json

        response = httpx.post(f"{shared_server.otlp_http_url}/v1/traces", headers=JSON,
                              content=encode_export_request_json(req))
        assert response.status_code == 200
        partial_json = response.json()["partialSuccess"]
        rejected, message = int(partial_json["rejectedSpans"]), partial_json["errorMessage"]
    assert rejected == 3
    assert "trace_id is all zeros" in message
    assert "resourceSpans[0].scopeSpans[0].spans[1]" in message
    stored = httpx.get(f"{shared_server.api}/api/traces/{trace_id.hex()}").json()["spans"]
    assert {s["span_id"] for s in stored} == {g[1].hex() for g in good}
    _assert_still_serving(shared_server, sentinel)


@pytest.fixture
def export_call(shared_server: RunningServer):  # type: ignore[no-untyped-def]
    channel = grpc.insecure_channel(shared_server.grpc)
    yield channel.unary_unary(EXPORT)
    channel.close()


def test_grpc_garbage_is_invalid_argument(shared_server: RunningServer, sentinel: str,
                                          export_call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as caught:
        export_call(b"\xff\xfe not protobuf", timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not an OTLP ExportTraceServiceRequest" in caught.value.details()
    _assert_still_serving(shared_server, sentinel)


@pytest.mark.parametrize("compressed", [False, True], ids=["oversized", "gzip-bomb"])
def test_grpc_oversized_is_resource_exhausted(shared_server: RunningServer, sentinel: str,
                                              export_call, compressed: bool) -> None:  # type: ignore[no-untyped-def]
    req = valid_request(new_trace_id(), 1)
    req.resource_spans[0].scope_spans[0].spans[0].name = "x" * (8 * LIMIT if compressed else LIMIT)
    with pytest.raises(grpc.RpcError) as caught:
        export_call(req.SerializeToString(), timeout=20,
                    compression=grpc.Compression.Gzip if compressed else None)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    _assert_still_serving(shared_server, sentinel)


def test_grpc_partial_success(shared_server: RunningServer, sentinel: str,
                              export_call) -> None:  # type: ignore[no-untyped-def]
    trace_id = new_trace_id()
    good_id = os.urandom(8)
    req = request([(trace_id, good_id, b""), (trace_id, bytes(8), b""), (trace_id, os.urandom(8), b"\x01")])
    response = ExportTraceServiceResponse.FromString(export_call(req.SerializeToString(), timeout=10))
    assert response.partial_success.rejected_spans == 2
    assert "span_id is all zeros" in response.partial_success.error_message
    stored = httpx.get(f"{shared_server.api}/api/traces/{trace_id.hex()}").json()["spans"]
    assert [s["span_id"] for s in stored] == [good_id.hex()]
    _assert_still_serving(shared_server, sentinel)


def test_empty_request_is_a_success(shared_server: RunningServer, export_call) -> None:  # type: ignore[no-untyped-def]
    assert ExportTraceServiceResponse.FromString(export_call(b"", timeout=10)) == ExportTraceServiceResponse()
    response = httpx.post(f"{shared_server.otlp_http_url}/v1/traces", headers=JSON, content=b"{}")
    assert response.status_code == 200
    assert response.json() == {}


def test_a_resent_request_reads_back_once(shared_server: RunningServer, export_call) -> None:  # type: ignore[no-untyped-def]
    """OTLP clients retry; a span sent twice over each receiver is stored but read once."""
    trace_id = new_trace_id()
    body = valid_request(trace_id, 4).SerializeToString()
    for _ in range(2):
        assert httpx.post(f"{shared_server.otlp_http_url}/v1/traces", headers=PROTOBUF,
                          content=body).status_code == 200
        export_call(body, timeout=10)
    spans = httpx.get(f"{shared_server.api}/api/traces/{trace_id.hex()}").json()["spans"]
    assert len(spans) == 4
    assert len({s["span_id"] for s in spans}) == 4


def test_saturated_ingest_asks_to_retry_later(make_store) -> None:  # type: ignore[no-untyped-def]
    """Past the pending-span bound, both receivers refuse with a retry delay; what was
    admitted before is committed and readable once the writer runs."""
    import socket
    import threading

    import uvicorn

    from tracebaton.collector import GrpcReceiver, otlp_http_app

    store = make_store(start=False, max_pending_spans=10)
    first = new_trace_id()
    # The store is not started yet: what it admitted waits for it.
    admitted = store.ingest(valid_request(first, 10).SerializeToString())
    receiver = GrpcReceiver(store, host="127.0.0.1", port=0, max_body_bytes=LIMIT)
    port = receiver.start()
    # A listening socket queues the request until uvicorn accepts it: no start-up wait.
    sock = socket.create_server(("127.0.0.1", 0))
    http = uvicorn.Server(uvicorn.Config(otlp_http_app(store, max_body_bytes=LIMIT), log_level="warning",
                                         lifespan="off"))
    serving = threading.Thread(target=http.run, kwargs={"sockets": [sock]}, daemon=True)
    serving.start()
    try:
        response = httpx.post(f"http://127.0.0.1:{sock.getsockname()[1]}/v1/traces", headers=PROTOBUF,
                              content=valid_request(new_trace_id(), 1).SerializeToString(), timeout=10)
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        status = status_pb2.Status.FromString(response.content)
        assert status.code == code_pb2.UNAVAILABLE
        assert "ingest is saturated" in status.message
        retry = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(retry)
        assert retry.retry_delay.seconds == 1

        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, pytest.raises(grpc.RpcError) as caught:
            channel.unary_unary(EXPORT)(valid_request(new_trace_id(), 1).SerializeToString(), timeout=10)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        details = dict(caught.value.trailing_metadata())["grpc-status-details-bin"]
        grpc_status = status_pb2.Status.FromString(details)
        assert grpc_status.details[0].Unpack(retry)
        assert retry.retry_delay.seconds == 1
        # Where the OpenTelemetry Python SDK's exporter looks for the delay.
        trailer = dict(caught.value.trailing_metadata())["google.rpc.retryinfo-bin"]
        assert error_details_pb2.RetryInfo.FromString(trailer).retry_delay.seconds == 1
    finally:
        receiver.shutdown()
        http.should_exit = True
        serving.join(10)
        sock.close()
    store.start()
    assert admitted.result(30).accepted_spans == 10
    assert len(store.trace(first.hex())) == 10


WRONG_PATHS = [
    # id, method, path, headers, status, fragment of the message
    ("metrics-exporter", "POST", "/v1/metrics", PROTOBUF, 404, "set OTEL_METRICS_EXPORTER=none"),
    ("logs-exporter", "POST", "/v1/logs", JSON, 404, "set OTEL_LOGS_EXPORTER=none"),
    ("get-traces", "GET", "/v1/traces", {}, 405, "OTLP export requests are POSTed here"),
    ("api-at-otlp-port", "POST", "/api/check", JSON, 404, "the REST API and the dashboard are on the API"),
]


@pytest.mark.parametrize(("method", "path", "headers", "status", "fragment"),
                         [case[1:] for case in WRONG_PATHS], ids=[case[0] for case in WRONG_PATHS])
def test_the_otlp_http_port_says_what_it_takes_to_a_wrong_path(
        shared_server: RunningServer, sentinel: str, method: str, path: str,
        headers: dict[str, str], status: int, fragment: str) -> None:
    response = httpx.request(method, f"{shared_server.otlp_http_url}{path}", headers=headers,
                             content=b"" if method == "GET" else b"\x0a\x00")
    assert response.status_code == status, response.text
    if headers.get("Content-Type") == "application/x-protobuf":  # an OTLP exporter reads a Status
        message = status_pb2.Status.FromString(response.content).message
    else:
        message = response.json()["message"]
    assert fragment in message
    _assert_still_serving(shared_server, sentinel)


def test_the_cli_pointed_at_the_otlp_port_is_told_where_the_api_is(
        shared_server: RunningServer, tmp_path: Path) -> None:
    spec = tmp_path / "flow.yaml"
    spec.write_text("name: x\nexpect:\n  hops: ['a -> b']\n")
    for server, says in [(shared_server.otlp_http_url, "the REST API and the dashboard are on the API port"),
                         (f"{shared_server.api}/api", "the path has /api twice")]:
        done = subprocess.run([sys.executable, "-m", "tracebaton", "check", "--server", server,
                               "--trace-id", new_trace_id().hex(), str(spec)],
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 2, done.stderr
        assert says in done.stderr, done.stderr
