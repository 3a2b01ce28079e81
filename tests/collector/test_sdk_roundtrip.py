"""The real OpenTelemetry SDK, in its own process, exports to a real `tracebaton serve`."""

from __future__ import annotations

import json

import httpx
import pytest
from conftest import RunningServer, run_sdk_exporter


def _stored(server: RunningServer, trace_id: str) -> dict[str, dict]:  # type: ignore[type-arg]
    response = httpx.get(f"{server.api}/api/traces/{trace_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["trace_id"] == trace_id
    return {span["span_id"]: span for span in body["spans"]}


@pytest.mark.parametrize(("protocol", "gzip"), [
    ("grpc", False), ("grpc", True), ("http", False), ("http", True),
], ids=["grpc", "grpc-gzip", "http-protobuf", "http-protobuf-gzip"])
def test_sdk_spans_read_back_as_sent(shared_server: RunningServer, protocol: str, gzip: bool) -> None:
    endpoint = f"http://{shared_server.grpc}" if protocol == "grpc" else shared_server.otlp_http_url
    sent = json.loads(run_sdk_exporter("--protocol", protocol, "--endpoint", endpoint,
                                       *(["--gzip"] if gzip else [])))
    by_name = {s["name"]: s for s in sent}
    main_trace = by_name["GET /orders/{id}"]["trace_id"]
    stored = _stored(shared_server, main_trace)

    # Every span of the trace, with ids, parents, kinds and times exactly as sent.
    expected = {s["span_id"]: s for s in sent if s["trace_id"] == main_trace}
    assert set(stored) == set(expected)
    for span_id, want in expected.items():
        got = stored[span_id]
        for key in ("trace_id", "parent_span_id", "name", "kind", "start_unix_nano", "end_unix_nano"):
            assert got[key] == want[key], (key, got, want)

    root = stored[by_name["GET /orders/{id}"]["span_id"]]
    assert root["parent_span_id"] is None
    assert root["service"] == "sdk-checker"
    assert root["status"] == {"code": "ok", "message": ""}
    # Attribute types survive: an int stays an int, a list stays a list.
    assert root["attributes"] == {
        "http.request.method": "GET", "http.response.status_code": 200, "big.int": str(2**62),
        "ratio": 0.25, "cached": False, "tags": ["a", "b"], "codes": [1, 2, 3],
    }
    assert root["resource"]["service.name"] == "sdk-checker"
    assert root["resource"]["service.version"] == "2.0.1"
    assert root["resource"]["telemetry.sdk.language"] == "python"
    assert root["scope"] == {"name": "tests.sdk_exporter", "version": "1.2.3"}

    client = stored[by_name["POST /pay"]["span_id"]]
    assert client["parent_span_id"] == root["span_id"]
    assert client["status"] == {"code": "error", "message": "payment declined"}
    assert client["events"] == [
        {"name": "retry", "time_unix_nano": str(1_763_700_000_000_025_000), "attributes": {"attempt": 2}}]
    producer = by_name["orders publish"]
    assert client["links"] == [{
        "trace_id": producer["trace_id"], "span_id": producer["span_id"], "trace_state": "",
        "flags": client["links"][0]["flags"], "attributes": {"link.reason": "outbox"}}]
    assert client["flags"] & 0x100, "HAS_IS_REMOTE should be set by the SDK"
    assert not client["flags"] & 0x200, "a local parent is not remote"

    remote = _stored(shared_server, "0af7651916cd43dd8448eb211c80319c")[by_name["GET /remote"]["span_id"]]
    assert remote["parent_span_id"] == "00f067aa0ba902b7"
    assert remote["flags"] & 0x300 == 0x300, "a parent from the wire is flagged remote"


def test_unknown_trace_is_404_with_a_hint(shared_server: RunningServer) -> None:
    response = httpx.get(f"{shared_server.api}/api/traces/{'ab' * 16}")
    assert response.status_code == 404
    assert "export to this tracebaton" in response.json()["detail"]


def test_healthz_answers(shared_server: RunningServer) -> None:
    response = httpx.get(f"{shared_server.api}/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_an_otlp_json_body_reads_back(shared_server: RunningServer) -> None:
    """OTLP/JSON as the specification's example writes it: upper-case hex ids, numeric times."""
    from otlp_json_helpers import OTLP_JSON_EXAMPLE

    response = httpx.post(f"{shared_server.otlp_http_url}/v1/traces", content=OTLP_JSON_EXAMPLE,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json() == {}
    sent = json.loads(OTLP_JSON_EXAMPLE)["resourceSpans"][0]["scopeSpans"][0]
    want = sent["spans"][0]
    (span,) = _stored(shared_server, want["traceId"].lower()).values()
    assert span["span_id"] == want["spanId"].lower()
    assert span["parent_span_id"] == want["parentSpanId"].lower()
    assert span["name"] == want["name"]
    assert span["kind"] == "server"
    assert span["start_unix_nano"] == str(want["startTimeUnixNano"])
    assert span["end_unix_nano"] == str(want["endTimeUnixNano"])
    assert span["attributes"] == {a["key"]: a["value"]["stringValue"] for a in want["attributes"]}
    assert span["scope"] == {"name": sent["scope"]["name"], "version": sent["scope"]["version"]}
    assert span["service"] == "checkout"
