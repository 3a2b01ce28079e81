"""`flow.assert_snapshot()` from Python, outside pytest's bookkeeping: a file given by path,
`update=True` to write it, the async twin, and the flows it refuses to record."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SUPPORT

from tracebaton import Collector, ConfigurationError, TraceAssertionError
from tracebaton.assertions import Flow


@pytest.fixture(scope="module")
def tb() -> Iterator[Collector]:
    with Collector() as collector:
        yield collector


def checkout(tb: Collector, scenario: str = "healthy") -> Flow:
    with tb.flow("checkout") as flow:
        subprocess.run([sys.executable, str(SUPPORT / "flow_services.py"), "--traceparent",
                        flow.headers["traceparent"], "--scenario", scenario],
                       env={**os.environ, **tb.sut_env()}, check=True, capture_output=True, timeout=60)
    return flow


def test_outside_pytest_a_snapshot_is_a_path_and_update_writes_it(tb: Collector, tmp_path: Path) -> None:
    file = tmp_path / "golden" / "checkout.flow.yaml"
    with pytest.raises(ConfigurationError, match=r"outside pytest needs path=: the snapshot file"):
        checkout(tb).assert_snapshot()
    with pytest.raises(TraceAssertionError) as missing:
        checkout(tb).assert_snapshot(path=file)
    assert str(missing.value).splitlines()[1] == (
        f"write it from this flow: flow.assert_snapshot(path={str(file)!r}, update=True)")
    written = checkout(tb).assert_snapshot(path=file, update=True)
    assert written.passed
    assert written.checks[-1].message == f"{file}: recorded"
    assert file.read_text().startswith("# tracebaton flow snapshot")
    assert checkout(tb).assert_snapshot(path=file).passed


def test_the_async_twin_judges_off_the_event_loop(tb: Collector, tmp_path: Path) -> None:
    file = tmp_path / "checkout.flow.yaml"
    checkout(tb).assert_snapshot(path=file, update=True)

    async def judge() -> str:
        flow = checkout(tb, "drop-request-id")
        with pytest.raises(TraceAssertionError) as raised:
            await flow.assert_snapshot_async(path=file)
        return str(raised.value).splitlines()[1]

    assert asyncio.run(judge()) == "cart -> inventory  headers: x-request-id was present, now missing"


def test_an_incomplete_flow_is_never_recorded(tb: Collector, tmp_path: Path) -> None:
    """The email worker never consumed the message: the flow is not what a healthy one is, and
    writing it down would make every later, whole flow fail."""
    file = tmp_path / "checkout.flow.yaml"
    flow = checkout(tb, "lost-message")
    with pytest.raises(TraceAssertionError) as refused:
        flow.assert_snapshot(path=file, update=True)
    lines = str(refused.value).splitlines()
    assert lines[0] == f"flow 'checkout': cannot record snapshot {file} · trace {flow.trace_id}"
    assert lines[1].startswith("orders: the message 'outbox publish' (span ")
    assert lines[1].endswith(") has no consumer span")
    assert not file.exists()
