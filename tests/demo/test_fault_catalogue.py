"""The fault catalogue as users read it: a test file of their own, run by pytest with the
tracebaton plugin against the demo shop; each fault's failure message is pinned (ids,
durations and the wait reason normalized), and the healthy checkout passes 200 times in a
row, embedded and against a remote `tracebaton serve`.

The 200-run versions are marked `slow` (`make test-slow`); `make test` runs 20 of each."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import RunningServer

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.xdist_group("heavy")  # with the other heavy tests on one xdist worker

SHOP_TESTS = """
import httpx
import pytest

from tracebaton.demo import start_shop

SPEC = {
    "name": "checkout",
    "wait": {"timeout": "2500ms"},
    "expect": {
        "hops": ["test -> frontend", "frontend -> auth", ["frontend -> cart", "frontend -> catalog"],
                 "cart -> inventory", "frontend -> payment", "payment -> payment-gateway",
                 "frontend -> orders", "orders ~> email"],
        "times": {"cart -> inventory": 1, "* -> payment": 1},
        "budgets": {"hops": {"cart -> inventory": "200ms"}, "deadlines": True, "deadline_slack": "50ms"},
        "propagation": {"headers": {"traceparent": "valid", "x-request-id": "same"},
                        "baggage": {"tenant": "acme"}},
    },
}


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


@pytest.mark.parametrize("fault", FAULTS)
def test_fault(tracebaton, shop, fault):
    checkout(tracebaton, shop, fault).assert_spec(SPEC)


@pytest.mark.parametrize("attempt", range(HEALTHY_RUNS))
def test_healthy(tracebaton, shop, attempt):
    checkout(tracebaton, shop).assert_spec({**SPEC, "wait": {"timeout": "10s", "settle": "100ms"}})
"""

GOLDEN = {
    "drop-traceparent@cart": [
        "cart -> inventory: propagation broken — inventory started a new trace <trace>",
    ],
    "wrong-order@frontend": [
        "frontend -> payment: happened before frontend -> cart, expected after it<more>",
    ],
    "slow@inventory": ["cart -> inventory: took <t>, budget <t>"],
    # the failed first attempt may fail the flow before the retry's spans arrive
    "retry@inventory": [
        "cart -> inventory: happened 2 times, expected 1 (a retry?)",
        "cart -> inventory: inventory answered 503 in 'POST /reserve'<more>",
    ],
    "format-mismatch@payment": ["frontend -> payment answered 422<more>"],
    "expired-token@auth": ["frontend -> auth answered 401"],
    "drop-request-id@cart": ["cart -> inventory: x-request-id missing on inventory's request"],
    "outlive-timeout@payment": ["frontend -> payment failed: ReadTimeout<more>"],
    "lost-message@email": [
        "orders ~> email: never seen; orders produced 'send order-confirmation' (span <span>) but no "
        "consumer span arrived with a link to it",
    ],
}


def normalized(line: str) -> str:
    line = re.sub(r"\b[0-9a-f]{32}\b", "<trace>", line)
    line = re.sub(r"\b[0-9a-f]{16}\b", "<span>", line)
    line = re.sub(r"\d+(\.\d+)? (ms|s|us|ns)\b", "<t>", line)
    line = re.sub(r"\((satisfied|settled|timeout|violated|quiet)\)", "(<why>)", line)
    return re.sub(r" \(and \d+ more\)", "<more>", line)


def failure_heads(text: str) -> dict[str, list[str]]:
    """test id -> the first two lines of its TraceAssertionError, normalized."""
    heads: dict[str, list[str]] = {}
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"_+ test_fault\[(.+)\] _+$", line)
        if match:
            body = lines[index:]
            start = next(i for i, b in enumerate(body) if "TraceAssertionError: flow" in b)
            heads[match.group(1)] = [
                normalized(b.lstrip("E").strip().removeprefix("tracebaton.TraceAssertionError: "))
                for b in body[start : start + 2]
            ]
    return heads


def run_shop_tests(pytester: pytest.Pytester, healthy_runs: int, *args: str) -> pytest.RunResult:
    source = SHOP_TESTS.replace("FAULTS", repr(list(GOLDEN))).replace("HEALTHY_RUNS", str(healthy_runs))
    pytester.makepyfile(test_shop_faults=source)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q", *args, timeout=900)


def check_catalogue(outcome: pytest.RunResult, healthy_runs: int) -> None:
    outcome.assert_outcomes(passed=healthy_runs, failed=len(GOLDEN))
    heads = failure_heads(outcome.stdout.str())
    assert set(heads) == set(GOLDEN)
    for fault, (verdict, divergence) in heads.items():
        assert re.fullmatch(r"flow 'checkout' FAILED · trace <trace> · waited <t> \(<why>\)", verdict), (
            verdict
        )
        assert divergence in GOLDEN[fault], f"{fault}: {divergence!r}"


SHORT_HEALTHY_RUNS = 20


def test_every_fault_fails_naming_its_hop_and_healthy_checkouts_pass(pytester: pytest.Pytester) -> None:
    outcome = run_shop_tests(pytester, SHORT_HEALTHY_RUNS)
    check_catalogue(outcome, SHORT_HEALTHY_RUNS)
    # the run's store is kept for the dashboard, and the run's last lines say how to open it
    flows = SHORT_HEALTHY_RUNS + len(GOLDEN)
    assert f"tracebaton: {flows} flows, {len(GOLDEN)} failed; open the dashboard: " in outcome.stdout.str()
    assert (pytester.path / ".tracebaton" / "last.duckdb").exists()


def test_the_same_against_a_remote_server(pytester: pytest.Pytester, server: RunningServer) -> None:
    outcome = run_shop_tests(pytester, SHORT_HEALTHY_RUNS, f"--tracebaton-url={server.api}")
    check_catalogue(outcome, SHORT_HEALTHY_RUNS)


@pytest.mark.slow
def test_every_fault_fails_naming_its_hop_and_200_healthy_checkouts_pass(pytester: pytest.Pytester) -> None:
    check_catalogue(run_shop_tests(pytester, 200), 200)


@pytest.mark.slow
def test_200_healthy_checkouts_remotely(pytester: pytest.Pytester, server: RunningServer) -> None:
    check_catalogue(run_shop_tests(pytester, 200, f"--tracebaton-url={server.api}"), 200)


CHDB_HEALTHY_RUNS = 20
"""Fewer healthy checkouts on chdb: ClickHouse's engine shares the two cores with the shop."""


@pytest.fixture
def clickhouse_server(tmp_path: Path) -> Iterator[str]:
    """`tracebaton serve` on the ClickHouse store (chdb, the exporter's tables created); its API URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tracebaton", "serve", "--store", f"chdb:{tmp_path / 'ch'}?database=otel",
         "--create-schema", "--grpc-port", "0", "--http-port", "0", "--api-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    try:
        assert line.startswith("tracebaton: ready "), line
        yield dict(part.split("=", 1) for part in line.split()[2:])["api"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        process.stdout.close()


def test_the_same_on_the_clickhouse_store(pytester: pytest.Pytester, clickhouse_server: str) -> None:
    outcome = run_shop_tests(pytester, CHDB_HEALTHY_RUNS, f"--tracebaton-url={clickhouse_server}")
    check_catalogue(outcome, CHDB_HEALTHY_RUNS)

