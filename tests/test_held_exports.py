"""A service that exports with the OpenTelemetry SDK's default 5 s batch delay is never judged
missing early (DESIGN §5 "Giving up early").

The flow looks complete the moment the check starts: the test's root, and frontend's span
under it, exported within 50 ms by a service started with `sut_env()`. Frontend hands the
request to audit without a CLIENT span (an uninstrumented HTTP client propagating the
context), so nothing in the flow announces audit's span — and audit, a newcomer's service
pointed at tracebaton by hand, keeps the SDK's defaults: its span arrives 5 s later. The
spec expects `frontend -> audit`; giving up after the quiet window (1 s) would fail it. The
engine does not know audit's export delay, so it waits, and the flow passes.

Both processes are real SDK processes (tests/support/held_exporter.py); `make test` runs a
short wave, `make test-slow` 200 flows.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from conftest import SUPPORT

from tracebaton import Collector, FlowResult

HELD_S = 4.5
"""The least an audit span must have been held for the run to prove anything (the SDK's 5 s
delay, less the process's own start-up after its batch processor began counting)."""
SPEC = {"name": "audit", "wait": {"timeout": "20s"}, "expect": {"hops": ["frontend -> audit"]}}


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    with Collector() as running:
        yield running


def exporter(service: str, traceparents: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SUPPORT / "held_exporter.py"), "--service", service, *traceparents],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def sdk_defaults(collector: Collector) -> dict[str, str]:
    """Only the endpoint set by hand: every other OTEL_* setting is the SDK's default."""
    own = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return {**own, "OTEL_EXPORTER_OTLP_ENDPOINT": collector.sut_env()["OTEL_EXPORTER_OTLP_ENDPOINT"]}


def wave(collector: Collector, size: int) -> list[tuple[str, FlowResult]]:
    """`size` flows at once; returns each flow's trace id and verdict."""
    with contextlib.ExitStack() as stack:
        flows = [stack.enter_context(collector.flow("audit")) for _ in range(size)]
        frontend = exporter("frontend", [f.headers["traceparent"] for f in flows],
                            {**os.environ, **collector.sut_env()})
        out, err = frontend.communicate(timeout=60)
        assert frontend.returncode == 0, err
    handed_over = out.split()[:size]
    audit = exporter("audit", handed_over, sdk_defaults(collector))
    results: dict[int, FlowResult] = {}

    def judge(index: int) -> None:
        results[index] = flows[index].check(SPEC)

    judges = [threading.Thread(target=judge, args=(i,)) for i in range(size)]
    for judging in judges:
        judging.start()
    for judging in judges:
        judging.join(60)
    out, err = audit.communicate(timeout=60)
    assert audit.returncode == 0, err
    assert len(results) == size, "every check returned"
    return [(flows[i].trace_id, results[i]) for i in range(size)]


def assert_waited_for_audit(collector: Collector, trace_id: str, result: FlowResult) -> None:
    audit = [s for s in collector.trace(trace_id).spans if s.service == "audit"]
    assert len(audit) == 1
    held_s = (audit[0].arrival_unix_nano - audit[0].end_unix_nano) / 1e9
    assert held_s >= HELD_S, f"audit's span was held {held_s:.2f} s: the run proves nothing"
    why = f"judged before audit's span came ({result.waited_reason.value}): {result.first_divergence}"
    assert result.passed, why
    assert result.waited_reason.value == "settled"


def test_a_service_with_the_default_5s_batch_delay_is_never_judged_missing_early(
    collector: Collector,
) -> None:
    for trace_id, result in wave(collector, 3):
        assert_waited_for_audit(collector, trace_id, result)


@pytest.mark.slow
def test_200_flows_through_a_5s_batching_service_all_wait_for_it(collector: Collector) -> None:
    judged = [judged for _ in range(10) for judged in wave(collector, 20)]
    assert len(judged) == 200
    for trace_id, result in judged:
        assert_waited_for_audit(collector, trace_id, result)
