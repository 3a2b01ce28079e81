"""Flows judged end to end: the OpenTelemetry SDK in a separate process exports a scripted
checkout over OTLP to a real collector (embedded, then a remote `tracebaton serve`), and the
test reads the verdict as a user would."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SUPPORT, RunningServer

from tracebaton import Client, Collector, FlowResult, TraceAssertionError
from tracebaton.assertions import Flow

CHECKOUT: dict[str, Any] = {
    "name": "checkout",
    "expect": {
        "hops": [
            "test -> frontend",
            "frontend -> auth",
            "frontend -> cart",
            "cart -> inventory",
            "frontend -> payment",
            "payment -> stripe",
            "frontend -> orders",
            "orders ~> email",
        ],
        "times": {"cart -> inventory": 1},
        "budgets": {"hops": {"cart -> inventory": "200ms"}, "deadlines": True},
        "propagation": {
            "headers": {"traceparent": "valid", "x-request-id": "same"},
            "baggage": {"tenant": "acme"},
        },
    },
    "peers": {"stripe": "127.0.0.1:9001"},
}


def services(flow: Flow, env: dict[str, str], scenario: str, *, late_ms: int = 100) -> subprocess.Popen[str]:
    """The scripted services, exporting to the collector `env` points at; a real process."""
    command = [
        sys.executable,
        str(SUPPORT / "flow_services.py"),
        "--traceparent",
        flow.headers["traceparent"],
        "--baggage",
        flow.headers.get("baggage", ""),
        "--scenario",
        scenario,
        "--late-ms",
        str(late_ms),
    ]
    return subprocess.Popen(
        command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str]) -> None:
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, f"services failed:\n{out}\n{err}"


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    with Collector() as running:
        yield running


def run_flow(
    host: Collector | Client, scenario: str, spec: dict[str, Any] = CHECKOUT
) -> tuple[Flow, FlowResult]:
    with host.flow("checkout", baggage={"tenant": "acme"}) as flow:
        finish(services(flow, host.sut_env(), scenario))
    return flow, flow.check(spec)


def test_a_healthy_checkout_passes_once_settled(collector: Collector) -> None:
    flow, result = run_flow(collector, "healthy")
    assert result.passed, flow.render(result)
    assert result.waited_reason.value == "settled"
    assert [h.hop for h in result.hops if h.status.value == "matched"] == CHECKOUT["expect"]["hops"]
    assert {h.hop: h.kind.value for h in result.hops}["payment -> stripe"] == "peer"
    assert len(result.trace_ids) == 2, "the email worker's trace links into the flow"


@pytest.mark.parametrize(
    ("scenario", "check", "hop", "words"),
    [
        ("broken", "connected", "frontend -> cart", "cart started a new trace"),
        ("wrong-order", "order", "frontend -> payment", "happened before frontend -> cart"),
        ("slow", "budgets.hops", "cart -> inventory", "budget 200 ms"),
        ("retry", "times", "cart -> inventory", "happened 2 times, expected 1"),
        ("drop-request-id", "headers", "cart -> inventory", "x-request-id missing"),
        ("outlive-timeout", "deadlines", "frontend -> payment", "after frontend gave up"),
    ],
)
def test_each_fault_fails_naming_its_hop(
    collector: Collector, scenario: str, check: str, hop: str, words: str
) -> None:
    flow, result = run_flow(collector, scenario)
    assert not result.passed
    failed = {c.check: c for c in result.checks if c.state.value == "fail"}
    assert check in failed, flow.render(result)
    assert failed[check].message.startswith(hop + ":") or failed[check].hop == hop, failed[check]
    assert words in failed[check].message
    lines = flow.render(result).splitlines()
    assert result.trace_id in lines[0]
    assert "FAILED" in lines[0]
    assert hop in lines[1], lines[:2]


def test_a_budget_or_allowed_error_on_a_hop_the_flow_never_had_is_a_finding(collector: Collector) -> None:
    budgets = {"hops": {"cart -> inventroy": "1ms", "cart -> inventory": "200ms"}}
    spec = {**CHECKOUT, "expect": {**CHECKOUT["expect"], "budgets": budgets,
                                   "errors": {"allow": ["frontend -> payments"]}}}
    flow, result = run_flow(collector, "healthy", spec)
    assert result.passed, flow.render(result)  # a misspelt budget decides nothing, as before
    unmatched = [f for f in result.findings if f.kind.value == "unmatched_rule"]
    assert [f.hop for f in unmatched] == ["cart -> inventroy", "frontend -> payments"]
    assert unmatched[0].message.startswith(
        "budgets.hops: cart -> inventroy matched no hop of this flow, so it decided nothing; check its "
        "spelling (hops seen: cart -> inventory, ")
    assert unmatched[1].message.startswith("errors.allow: frontend -> payments matched no hop")


def test_broken_propagation_stitches_the_other_trace_so_later_hops_are_checked(collector: Collector) -> None:
    _, result = run_flow(collector, "broken")
    hops = {h.hop: h for h in result.hops}
    assert hops["frontend -> cart"].status.value == "broken"
    assert hops["cart -> inventory"].status.value == "matched", "found in cart's own trace"
    assert [f.kind.value for f in result.findings].count("propagation_broken") == 1
    assert len(result.trace_ids) == 3


def test_a_lost_message_fails_at_the_timeout_saying_what_never_came(collector: Collector) -> None:
    spec = {**CHECKOUT, "wait": {"timeout": "1500ms"}}
    _, result = run_flow(collector, "lost-message", spec)
    assert not result.passed
    assert result.waited_reason.value == "timeout"
    assert result.first_divergence is not None
    assert result.first_divergence.startswith("orders ~> email: never seen")
    assert "no consumer span arrived with a link to it" in result.first_divergence


def test_assert_spec_raises_a_trace_assertion_error_with_the_rendered_verdict(collector: Collector) -> None:
    with collector.flow("checkout", baggage={"tenant": "acme"}) as flow:
        finish(services(flow, collector.sut_env(), "retry"))
    with pytest.raises(TraceAssertionError) as raised:
        flow.assert_spec(CHECKOUT)
    assert isinstance(raised.value, AssertionError)
    assert raised.value.result.trace_id == flow.trace_id
    first, second = str(raised.value).splitlines()[:2]
    assert flow.trace_id in first
    assert second.startswith("cart -> inventory")


def test_an_existential_verdict_returns_as_soon_as_its_spans_arrive(collector: Collector) -> None:
    spec = {
        "name": "checkout",
        "wait": {"timeout": "20s", "settle": "5s"},
        "expect": {"hops": ["cart -> inventory"], "errors": "any", "propagation": {"connected": False}},
    }
    with collector.flow("checkout") as flow:
        process = services(flow, collector.sut_env(), "healthy")
    result: list[FlowResult] = []
    judging = threading.Thread(target=lambda: result.append(flow.check(spec)))
    judging.start()  # judging starts before the services have exported anything
    finish(process)
    judging.join(30)
    assert result
    assert result[0].passed
    assert result[0].waited_reason.value == "satisfied", "no settle wait for existential checks"
    assert result[0].waited_ms < 5000, "it did not wait for the 5 s settle window"


def test_a_late_span_within_settle_that_breaks_a_universal_check_fails_the_flow(collector: Collector) -> None:
    spec = {"name": "checkout", "wait": {"settle": "1s"}, "expect": {"hops": ["cart -> inventory"]}}
    with collector.flow("checkout") as flow:
        process = services(flow, collector.sut_env(), "late-error", late_ms=300)
    result = flow.check(spec)
    finish(process)
    assert not result.passed
    failed = {c.check: c for c in result.checks if c.state.value == "fail"}
    assert "audit write failed" in failed["errors"].message
    assert result.waited_reason.value == "violated", "it failed before settling: never `satisfied`"
    assert "(violated)" in flow.render(result).splitlines()[0]


NEVER_CALLED: dict[str, Any] = {
    "name": "checkout",
    "wait": {"timeout": "20s"},
    "peers": {"stripe": "127.0.0.1:9001"},
    "expect": {"hops": ["frontend -> cart", "cart -> payment"]},
}
"""A hop the healthy checkout never makes, between services that did export: cart calls
inventory only. Every service declares its 50 ms export delay (sut_env())."""


def test_a_hop_that_never_comes_fails_early_once_the_flow_is_complete_and_quiet(collector: Collector) -> None:
    flow, result = run_flow(collector, "healthy", NEVER_CALLED)
    assert not result.passed
    assert result.waited_reason.value == "quiet", flow.render(result)
    assert result.first_divergence == "cart -> payment: never seen; cart called inventory"
    first, second = flow.render(result).splitlines()[:2]
    assert first.endswith("(quiet)")
    assert second.startswith("cart -> payment")


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"peers": {}}, "payment's call to 127.0.0.1:9001 has no callee span, and no peer is named there"),
        ({"expect": {"hops": ["orders ~> email", "cart -> payment"]}}, "an async hop is in the spec"),
    ],
    ids=["unnamed-peer", "async-hop"],
)
def test_a_flow_that_may_still_grow_waits_for_its_missing_hop_to_the_timeout(
    collector: Collector, change: dict[str, Any], why: str
) -> None:
    _, result = run_flow(collector, "healthy", {**NEVER_CALLED, "wait": {"timeout": "2500ms"}, **change})
    assert not result.passed
    assert result.waited_reason.value == "timeout", why


def test_a_spec_naming_a_service_the_store_never_saw_says_which_it_did_see(
    collector: Collector, caplog: pytest.LogCaptureFixture
) -> None:
    spec = {**NEVER_CALLED, "wait": {"timeout": "2s"}, "expect": {"hops": ["cart -> invntory"]}}
    with collector.flow("checkout", baggage={"tenant": "acme"}) as flow:
        finish(services(flow, collector.sut_env(), "healthy"))
    checked_at = time.time()
    with caplog.at_level(logging.WARNING, logger="tracebaton.assertions"):
        result = flow.check(spec)
    assert not result.passed
    # a service the store never saw has no known export delay: it may be a first, late export
    assert result.waited_reason.value == "timeout"
    second = flow.render(result).splitlines()[1]
    assert second.startswith("cart -> invntory: never seen; cart called inventory; ")
    assert "no span of 'invntory' ever arrived; seen: inventory, " in second
    # and said once the flow settled without it, not two seconds later with the verdict
    (hint,) = [r for r in caplog.records if r.name == "tracebaton.assertions"]
    assert hint.getMessage().startswith(
        "flow 'checkout': no span of 'invntory' ever arrived; seen: inventory, ")
    assert hint.getMessage().endswith("; its check waits for it up to wait.timeout (2 s)")
    assert hint.created - checked_at < 1.0


def test_flow_trace_gives_the_settled_spans_and_a_spec_they_satisfy(collector: Collector) -> None:
    with collector.flow("checkout", baggage={"tenant": "acme"}) as flow:
        finish(services(flow, collector.sut_env(), "healthy"))
    trace = flow.trace()
    frame = trace.to_polars()
    assert frame.height == len(trace.spans) >= 15
    assert set(frame["service"]) >= {"test", "frontend", "cart", "inventory", "email"}
    spec = trace.to_spec("checkout")
    assert flow.check(spec).passed, "a healthy flow satisfies the spec written from it"
    assert b'"resourceSpans"' in trace.to_otlp_json()


def test_builders_check_only_what_they_name(collector: Collector) -> None:
    with collector.flow("checkout", baggage={"tenant": "acme"}) as flow:
        finish(services(flow, collector.sut_env(), "retry"))
    flow.expect_hops("frontend -> auth", "cart -> inventory", "frontend -> payment")
    flow.expect_propagated(headers={"x-request-id": "same"}, baggage={"tenant": "acme"})
    with pytest.raises(TraceAssertionError, match="cart -> inventory"):
        flow.expect_budget(hops={"cart -> inventory": "5ms"})


def test_find_measures_a_hop_quantile_across_many_traces(collector: Collector) -> None:
    for _ in range(3):
        run_flow(collector, "healthy")
    traces = collector.find(service="inventory", since="5m")
    assert len(traces) >= 3
    table = {row["hop"]: row for row in traces.hop_quantiles(0.99).iter_rows(named=True)}
    assert table["cart -> inventory"]["count"] >= 3
    traces.expect_budget({"cart -> inventory": "1s"})
    with pytest.raises(AssertionError, match=r"cart -> inventory: p99"):
        traces.expect_budget({"cart -> inventory": "1ms"})


def test_a_remote_server_judges_the_same_flows(server: RunningServer) -> None:
    with Client(server.api) as client:
        flow, result = run_flow(client, "healthy")
        assert result.passed, flow.render(result)
        flow, result = run_flow(client, "broken")
        assert not result.passed
        assert result.first_divergence is not None
        assert result.first_divergence.startswith("frontend -> cart")
        assert "cart started a new trace" in flow.render(result).splitlines()[1]
        flow, result = run_flow(client, "healthy", NEVER_CALLED)
        assert result.waited_reason.value == "quiet", flow.render(result)


def test_a_bad_spec_is_rejected_before_anything_waits(collector: Collector, tmp_path: Path) -> None:
    with collector.flow("checkout") as flow:
        pass
    from tracebaton import FlowSpecError

    with pytest.raises(FlowSpecError, match=r"expect\.budgets"):
        flow.check({"expect": {"budgets": {"trace": "2 parsecs"}}})


def test_the_async_twin_judges_the_same_flow(collector: Collector) -> None:
    async def scenario() -> FlowResult:
        async with collector.flow("checkout", baggage={"tenant": "acme"}) as flow:
            process = services(flow, collector.sut_env(), "healthy")
            await asyncio.to_thread(finish, process)
        return await flow.assert_spec_async(CHECKOUT)

    result = asyncio.run(scenario())
    assert result.passed
    assert result.trace_id is not None


def test_a_baggage_key_w3c_baggage_cannot_carry_is_refused_with_the_flow(collector: Collector) -> None:
    from tracebaton import ConfigurationError

    # OpenTelemetry's propagator would drop it without a word, and the flow's services never see it
    with pytest.raises(ConfigurationError, match=r"baggage key 'my key' is not one W3C Baggage can carry"):
        collector.flow("checkout", baggage={"my key": "acme"})


def test_a_check_with_neither_trace_id_nor_find_says_how_to_name_the_trace(collector: Collector) -> None:
    from tracebaton import FlowSpecError

    with pytest.raises(FlowSpecError, match=r"no trace id was given and the spec has no `find:`"):
        collector.check({"name": "checkout", "expect": {"hops": ["frontend -> cart"]}})


def test_find_that_misses_only_by_its_window_names_the_older_traces(collector: Collector) -> None:
    run_flow(collector, "healthy")
    spec = {
        "name": "checkout",
        # every stored trace arrived more than 1 ns ago: only its window keeps find from them
        "find": {"root_service": "test", "root_name": "flow checkout", "since": "1ns"},
        "wait": {"timeout": "200ms"},
        "expect": {"hops": ["cart -> inventory"]},
    }
    result = collector.check(spec)
    assert not result.passed
    assert result.first_divergence is not None
    assert result.first_divergence.startswith(
        "no trace matched find (root_service='test', root_name='flow checkout') that arrived in the "
        "last 1 ns (find.since); ")
    assert "older matching trace" in result.first_divergence
    assert result.first_divergence.endswith("old: raise find.since, or give the trace id")
    nothing = collector.check({**spec, "find": {"root_service": "nowhere"}})
    assert nothing.first_divergence is not None
    assert nothing.first_divergence.startswith("no trace matched find (root_service='nowhere') within 0.2 s")


def test_find_locates_the_trace_when_no_id_is_given(collector: Collector) -> None:
    flow, _ = run_flow(collector, "healthy")
    spec = {
        "name": "checkout",
        "find": {"root_service": "test", "root_name": "flow checkout", "since": "1m"},
        "expect": {"hops": ["cart -> inventory"], "errors": "any", "propagation": {"connected": False}},
    }
    result = collector.check(spec)
    assert result.passed
    assert result.trace_id == flow.trace_id, "the most recent matching trace"
