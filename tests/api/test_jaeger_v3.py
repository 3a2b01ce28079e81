"""Jaeger's OTLP-based query API under /jaeger/api/v3 against a real `tracebaton serve`: spans go
in through the real OTLP/HTTP receiver and come out as Jaeger's query service writes them.

Shapes re-typed here as test data (facts, not code), from jaegertracing/jaeger
`cmd/jaeger/internal/extension/jaegerquery/internal/apiv3/snapshots/*.json` (its HTTP gateway's
golden answers) and the parameters of `apiv3/query_parser.go`; what Jaeger UI sends and checks
is from jaegertracing/jaeger-ui `packages/jaeger-ui/src/api/v3/client.ts` and `schemas.ts`.
"""

from __future__ import annotations

import datetime
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import RunningServer, start_server
from scripted_traces import new_id
from test_jaeger import otlp_span, resource_spans, send

MS = 1_000_000
V3 = "/jaeger/api/v3"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("jaeger-v3") / "store.duckdb")
    yield running
    assert running.stop() == 0, running.stderr
    assert "Traceback" not in running.stderr, running.stderr


def v3(server: RunningServer, path: str, **params: Any) -> Any:
    response = httpx.get(f"{server.api}{V3}/{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def v3_error(response: httpx.Response, status: int) -> str:
    """grpc-gateway's error, as Jaeger's HTTP gateway writes it; returns the message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"httpCode", "message"}
    assert body["error"]["httpCode"] == status
    assert "Traceback" not in body["error"]["message"]
    return str(body["error"]["message"])


def iso(ns: int) -> str:
    """As Jaeger UI writes a time: `new Date(us / 1000).toISOString()`, milliseconds and Z."""
    moment = datetime.datetime.fromtimestamp(ns / 1e9, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").removesuffix("+00:00") + "Z"


# snapshots/FindTraceSummaries.json: one trace of frontend, two spans, one an error
FIND_TRACE_SUMMARIES = {
    "summaries": [{
        "errorSpanCount": 1, "maxEndTimeUnixNano": "1001000000000", "minStartTimeUnixNano": "1000000000000",
        "rootOperationName": "HTTP GET /", "rootServiceName": "frontend",
        "services": [{"errorSpanCount": 1, "name": "frontend", "spanCount": 2}],
        "spanCount": 2, "traceId": "00000000000000000000000000000001",
    }]
}
# snapshots/GetTrace.json's span, and GetOperations.json
GET_TRACE_SPAN = {"kind": 2, "name": "foobar", "spanId": "0000000000000002", "status": {"code": 2},
                  "traceId": "00000000000000000000000000000001"}
GET_OPERATIONS = {"operations": [{"name": "get_users", "spanKind": "server"}]}


@pytest.fixture(scope="module")
def snapshot_trace(server: RunningServer) -> str:
    """The snapshots' trace: frontend's root `HTTP GET /` from 1000 s to 1001 s after the epoch,
    and its child `foobar`, SERVER, an error."""
    trace_id = "00000000000000000000000000000001"
    send(server, resource_spans({"service.name": "frontend"}, [
        otlp_span(trace_id, "0000000000000001", "HTTP GET /", 1000 * 10**9, 1001 * 10**9, kind=2),
        otlp_span(trace_id, "0000000000000002", "foobar", 1000 * 10**9 + MS, 1000 * 10**9 + 2 * MS, kind=2,
                  parent="0000000000000001", status=(2, "")),
    ]))
    return trace_id


WINDOW_1970 = {"query.startTimeMin": "1970-01-01T00:00:00Z", "query.startTimeMax": "1970-01-01T01:00:00Z"}


def test_trace_summaries_are_jaegers_snapshot(server: RunningServer, snapshot_trace: str) -> None:
    window = WINDOW_1970
    frontend = v3(server, "trace-summaries", **{"query.serviceName": "frontend", **window})
    assert frontend == FIND_TRACE_SUMMARIES
    # the snake_case aliases Jaeger still reads
    assert v3(server, "trace-summaries", **{"query.service_name": "frontend", "query.start_time_min":
              "1970-01-01T00:00:00Z", "query.start_time_max": "1970-01-01T01:00:00Z"}) == FIND_TRACE_SUMMARIES
    assert v3(server, "trace-summaries", **{"query.serviceName": "nobody"}, **window) == {"summaries": []}


def test_a_trace_is_otlp_json_under_result_as_in_jaegers_snapshot(server: RunningServer,
                                                                  snapshot_trace: str) -> None:
    for trace_id in (snapshot_trace, "0000000000000001", "AAAAAAAAAAAAAAAAAAAAAQ=="):  # 64-bit and base64
        result = v3(server, f"traces/{trace_id}")["result"]
        (resource,) = result["resourceSpans"]
        assert resource["resource"]["attributes"] == [{"key": "service.name",
                                                        "value": {"stringValue": "frontend"}}]
        spans = {s["spanId"]: s for scope in resource["scopeSpans"] for s in scope["spans"]}
        foobar = spans["0000000000000002"]
        assert {k: foobar[k] for k in GET_TRACE_SPAN} == GET_TRACE_SPAN
        assert foobar["parentSpanId"] == "0000000000000001"
        assert foobar["startTimeUnixNano"] == str(1000 * 10**9 + MS)
    found = v3(server, "traces", **{"query.serviceName": "frontend", **WINDOW_1970})
    spans = [s for r in found["result"]["resourceSpans"] for sc in r["scopeSpans"] for s in sc["spans"]]
    assert sorted(s["name"] for s in spans) == ["HTTP GET /", "foobar"]


def test_services_and_operations_are_jaegers_snapshots(server: RunningServer) -> None:
    service = f"users-{new_id(3)}"
    trace_id, t0 = new_id(16), time.time_ns() - 20 * MS
    t1 = t0 + MS
    send(server, resource_spans({"service.name": service}, [
        otlp_span(trace_id, new_id(8), "get_users", t0, t1, kind=2),
    ]))
    services = v3(server, "services")
    assert set(services) == {"services"}
    assert service in services["services"]
    assert v3(server, "operations", service=service) == GET_OPERATIONS
    assert v3(server, "operations", service=service, spanKind="server") == GET_OPERATIONS
    assert v3(server, "operations", service=service, span_kind="client") == {"operations": []}
    other = f"legacy-{new_id(3)}"
    send(server, resource_spans({"service.name": other}, [otlp_span(trace_id, new_id(8), "old", t0, t1)]))
    assert v3(server, "operations", service=other) == {"operations": [{"name": "old",
                                                                        "spanKind": "internal"}]}


def test_a_search_as_jaeger_ui_sends_it_finds_what_v1_finds(server: RunningServer) -> None:
    shop, db = f"shop-{new_id(3)}", f"db-{new_id(3)}"
    now = time.time_ns()
    slow, fast, orphaned = new_id(16), new_id(16), new_id(16)
    root = new_id(8)
    send(server,
         resource_spans({"service.name": shop}, [
             otlp_span(slow, root, "GET /a", now - 500 * MS, now - 300 * MS, kind=2, status=(2, "boom"),
                       attributes={"http.status_code": 500}),
             otlp_span(fast, new_id(8), "GET /a", now - 250 * MS, now - 240 * MS, kind=2,
                       attributes={"http.status_code": 200}),
             otlp_span(orphaned, new_id(8), "GET /b", now - 200 * MS, now - 190 * MS, kind=2,
                       parent=new_id(8))]),
         resource_spans({"service.name": db}, [
             otlp_span(slow, new_id(8), "SELECT", now - 490 * MS, now - 480 * MS, kind=3, parent=root)]))
    # client.ts: serviceName, operationName, start and end from the URL's µs as ISO, limit as
    # searchDepth, the form's durations and its tags (JSON) as attributes
    start_us, end_us = (now - 3600 * 10**9) // 1000, (now + 10**9) // 1000
    ui = {"query.serviceName": shop, "query.startTimeMin": iso(start_us * 1000),
          "query.startTimeMax": iso(end_us * 1000), "query.searchDepth": "20"}

    def summaries(**more: str) -> dict[str, dict[str, Any]]:
        body = v3(server, "trace-summaries", **{**ui, **more})
        for summary in body["summaries"]:  # schemas.ts: what the UI's zod schema holds each to
            assert re.fullmatch(r"[0-9a-f]{32}", summary["traceId"])
            assert re.fullmatch(r"\d+", summary["minStartTimeUnixNano"])
            assert re.fullmatch(r"\d+", summary["maxEndTimeUnixNano"])
            assert all(isinstance(s["name"], str) for s in summary["services"])
        return {s["traceId"]: s for s in body["summaries"]}

    def v1(**params: str) -> set[str]:
        window = {"service": shop, "start": str(start_us), "end": str(end_us)}
        body = httpx.get(f"{server.api}/jaeger/api/traces", params={**window, **params}, timeout=30).json()
        return {trace["traceID"] for trace in body["data"]}

    everything = summaries()
    assert set(everything) == {slow, fast, orphaned} == v1()
    assert everything[slow] == {
        "traceId": slow, "rootServiceName": shop, "rootOperationName": "GET /a",
        "minStartTimeUnixNano": str(now - 500 * MS), "maxEndTimeUnixNano": str(now - 300 * MS),
        "spanCount": 2, "errorSpanCount": 1,
        "services": [{"name": db, "spanCount": 1}, {"name": shop, "spanCount": 1, "errorSpanCount": 1}],
    }
    assert everything[orphaned]["orphanSpanCount"] == 1
    assert "rootServiceName" not in everything[orphaned], "no span without a parent: proto3 leaves it out"
    assert set(summaries(**{"query.durationMin": "100ms"})) == {slow} == v1(minDuration="100ms")
    assert set(summaries(**{"query.durationMax": "50ms"})) == {fast, orphaned} == v1(maxDuration="50ms")
    assert set(summaries(**{"query.operationName": "GET /b"})) == {orphaned} == v1(operation="GET /b")
    tags = json.dumps({"http.status_code": "500"})
    assert set(summaries(**{"query.attributes": tags})) == {slow} == v1(tags=tags)
    assert len(summaries(**{"query.searchDepth": "1"})) == 1
    assert set(summaries(**{"query.startTimeMin": iso(now - 260 * MS)})) == {fast, orphaned}
    # no service: every service (the UI offers it when the capability says so)
    unscoped = v3(server, "trace-summaries", **{"query.startTimeMin": iso(now - 600 * MS)})
    assert {slow, fast, orphaned} <= {s["traceId"] for s in unscoped["summaries"]}
    # min after max is no search at all: nothing found, as min > max durations in v1
    assert summaries(**{"query.startTimeMin": iso(now), "query.startTimeMax": iso(now - 10**9)}) == {}


# bad input -----------------------------------------------------------------------------------

BAD_INPUT = [
    ("trace-summaries", {"query.startTimeMin": "yesterday"},
     "malformed parameter query.startTimeMin: 'yesterday' is not an RFC 3339 time"),
    ("trace-summaries", {"query.start_time_max": "2026-02-30T00:00:00Z"},
     "malformed parameter query.start_time_max: '2026-02-30T00:00:00Z' is not a date and time of day"),
    ("trace-summaries", {"query.durationMin": "fast"}, "query parameter query.durationMin: 'fast' is not a "
                                                        "duration"),
    ("trace-summaries", {"query.duration_max": "15"}, "query parameter query.duration_max: '15'"),
    ("trace-summaries", {"query.searchDepth": "lots"},
     "query parameter query.searchDepth: 'lots' is not a whole number from 1 to 1500"),
    ("trace-summaries", {"query.num_traces": "0"}, "query parameter query.num_traces: '0'"),
    ("trace-summaries", {"query.attributes": "{bad"}, "query parameter query.attributes is not JSON"),
    ("trace-summaries", {"query.attributes": '{"http.status_code": 500}'},
     "query parameter query.attributes: '{\"http.status_code\": 500}' is not a JSON object of strings"),
    ("traces", {"query.startTimeMax": "soon"}, "malformed parameter query.startTimeMax: 'soon'"),
    ("operations", {}, "query parameter service is required"),
    ("operations", {"service": "cart", "spanKind": "sideways"}, "query parameter spanKind: 'sideways'"),
    ("operations", {"service": "cart", "span_kind": "sideways"}, "query parameter span_kind: 'sideways'"),
    ("traces/not-a-trace-id", {},
     "malformed parameter trace_id: trace id 'not-a-trace-id' is not a trace id"),
    ("traces/4bf92f3577b34da6a3ce929d0e0e4736", {"startTime": "1700000000"},
     "malformed parameter startTime: '1700000000' is not an RFC 3339 time"),
    ("traces/4bf92f3577b34da6a3ce929d0e0e4736", {"end_time": "x"}, "malformed parameter end_time: 'x'"),
    ("traces/4bf92f3577b34da6a3ce929d0e0e4736", {"rawTraces": "maybe"},
     "query parameter rawTraces: 'maybe' is not true or false"),
]


@pytest.mark.parametrize(("path", "params", "words"), BAD_INPUT,
                         ids=[f"{p.split('/')[0]}-{'-'.join(q) or 'none'}" for p, q, _ in BAD_INPUT])
def test_bad_input_is_a_400_in_jaegers_v3_error_naming_the_parameter(
    server: RunningServer, path: str, params: dict[str, str], words: str
) -> None:
    assert words in v3_error(httpx.get(f"{server.api}{V3}/{path}", params=params), 400)


def test_not_found_is_a_404_and_the_server_keeps_serving(server: RunningServer) -> None:
    for path, params, _ in BAD_INPUT:
        httpx.get(f"{server.api}{V3}/{path}", params=params)
    missing = v3_error(httpx.get(f"{server.api}{V3}/traces/4bf92f3577b34da6a3ce929d0e0e4736"), 404)
    assert missing.startswith("trace not found: no span of trace 4bf92f3577b34da6a3ce929d0e0e4736 is stored")
    none = v3_error(httpx.get(f"{server.api}{V3}/traces", params={"query.serviceName": "nobody"}), 404)
    assert none.startswith("No traces found")
    unknown = httpx.get(f"{server.api}{V3}/archive").json()["errors"][0]["msg"]
    assert "/jaeger/api/v3/trace-summaries" in unknown
    assert set(v3(server, "services")) == {"services"}


def test_with_a_token_v3_takes_the_bearer_token_or_the_dashboards_cookie(tmp_path: Any) -> None:
    running = start_server(tmp_path / "guarded.duckdb", "--token", "s3cret")
    try:
        url = f"{running.api}{V3}/services"
        refused = httpx.get(url)
        message = v3_error(refused, 401)
        assert message.startswith("this server requires a token: open /login?token=<token> once")
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert httpx.get(url, headers={"authorization": "Bearer s3cret"}).json() == {"services": []}
        login = httpx.get(f"{running.api}/login", params={"token": "s3cret"})
        with httpx.Client(base_url=running.api, cookies=login.cookies) as browser:  # Jaeger UI's way
            assert browser.get(f"{V3}/trace-summaries").json() == {"summaries": []}
    finally:
        assert running.stop() == 0


def test_openapi_documents_the_v3_routes(server: RunningServer) -> None:
    paths = httpx.get(f"{server.api}/openapi.json").json()["paths"]
    for path in ("services", "operations", "trace-summaries", "traces", "traces/{trace_id}"):
        assert set(paths[f"{V3}/{path}"]) == {"get"}, path
        assert "400" in paths[f"{V3}/{path}"]["get"]["responses"], path
    schemas = httpx.get(f"{server.api}/openapi.json").json()["components"]["schemas"]
    summary = schemas["V3TraceSummary"]
    assert summary["required"] == ["traceId"], "proto3 leaves out the rest at its default"
    assert schemas["V3ServiceSummary"]["required"] == ["name"], "Jaeger UI's schema requires a name"
    error = paths[f"{V3}/traces/{{trace_id}}"]["get"]["responses"]["404"]["content"]["application/json"]
    assert error["schema"] == {"$ref": "#/components/schemas/V3Error"}
    search = {p["name"] for p in paths[f"{V3}/trace-summaries"]["get"]["parameters"]}
    assert {"query.serviceName", "query.operationName", "query.attributes", "query.startTimeMin",
            "query.startTimeMax", "query.durationMin", "query.durationMax", "query.searchDepth"} == search
