"""`tracebaton diff TRACE_A TRACE_B` and the API behind it and behind remote snapshot checks:
the same hop diff for any two stored flows (exit 0 the same, 1 different, 2 bad input), as
JSON rows for the dashboard, and the errors a client can make, each answered with what to do."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from conftest import start_server
from scripted_traces import import_spans, new_id, scripted_checkout
from test_cli_client import tracebaton


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    running = start_server(tmp_path_factory.mktemp("diff") / "store.duckdb")
    yield running.api
    assert running.stop() == 0, running.stderr


@pytest.fixture(scope="module")
def traces(api: str) -> dict[str, str]:
    made = {}
    for name, fails in (("healthy", False), ("again", False), ("failing", True)):
        # each sent as soon as it is made: a trace whose spans ended long before they arrived
        # reads as export lag, and a snapshot is never recorded from a lagging flow
        made[name] = scripted_checkout(inventory_fails=fails)
        import_spans(api, made[name])
    return {name: trace.trace_id for name, trace in made.items()}


def test_two_healthy_flows_have_the_same_hops(api: str, traces: dict[str, str]) -> None:
    done = tracebaton("diff", traces["healthy"], traces["again"], "--server", api)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        f"flows match · trace {traces['healthy']} (-) · trace {traces['again']} (+) · the same hops")


def test_a_changed_flow_prints_the_diff_naming_its_first_changed_hop(
    api: str, traces: dict[str, str]
) -> None:
    done = tracebaton("diff", traces["healthy"], traces["failing"], "--server", api)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        f"flows differ · trace {traces['healthy']} (-) · trace {traces['failing']} (+) · 1 hop changed",
        "cart -> inventory  status: was ok, now 503",
        "hops (- A, + B, ! changed):",
        "  frontend -> auth",
        "  frontend -> cart",
        "!   cart -> inventory  status: was ok, now 503",
    ]


def test_the_api_gives_the_rows_the_text_and_both_shapes(api: str, traces: dict[str, str]) -> None:
    answer = httpx.get(f"{api}/api/diff", params={"a": traces["healthy"], "b": traces["failing"]}).json()
    assert answer["same"] is False
    assert answer["diff"]["first_change"] == "cart -> inventory  status: was ok, now 503"
    assert answer["diff"]["rows"][2] == {
        "depth": 1, "mark": "!", "hop": "cart -> inventory", "kind": "sync", "note": "",
        "caller": "cart", "callee": "inventory", "before": True, "after": True,
        "changes": [{"property": "status", "text": "was ok, now 503"}],
        "said": "status: was ok, now 503"}
    assert answer["text"].splitlines()[1] == "cart -> inventory  status: was ok, now 503"
    assert answer["before"]["hops"][1] == {"frontend -> cart": {
        "headers": ["x-request-id"], "budget": "250ms",
        "calls": [{"cart -> inventory": {"headers": ["x-request-id"], "budget": "250ms"}}]}}
    assert "budget" not in str(answer["after"])  # a flow now has times, not budgets


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("nothex", "0" * 32), "TRACE_A 'nothex' is not 32 hex digits"),
        (("a" * 32, new_id(16)), "no span of trace"),
    ],
)
def test_bad_input_exits_2_and_says_what_to_do(api: str, traces: dict[str, str], args: tuple[str, str],
                                               says: str) -> None:
    first, second = args
    done = tracebaton("diff", traces["healthy"] if first == "a" * 32 else first, second, "--server", api)
    assert done.returncode == 2
    assert done.stderr.startswith("tracebaton diff: error: "), done.stderr
    assert says in done.stderr, done.stderr


def test_a_snapshot_check_of_a_trace_not_stored_is_404_and_a_bad_file_400(
    api: str, traces: dict[str, str]
) -> None:
    unknown = httpx.post(f"{api}/api/snapshots/check", json={"trace_id": new_id(16), "name": "x"})
    assert unknown.status_code == 404
    assert "no span of trace" in unknown.json()["detail"]
    bad = httpx.post(f"{api}/api/snapshots/check",
                     json={"trace_id": traces["healthy"], "name": "x", "snapshot": "name: x\n",
                           "origin": "s.flow.yaml"})
    assert bad.status_code == 400
    assert bad.json()["detail"].startswith("s.flow.yaml: has no `snapshot:` section")


def test_a_run_that_was_no_snapshot_check_has_no_snapshot_diff(api: str, traces: dict[str, str]) -> None:
    checked = httpx.post(f"{api}/api/check", json={"spec": {"name": "x"}, "trace_id": traces["healthy"]},
                         timeout=30).json()
    answer = httpx.get(f"{api}/api/runs/{checked['run_id']}/snapshot-diff")
    assert answer.status_code == 404
    assert "is no comparison with a snapshot" in answer.json()["detail"]


def test_a_snapshot_check_records_the_diff_for_the_dashboard(api: str, traces: dict[str, str]) -> None:
    snapshot = httpx.post(f"{api}/api/snapshots/check", timeout=60, json={
        "trace_id": traces["healthy"], "name": "checkout", "update": True, "record": False}).json()
    assert snapshot["existed"] is False
    assert snapshot["refused"] is None
    text = snapshot["written"]
    judged = httpx.post(f"{api}/api/snapshots/check", timeout=60, json={
        "trace_id": traces["failing"], "name": "checkout", "snapshot": text, "origin": "c.flow.yaml"}).json()
    assert judged["result"]["passed"] is False
    assert judged["result"]["first_divergence"] == "cart -> inventory  status: was ok, now 503"
    assert judged["result"]["checks"][-1] == {
        "check": "snapshot", "passed": False, "state": "fail", "span_ids": [], "hop": "cart -> inventory",
        "message": "cart -> inventory  status: was ok, now 503", "more": []}
    recorded = httpx.get(f"{api}/api/runs/{judged['run_id']}/snapshot-diff").json()
    assert recorded["diff"] == judged["diff"]
    assert recorded["snapshot"]["hops"][1]["frontend -> cart"]["calls"] == [
        {"cart -> inventory": {"headers": ["x-request-id"], "budget": "250ms"}}]


def test_a_flow_that_arrived_after_settle_is_recorded_once_its_lag_is_waited_out(api: str) -> None:
    # a loaded machine delays an export past settle (250 ms); the flow is still whole, and
    # the recording waits as long again before it takes the flow's shape
    late = scripted_checkout(inventory_fails=False, ended_ms_ago=900)
    import_spans(api, late)
    snapshot = httpx.post(f"{api}/api/snapshots/check", timeout=60, json={
        "trace_id": late.trace_id, "name": "checkout", "update": True, "record": False}).json()
    assert snapshot["refused"] is None
    assert "frontend -> cart:" in snapshot["written"]
    assert snapshot["result"]["waited_ms"] >= 900
    lags = [f["message"] for f in snapshot["result"]["findings"] if f["kind"] == "export_lag"]
    assert lags, snapshot["result"]["findings"]
    assert lags[0].startswith("auth exports ")
    assert lags[0].endswith("settle 250 ms is too short — set OTEL_BSP_SCHEDULE_DELAY=50 "
                            "(tracebaton.sut_env())")


def test_the_recorded_diff_comes_with_its_text_and_the_side_each_hop_is_drawn_on(
    api: str, traces: dict[str, str]
) -> None:
    # the snapshot a healthy flow gives, as /api/diff reads A (a recording would refuse a
    # scripted trace whose spans arrived late on a busy machine)
    healthy = httpx.get(f"{api}/api/diff", params={"a": traces["healthy"], "b": traces["again"]}).json()
    written = json.dumps({"name": "checkout", "snapshot": healthy["before"]})
    judged = httpx.post(f"{api}/api/snapshots/check", timeout=60, json={
        "trace_id": traces["failing"], "name": "checkout", "snapshot": written, "origin": "c.flow.yaml",
    }).json()
    recorded = httpx.get(f"{api}/api/runs/{judged['run_id']}/snapshot-diff").json()
    assert recorded["text"].splitlines() == [
        "hops (- snapshot, + now, ! changed):",
        "  frontend -> auth",
        "  frontend -> cart",
        "!   cart -> inventory  status: was ok, now 503",
    ]
    assert [(r["caller"], r["callee"], r["before"], r["after"]) for r in recorded["diff"]["rows"]] == [
        ("frontend", "auth", True, True), ("frontend", "cart", True, True), ("cart", "inventory", True, True)]


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"a": "same", "b": "same"}, 400, "a and b are both trace "),
        ({"a": "nothex", "b": "healthy"}, 422,
         "query parameter a: 'nothex' is not 32 hex digits; copy a trace id"),
        ({"a": "healthy", "b": "0" * 31 + "g"}, 422, f"query parameter b: '{'0' * 31}g' is not 32 hex"),
        ({"a": "healthy", "b": "unknown"}, 404, "b: no span of trace"),
        ({"a": "healthy"}, 422, "query parameter b is required"),
    ],
)
def test_bad_pairs_are_4xx_naming_the_parameter(api: str, traces: dict[str, str], params: dict[str, str],
                                                status: int, says: str) -> None:
    unknown = new_id(16)
    given = {k: {"same": traces["healthy"], "healthy": traces["healthy"], "unknown": unknown}.get(v, v)
             for k, v in params.items()}
    answer = httpx.get(f"{api}/api/diff", params=given)
    assert answer.status_code == status, answer.text
    assert says in answer.json()["detail"], answer.json()
    healthy = httpx.get(f"{api}/api/diff", params={"a": traces["healthy"], "b": traces["again"]})
    assert healthy.status_code == 200, "the server keeps serving"


def test_the_cli_refuses_to_diff_a_trace_with_itself(api: str, traces: dict[str, str]) -> None:
    done = tracebaton("diff", traces["healthy"], traces["healthy"].upper(), "--server", api)
    assert done.returncode == 2
    assert "a and b are both trace" in done.stderr, done.stderr
