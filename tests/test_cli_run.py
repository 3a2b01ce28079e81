"""`tracebaton run SPEC -- COMMAND` as a tester with curl runs it: a real `tracebaton serve`,
the example FastAPI service (orders -> inventory, two uvicorn processes) and a real command
that sends the request with the TRACEPARENT it was given. Exit 0 passed, 1 failed, 2 bad
input, 3 the command failed (and nothing judged)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import REPO, RunningServer, start_server

from tracebaton import ServiceProcess, start_service, sut_env

EXAMPLE = REPO / "examples" / "fastapi_service"
SPEC = EXAMPLE / "orders.yaml"
UVICORN = [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", "{port}"]
# What a Newman or shell script does with the variables: send them as the W3C headers.
SEND = (
    "import os, httpx; "
    "pairs = (('traceparent', 'TRACEPARENT'), ('tracestate', 'TRACESTATE'), ('baggage', 'BAGGAGE')); "
    "headers = {h: os.environ[v] for h, v in pairs if os.environ[v]}; "
    "print(httpx.post(os.environ['ORDERS_URL'] + '/orders', headers=headers).text)"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("run") / "store.duckdb")
    yield running
    assert running.stop() == 0, running.stderr


@pytest.fixture(scope="module")
def orders(server: RunningServer) -> Iterator[str]:
    """The example service as orders -> inventory, each on a free port ({port})."""
    started: list[ServiceProcess] = []
    try:
        for name in ("inventory", "orders"):
            env = sut_env(server.otlp_http_url, service_name=name)
            if started:
                env["INVENTORY_URL"] = started[0].url
            started.append(start_service(UVICORN, name=name, env=env, cwd=str(EXAMPLE),
                                         ready_url="http://127.0.0.1:{port}/docs"))
        yield started[1].url
    finally:
        for service in reversed(started):
            service.stop()


def tracebaton(*args: str, orders_url: str = "") -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TRACEBATON_")}
    done = subprocess.run([sys.executable, "-m", "tracebaton", *args], capture_output=True, text=True,
                          timeout=120, check=False, env={**environment, "ORDERS_URL": orders_url})
    assert "Traceback" not in done.stderr, done.stderr
    return done


def runs_of(server: RunningServer, trace_id: str) -> list[dict[str, object]]:
    runs: list[dict[str, object]] = httpx.get(f"{server.api}/api/runs", params={"trace_id": trace_id}).json()[
        "runs"]
    return runs


def trace_id_of(text: str) -> str:
    return text.split(" · trace ", 1)[1].split()[0]


TRACETEST_FILE = """
type: Test
spec:
  id: orders-1
  name: Create an order
  trigger:
    type: http
    httpRequest:
      method: POST
      url: {url}/orders
      headers:
      - key: Content-Type
        value: application/json
  specs:
  - selector: span[tracetest.span.type="http" name="POST /orders"]
    assertions:
    - attr:tracetest.span.duration < 5s
"""


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_a_converted_tracetest_trigger_is_a_tracebaton_run_command_that_passes(
    server: RunningServer, orders: str, tmp_path: Path
) -> None:
    source = tmp_path / "orders.tracetest.yaml"
    source.write_text(TRACETEST_FILE.format(url=orders))
    converted = tracebaton("import-tracetest", str(source), "--out", str(tmp_path / "flows"))
    assert converted.returncode == 0, converted.stderr
    (spec,) = (tmp_path / "flows").glob("*.yaml")
    header = [line.removeprefix("#   ") for line in spec.read_text().splitlines()]
    start = next(i for i, line in enumerate(header) if line.startswith("tracebaton run "))
    end = header.index("REQUEST", start)
    command = "\n".join(header[start : end + 1])
    # pasted into a shell as the header shows it, with tracebaton on the PATH
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TRACEBATON_")}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=120, check=False,
                          env={**environment, "TRACEBATON_URL": server.api})
    assert done.returncode == 0, command + "\n" + done.stdout + done.stderr
    assert done.stdout.startswith("flow 'Create an order' passed · trace "), done.stdout
    [run] = runs_of(server, trace_id_of(done.stdout))
    assert run["passed"] is True


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_sends_the_traceparent_and_the_flow_passes(server: RunningServer, orders: str) -> None:
    curl = f'curl -sf -X POST -H "traceparent: $TRACEPARENT" -H "tracestate: $TRACESTATE" {orders}/orders'
    done = tracebaton("run", str(SPEC), "--server", server.api, "--", "sh", "-c", curl)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("flow 'orders' passed · trace "), done.stdout
    assert '{"order":"A-1"}' in done.stderr, "the command's output goes to stderr"
    trace_id = trace_id_of(done.stdout)
    [run] = runs_of(server, trace_id)
    assert run["passed"] is True
    assert run["test_id"] == str(SPEC)
    spans = httpx.get(f"{server.api}/api/traces/{trace_id}").json()["spans"]
    root = next(s for s in spans if s["service"] == "test")
    assert root["name"] == "flow orders"
    assert root["parent_span_id"] is None


def test_a_script_gets_all_three_variables_and_json_and_junit_report_the_verdict(
    server: RunningServer, orders: str, tmp_path: Path
) -> None:
    spec = tmp_path / "baggage.yaml"
    spec.write_text(yaml.safe_dump({"name": "orders", "expect": {
        "hops": ["test -> orders", "orders -> inventory"],
        "propagation": {"headers": {"traceparent": "valid", "tracestate": "present"},
                        "baggage": {"tenant": "acme"}}}}))
    junit = tmp_path / "report.xml"
    # run's options may come after SPEC, before the --
    done = tracebaton("run", "--baggage", "tenant=acme", str(spec), "--server", server.api,
                      "--format", "json", "--junit", str(junit), "--", sys.executable, "-c", SEND,
                      orders_url=orders)
    assert done.returncode == 0, done.stdout + done.stderr
    [result] = json.loads(done.stdout)
    assert result["passed"] is True, result
    assert {c["check"] for c in result["checks"]} >= {"hops", "headers", "baggage"}
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("name"), suite.get("failures")) == ("orders", "0")
    assert {case.get("name") for case in suite.iter("testcase")} >= {"hops", "headers", "baggage"}


def test_a_flow_that_misses_a_hop_exits_1_naming_it(
    server: RunningServer, orders: str, tmp_path: Path
) -> None:
    spec = tmp_path / "payment.yaml"
    spec.write_text("name: orders\nwait: {timeout: 2s}\n"
                    "expect:\n  hops: [test -> orders, orders -> payment]\n")
    done = tracebaton("run", str(spec), "--server", server.api, "--", sys.executable, "-c", SEND,
                      orders_url=orders)
    assert done.returncode == 1, done.stdout + done.stderr
    first, second = done.stdout.splitlines()[:2]
    assert first.startswith("flow 'orders' FAILED · trace ")
    assert second.startswith("orders -> payment: never seen"), second
    # said before the two seconds' wait too, as `check` says it
    assert ("tracebaton: flow 'orders': no span of 'payment' ever arrived; seen: "
            in done.stderr), done.stderr
    [run] = runs_of(server, trace_id_of(first))
    assert run["passed"] is False


def test_a_failing_command_exits_3_with_its_output_and_nothing_is_judged(
    server: RunningServer, tmp_path: Path
) -> None:
    junit = tmp_path / "report.xml"
    code = "import sys; print('connecting…'); print('boom: connection refused', file=sys.stderr); sys.exit(7)"
    done = tracebaton("run", str(SPEC), "--server", server.api, "--junit", str(junit), "--",
                      sys.executable, "-c", code)
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout == "", "no verdict: the flow was not judged"
    message = done.stderr.split("tracebaton run: ", 1)[1]
    assert " exited 7, so flow 'orders' was not judged " in message
    assert message.splitlines()[-2:] == ["    connecting…", "    boom: connection refused"]
    trace_id = message.split("trace ", 1)[1].split(")")[0]
    assert runs_of(server, trace_id) == []
    spans = httpx.get(f"{server.api}/api/traces/{trace_id}").json()["spans"]
    assert [s["service"] for s in spans] == ["test"], "the root span is stored, for the dashboard"
    error = ET.parse(junit).getroot().find("testsuite/testcase/error")
    assert error is not None
    assert "exited 7" in (error.get("message") or "")
    assert "boom: connection refused" in (error.text or "")


@pytest.mark.parametrize(("args", "words"), [
    ((str(SPEC), "--"), "no COMMAND to run in the flow; give it after --"),
    (("nope.yaml", "--", "true"), "nope.yaml: no such flow spec file"),
    (("--", "true"), "no SPEC before the command ('true' was read as the spec, and it is no file)"),
    ((str(SPEC), "--baggage", "tenant", "--", "true"), "--baggage 'tenant' is not KEY=VALUE"),
    ((str(SPEC), "--baggage", "my key=1", "--", "true"),
     "baggage key 'my key' is not one W3C Baggage can carry"),
    ((str(SPEC), "--baggage", "k=1", "--baggage", "k=2", "--", "true"),
     "--baggage k is given twice ('1', then '2'); give each key once"),
    ((str(SPEC), "--", "no-such-program-here"), "COMMAND `no-such-program-here` cannot be started"),
], ids=["no-command", "no-spec", "no-spec-before-command", "bad-baggage", "baggage-key", "baggage-twice",
        "no-program"])
def test_bad_input_exits_2_with_a_message(server: RunningServer, args: tuple[str, ...], words: str) -> None:
    done = tracebaton("run", "--server", server.api, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert words in done.stderr


def test_a_bad_spec_or_no_server_exits_2_before_the_command_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    touch = ["--", sys.executable, "-c", f"open({str(marker)!r}, 'w')"]
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nexpect:\n  budgets: {trace: 2 parsecs}\n")
    bad = tracebaton("run", str(broken), "--server", "http://127.0.0.1:9", *touch)
    assert bad.returncode == 2
    assert "2 parsecs" in bad.stderr, bad.stderr
    # a spec the server would refuse only once judged: its command must not have run first
    patient = tmp_path / "patient.yaml"
    patient.write_text("name: x\nwait: {timeout: 1h}\nexpect:\n  hops: [a -> b]\n")
    refused = tracebaton("run", str(patient), "--server", "http://127.0.0.1:9", *touch)
    assert refused.returncode == 2
    assert (f"{patient}: wait.timeout 1 h is longer than a server-side check waits (10 m); "
            "shorten it") in refused.stderr, refused.stderr
    folder = tracebaton("run", str(tmp_path), "--server", "http://127.0.0.1:9", *touch)
    assert folder.returncode == 2
    assert f"{tmp_path}: is a folder" in folder.stderr, folder.stderr
    away = tracebaton("run", str(SPEC), "--server", "http://127.0.0.1:9", *touch)
    assert away.returncode == 2
    assert "cannot be reached" in away.stderr
    assert "point --server or TRACEBATON_URL at it" in away.stderr
    assert not marker.exists(), "the command ran although nothing could judge its flow"


def test_help_says_what_the_command_gets() -> None:
    done = tracebaton("run", "--help")
    for words in ("TRACEPARENT", "TRACESTATE", "BAGGAGE", "--server", "--format", "--junit", "3 when"):
        assert words in done.stdout.replace("\n", " "), words
