"""SQL injection through every search filter and path parameter of the API: each answer is
an empty result or a 4xx, never a 500, and the store is untouched afterwards (every filter
is a bound parameter). Span data itself is hostile too: names and attribute values that
look like SQL are stored and read back as text."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
from conftest import start_server
from scripted_traces import CHECKOUT_SPEC, check, import_spans, scripted_checkout

PAYLOADS = [
    "' OR '1'='1",
    "x'; DROP TABLE spans; --",
    '" OR 1=1 --',
    "*' UNION SELECT trace_id FROM spans --",
    "%' OR 1=1 --",
    "\\'; DELETE FROM flow_results; --",
    "1) OR (1=1",
]

TRACE_FILTERS = ["service", "name", "status", "since", "attr.order.id", "attr.' OR 1=1 --"]
RUN_FILTERS = ["name", "test_id", "session_id", "trace_id", "since", "passed"]


@pytest.fixture(scope="module")
def store_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, int]]:
    running = start_server(tmp_path_factory.mktemp("inject") / "store.duckdb")
    trace = scripted_checkout(span_name="x'); DROP TABLE spans; --")
    import_spans(running.api, trace)
    check(running.api, CHECKOUT_SPEC, trace.trace_id, test_id="tests/test_x.py::test_x")
    spans = len(httpx.get(f"{running.api}/api/traces/{trace.trace_id}").json()["spans"])
    yield running.api, trace.trace_id, spans
    assert running.stop() == 0, running.stderr
    assert "Traceback" not in running.stderr, running.stderr


def _intact(api: str, trace_id: str, spans: int) -> None:
    trace = httpx.get(f"{api}/api/traces/{trace_id}", timeout=10)
    assert trace.status_code == 200
    assert len(trace.json()["spans"]) == spans
    runs = httpx.get(f"{api}/api/runs", timeout=10).json()
    assert len(runs["runs"]) == 1


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("name", TRACE_FILTERS)
def test_trace_search_filters_are_bound_parameters(store_api: tuple[str, str, int], name: str,
                                                   payload: str) -> None:
    api, trace_id, spans = store_api
    response = httpx.get(f"{api}/api/traces", params={name: payload}, timeout=10)
    assert response.status_code in (200, 400, 422), response.text
    if response.status_code == 200:
        assert response.json()["traces"] == [], f"{name}={payload!r} matched something"
    _intact(api, trace_id, spans)


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("name", RUN_FILTERS)
def test_run_filters_are_bound_parameters(store_api: tuple[str, str, int], name: str, payload: str) -> None:
    api, trace_id, spans = store_api
    response = httpx.get(f"{api}/api/runs", params={name: payload}, timeout=10)
    assert response.status_code in (200, 400, 422), response.text
    if response.status_code == 200:
        assert response.json()["runs"] == [], f"{name}={payload!r} matched something"
    _intact(api, trace_id, spans)


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("route", ["/api/traces/{}", "/api/traces/{}/otlp", "/api/traces/{}/spec",
                                   "/api/runs/{}", "/api/flows/{}", "/flows/{}"])
def test_path_parameters_are_validated_or_bound(store_api: tuple[str, str, int], route: str,
                                                payload: str) -> None:
    api, trace_id, spans = store_api
    response = httpx.get(api + route.format(quote(payload, safe="")), timeout=10)
    assert response.status_code in (200, 400, 404, 422), response.text
    if route == "/flows/{}":
        assert payload not in response.text, "the page never echoes the path unescaped"
    _intact(api, trace_id, spans)


def test_a_span_named_like_sql_is_text(store_api: tuple[str, str, int]) -> None:
    api, trace_id, _ = store_api
    names = {s["name"] for s in httpx.get(f"{api}/api/traces/{trace_id}").json()["spans"]}
    assert "x'); DROP TABLE spans; --" in names
    found = httpx.get(f"{api}/api/traces", params={"name": "x'); DROP TABLE spans; --"}).json()["traces"]
    assert [t["trace_id"] for t in found] == [trace_id]
