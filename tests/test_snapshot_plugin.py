"""Golden flows in pytest, as users meet them: a test file of their own run by pytest in a
subprocess, services in their own processes. `flow.assert_snapshot()` fails with the command
that writes a missing snapshot, `--tracebaton-update` writes (and deletes) them and counts
them, a changed flow fails naming its first changed hop, unused snapshots are reported the way
syrupy reports them (`-k`, node ids, xdist), bad files say what to do, and CI may not update."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import SUPPORT, RunningServer
from test_pytest_plugin import error_lines, normalized

pytest_plugins = ["pytester"]

TEST_FILE = f"""
import os, subprocess, sys

import pytest

SERVICES = {str(SUPPORT / "flow_services.py")!r}


def run(tracebaton, scenario):
    with tracebaton.flow("checkout", baggage={{"tenant": "acme"}}) as flow:
        subprocess.run([sys.executable, SERVICES, "--traceparent", flow.headers["traceparent"],
                        "--baggage", flow.headers["baggage"], "--scenario", scenario],
                       env={{**os.environ, **tracebaton.sut_env(headers=["x-request-id"])}},
                       check=True, capture_output=True)
    return flow


def test_checkout(tracebaton):
    run(tracebaton, os.environ.get("SCENARIO", "healthy")).assert_snapshot()


@pytest.mark.parametrize("tenant", ["acme", "a/b c"])
def test_tenant(tracebaton, tenant):
    run(tracebaton, "healthy").assert_snapshot()


def test_two(tracebaton):
    run(tracebaton, "healthy").assert_snapshot(name="first")
    run(tracebaton, "healthy").assert_snapshot(name="second")
"""

SNAPSHOTS = ("test_checkout.flow.yaml", "test_tenant[a_b_c].flow.yaml", "test_tenant[acme].flow.yaml",
             "test_two.first.flow.yaml", "test_two.second.flow.yaml")


@pytest.fixture(autouse=True)
def _a_run_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID",
                 "TRACEBATON_URL", "TRACEBATON_TOKEN", "TRACEBATON_INGEST_TOKEN", "CI", "SCENARIO"):
        monkeypatch.delenv(name, raising=False)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=300)


def folder(pytester: pytest.Pytester) -> Path:
    return pytester.path / "__snapshots__" / "test_shop"


_RECORDED: dict[str, bytes] = {}
"""The snapshots the first `recorded` wrote: later tests start from copies (a run costs seconds)."""


@pytest.fixture
def recorded(pytester: pytest.Pytester) -> None:
    """The test file with its snapshots, written by a run with --tracebaton-update."""
    pytester.makepyfile(test_shop=TEST_FILE)
    if not _RECORDED:
        outcome = run(pytester, "--tracebaton-update")
        outcome.assert_outcomes(passed=4)
        outcome.stdout.fnmatch_lines(["tracebaton: snapshots: 5 written (5 new, 0 updated)"])
        _RECORDED.update({p.name: p.read_bytes() for p in folder(pytester).iterdir()})
        return
    folder(pytester).mkdir(parents=True)
    for name, data in _RECORDED.items():
        (folder(pytester) / name).write_bytes(data)


def test_a_missing_snapshot_fails_with_the_command_that_writes_it(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_shop=TEST_FILE)
    outcome = run(pytester, "-k", "test_checkout or acme")
    outcome.assert_outcomes(failed=2, deselected=2)
    lines = error_lines(outcome)
    first = lines.index("tracebaton.TraceAssertionError: flow 'checkout': no snapshot "
                        "__snapshots__/test_shop/test_checkout.flow.yaml · trace <trace>")
    assert lines[first + 1] == (
        "write it from this flow: pytest --tracebaton-update test_shop.py::test_checkout")
    assert ("write it from this flow: pytest --tracebaton-update 'test_shop.py::test_tenant[acme]'"
            in lines)
    assert not folder(pytester).exists()


def test_update_writes_every_snapshot_and_says_how_many(
    recorded: None, pytester: pytest.Pytester
) -> None:
    assert sorted(p.name for p in folder(pytester).iterdir()) == sorted(SNAPSHOTS)
    text = (folder(pytester) / "test_checkout.flow.yaml").read_text()
    assert "snapshot:\n  format: 1\n  hops:\n  - test -> frontend:\n" in text
    assert "payment -> 127.0.0.1:9001: {kind: peer, budget: 250ms}" in text
    assert re.search(r"^\s+calls: \[orders ~> email\]$", text, re.M), text


def test_a_recorded_flow_passes_again_and_an_update_of_it_changes_no_byte(
    recorded: None, pytester: pytest.Pytester
) -> None:
    before = {p.name: p.read_bytes() for p in folder(pytester).iterdir()}
    run(pytester).assert_outcomes(passed=4)
    outcome = run(pytester, "--tracebaton-update")
    outcome.assert_outcomes(passed=4)
    assert "tracebaton: snapshots:" not in outcome.stdout.str()  # nothing written
    assert {p.name: p.read_bytes() for p in folder(pytester).iterdir()} == before


def test_a_changed_flow_fails_naming_the_first_changed_hop_until_it_is_accepted(
    recorded: None, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCENARIO", "retry")
    outcome = run(pytester, "-k", "test_checkout")
    outcome.assert_outcomes(failed=1, deselected=3)
    lines = error_lines(outcome)
    first = lines.index("tracebaton.TraceAssertionError: flow 'checkout' FAILED · trace <trace> · waited <t> "
                        "(settled)")
    assert lines[first + 1:first + 12] == [
        "cart -> inventory  times: was 1, now 2; status: was ok, now 503 and ok",
        "snapshot: __snapshots__/test_shop/test_checkout.flow.yaml (differs)",
        "hops (- snapshot, + now, ! changed):",
        "test -> frontend",
        "frontend -> auth",
        "frontend -> cart",
        "!     cart -> inventory  times: was 1, now 2; status: was ok, now 503 and ok",
        "frontend -> payment",
        "payment -> 127.0.0.1:9001",
        "… 2 matching hops",
        "checks of its flow spec:",
    ]
    assert ("FAIL    errors: cart -> inventory: inventory answered 503 in 'POST /reserve' (and 1 more)"
            in lines)
    assert ("accept this flow as the snapshot: pytest --tracebaton-update test_shop.py::test_checkout"
            in lines)
    summary = normalized(outcome.stdout.str())
    assert "cart -> inventory  times: was 1, now 2; status: was ok, now 503 and ok" in summary

    accepted = run(pytester, "-k", "test_checkout", "--tracebaton-update")
    accepted.assert_outcomes(passed=1, deselected=3)
    accepted.stdout.fnmatch_lines(["tracebaton: snapshots: 1 written (0 new, 1 updated)"])
    assert "cart -> inventory:\n" in (folder(pytester) / "test_checkout.flow.yaml").read_text()
    run(pytester, "-k", "test_checkout").assert_outcomes(passed=1, deselected=3)


def edit_hop(steps: list[Any], hop: str, **props: Any) -> bool:
    """Set `props` on `hop` wherever the snapshot's steps (and their calls) hold it."""
    found = False
    for index, step in enumerate(steps):
        if isinstance(step, dict) and "any order" in step:
            found |= edit_hop(step["any order"], hop, **props)
            continue
        name, have = (step, {}) if isinstance(step, str) else next(iter(step.items()))
        if name == hop:
            steps[index] = {name: {**(have or {}), **props}}
            found = True
        elif have and "calls" in have:
            found |= edit_hop(have["calls"], hop, **props)
    return found


def hop_props(steps: list[Any], hop: str) -> dict[str, Any] | None:
    for step in steps:
        if isinstance(step, dict) and "any order" in step:
            if (inner := hop_props(step["any order"], hop)) is not None:
                return inner
            continue
        name, have = (step, {}) if isinstance(step, str) else next(iter(step.items()))
        if name == hop:
            return dict(have or {})
        if have and "calls" in have and (inner := hop_props(have["calls"], hop)) is not None:
            return inner
    return None


def test_tolerances_edited_into_the_file_hold_and_survive_an_update_unless_contradicted(
    recorded: None, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = folder(pytester) / "test_checkout.flow.yaml"
    data = yaml.safe_load(file.read_text())
    hops = data["snapshot"]["hops"]
    assert edit_hop(hops, "cart -> inventory", times="1..2")  # a retry is fine
    assert edit_hop(hops, "orders ~> email", optional=True)
    assert edit_hop(hops, "frontend -> auth", times="2..3")  # every run contradicts this one
    file.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("SCENARIO", "retry")
    outcome = run(pytester, "-k", "test_checkout")
    outcome.assert_outcomes(failed=1, deselected=3)
    lines = error_lines(outcome)
    assert "!   frontend -> auth  times: was 2..3, now 1" in lines, lines
    assert "!     cart -> inventory  status: was ok, now 503 and ok" in lines, "two calls are within 1..2"
    accepted = run(pytester, "-k", "test_checkout", "--tracebaton-update")
    accepted.stdout.fnmatch_lines(["tracebaton: snapshots: 1 written (0 new, 1 updated)"])
    kept = yaml.safe_load(file.read_text())["snapshot"]["hops"]
    assert hop_props(kept, "cart -> inventory")["times"] == "1..2"  # type: ignore[index]
    assert hop_props(kept, "orders ~> email")["optional"] is True  # type: ignore[index]
    assert "times" not in hop_props(kept, "frontend -> auth")  # type: ignore[operator]
    run(pytester, "-k", "test_checkout").assert_outcomes(passed=1, deselected=3)


def test_an_unused_snapshot_is_reported_and_update_deletes_it(
    recorded: None, pytester: pytest.Pytester
) -> None:
    """A test renamed leaves its snapshot behind: reported when its file runs whole (even under
    -k, which only deselects), never for tests deselected, or when node ids pick the tests."""
    stale = folder(pytester) / "test_old_name.flow.yaml"
    stale.write_text((folder(pytester) / "test_checkout.flow.yaml").read_text())
    outcome = run(pytester, "-k", "test_checkout")
    outcome.assert_outcomes(passed=1, deselected=3)
    outcome.stdout.fnmatch_lines([
        "tracebaton: 1 unused snapshot (their tests ran and compared with none of them); "
        "`pytest --tracebaton-update` deletes them:",
        "    __snapshots__/test_shop/test_old_name.flow.yaml",
    ])
    picked = run(pytester, "test_shop.py::test_checkout")
    picked.assert_outcomes(passed=1)
    assert "unused snapshot" not in picked.stdout.str()
    deleted = run(pytester, "--tracebaton-update")
    deleted.assert_outcomes(passed=4)
    deleted.stdout.fnmatch_lines(["tracebaton: snapshots: 0 written (0 new, 0 updated), 1 unused deleted",
                                  "    deleted __snapshots__/test_shop/test_old_name.flow.yaml"])
    assert not stale.exists()
    assert sorted(p.name for p in folder(pytester).iterdir()) == sorted(SNAPSHOTS)


def test_under_lf_a_file_run_in_part_reports_no_snapshot_of_the_tests_it_left_out(
    recorded: None, pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--lf runs the failed tests only: the others' snapshots, and one no test collected owns,
    say nothing about the file, so none of them is unused."""
    def with_cache(*args: str) -> pytest.RunResult:  # --lf needs the cache the other runs turn off
        return pytester.runpytest_subprocess(*args, timeout=300)

    monkeypatch.setenv("SCENARIO", "retry")
    with_cache().assert_outcomes(passed=3, failed=1)
    monkeypatch.delenv("SCENARIO")
    (folder(pytester) / "test_old_name.flow.yaml").write_text(
        (folder(pytester) / "test_checkout.flow.yaml").read_text())
    outcome = with_cache("--lf")
    outcome.assert_outcomes(passed=1)  # pytest collects the failed test alone
    assert "rerun previous 1 failure" in outcome.stdout.str()
    assert "unused snapshot" not in outcome.stdout.str(), outcome.stdout.str()
    whole = with_cache()
    whole.assert_outcomes(passed=4)
    whole.stdout.fnmatch_lines(["tracebaton: 1 unused snapshot *", "    *test_old_name.flow.yaml"])


def test_a_test_that_stopped_comparing_reports_its_snapshot_but_a_failed_one_does_not(
    recorded: None, pytester: pytest.Pytester
) -> None:
    pytester.makepyfile(test_shop=TEST_FILE.replace(
        '    run(tracebaton, "healthy").assert_snapshot(name="second")\n', "").replace(
        'def test_tenant(tracebaton, tenant):\n', 'def test_tenant(tracebaton, tenant):\n    assert 0\n'))
    outcome = run(pytester)
    outcome.assert_outcomes(passed=2, failed=2)
    outcome.stdout.fnmatch_lines(["tracebaton: 1 unused snapshot *", "    *test_two.second.flow.yaml"])


def test_under_xdist_workers_report_what_they_used_and_the_controller_decides(
    recorded: None, pytester: pytest.Pytester
) -> None:
    (folder(pytester) / "test_old_name.flow.yaml").write_text("name: x\nsnapshot: {hops: []}\n")
    (folder(pytester) / "test_checkout.flow.yaml").unlink()
    outcome = run(pytester, "-n", "2", "--tracebaton-update")
    outcome.assert_outcomes(passed=4)
    outcome.stdout.fnmatch_lines(["tracebaton: snapshots: 1 written (1 new, 0 updated), 1 unused deleted",
                                  "    deleted __snapshots__/test_shop/test_old_name.flow.yaml"])
    assert sorted(p.name for p in folder(pytester).iterdir()) == sorted(SNAPSHOTS)
    again = run(pytester, "-n", "2")
    again.assert_outcomes(passed=4)
    assert "unused snapshot" not in again.stdout.str()


def test_update_is_refused_under_ci(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_shop=TEST_FILE)
    monkeypatch.setenv("CI", "true")
    outcome = run(pytester, "--tracebaton-update")
    assert outcome.ret == pytest.ExitCode.USAGE_ERROR
    outcome.stderr.fnmatch_lines([
        "ERROR: --tracebaton-update is refused when CI is set (CI='true'): a snapshot is what a person "
        "reviewed and committed, and a CI run compares with it, never rewrites it. Run "
        "`pytest --tracebaton-update` where you work, review the change to __snapshots__/, commit it",
    ])
    assert not folder(pytester).exists()


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda text: text.replace("snapshot:\n", "snapshot: [\n"),
         "line 13, column 7: while parsing a flow sequence"),
        (lambda text: text.replace("name: checkout\n", "name: checkout\nwait: {timeout: soon}\n"),
         "the flow spec above `snapshot:` is invalid: flow spec 'checkout': wait.timeout: 'soon'"),
        (lambda text: text.replace("  hops:\n", "  hop:\n"), "snapshot.hop: unknown key"),
    ],
)
def test_a_bad_snapshot_file_says_what_to_do(
    recorded: None, pytester: pytest.Pytester, edit: object, says: str
) -> None:
    file = folder(pytester) / "test_checkout.flow.yaml"
    file.write_text(edit(file.read_text()))  # type: ignore[operator]
    broken = file.read_bytes()
    outcome = run(pytester, "-k", "test_checkout", "--tracebaton-update")  # an update does not overwrite it
    outcome.assert_outcomes(failed=1, deselected=3)
    text = outcome.stdout.str()
    assert "tracebaton.FlowSpecError: __snapshots__/test_shop/test_checkout.flow.yaml: " in text
    assert says in text, text
    assert "record it again with `pytest --tracebaton-update`" in text, text
    assert file.read_bytes() == broken


def test_remote_mode_judges_the_snapshot_on_the_server(pytester: pytest.Pytester, server: RunningServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_shop=TEST_FILE)
    remote = f"--tracebaton-url={server.api}"
    recorded = run(pytester, remote, "-k", "test_checkout", "--tracebaton-update")
    recorded.assert_outcomes(passed=1, deselected=3)
    run(pytester, remote, "-k", "test_checkout").assert_outcomes(passed=1, deselected=3)
    monkeypatch.setenv("SCENARIO", "drop-request-id")
    outcome = run(pytester, remote, "-k", "test_checkout")
    outcome.assert_outcomes(failed=1, deselected=3)
    lines = error_lines(outcome)
    first = next(i for i, line in enumerate(lines) if "TraceAssertionError: flow 'checkout' FAILED" in line)
    assert lines[first + 1] == "cart -> inventory  headers: x-request-id was present, now missing"
    assert f"see it: {server.api}/flows/<trace>" in lines
    assert not (pytester.path / ".tracebaton").exists()
