"""`tracebaton demo` as a newcomer runs it: a real subprocess that starts tracebaton and the
shop, judges every checkout, prints the table, and (without --check-only) serves the
dashboard until Ctrl-C."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tracebaton.demo import CASES, RACE_CASES, culprit_of, render_table
from tracebaton.demo import Outcome as DemoOutcome

pytestmark = pytest.mark.xdist_group("heavy")  # with the other heavy tests on one xdist worker

DEMO_TIMEOUT_S = 180


def demo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "tracebaton", "demo", *args]


def processes_under(folder: Path) -> list[str]:
    """Live processes that run in `folder` or name it (every shop service runs in its workdir)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if (str(folder) in cmdline or cwd.startswith(str(folder))) and state != "Z":
            found.append(f"{entry.name} in {cwd}: {cmdline}")
    return found


def assert_table(stdout: str) -> None:
    lines = stdout.splitlines()
    assert re.match(r"flow +expected +verdict +culprit hop +matched$", lines[0]), lines[0]
    for case in (*CASES, *RACE_CASES):
        row = next((line for line in lines if line.startswith(case.flow + "  ")), None)
        assert row is not None, f"no row for {case.flow!r}:\n{stdout}"
        cells = re.split(r"\s{2,}", row.strip())
        verdict = "pass" if case.expect_pass else "fail"
        assert cells == [case.flow, verdict, verdict, case.culprit or "-", "as expected"], row
    total = len(CASES) + len(RACE_CASES)
    assert f"{total} of {total} verdicts as expected" in stdout
    # what tracebaton said about the race, in words a person reads
    assert re.search(
        r"cart -> inventory: two reservations of 'mug' both saw 1 in stock, overlapped by \d+ ms and "
        r"both succeeded: oversold by 1",
        stdout,
    ), stdout


def test_check_only_exits_0_when_every_verdict_matched(tmp_path: Path) -> None:
    done = subprocess.run(
        demo_command("--check-only", "--workdir", str(tmp_path)),
        capture_output=True, text=True, timeout=DEMO_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert_table(done.stdout)
    assert "Traceback" not in done.stderr, done.stderr
    # the progress, one line per step off a terminal
    assert "[ 1/13] starting tracebaton" in done.stderr
    assert "[13/13] oversell" in done.stderr
    assert "serving" not in done.stdout, "--check-only must not serve the dashboard"
    assert (tmp_path / "demo.duckdb").exists(), "--workdir keeps the store"
    assert (tmp_path / "shop" / "logs" / "frontend.log").exists()
    assert processes_under(tmp_path) == [], "a shop process outlived the demo"


def test_serving_mode_shows_the_runs_and_ends_cleanly_on_sigint(tmp_path: Path) -> None:
    process = subprocess.Popen(
        demo_command("--api-port", "0", "--workdir", str(tmp_path)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()
    stderr: list[str] = []

    def pump_stdout() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    def pump_stderr() -> None:
        assert process.stderr is not None
        stderr.extend(process.stderr)

    pumps = [threading.Thread(target=pump, daemon=True) for pump in (pump_stdout, pump_stderr)]
    for pump in pumps:
        pump.start()
    seen: list[str] = []
    try:
        while not seen or seen[-1] != "serving until Ctrl-C\n":
            line = lines.get(timeout=DEMO_TIMEOUT_S)
            assert line is not None, "".join(seen) + "".join(stderr)
            seen.append(line)
        text = "".join(seen)
        assert_table(text)
        url = re.search(r"^dashboard: (http://127\.0\.0\.1:\d+)/ ", text, re.M)
        failed = re.search(r"^a failed flow: (http://\S+/flows/([0-9a-f]{32})) ", text, re.M)
        assert url is not None, text
        assert failed is not None, text
        assert not re.search(r"https?://\S*token", text), "no printed link carries a token"
        api = url.group(1)
        with httpx.Client(base_url=api, timeout=10) as http:
            assert http.get("/").status_code == 200
            runs = http.get("/api/runs", params={"limit": 100}).json()["runs"]
            rows = [*CASES, *RACE_CASES]
            assert len(runs) == len(rows), "each row's verdict is recorded for the dashboard, one run a row"
            assert sum(not run["passed"] for run in runs) == sum(not c.expect_pass for c in rows)
            assert {run["test_id"] for run in runs} == {f"tracebaton demo: {c.flow}" for c in rows}
            across = next(r for r in runs if r["test_id"] == f"tracebaton demo: {RACE_CASES[2].flow}")
            assert not across["passed"]
            said = across["first_divergence"] or ""
            assert said.startswith("cart -> inventory: two reservations of 'mug'"), said
            view = http.get(f"/api/flows/{across['run_id']}").json()
            assert len(view["result"]["trace_ids"]) == 2, "its Flow page shows both checkouts' traces"
            assert http.get(f"/api/flows/{failed.group(2)}").status_code == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0, "".join(stderr)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pump in pumps:
            pump.join(10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    rest = []
    while (line := lines.get_nowait()) is not None:
        rest.append(line)
    assert "tracebaton demo: stopped\n" in rest
    assert "Traceback" not in "".join(stderr), "".join(stderr)
    assert processes_under(tmp_path) == [], "a shop process outlived the demo"
    with pytest.raises(httpx.ConnectError):
        httpx.get(api + "/healthz", timeout=5)


def test_culprit_is_the_hop_a_divergence_starts_with() -> None:
    assert culprit_of("cart -> inventory: took 405 ms, budget 200 ms") == "cart -> inventory"
    assert culprit_of("frontend -> payment answered 422 (and 1 more)") == "frontend -> payment"
    assert culprit_of("orders ~> email: never seen") == "orders ~> email"
    assert culprit_of("the flow's trace never arrived") is None
    assert culprit_of(None) is None


def test_the_table_says_which_verdict_was_unexpected() -> None:
    slow = next(case for case in CASES if case.fault == "slow@inventory")
    table = render_table([
        DemoOutcome(CASES[0], True, None, None),
        DemoOutcome(slow, False, "frontend -> payment", "frontend -> payment: took 1 s"),
        DemoOutcome(RACE_CASES[2], True, None, "no oversell"),
    ])
    rows = table.splitlines()
    assert rows[2].split() == ["checkout", "pass", "pass", "-", "as", "expected"]
    assert rows[3].endswith("UNEXPECTED (expected cart -> inventory)")
    assert rows[4].endswith("UNEXPECTED")


def test_the_readme_shows_the_table_as_the_demo_prints_it() -> None:
    """The README's rows of the demo's table are the rows every verdict as expected gives."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    table = re.search(r"^```\n(flow .*?)^```$", readme, re.M | re.S)
    assert table is not None, "the README shows the demo's table"
    shown = table.group(1).splitlines()
    rows = [row for row in shown if not row.lstrip().startswith("…")]
    expected = {o.case.flow: o for o in (
        DemoOutcome(c, c.expect_pass, c.culprit, None) for c in (*CASES, *RACE_CASES))}
    printed = render_table(list(expected.values())).splitlines()
    assert rows[:2] == printed[:2], "the header and its rule, `matched` column included"
    for row in rows[2:]:
        flow = row.split("  ", 1)[0]
        assert row in printed, f"README row {flow!r} is not what the demo prints"
