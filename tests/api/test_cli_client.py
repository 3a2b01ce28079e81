"""`tracebaton check`, `spec` and `import` (DESIGN §8) as a user runs them against a real
server: exit 0 passed, 1 failed, 2 bad input with a message — never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import start_server
from scripted_traces import CHECKOUT_SPEC, import_spans, new_id, scripted_checkout


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    running = start_server(tmp_path_factory.mktemp("cli") / "store.duckdb")
    yield running.api
    assert running.stop() == 0, running.stderr


def tracebaton(
    *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TRACEBATON_")}
    done = subprocess.run(
        [sys.executable, "-m", "tracebaton", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**environment, **(env or {})},
        input=None if stdin is None else stdin.decode(),
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


@pytest.fixture
def specs(tmp_path: Path) -> dict[str, Path]:
    ok = tmp_path / "ok.yaml"
    ok.write_text(yaml.safe_dump({"name": "ok", "expect": {"hops": ["frontend -> cart"], "errors": "any"}}))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(CHECKOUT_SPEC))
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nexpect:\n  budgets: {trace: 2 parsecs}\n")
    unfound = tmp_path / "unfound.yaml"
    unfound.write_text("name: x\n")
    patient = tmp_path / "patient.yaml"
    patient.write_text("name: x\nwait: {timeout: 1h}\nexpect:\n  hops: [a -> b]\n")
    return {"ok": ok, "bad": bad, "broken": broken, "unfound": unfound, "patient": patient}


def test_check_exits_0_when_every_spec_passed_and_1_when_one_failed(
    api: str, specs: dict[str, Path], tmp_path: Path
) -> None:
    trace = scripted_checkout()
    import_spans(api, trace)
    passed = tracebaton("check", str(specs["ok"]), "--trace-id", trace.trace_id, "--server", api)
    assert passed.returncode == 0, passed.stderr
    assert f"flow 'ok' passed · trace {trace.trace_id}" in passed.stdout
    assert "1 spec: 1 passed, 0 failed" in passed.stdout

    junit = tmp_path / "report.xml"
    failed = tracebaton(
        "check",
        str(specs["ok"]),
        str(specs["bad"]),
        "--trace-id",
        trace.trace_id,
        "--junit",
        str(junit),
        env={"TRACEBATON_URL": api},
    )
    assert failed.returncode == 1, failed.stderr
    assert f"flow 'checkout' FAILED · trace {trace.trace_id}" in failed.stdout
    assert f"see it: {api}/flows/{trace.trace_id}" in failed.stdout
    assert "2 specs: 1 passed, 1 failed" in failed.stdout
    assert f"== {specs['ok']}\n" in failed.stdout, "with several specs each verdict says whose it is"

    suites = ET.parse(junit).getroot().findall("testsuite")
    assert [s.get("name") for s in suites] == ["ok", "checkout"]
    checkout = suites[1]
    failures = [case for case in checkout.findall("testcase") if case.find("failure") is not None]
    assert int(checkout.get("failures", "0")) == len(failures) >= 1
    assert {case.get("name") for case in failures} >= {"errors"}
    assert all(case.get("classname") == "checkout" for case in checkout.findall("testcase"))
    properties = {p.get("name"): p.get("value") for p in checkout.iter("property")}
    assert properties["trace_id"] == trace.trace_id

    runs = httpx.get(f"{api}/api/runs", params={"trace_id": trace.trace_id}).json()["runs"]
    assert {r["test_id"] for r in runs} >= {str(specs["ok"]), str(specs["bad"])}, (
        "the CLI's checks are recorded"
    )
    session = next(r["session_id"] for r in runs if r["test_id"] == str(specs["bad"]))
    assert sorted(r["test_id"] for r in runs if r["session_id"] == session) == sorted(
        [str(specs["ok"]), str(specs["bad"])]
    ), "one invocation, one session"


def test_check_of_one_failing_spec_names_the_culprit_hop_on_line_2(api: str, specs: dict[str, Path]) -> None:
    trace = scripted_checkout()
    import_spans(api, trace)
    done = tracebaton("check", str(specs["bad"]), "--trace-id", trace.trace_id, "--server", api)
    assert done.returncode == 1, done.stderr
    first, second, *_ = done.stdout.splitlines()
    assert first.startswith(f"flow 'checkout' FAILED · trace {trace.trace_id} · waited ")
    # Settled, or violated when the check came before the flow settled: never (satisfied).
    assert first.rsplit(" ", 1)[1] in ("(settled)", "(violated)"), first
    run = httpx.get(f"{api}/api/runs", params={"trace_id": trace.trace_id}).json()["runs"][0]
    assert second == run["first_divergence"]
    assert second.startswith("cart -> inventory "), "the line names the hop that broke"
    assert "==" not in done.stdout


def test_a_spec_naming_a_service_never_stored_is_said_during_the_wait(api: str, tmp_path: Path) -> None:
    trace = scripted_checkout()
    import_spans(api, trace)
    spec = tmp_path / "typo.yaml"
    spec.write_text(yaml.safe_dump({"name": "typo", "wait": {"timeout": "3s"},
                                    "expect": {"hops": ["cart -> invntory"], "errors": "any"}}))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TRACEBATON_")}
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "tracebaton", "check", str(spec), "--trace-id", trace.trace_id,
         "--server", api],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    assert process.stderr is not None
    with process:
        warning = process.stderr.readline()
        warned = time.monotonic()
        out, rest = process.communicate(timeout=120)
    finished = time.monotonic()
    assert warning.startswith(
        "tracebaton: flow 'typo': no span of 'invntory' ever arrived; seen: inventory, ")
    assert warning.rstrip().endswith("; its check waits for it up to wait.timeout (3 s)")
    # said while the check waited, a second in, long before its 3 s were out
    assert finished - warned > 1.5, (warned - started, finished - warned)
    assert process.returncode == 1, rest
    assert "cart -> invntory: never seen" in out


def test_check_json_prints_one_array_of_results(api: str, specs: dict[str, Path]) -> None:
    trace = scripted_checkout()
    import_spans(api, trace)
    done = tracebaton(
        "check",
        str(specs["ok"]),
        str(specs["bad"]),
        "--trace-id",
        trace.trace_id,
        "--server",
        api,
        "--format",
        "json",
    )
    assert done.returncode == 1
    results = json.loads(done.stdout)
    assert [r["name"] for r in results] == ["ok", "checkout"]
    assert [r["passed"] for r in results] == [True, False]
    assert all(r["trace_id"] == trace.trace_id and r["run_id"] for r in results)
    assert results[1]["first_divergence"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("{missing}",), "no such flow spec file"),
        (("{broken}",), "expect.budgets.trace"),
        (("{unfound}",), "has no find: section"),
        (("{ok}", "--trace-id", "xyz"), "--trace-id 'xyz' is not 32 hex digits"),
        (("{ok}", "--trace-id", "a" * 32, "--server", "http://127.0.0.1:9"), "cannot be reached"),
        (("{ok}", "--trace-id", "a" * 32, "--server", "ftp://x"), "is not an http(s) URL"),
        # read before any spec is judged: ok.yaml's verdict is not lost to the second file
        (("{ok}", "{patient}", "--trace-id", "a" * 32, "--server", "http://127.0.0.1:9"),
         "patient.yaml: wait.timeout 1 h is longer than a server-side check waits (10 m)"),
        (("{folder}",), "is a folder"),
    ],
    ids=["missing-file", "bad-spec", "no-find", "bad-trace-id", "unreachable", "bad-url", "wait-too-long",
         "folder"],
)
def test_check_bad_input_exits_2_with_a_message(
    specs: dict[str, Path], tmp_path: Path, args: tuple[str, ...], words: str
) -> None:
    paths = {name: str(path) for name, path in specs.items()} | {"missing": str(tmp_path / "nope.yaml"),
                                                                  "folder": str(tmp_path)}
    done = tracebaton("check", *(a.format(**paths) for a in args))
    assert done.returncode == 2, done.stdout + done.stderr
    assert words in done.stderr
    assert done.stderr.startswith("tracebaton check: error: ")


def test_check_of_an_unknown_trace_fails_at_the_timeout(api: str, tmp_path: Path) -> None:
    spec = tmp_path / "quick.yaml"
    spec.write_text("name: quick\nwait: {timeout: 300ms}\nexpect:\n  hops: [a -> b]\n")
    done = tracebaton("check", str(spec), "--trace-id", new_id(16), "--server", api)
    assert done.returncode == 1
    assert "(timeout)" in done.stdout.splitlines()[0]


def test_spec_prints_yaml_that_the_trace_then_passes(api: str, tmp_path: Path) -> None:
    trace = scripted_checkout(inventory_fails=False)
    import_spans(api, trace)
    done = tracebaton("spec", trace.trace_id, "--server", api, "--name", "checkout")
    assert done.returncode == 0, done.stderr
    spec = yaml.safe_load(done.stdout)
    assert spec["name"] == "checkout"
    assert spec["expect"]["hops"] == ["frontend -> auth", "frontend -> cart", "cart -> inventory"]
    saved = tmp_path / "checkout.yaml"
    saved.write_text(done.stdout)
    assert tracebaton("check", str(saved), "--trace-id", trace.trace_id, "--server", api).returncode == 0
    unknown = tracebaton("spec", new_id(16), "--server", api)
    assert unknown.returncode == 2
    assert "answered 404" in unknown.stderr
    bad_id = tracebaton("spec", "nope", "--server", api)
    assert bad_id.returncode == 2
    assert "TRACE_ID 'nope' is not 32 hex digits; copy it from a traceparent header" in bad_id.stderr
    upper = tracebaton("spec", trace.trace_id.upper(), "--server", api, "--name", "checkout")
    assert upper.returncode == 0, upper.stderr
    assert upper.stdout == done.stdout
    nameless = tracebaton("spec", trace.trace_id, "--server", api, "--name", "")
    assert nameless.returncode == 2
    assert "--name '' is empty; name the flow as its tests call it" in nameless.stderr


def test_import_a_jsonl_file_and_from_stdin(api: str, tmp_path: Path) -> None:
    trace = scripted_checkout()
    path = tmp_path / "spans.jsonl"
    path.write_bytes(trace.jsonl())
    done = tracebaton("import", str(path), "--server", api)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"imported 7 spans from 4 requests into {api}"
    assert len(httpx.get(f"{api}/api/traces/{trace.trace_id}").json()["spans"]) == 7
    other = scripted_checkout()
    piped = tracebaton("import", "-", "--server", api, stdin=other.jsonl())
    assert piped.returncode == 0, piped.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"resourceSpans": []}\n{"resourceSpans": 7}\n')
    refused = tracebaton("import", str(bad), "--server", api)
    assert refused.returncode == 2
    assert refused.stderr.startswith(f"tracebaton import: error: {bad}: line 2: "), refused.stderr
    missing = tracebaton("import", str(tmp_path / "nope.jsonl"), "--server", api)
    assert missing.returncode == 2
    assert "cannot read it" in missing.stderr


def test_import_of_a_file_that_is_not_json_says_what_the_file_must_be(api: str, tmp_path: Path) -> None:
    """Not an HTTP header to set: a CLI user gives a file, so the message is about the file."""
    for name, content in (("notes.txt", b"hello world\n"), ("spans.pb", bytes(range(256)))):
        path = tmp_path / name
        path.write_bytes(content)
        done = tracebaton("import", str(path), "--server", api)
        assert done.returncode == 2, done.stdout + done.stderr
        assert done.stderr.startswith(f"tracebaton import: error: {path}: it is not JSON ("), done.stderr
        assert done.stderr.rstrip().endswith(
            'import takes OTLP/JSON: an export request ({"resourceSpans": [...]}), or JSON Lines of them '
            "as the OpenTelemetry file exporter writes; a protobuf or compressed export is not taken here "
            "(an exporter sends protobuf to the OTLP receivers instead)"
        ), done.stderr
        assert "Content-Type" not in done.stderr
    piped = tracebaton("import", "-", "--server", api, stdin=b"")
    assert piped.returncode == 2
    assert piped.stderr.startswith("tracebaton import: error: stdin: the body is empty"), piped.stderr


def test_help_lists_the_client_commands() -> None:
    done = tracebaton("--help")
    for command in ("serve", "check", "spec", "import"):
        assert command in done.stdout
    check = tracebaton("check", "--help")
    for flag in ("--trace-id", "--server", "--junit", "--format"):
        assert flag in check.stdout
