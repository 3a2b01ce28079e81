"""Time checks: `budgets.trace`, `budgets.hops` and `deadlines`."""

from __future__ import annotations

from tracebaton.collector import StatusCode, StoredSpan

from ._hops import TEST_SERVICE, hop_matches
from ._result import CheckResult, CheckState
from ._situation import Situation, Violation, ms, universal
from ._trace import FlowTrace


def entry_span(trace: FlowTrace) -> StoredSpan | None:
    """The earliest span whose parent is the flow root (the test's own span) or absent."""
    own = [s for s in trace.spans if s.trace_id == trace.trace_id] or list(trace.spans)
    test_roots = {s.span_id for s in own if s.service == TEST_SERVICE and s.parent_span_id is None}
    candidates = [
        s
        for s in own
        if s.span_id not in test_roots and (s.parent_span_id is None or s.parent_span_id in test_roots)
    ]
    return min(candidates, key=lambda s: (s.start_unix_nano, s.span_id), default=None)


def check_trace_budget(situation: Situation) -> CheckResult | None:
    budget = situation.spec.expect.budgets.trace_ns
    if budget is None:
        return None
    entry = entry_span(situation.trace)
    if entry is None:
        if situation.final:
            return CheckResult("budgets.trace", CheckState.FAIL, "no entry span arrived: nothing to measure")
        return CheckResult("budgets.trace", CheckState.PENDING)
    violations = []
    if entry.duration_ns > budget:
        violations.append(
            Violation(
                f"{entry.service}: {entry.name!r} took {ms(entry.duration_ns)}, trace budget {ms(budget)}",
                (entry.span_id,),
            )
        )
    return universal("budgets.trace", violations, situation)


def check_hop_budgets(situation: Situation) -> CheckResult | None:
    budgets = situation.spec.expect.budgets.hops
    if not budgets:
        return None
    violations = []
    for hop in situation.hops:
        for pattern, budget in budgets:
            if hop_matches(pattern, hop) and hop.anchor.duration_ns > budget:
                violations.append(
                    Violation(
                        f"{hop.text}: took {ms(hop.anchor.duration_ns)}, budget {ms(budget)}",
                        (hop.anchor.span_id,),
                        hop.text,
                        hop.tentative,
                    )
                )
                break
    return universal("budgets.hops", violations, situation)


_GRPC_GAVE_UP = (1, 4)  # CANCELLED, DEADLINE_EXCEEDED


def gave_up(caller: StoredSpan) -> bool:
    """Whether the caller stopped waiting (a timeout, a cancel) rather than got an answer.

    A callee that answered may still end its span later (after sending the response, or
    descheduled on a busy host): that is no deadline miss, so an answered call never counts.
    """
    if caller.status_code is not StatusCode.ERROR:
        return False
    grpc_status = caller.attributes.get("rpc.grpc.status_code")
    if isinstance(grpc_status, int) and not isinstance(grpc_status, bool):
        return grpc_status in _GRPC_GAVE_UP
    return not any(key in caller.attributes for key in ("http.response.status_code", "http.status_code"))


def check_deadlines(situation: Situation) -> CheckResult | None:
    budgets = situation.spec.expect.budgets
    if not budgets.deadlines:
        return None
    violations = []
    for hop in situation.hops:
        callee = hop.callee_span
        if hop.asynchronous or callee is None or hop.from_test or not gave_up(hop.anchor):
            continue  # a message's consumer is meant to outlive its producer; a test has no timeout
        overrun = callee.end_unix_nano - hop.anchor.end_unix_nano
        if overrun > budgets.deadline_slack_ns:
            violations.append(
                Violation(
                    f"{hop.text}: {hop.callee} worked on {ms(overrun)} after {hop.caller} gave up "
                    f"(caller span ended after {ms(hop.anchor.duration_ns)}; "
                    f"slack {ms(budgets.deadline_slack_ns)}) — "
                    f"{hop.callee} should honour the caller's timeout",
                    (callee.span_id, hop.anchor.span_id),
                    hop.text,
                )
            )
    return universal("deadlines", violations, situation)
