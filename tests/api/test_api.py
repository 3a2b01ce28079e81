"""The REST API (DESIGN §7) against a real `tracebaton serve` and store: every route, and bad
input on every route answered 4xx with a message that says what to change — never a 500."""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from conftest import RunningServer, start_server
from scripted_traces import (
    CHECKOUT_SPEC,
    XSS_NAME,
    ScriptedSpan,
    check,
    import_spans,
    new_id,
    scripted_checkout,
)

from tracebaton.assertions import (
    FlowResult,
    WaitedReason,
    build_trace,
    critical_path,
    hand_off_parents,
    span_from_json,
)

ROUTES = {
    "/healthz": {"get"},
    "/api/traces": {"get"},
    "/api/traces/{trace_id}": {"get"},
    "/api/traces/{trace_id}/otlp": {"get"},
    "/api/traces/{trace_id}/spec": {"get"},
    "/api/check": {"post"},
    "/api/runs": {"get"},
    "/api/runs/{run_id}": {"get"},
    "/api/import": {"post"},
    "/api/flows/{key}": {"get"},
    "/api/events": {"get"},
}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    running = start_server(
        tmp_path_factory.mktemp("api") / "store.duckdb", env={"TRACEBATON_MAX_BODY_BYTES": str(256 * 1024)}
    )
    yield running.api
    assert running.stop() == 0, running.stderr
    assert "Traceback" not in running.stderr, running.stderr


def _detail(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/json"), response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert "Traceback" not in detail
    return detail


def test_openapi_documents_every_route_with_typed_responses(api: str) -> None:
    document = httpx.get(f"{api}/openapi.json").json()
    for path, methods in ROUTES.items():
        assert path in document["paths"], path
        assert methods <= set(document["paths"][path]), path
    schemas = document["components"]["schemas"]
    for model in (
        "TraceList",
        "TraceModel",
        "Span",
        "FlowResultModel",
        "CheckRequest",
        "CheckResponse",
        "RunList",
        "RunDetail",
        "ImportResponse",
        "FlowView",
        "Problem",
    ):
        assert model in schemas, model
    reason = schemas["FlowResultModel"]["properties"]["waited_reason"]
    assert reason["enum"] == ["satisfied", "settled", "violated", "quiet", "timeout"]
    assert sorted(reason["enum"]) == sorted(r.value for r in WaitedReason), "every reason the engine gives"
    for word in reason["enum"]:
        assert f"`{word}`" in reason["description"], word
    four_twenty_two = document["paths"]["/api/runs"]["get"]["responses"]["422"]
    assert four_twenty_two["content"]["application/json"]["schema"]["$ref"].endswith("/Problem")


def test_import_then_read_the_trace_back_with_types_kept(api: str) -> None:
    trace = scripted_checkout()
    answer = import_spans(api, trace)
    assert answer == {"requests": 4, "accepted_spans": 7, "rejected_spans": 0, "message": ""}
    body = httpx.get(f"{api}/api/traces/{trace.trace_id.upper()}").json()
    assert body["trace_id"] == trace.trace_id
    spans = {s["span_id"]: s for s in body["spans"]}
    assert len(spans) == 7
    cart = spans[trace.span("cart", "POST /cart/checkout").span_id]
    assert cart["attributes"]["cart.items"] == 3, "an int attribute stays an int"
    assert cart["attributes"]["http.request.header.x_request_id"] == ["req-1"]
    assert cart["kind"] == "server"
    assert cart["parent_span_id"] == trace.span("frontend", "POST /cart/checkout").span_id
    root = spans[trace.spans[0].span_id]
    assert root["parent_span_id"] is None
    assert int(root["end_unix_nano"]) - int(root["start_unix_nano"]) == 120_000_000
    assert isinstance(root["start_unix_nano"], str), "nanoseconds exceed 2^53: decimal strings"
    reserve = spans[trace.span("cart", "POST /reserve").span_id]
    assert reserve["status"] == {"code": "error", "message": "503 Service Unavailable"}
    inventory = spans[trace.span("inventory", "POST /reserve").span_id]
    assert inventory["events"][0]["name"] == "stock.checked"
    assert inventory["events"][0]["attributes"] == {"sku": "A-1", "available": 0}


def test_import_is_all_or_nothing_and_names_the_bad_line(api: str) -> None:
    trace = scripted_checkout()
    lines = trace.jsonl().splitlines()
    lines.insert(2, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 5}]}]}]}')
    response = httpx.post(f"{api}/api/import", content=b"\n".join(lines))
    assert response.status_code == 400
    detail = _detail(response)
    assert detail.startswith("line 3: ")
    assert "traceId" in detail
    assert "nothing of this body was stored" in detail
    assert httpx.get(f"{api}/api/traces/{trace.trace_id}").status_code == 404, "nothing was half-stored"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 400, "the body is empty"),
        (b"   \n\n", 400, "the body is empty"),
        (b"not json at all", 400, "it is not JSON ("),
        (b"\x0a\x05\x12\x03abc", 400, "a protobuf or compressed export is not taken here"),
        (b"[1, 2]\n", 400, "line 1: the request body is a list"),
        (b'{\n  "resourceSpans": 5\n}', 400, "read as one JSON document"),
        (b'{"resourceSpans": []}\n{"resourceSpans": [}\n', 400, "line 2:"),
        (b"x" * (300 * 1024), 413,
         "larger than this route takes (262144 bytes); split the import into several files, or raise "
         "the server's TRACEBATON_MAX_BODY_BYTES"),
        (b'{"data": [{"traceID": "ab", "spans": []}]}', 400,
         "no trace in it: it has no resourceSpans, only 'data'"),
        (b'{"resourceMetrics": []}\n{"resourceLogs": []}\n', 400,
         "only 'resourceMetrics', 'resourceLogs'"),
    ],
    ids=[
        "empty",
        "blank-lines",
        "not-json",
        "protobuf",
        "not-an-object",
        "pretty-printed-bad",
        "second-line-bad",
        "too-large",
        "jaeger-ui-download",
        "metrics-and-logs",
    ],
)
def test_import_bad_bodies_get_400_or_413_saying_what_to_change(
    api: str, body: bytes, status: int, words: str
) -> None:
    response = httpx.post(f"{api}/api/import", content=body)
    assert response.status_code == status, response.text
    assert words in _detail(response)


def test_import_takes_a_pretty_printed_document_and_resent_spans_read_back_once(api: str) -> None:
    trace = scripted_checkout()
    pretty = json.dumps(trace.request(), indent=2).encode()
    assert httpx.post(f"{api}/api/import", content=pretty).json()["accepted_spans"] == 7
    assert httpx.post(f"{api}/api/import", content=pretty).json()["accepted_spans"] == 7
    assert len(httpx.get(f"{api}/api/traces/{trace.trace_id}").json()["spans"]) == 7
    compressed = httpx.post(f"{api}/api/import", content=pretty, headers={"content-encoding": "br"})
    assert compressed.status_code == 415
    assert "uncompressed" in _detail(compressed)


def test_the_otlp_export_imports_back_into_the_same_trace(api: str, tmp_path: Path) -> None:
    trace = scripted_checkout()
    import_spans(api, trace)
    exported = httpx.get(f"{api}/api/traces/{trace.trace_id}/otlp")
    assert exported.status_code == 200
    assert exported.headers["content-type"] == "application/json"
    assert "resourceSpans" in exported.json()
    other = start_server(tmp_path / "other.duckdb")
    try:
        assert httpx.post(f"{other.api}/api/import", content=exported.content).json()["accepted_spans"] == 7
        original = httpx.get(f"{api}/api/traces/{trace.trace_id}").json()["spans"]
        copied = httpx.get(f"{other.api}/api/traces/{trace.trace_id}").json()["spans"]
        strip = ("arrival_unix_nano",)
        assert [{k: v for k, v in s.items() if k not in strip} for s in copied] == [
            {k: v for k, v in s.items() if k not in strip} for s in original
        ]
    finally:
        assert other.stop() == 0


@pytest.mark.parametrize(
    "route", ["/api/traces/{}", "/api/traces/{}/otlp", "/api/traces/{}/spec", "/api/flows/{}"]
)
def test_trace_routes_answer_400_for_a_bad_id_and_404_for_an_unknown_one(api: str, route: str) -> None:
    bad = httpx.get(api + route.format("not-a-trace-id"))
    assert bad.status_code == 422
    assert "'not-a-trace-id' is not 32 hex digits" in _detail(bad) or "neither a run id" in _detail(bad)
    unknown = httpx.get(api + route.format(new_id(16)))
    assert unknown.status_code == 404
    assert "check that the services export to this tracebaton" in _detail(unknown)


def test_trace_search_filters_by_service_name_status_attribute_and_time(api: str) -> None:
    marker = new_id(4)
    failing = scripted_checkout(span_name=f"POST /reserve-{marker}")
    healthy = scripted_checkout(inventory_fails=False, span_name=f"POST /reserve-{marker}")
    import_spans(api, failing)
    import_spans(api, healthy)

    def found(**params: Any) -> set[str]:
        response = httpx.get(f"{api}/api/traces", params={"limit": 1000, **params})
        assert response.status_code == 200, response.text
        return {t["trace_id"] for t in response.json()["traces"]}

    both = {failing.trace_id, healthy.trace_id}
    assert found(name=f"POST /reserve-{marker}") == both
    assert found(name=f"POST /reserve-{marker[:4]}*") == both
    assert found(name=f"POST /reserve-{marker}", status="error") == {failing.trace_id}
    assert both <= found(service="inventory", since="1h")
    assert both <= found(service="inventory", since="1d"), "a look-back in days, as retention is written"
    assert found(**{"attr.http.response.status_code": "503", "name": f"*{marker}"}) == {failing.trace_id}
    summary = next(
        t
        for t in httpx.get(f"{api}/api/traces", params={"name": f"*{marker}"}).json()["traces"]
        if t["trace_id"] == failing.trace_id
    )
    assert summary["root_service"] == "frontend"
    assert summary["root_name"] == "POST /checkout"
    assert summary["span_count"] == 7
    assert summary["error_count"] == 1
    assert summary["services"] == ["auth", "cart", "frontend", "inventory"]
    assert summary["duration_ns"] == "120000000"


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("status=broken", 422, "query parameter status: 'broken' is not one of 'ok', 'error' or 'unset'"),
        ("since=5%20minutes", 422, "query parameter since: '5 minutes' is not a duration"),
        ("limit=0", 422, "query parameter limit"),
        ("limit=100000", 422, "query parameter limit"),
        ("limit=many", 422, "query parameter limit"),
        ("since_unix_nano=-1", 422, "query parameter since_unix_nano"),
        ("attr.=x", 400, "names no attribute"),
        # a misspelt filter would otherwise be ignored, and the answer hold every trace
        ("servce=cart", 422, "query parameter 'servce' is not one GET /api/traces takes; it takes limit, "
                             "name, service, since, since_unix_nano, status, attr.<key>"),
    ],
    ids=["status", "since", "limit-zero", "limit-huge", "limit-text", "since-negative", "attr-empty",
         "unknown"],
)
def test_trace_search_bad_parameters(api: str, query: str, status: int, words: str) -> None:
    response = httpx.get(f"{api}/api/traces?{query}")
    assert response.status_code == status, response.text
    assert words in _detail(response)


def test_check_records_the_run_and_runs_list_failed_first_with_filters(api: str) -> None:
    session = "s-" + new_id(4)
    healthy = scripted_checkout(inventory_fails=False)
    failing = scripted_checkout()
    import_spans(api, healthy)
    import_spans(api, failing)
    good_spec = {"name": "checkout-ok", "expect": {"hops": ["frontend -> auth", "cart -> inventory"]}}
    passed = check(
        api, good_spec, healthy.trace_id, test_id="tests/test_shop.py::test_ok", session_id=session
    )
    failed = check(
        api, CHECKOUT_SPEC, failing.trace_id, test_id="tests/test_shop.py::test_bad", session_id=session
    )
    assert passed["passed"] is True
    assert failed["passed"] is False
    assert failed["trace_id"] == failing.trace_id
    assert failed["first_divergence"]
    assert {c["check"] for c in failed["checks"] if c["state"] == "fail"} >= {"errors"}
    # the errors check failed first: the hop not seen by then is not judged missing
    assert {h["hop"]: h["status"] for h in failed["hops"]}["cart -> payment"] == "pending"
    runs = httpx.get(f"{api}/api/runs", params={"session_id": session}).json()["runs"]
    assert [r["run_id"] for r in runs] == [failed["run_id"], passed["run_id"]], "failed first"
    assert runs[0]["test_id"] == "tests/test_shop.py::test_bad"
    assert runs[0]["first_divergence"] == failed["first_divergence"]

    def listed(**params: Any) -> list[str]:
        return [
            r["run_id"]
            for r in httpx.get(f"{api}/api/runs", params={"session_id": session, **params}).json()["runs"]
        ]

    assert listed(passed="true") == [passed["run_id"]]
    assert listed(passed="false") == [failed["run_id"]]
    assert listed(name="checkout-*") == [passed["run_id"]]
    assert listed(test_id="*::test_bad") == [failed["run_id"]]
    assert listed(trace_id=healthy.trace_id) == [passed["run_id"]]
    assert listed(since="1h") == [failed["run_id"], passed["run_id"]]
    assert listed(limit=1) == [failed["run_id"]]
    detail = httpx.get(f"{api}/api/runs/{failed['run_id']}").json()
    assert detail["run"]["session_id"] == session
    assert detail["result"]["checks"] == failed["checks"]
    assert "run_id" not in detail["result"]
    assert detail["spec"]["expect"]["budgets"] == {"hops": {"cart -> inventory": "50ms"}}
    not_recorded = httpx.post(
        f"{api}/api/check",
        json={"spec": good_spec, "trace_id": healthy.trace_id, "record": False, "session_id": session},
    ).json()
    assert not_recorded["run_id"] is None
    assert len(listed()) == 2


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"spec": 5}, 422, "body field spec: 5 is neither a JSON object nor a string"),
        ({"spec": {"name": "x", "expect": {"hopz": []}}, "trace_id": "a" * 32}, 400, "hopz"),
        (
            {"spec": {"name": "x", "wait": {"timeout": "2 parsecs"}}, "trace_id": "a" * 32},
            400,
            "wait.timeout",
        ),
        ({"spec": "name: [unclosed", "trace_id": "a" * 32}, 400, "spec: flow spec"),
        ({"spec": "/etc/passwd.yaml", "trace_id": "a" * 32}, 400, "not a mapping"),
        ({"spec": {"name": "x", "wait": {"timeout": "1h"}}, "trace_id": "a" * 32}, 400,
         "spec: wait.timeout 1 h is longer than a server-side check waits (10 m); shorten it"),
        ({"spec": {"name": "x"}, "trace_id": "xyz"}, 422, "body field trace_id: 'xyz' is not 32 hex digits"),
        ({"spec": {"name": "x"}}, 400, "give trace_id, or a `find:` section"),
        (
            {"spec": {"name": "x"}, "trace_id": "a" * 32, "colour": "red"},
            422,
            "body field colour is not a field",
        ),
        ({"trace_id": "a" * 32}, 422, "body field spec is required"),
        ({"spec": {"name": "x"}, "trace_id": "a" * 32, "test_id": "t" * 5000}, 422, "body field test_id"),
    ],
    ids=[
        "spec-number",
        "unknown-key",
        "bad-duration",
        "bad-yaml",
        "file-path-not-read",
        "timeout-too-long",
        "bad-trace-id",
        "no-find",
        "extra-field",
        "no-spec",
        "test-id-too-long",
    ],
)
def test_check_bad_input_is_refused_before_anything_waits(
    api: str, body: dict[str, Any], status: int, words: str
) -> None:
    started = time.monotonic()
    response = httpx.post(f"{api}/api/check", json=body)
    assert response.status_code == status, response.text
    assert words in _detail(response)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("content", "status", "words"),
    [
        (b"[1", 422, "the body is not valid JSON"),
        (b"[1, 2]", 422, "must be a JSON object"),
        (b'{"spec": "' + b"x" * (1100 * 1024) + b'"}', 413,
         "larger than this route takes (1048576 bytes); send a smaller request"),
    ],
    ids=["broken-json", "not-an-object", "too-large"],
)
def test_check_bad_bodies(api: str, content: bytes, status: int, words: str) -> None:
    response = httpx.post(f"{api}/api/check", content=content, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert words in _detail(response)


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/api/runs/banana", 422, "path parameter run_id: 'banana' is not a run id"),
        ("/api/runs/r00000000000000000000", 404, "no run r00000000000000000000 is recorded"),
        ("/api/flows/r00000000000000000000", 404, "no run r00000000000000000000 is recorded"),
        ("/api/runs?passed=maybe", 422, "query parameter passed"),
        ("/api/runs?limit=5000", 422, "query parameter limit"),
        ("/api/runs?since=yesterday", 422, "is not a duration"),
        ("/api/runs?trace_id=nope", 422, "is not 32 hex digits"),
        ("/api/flows/nope", 422, "is neither a run id"),
        ("/api/nothing-here", 404, "no such route"),
        ("/api/traces/" + "a" * 100, 422, "path parameter trace_id"),
        ("/api/runs?passd=false", 422, "query parameter 'passd' is not one GET /api/runs takes"),
    ],
    ids=[
        "run-id",
        "unknown-run",
        "unknown-flow-run",
        "passed",
        "limit",
        "since",
        "trace-id",
        "flow-key",
        "route",
        "long-id",
        "unknown-parameter",
    ],
)
def test_run_routes_bad_input(api: str, path: str, status: int, words: str) -> None:
    response = httpx.get(api + path)
    assert response.status_code == status, response.text
    assert words in _detail(response)


def test_a_wrong_method_gets_405_with_a_message(api: str) -> None:
    response = httpx.delete(f"{api}/api/runs")
    assert response.status_code == 405
    assert "does not take that method" in _detail(response)


def test_the_flow_view_of_a_run_and_of_a_trace(api: str) -> None:
    trace = scripted_checkout(span_name=XSS_NAME)
    import_spans(api, trace)
    judged = check(api, CHECKOUT_SPEC, trace.trace_id)
    view = httpx.get(f"{api}/api/flows/{judged['run_id']}").json()
    assert view["run"]["run_id"] == judged["run_id"]
    assert view["result"]["first_divergence"] == judged["first_divergence"]
    assert len(view["spans"]) == 7
    assert view["truncated"] is False
    assert view["critical_path"][0] == trace.spans[0].span_id, "the critical path starts at the root"
    reserve_call = trace.span("cart", XSS_NAME).span_id
    assert reserve_call in view["critical_path"]
    assert view["budgets"] == [
        {"span_id": reserve_call, "budget_ns": "50000000", "label": "cart -> inventory: 50 ms"}
    ]
    by_trace = httpx.get(f"{api}/api/flows/{trace.trace_id}").json()
    assert by_trace["run"]["run_id"] == judged["run_id"], (
        "a failure message's /flows/{trace_id} finds the run"
    )
    unjudged = httpx.get(f"{api}/api/flows/{trace.trace_id}", params={"recorded": "false"}).json()
    assert unjudged["run"] is None
    assert unjudged["spec"] is None
    assert {h["hop"] for h in unjudged["result"]["hops"]} == {
        "frontend -> auth",
        "frontend -> cart",
        "cart -> inventory",
    }
    assert any(c["check"] == "errors" and c["state"] == "fail" for c in unjudged["result"]["checks"])


def test_the_flow_view_walks_the_engine_s_tree_of_the_flow(api: str) -> None:
    """The critical path and the waterfall's parents are the engine's: a parent loop that the
    engine cuts (and that used to leave both spans off the path and the page) is on both."""
    trace = scripted_checkout(inventory_fails=False)
    root = trace.spans[0]
    first = ScriptedSpan("audit", "audit a", 1, 100, 110)
    second = ScriptedSpan("audit", "audit b", 1, 100, 110, parent=first)
    first.parent = second
    trace.spans += [first, second]
    import_spans(api, trace)
    judged = check(api, {"name": "audit", "expect": {"hops": ["cart -> inventory"]}}, trace.trace_id)
    for key in (judged["run_id"], trace.trace_id + "?recorded=false"):
        view = httpx.get(f"{api}/api/flows/{key}").json()
        spans = [span_from_json(s) for s in view["spans"]]
        tree = build_trace(trace.trace_id, spans, now_unix_nano=time.time_ns())
        hops = FlowResult.from_json(view["result"]).hops
        assert view["critical_path"] == critical_path(tree, hand_off_parents(tree, hops))
        assert view["critical_path"][0] == root.span_id
        assert {first.span_id, second.span_id} <= set(view["critical_path"])
        cut = [s for s in (first, second) if s.span_id in view["tree_parents"]]
        assert len(cut) == 1
        assert view["tree_parents"][cut[0].span_id] is None, "where the loop was cut is a top"


def test_the_spec_of_a_healthy_trace_passes_on_it(api: str) -> None:
    trace = scripted_checkout(inventory_fails=False)
    import_spans(api, trace)
    answer = httpx.get(f"{api}/api/traces/{trace.trace_id}/spec", params={"name": "checkout"}).json()
    spec = yaml.safe_load(answer["yaml"])
    assert spec == answer["spec"]
    assert spec["name"] == "checkout"
    assert spec["expect"]["hops"] == ["frontend -> auth", "frontend -> cart", "cart -> inventory"]
    assert check(api, spec, trace.trace_id)["passed"] is True


def test_the_event_stream_announces_each_recorded_run(api: str) -> None:
    trace = scripted_checkout()
    import_spans(api, trace)
    events: queue.Queue[dict[str, Any]] = queue.Queue()
    connected = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", f"{api}/api/events", timeout=30) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            kind = None
            for line in response.iter_lines():
                connected.set()
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "run":
                    events.put(json.loads(line[6:]))
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert connected.wait(10)
    judged = check(api, CHECKOUT_SPEC, trace.trace_id, test_id="t::live")
    announced = events.get(timeout=10)
    assert announced["run_id"] == judged["run_id"]
    assert announced["test_id"] == "t::live"
    assert announced["passed"] is False
    listener.join(10)


def test_dashboard_pages_and_files_are_served_with_a_content_security_policy(api: str) -> None:
    for path in ("/", "/flows", "/flows/r00000000000000000000", "/traces", f"/traces/{new_id(16)}",
                 f"/compare?a={new_id(16)}&b=%3Cscript%3E"):
        page = httpx.get(api + path)
        assert page.status_code == 200, path
        assert page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert '<script type="module" src="/static/app.js">' in page.text
    for name, kind in (
        ("app.js", "text/javascript"),
        ("flow.js", "text/javascript"),
        ("compare.js", "text/javascript"),
        ("style.css", "text/css"),
    ):
        served = httpx.get(f"{api}/static/{name}")
        assert served.status_code == 200
        assert served.headers["content-type"].startswith(kind)
        assert "innerHTML" not in served.text, "span data never goes through innerHTML"
    assert httpx.get(f"{api}/static/..%2Fpyproject.toml").status_code == 404
    assert httpx.get(f"{api}/static/_assets.py").status_code == 404


def test_with_a_token_the_api_and_dashboard_need_it(tmp_path: Path) -> None:
    running: RunningServer = start_server(tmp_path / "guarded.duckdb", "--token", "s3cret")
    try:
        api = running.api
        assert httpx.get(f"{api}/healthz").status_code == 200, "/healthz never needs a token"
        refused = httpx.get(f"{api}/api/runs")
        assert refused.status_code == 401
        assert "Authorization: Bearer" in _detail(refused)
        assert httpx.get(f"{api}/api/runs", headers={"authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(f"{api}/api/runs", headers={"authorization": "Bearer s3cret"}).status_code == 200
        page = httpx.get(f"{api}/flows")
        assert page.status_code == 401
        assert "/login?token=" in page.text
        assert httpx.get(f"{api}/login", params={"token": "nope"}).status_code == 401
        login = httpx.get(f"{api}/login", params={"token": "s3cret"})
        assert login.status_code == 303
        assert login.headers["location"] == "/flows"
        cookie = login.headers["set-cookie"]
        assert "HttpOnly" in cookie
        assert "SameSite=strict" in cookie or "SameSite=Strict" in cookie
        assert "s3cret" not in cookie, "the cookie holds no token"
        with httpx.Client(base_url=api, cookies=login.cookies) as browser:
            assert browser.get("/flows").status_code == 200
            assert browser.get("/api/runs").status_code == 200
            # a state change on the cookie from another origin (a forged form post) is refused
            body = {"spec": {"name": "x"}, "trace_id": "0" * 31 + "1", "record": False}
            forged = browser.post("/api/check", json=body, headers={"origin": "https://evil.example"})
            assert forged.status_code == 401
            own = browser.post("/api/check", json={**body, "spec": {"name": "x", "wait": {"timeout": "1ms"}}},
                               headers={"origin": api})
            assert own.status_code == 200, own.text
        with_redirect = httpx.get(f"{api}/login", params={"token": "s3cret", "next": "https://evil.example"})
        assert with_redirect.headers["location"] == "/flows", "no open redirect"
    finally:
        assert running.stop() == 0


def test_an_empty_request_and_other_signals_beside_traces_still_import(api: str) -> None:
    # `{}` and `{"resourceSpans": []}` are valid empty OTLP requests, and a Collector's file
    # exporter may write metrics lines into the same file: only a body of no trace whose
    # objects are all some other shape is refused
    assert httpx.post(f"{api}/api/import", content=b"{}").json()["accepted_spans"] == 0
    assert httpx.post(f"{api}/api/import", content=b'{"resourceSpans": []}').json()["accepted_spans"] == 0
    trace_id = os.urandom(16).hex()
    line = orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": trace_id, "spanId": "0102030405060708", "name": "x",
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000001000000"}]}]}]})
    body = b'{"resourceMetrics": []}\n' + line + b"\n"
    assert httpx.post(f"{api}/api/import", content=body).json()["accepted_spans"] == 1


def test_jaeger_routes_keep_jaegers_leniency_for_parameters_of_their_own(api: str) -> None:
    # Jaeger UI and Grafana send parameters tracebaton does not read; its own /api refuses them
    response = httpx.get(f"{api}/jaeger/api/services", params={"uiFind": "x"})
    assert response.status_code == 200, response.text
