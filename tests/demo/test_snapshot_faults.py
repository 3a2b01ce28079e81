"""Golden flows against the demo shop, as users write them: a snapshot of the healthy
checkout, recorded once with `pytest --tracebaton-update`, catches every fault of the shop,
naming the culprit hop in the failure's first two lines, and its diff is pinned; the healthy
checkout passes it run after run, re-recording it changes no byte, and recording it afresh
gives the same hop structure every time — embedded and against a remote `tracebaton serve`.

The long versions (200 runs each) are marked `slow`; `make test` runs a few of each."""

from __future__ import annotations

import re

import pytest
from conftest import RunningServer

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.xdist_group("heavy")  # with the other heavy tests on one xdist worker


@pytest.fixture(autouse=True)
def _where_a_tester_works(monkeypatch: pytest.MonkeyPatch) -> None:
    # Recording is what a person does at their desk; under CI (CI set) the plugin refuses
    # --tracebaton-update, which tests/test_snapshot_plugin.py pins on its own.
    monkeypatch.delenv("CI", raising=False)

SHOP_TESTS = """
import re
from pathlib import Path

import httpx
import pytest

from tracebaton.demo import start_shop

SNAPSHOT = Path(__file__).parent / "__snapshots__" / "test_shop_snapshots" / "test_record.flow.yaml"
FRESH = Path(__file__).parent / "fresh"


@pytest.fixture(scope="session")
def shop(tracebaton_host, tmp_path_factory):
    shop = start_shop(lambda name: tracebaton_host.sut_env(service_name=name, headers=["x-request-id"]),
                      workdir=tmp_path_factory.mktemp("shop"))
    for _ in range(2):  # connection set-up and lazy imports stay out of the budgets
        httpx.post(shop.url + "/checkout", timeout=10).raise_for_status()
    yield shop
    shop.stop()


def checkout(tracebaton, shop, fault=None):
    with tracebaton.flow("checkout", baggage={"tenant": "acme"}) as flow:
        headers = {**flow.headers, **({"x-demo-fault": fault} if fault else {})}
        httpx.post(shop.url + "/checkout", headers=headers, timeout=10)
    return flow


def test_record(tracebaton, shop):
    checkout(tracebaton, shop).assert_snapshot(path=SNAPSHOT)


@pytest.mark.parametrize("attempt", range(RUNS))
def test_rerecord(tracebaton, shop, attempt):
    checkout(tracebaton, shop).assert_snapshot(path=SNAPSHOT)


@pytest.mark.parametrize("attempt", range(RUNS))
def test_fresh(tracebaton, shop, attempt, tmp_path):
    file = tmp_path / "fresh.flow.yaml"
    checkout(tracebaton, shop).assert_snapshot(path=file, update=True)
    # budgets are written once and kept, never recomputed: the structure is what must not vary
    FRESH.mkdir(exist_ok=True)
    (FRESH / f"{attempt}.yaml").write_text(re.sub(r"(, )?budget: \\w+", "", file.read_text()))


@pytest.mark.parametrize("fault", FAULTS)
def test_fault(tracebaton, shop, fault):
    checkout(tracebaton, shop, fault).assert_snapshot(path=SNAPSHOT)


@pytest.mark.parametrize("attempt", range(RUNS))
def test_healthy(tracebaton, shop, attempt):
    checkout(tracebaton, shop).assert_snapshot(path=SNAPSHOT)
"""

HOPS = "hops (- snapshot, + now, ! changed):"
GOLDEN: dict[str, list[str]] = {
    "drop-traceparent@cart": [
        "cart -> inventory  propagation: was connected, now broken — inventory started a new trace <trace>; "
        "headers: traceparent, tracestate were present, now missing",
        HOPS,
        "  test -> frontend",
        "    frontend -> auth",
        "    frontend -> cart",
        "!     cart -> inventory  propagation: was connected, now broken — inventory started a new trace "
        "<trace>; headers: traceparent, tracestate were present, now missing",
        "    frontend -> catalog",
        "    frontend -> payment",
        "    … 3 matching hops",
    ],
    "wrong-order@frontend": [
        "frontend -> payment  order: was after frontend -> cart, frontend -> catalog, now before them",
        HOPS,
        "  test -> frontend",
        "    frontend -> auth",
        "!   frontend -> payment  order: was after frontend -> cart, frontend -> catalog, now before them",
        "      payment -> payment-gateway",
        "    frontend -> cart",
        "    … 4 matching hops",
    ],
    "slow@inventory": [
        "cart -> inventory  budget: took <t>, budget <t>",
        HOPS,
        "  test -> frontend",
        "    frontend -> auth",
        "    frontend -> cart",
        "!     cart -> inventory  budget: took <t>, budget <t>",
        "    frontend -> catalog",
        "    frontend -> payment",
        "    … 3 matching hops",
    ],
    "retry@inventory": [
        "cart -> inventory  times: was 1, now 2; status: was ok, now 503 and ok",
        HOPS,
        "  test -> frontend",
        "    frontend -> auth",
        "    frontend -> cart",
        "!     cart -> inventory  times: was 1, now 2; status: was ok, now 503 and ok",
        "    frontend -> catalog",
        "    frontend -> payment",
        "    … 3 matching hops",
    ],
    "format-mismatch@payment": [
        "frontend -> payment  status: was ok, now 422",
        HOPS,
        "! test -> frontend  status: was ok, now 502",
        "    frontend -> auth",
        "    frontend -> cart",
        "      cart -> inventory",
        "    frontend -> catalog",
        "!   frontend -> payment  status: was ok, now 422",
        "-     payment -> payment-gateway  missing: in the snapshot, not seen now",
        "-   frontend -> orders  missing: in the snapshot, not seen now",
        "-     orders ~> email",
    ],
    "expired-token@auth": [
        "frontend -> auth  status: was ok, now 401",
        HOPS,
        "! test -> frontend  status: was ok, now 401",
        "!   frontend -> auth  status: was ok, now 401",
        "-   frontend -> cart  missing: in the snapshot, not seen now",
        "-     cart -> inventory",
        "-   frontend -> catalog  missing: in the snapshot, not seen now",
        "-   frontend -> payment  missing: in the snapshot, not seen now",
        "-     payment -> payment-gateway",
        "-   frontend -> orders  missing: in the snapshot, not seen now",
        "-     orders ~> email",
    ],
    "drop-request-id@cart": [
        "cart -> inventory  headers: x-request-id was present, now missing",
        HOPS,
        "  test -> frontend",
        "    frontend -> auth",
        "    frontend -> cart",
        "!     cart -> inventory  headers: x-request-id was present, now missing",
        "    frontend -> catalog",
        "    frontend -> payment",
        "    … 3 matching hops",
    ],
    "outlive-timeout@payment": [
        "frontend -> payment  status: was ok, now error ReadTimeout",
        HOPS,
        "! test -> frontend  status: was ok, now 504",
        "    frontend -> auth",
        "    frontend -> cart",
        "      cart -> inventory",
        "    frontend -> catalog",
        "!   frontend -> payment  status: was ok, now error ReadTimeout",
        "-     payment -> payment-gateway  missing: in the snapshot, not seen now",
        "-   frontend -> orders  missing: in the snapshot, not seen now",
        "-     orders ~> email",
    ],
    "lost-message@email": [
        "orders ~> email  missing: in the snapshot, not seen now",
        HOPS,
        "  … 6 matching hops",
        "      payment -> payment-gateway",
        "    frontend -> orders",
        "-     orders ~> email  missing: in the snapshot, not seen now",
    ],
}
VERDICT = re.compile(r"flow 'checkout' FAILED · trace <trace> · waited <t> \((settled|timeout|quiet)\)")


def normalized(line: str) -> str:
    line = re.sub(r"\b[0-9a-f]{32}\b", "<trace>", line)
    line = re.sub(r"\d+(\.\d+)? (ms|s|us|ns)\b", "<t>", line)
    # A budget passed beside another change depends on the machine's load (a call timed out
    # at 200 ms may outlast a 250 ms budget recorded on a quiet run): not part of the golden
    # text. A budget that is the change itself (slow@inventory) starts its line.
    return line.replace("; budget: took <t>, budget <t>", "")


def failures(text: str) -> dict[str, list[str]]:
    """fault -> its TraceAssertionError's verdict line, then its lines up to the end of the hop
    diff (the `snapshot:` line left out), normalized."""
    found: dict[str, list[str]] = {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"_+ test_fault\[(.+)\] _+$", line)
        if not match:
            continue
        start = next(i for i in range(index, len(lines)) if "TraceAssertionError: flow" in lines[i])
        margin = lines[start].index("tracebaton.TraceAssertionError")  # "E" and pytest's indent
        message = [lines[start][margin:].removeprefix("tracebaton.TraceAssertionError: ")]
        for entry in lines[start + 1:]:
            said = entry[margin:]
            if said.startswith(("checks of its flow spec", "spans near", "findings:", "see it:")):
                break
            if not said.startswith("snapshot: "):
                message.append(said.rstrip())
        found[match.group(1)] = [normalized(m) for m in message]
    return found


def run_shop(pytester: pytest.Pytester, runs: int, *args: str) -> pytest.RunResult:
    source = SHOP_TESTS.replace("FAULTS", repr(list(GOLDEN))).replace("RUNS", str(runs))
    pytester.makepyfile(test_shop_snapshots=source)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", *args, timeout=1800)


def check_golden_flows(pytester: pytest.Pytester, runs: int, *args: str) -> None:
    recorded = run_shop(pytester, runs, "-k", "test_record", "--tracebaton-update", *args)
    recorded.assert_outcomes(passed=1, deselected=3 * runs + len(GOLDEN))
    recorded.stdout.fnmatch_lines(["tracebaton: snapshots: 1 written (1 new, 0 updated)"])
    snapshot = pytester.path / "__snapshots__" / "test_shop_snapshots" / "test_record.flow.yaml"
    # editable like any spec: a fault that removes a hop need not wait the default 10 s for it
    text = snapshot.read_text().replace("\nname: checkout\n", "\nname: checkout\nwait: {timeout: 3s}\n")
    snapshot.write_text(text)

    # recording afresh (update=True on a file of its own) needs no --tracebaton-update: it
    # runs beside the judging, on the same shop
    judged = run_shop(pytester, runs, "-k", "test_fault or test_healthy or test_fresh", *args)
    judged.assert_outcomes(passed=2 * runs, failed=len(GOLDEN), deselected=runs + 1)
    found = failures(judged.stdout.str())
    assert set(found) == set(GOLDEN)
    for fault, lines in found.items():
        assert VERDICT.fullmatch(lines[0]), f"{fault}: {lines[0]!r}"
        assert lines[1:] == GOLDEN[fault], f"{fault}:\n" + "\n".join(lines)
    shapes = {path.read_text() for path in (pytester.path / "fresh").glob("*.yaml")}
    assert len(list((pytester.path / "fresh").glob("*.yaml"))) == runs
    assert len(shapes) == 1, "recording the same healthy flow afresh gave different structures"

    again = run_shop(pytester, runs, "-k", "test_rerecord", "--tracebaton-update", *args)
    again.assert_outcomes(passed=runs, deselected=2 * runs + 1 + len(GOLDEN))
    assert "tracebaton: snapshots:" not in again.stdout.str(), "a re-recording wrote the snapshot"
    assert snapshot.read_text() == text, "re-recording the healthy flow changed its snapshot"


def test_a_healthy_snapshot_catches_every_fault_and_holds_for_healthy_runs(pytester: pytest.Pytester) -> None:
    check_golden_flows(pytester, 3)


def test_the_same_against_a_remote_server(pytester: pytest.Pytester, server: RunningServer) -> None:
    check_golden_flows(pytester, 3, f"--tracebaton-url={server.api}")


@pytest.mark.slow
def test_200_runs_of_each(pytester: pytest.Pytester) -> None:
    check_golden_flows(pytester, 200)


@pytest.mark.slow
def test_200_runs_of_each_against_a_remote_server(pytester: pytest.Pytester, server: RunningServer) -> None:
    check_golden_flows(pytester, 200, f"--tracebaton-url={server.api}")

