"""GET /api/service-map against a real `tracebaton serve`: spans go in through the real OTLP/HTTP
receiver; the map counts the flow engine's hops (DESIGN §4) per caller and callee, with
errors and the caller span's p50/p99, and Jaeger's dependencies answer from the same map."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from conftest import RunningServer, start_server
from scripted_traces import new_id

MS = 1_000_000
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("service-map") / "store.duckdb")
    yield running
    assert running.stop() == 0, running.stderr
    assert "Traceback" not in running.stderr, running.stderr


def span(trace_id: str, span_id: str, name: str, start_ns: int, end_ns: int, kind: int, *,
         parent: str | None = None, error: bool = False, peer: str | None = None,
         link: tuple[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "traceId": trace_id, "spanId": span_id, "name": name, "kind": kind,
        "startTimeUnixNano": str(start_ns), "endTimeUnixNano": str(end_ns),
        "attributes": [{"key": "peer.service", "value": {"stringValue": peer}}] if peer else [],
        "status": {"code": 2, "message": "boom"} if error else {},
    }
    if parent:
        out["parentSpanId"] = parent
    if link:
        out["links"] = [{"traceId": link[0], "spanId": link[1]}]
    return out


def send(server: RunningServer, by_service: dict[str, list[dict[str, Any]]]) -> None:
    body = {"resourceSpans": [
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": name}}]},
         "scopeSpans": [{"scope": {}, "spans": spans}]}
        for name, spans in by_service.items()
    ]}
    response = httpx.post(f"{server.otlp_http_url}/v1/traces", json=body, timeout=30)
    assert response.status_code == 200, response.text


def checkout(server: RunningServer, names: dict[str, str], call_ms: int, *, failed: bool = False) -> None:
    """front -> back (call_ms long, back failing when `failed`), back -> stripe (uninstrumented),
    front ~> mailer (an outbox worker in a trace of its own, linking back)."""
    t0 = time.time_ns() - 500 * MS
    trace_id, worker_trace = new_id(16), new_id(16)
    root, call, served, publish = new_id(8), new_id(8), new_id(8), new_id(8)
    send(server, {
        names["front"]: [
            span(trace_id, root, "POST /order", t0, t0 + 100 * MS, SERVER),
            span(trace_id, call, "POST /stock", t0 + MS, t0 + (1 + call_ms) * MS, CLIENT, parent=root),
            span(trace_id, publish, "orders publish", t0 + 90 * MS, t0 + 91 * MS, PRODUCER, parent=root),
        ],
        names["back"]: [
            span(trace_id, served, "POST /stock", t0 + 2 * MS, t0 + call_ms * MS, SERVER, parent=call,
                 error=failed),
            span(trace_id, new_id(8), "POST /charge", t0 + 3 * MS, t0 + 4 * MS, CLIENT, parent=served,
                 peer=names["stripe"]),
        ],
        names["mailer"]: [
            span(worker_trace, new_id(8), "orders process", t0 + 95 * MS, t0 + 99 * MS, CONSUMER,
                 link=(trace_id, publish)),
        ],
    })


def service_map(server: RunningServer, **params: Any) -> dict[str, Any]:
    response = httpx.get(f"{server.api}/api/service-map", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return dict(response.json())


def mine(body: dict[str, Any], marker: str) -> list[dict[str, Any]]:
    return [link for link in body["links"] if marker in link["caller"] or marker in link["callee"]]


def test_the_map_counts_each_hop_with_its_errors_and_durations(server: RunningServer) -> None:
    marker = new_id(3)
    names = {n: f"{n}-{marker}" for n in ("front", "back", "stripe", "mailer")}
    for call_ms, failed in ((10, False), (20, True), (30, False)):
        checkout(server, names, call_ms, failed=failed)
    body = service_map(server, window="15m")
    links = {link["hop"]: link for link in mine(body, marker)}
    front, back, stripe, mailer = names["front"], names["back"], names["stripe"], names["mailer"]
    assert sorted(links) == [f"{back} -> {stripe}", f"{front} -> {back}", f"{front} ~> {mailer}"]
    sync = links[f"{front} -> {back}"]
    assert (sync["caller"], sync["callee"], sync["async"]) == (front, back, False)
    assert (sync["calls"], sync["errors"], sync["error_rate"]) == (3, 1, 0.3333)
    # the caller span's duration, nearest rank: a p99 some call really took
    assert (sync["p50_ns"], sync["p99_ns"]) == (str(20 * MS), str(30 * MS))
    assert links[f"{front} ~> {mailer}"]["async"] is True
    assert links[f"{back} -> {stripe}"]["errors"] == 0
    depths = {s["name"]: s["depth"] for s in body["services"] if marker in s["name"]}
    assert depths == {front: 0, back: 1, mailer: 1, stripe: 2}
    assert body["traces"] >= 6
    assert body["truncated"] is False

    # one more flow: the map adds it to what it kept
    checkout(server, names, 40)
    again = {link["hop"]: link for link in mine(service_map(server, window="15m"), marker)}
    assert (again[f"{front} -> {back}"]["calls"], again[f"{front} -> {back}"]["p99_ns"]) == (4, str(40 * MS))

    # Jaeger's System Architecture page reads the same map
    jaeger = httpx.get(f"{server.api}/jaeger/api/dependencies", params={"service": back}, timeout=30).json()
    assert jaeger["data"] == [{"parent": back, "child": stripe, "callCount": 4},
                              {"parent": front, "child": back, "callCount": 4}]


def test_the_window_bounds_the_map(server: RunningServer) -> None:
    marker = new_id(3)
    names = {n: f"{n}-{marker}" for n in ("front", "back", "stripe", "mailer")}
    checkout(server, names, 10)
    now = time.time_ns()
    hour_ago = now - 3600 * 10**9
    assert mine(service_map(server, window="1h"), marker)
    assert not mine(service_map(server, window="15m", end_unix_nano=str(hour_ago)), marker)
    custom = service_map(server, start_unix_nano=str(now - 60 * 10**9), end_unix_nano=str(now + 10**9))
    assert (custom["start_unix_nano"], custom["end_unix_nano"]) == (str(now - 60 * 10**9), str(now + 10**9))
    assert len(mine(custom, marker)) == 3
    assert not mine(service_map(server, start_unix_nano=str(hour_ago - 10**9), end_unix_nano=str(hour_ago)),
                    marker)


BAD_WINDOWS = [
    ({"window": "soon"}, "query parameter window: 'soon' is not a duration; write a number and a unit"),
    ({"window": "0s"}, "query parameter window: '0s' holds no time; give a length back from now, e.g. 15m"),
    ({"window": "1000h"}, "query parameter window: '1000h' is longer than 31 days (744h); pick a shorter"),
    ({"start_unix_nano": "yesterday"},
     "query parameter start_unix_nano: 'yesterday' is not a time in nanoseconds since the epoch"),
    ({"end_unix_nano": "-5"}, "query parameter end_unix_nano: '-5' is not a time in nanoseconds"),
    # digits to str.isdigit(), not to int()
    ({"start_unix_nano": "³"}, "query parameter start_unix_nano: '³' is not a time in nanoseconds"),
    ({"start_unix_nano": "2000", "end_unix_nano": "1000"},
     "start_unix_nano 2000 is not before end_unix_nano 1000; swap them or widen the window"),
    ({"start_unix_nano": "1", "end_unix_nano": str(40 * 24 * 3600 * 10**9)},
     "the window from start_unix_nano to end_unix_nano is longer than 31 days; narrow it"),
    ({"window": "1h", "start_unix_nano": "1000"}, "give either window (back from end_unix_nano or now) or "
                                                  "start_unix_nano (to end_unix_nano or now), not both"),
]


@pytest.mark.parametrize(("params", "message"), BAD_WINDOWS, ids=[str(p) for p, _ in BAD_WINDOWS])
def test_a_bad_window_is_a_422_that_names_it_and_the_server_keeps_serving(
    server: RunningServer, params: dict[str, str], message: str
) -> None:
    response = httpx.get(f"{server.api}/api/service-map", params=params, timeout=30)
    assert response.status_code == 422, response.text
    assert message in response.json()["detail"]
    assert service_map(server, window="15m")["max_traces"] == 10_000
