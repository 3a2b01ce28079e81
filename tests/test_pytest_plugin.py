"""The pytest plugin as users meet it: a test file run by pytest in a subprocess, with the
services under test in their own processes exporting to the collector the plugin runs."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest
from conftest import SUPPORT, RunningServer

pytest_plugins = ["pytester"]

TEST_FILE = f"""
import subprocess, sys

SERVICES = {str(SUPPORT / "flow_services.py")!r}
SPEC = {{
    "name": "checkout",
    "expect": {{
        "hops": ["frontend -> auth", "frontend -> cart", "cart -> inventory", "frontend -> payment"],
        "times": {{"cart -> inventory": 1}},
        "propagation": {{"headers": {{"x-request-id": "same"}}}},
    }},
}}


def run(tracebaton, scenario):
    with tracebaton.flow("checkout") as flow:
        subprocess.run([sys.executable, SERVICES, "--traceparent", flow.headers["traceparent"],
                        "--scenario", scenario], env={{**__import__("os").environ, **tracebaton.sut_env()}},
                       check=True, capture_output=True)
    return flow


def test_healthy(tracebaton):
    run(tracebaton, "healthy").assert_spec(SPEC)


def test_retried(tracebaton):
    run(tracebaton, "retry").assert_spec(SPEC)


def test_trace_equals_spec(tracebaton):
    trace = run(tracebaton, "drop-request-id").trace()
    assert trace == SPEC
"""


@pytest.fixture(autouse=True)
def _a_run_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner pytest runs start from this process's environment: under `pytest -n`, that
    holds the outer worker's PYTEST_XDIST_* (and a shell may hold TRACEBATON_URL). Each test
    here says what it wants instead."""
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID",
                 "TRACEBATON_URL", "TRACEBATON_TOKEN", "TRACEBATON_INGEST_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def normalized(text: str) -> str:
    """Ids, durations and ports vary per run; the words users read do not."""
    text = re.sub(r"\b[0-9a-f]{32}\b", "<trace>", text)
    text = re.sub(r"\b[0-9a-f]{16}\b", "<span>", text)
    text = re.sub(r"\b[0-9a-f]{8}\b", "<short>", text)
    text = re.sub(r"\d+(\.\d+)? (ms|s|us|ns)\b", "<t>", text)
    return re.sub(r"in \d+\.\d+s", "in <t>", text)


@pytest.fixture
def outcome(pytester: pytest.Pytester) -> pytest.RunResult:
    pytester.makepyfile(test_checkout=TEST_FILE)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--junitxml=junit.xml")


def error_lines(outcome: pytest.RunResult) -> list[str]:
    """The `E` lines pytest prints for failures, normalized, without their indentation."""
    return [
        line[1:].strip() for line in normalized(outcome.stdout.str()).splitlines() if line.startswith("E ")
    ]


def test_a_failing_flow_reads_verdict_then_the_culprit_hop(outcome: pytest.RunResult) -> None:
    outcome.assert_outcomes(passed=1, failed=2)
    lines = error_lines(outcome)
    first = lines.index(
        "tracebaton.TraceAssertionError: flow 'checkout' FAILED · trace <trace> · waited <t> (violated)"
    )
    assert lines[first + 1 : first + 5] == [
        "cart -> inventory: happened 2 times, expected 1 (a retry?)",
        "FAIL    times: cart -> inventory: happened 2 times, expected 1 (a retry?)",
        "FAIL    errors: cart -> inventory: inventory answered 503 in 'POST /reserve' (and 1 more)",
        "also: cart -> inventory answered 503",
    ]
    diff = lines.index("hops (- expected, + actual, · extra but allowed):")
    # the extra attempt is unexpected (`times`); hops the spec does not name are allowed
    assert lines[diff + 1 : diff + 8] == [
        "… 1 matching hop, 1 extra but allowed",
        "frontend -> cart",
        "cart -> inventory",
        "+ cart -> inventory",
        "frontend -> payment",
        "· payment -> 127.0.0.1:9001   [uninstrumented peer]",
        "… 2 hops extra but allowed",
    ]
    assert "see it: tracebaton serve --db .tracebaton/last.duckdb, then open /flows/<trace>" in lines


def test_assert_trace_equals_spec_shows_the_verdict(outcome: pytest.RunResult) -> None:
    lines = error_lines(outcome)
    first = lines.index("AssertionError: assert trace does not satisfy the spec")
    assert lines[first + 1 : first + 3] == [
        "flow 'checkout' FAILED · trace <trace> · waited <t> (settled)",
        "cart -> inventory: x-request-id missing on inventory's request",
    ]


def test_the_run_ends_with_the_failed_flows_and_the_dashboard_command(outcome: pytest.RunResult) -> None:
    lines = normalized(outcome.stdout.str()).splitlines()
    summary = lines.index(next(line for line in lines if "tracebaton: failed flows" in line))
    assert lines[summary + 1] == "test_checkout.py::test_retried: flow 'checkout' trace <trace>"
    assert lines[summary + 2] == "    cart -> inventory: happened 2 times, expected 1 (a retry?)"
    last = next(line for line in reversed(lines) if line.startswith("tracebaton: "))
    # The command as the failure messages write it ("see it: tracebaton serve --db …").
    assert last == (
        "tracebaton: 3 flows, 1 failed; open the dashboard: tracebaton serve --db .tracebaton/last.duckdb"
    )


def test_every_test_records_its_trace_id_in_junit(
    outcome: pytest.RunResult, pytester: pytest.Pytester
) -> None:
    tree = ET.parse(pytester.path / "junit.xml")
    properties = {
        case.get("name"): [
            p.get("value") for p in case.iter("property") if p.get("name") == "tracebaton_trace_id"
        ]
        for case in tree.iter("testcase")
    }
    assert set(properties) == {"test_healthy", "test_retried", "test_trace_equals_spec"}
    for values in properties.values():
        assert len(values) == 1
        assert re.fullmatch(r"[0-9a-f]{32}", values[0] or "")


def test_the_store_stays_for_the_dashboard_with_every_checked_flow(
    outcome: pytest.RunResult, pytester: pytest.Pytester
) -> None:
    from tracebaton.collector import RunQuery, TraceQuery, duckdb_url, open_store

    store = open_store(duckdb_url(str(pytester.path / ".tracebaton" / "last.duckdb"))).start()
    try:
        assert sum(t.span_count for t in store.traces(TraceQuery(limit=1000))) > 40
        runs = store.runs(RunQuery())
    finally:
        store.shutdown()
    # assert_spec records a run; `trace == spec` judges the stored trace without recording
    assert sorted((r.test_id, r.passed) for r in runs) == [
        ("test_checkout.py::test_healthy", True),
        ("test_checkout.py::test_retried", False),
    ]
    assert len({r.session_id for r in runs}) == 1
    assert runs[0].first_divergence == "cart -> inventory: happened 2 times, expected 1 (a retry?)"


def test_remote_mode_judges_on_the_server(pytester: pytest.Pytester, server: RunningServer) -> None:
    pytester.makepyfile(test_checkout=TEST_FILE)
    outcome = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--tracebaton-url={server.api}")
    outcome.assert_outcomes(passed=1, failed=2)
    text = outcome.stdout.str()
    assert "cart -> inventory: happened 2 times, expected 1 (a retry?)" in text
    assert f"tracebaton: 3 flows, 1 failed; dashboard: {server.api}/flows" in text
    assert not (pytester.path / ".tracebaton").exists(), "remote mode keeps no local store"


def test_xdist_workers_get_a_store_and_ports_each(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_checkout=TEST_FILE)
    outcome = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    outcome.assert_outcomes(passed=1, failed=2)
    stores = sorted(p.name for p in (pytester.path / ".tracebaton").glob("*.duckdb"))
    assert stores == ["last-gw0.duckdb", "last-gw1.duckdb"]
    assert "one store per xdist worker" in outcome.stdout.str()


def test_an_inherited_xdist_variable_does_not_make_a_run_a_worker(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pytest run started inside an xdist worker inherits PYTEST_XDIST_WORKER without being
    a worker: it keeps the default store, as a user's own run does."""
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    pytester.makepyfile(test_one="def test_flow(tracebaton):\n    with tracebaton.flow('x'):\n        pass\n")
    outcome = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    outcome.assert_outcomes(passed=1)
    assert [p.name for p in (pytester.path / ".tracebaton").glob("*.duckdb")] == ["last.duckdb"]
    summary = (
        "tracebaton: 1 flow, 0 failed; open the dashboard: tracebaton serve --db .tracebaton/last.duckdb"
    )
    outcome.stdout.fnmatch_lines([summary])


def test_importing_the_plugin_loads_no_store_rpc_or_web_framework() -> None:
    code = (
        "import sys, tracebaton.pytest_plugin; "
        "print(sorted(m for m in ('duckdb', 'grpc', 'fastapi', 'opentelemetry.sdk') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_start_service_stops_it_and_shows_its_log_when_the_test_fails(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_service="""
import sys

def test_service(tracebaton):
    code = "import os, time; print('endpoint', os.environ['OTEL_EXPORTER_OTLP_ENDPOINT'], flush=True); " \\
           "print('ready', flush=True); time.sleep(60)"
    service = tracebaton.start_service([sys.executable, "-c", code], name="inventory", ready_line="^ready")
    assert service.process.poll() is None
    open("pid", "w").write(str(service.process.pid))
    assert False, "the test fails"
"""
    )
    outcome = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    outcome.assert_outcomes(failed=1)
    text = outcome.stdout.str()
    assert "tracebaton: inventory log (last lines)" in text
    assert re.search(r"endpoint http://127\.0\.0\.1:\d+", text), "it got the collector's environment"
    pid = int((pytester.path / "pid").read_text())
    assert not _alive(pid), "the service was stopped at the end of the test"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
