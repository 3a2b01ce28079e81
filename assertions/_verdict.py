"""From a situation to a verdict: run the checks the spec asks for, pick the first
divergence, list hops with their statuses and collect findings. Pure."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

from tracebaton import format_duration_ns

from ._checks_budgets import check_deadlines, check_hop_budgets, check_trace_budget
from ._checks_hops import check_chains, check_hops, check_order, check_times
from ._checks_propagation import check_baggage, check_connected, check_headers, propagation_findings
from ._checks_spans import check_errors, check_span_expectation
from ._hops import TEST_SERVICE, extract_hops, hop_matches
from ._quiet import declared_export_delays, export_lags_ns
from ._result import (
    CheckResult,
    CheckState,
    Finding,
    FindingKind,
    FlowResult,
    HopKind,
    HopResult,
    HopStatus,
    WaitedReason,
)
from ._situation import NEVER_SETTLED, Situation
from ._spec import FlowSpec, HopPattern
from ._trace import FlowTrace

_CHECKS = (
    check_hops,
    check_order,
    check_times,
    check_chains,
    check_trace_budget,
    check_hop_budgets,
    check_deadlines,
    check_connected,
    check_headers,
    check_baggage,
    check_errors,
)

# Which failure explains the others: a broken hand-off makes later hops look missing, an
# error deep down makes every caller above it fail; budgets and the trace total come last.
_DIVERGENCE_PRIORITY = (
    "connected",
    "hops",
    "order",
    "times",
    "chains",
    "errors",
    "deadlines",
    "budgets.hops",
    "headers",
    "baggage",
    "budgets.trace",
)


def evaluate(situation: Situation) -> list[CheckResult]:
    results = [result for check in _CHECKS if (result := check(situation)) is not None]
    results += [check_span_expectation(situation, i, e) for i, e in enumerate(situation.spec.expect.spans)]
    return results


def overall(checks: list[CheckResult]) -> CheckState:
    if any(c.state is CheckState.FAIL for c in checks):
        return CheckState.FAIL
    if any(c.state is CheckState.PENDING for c in checks):
        return CheckState.PENDING
    return CheckState.PASS


def first_divergence(checks: list[CheckResult]) -> CheckResult | None:
    failed = [c for c in checks if c.state is CheckState.FAIL]
    if not failed:
        return None

    def rank(check: CheckResult) -> tuple[bool, int]:
        # A check that failed only because the flow never settled saw no violation: a missing
        # hop or a real violation elsewhere is what the reader must see first.
        return (
            check.message.startswith(NEVER_SETTLED),
            _DIVERGENCE_PRIORITY.index(check.check)
            if check.check in _DIVERGENCE_PRIORITY
            else len(_DIVERGENCE_PRIORITY),
        )

    return min(failed, key=rank)


def hop_results(situation: Situation) -> list[HopResult]:
    patterns = [p for group in situation.spec.expect.hops for p in group]
    results = []
    for hop in situation.hops:
        if hop.broken:
            status = HopStatus.BROKEN
        elif not patterns or any(hop_matches(p, hop) for p in patterns) or hop.from_test:
            status = HopStatus.MATCHED
        else:
            status = HopStatus.UNEXPECTED
        results.append(
            HopResult(
                hop=hop.text,
                kind=hop.kind,
                status=status,
                caller_span_id=hop.anchor.span_id,
                callee_span_id=hop.callee_span.span_id if hop.callee_span else None,
                caller_service=hop.caller,
                callee_service=hop.callee,
                start_unix_nano=hop.anchor.start_unix_nano,
                duration_ns=hop.anchor.duration_ns,
                detail=hop.detail,
            )
        )
    unseen = HopStatus.MISSING if situation.deciding else HopStatus.PENDING
    for pattern in patterns:
        if not any(hop_matches(pattern, hop) for hop in situation.hops):
            results.append(
                HopResult(
                    hop=str(pattern),
                    kind=HopKind.ASYNC if pattern.asynchronous else HopKind.SYNC,
                    status=unseen,
                    caller_span_id=None,
                    callee_span_id=None,
                    caller_service=pattern.caller,
                    callee_service=pattern.callee,
                )
            )
    return results


def export_lag_findings(situation: Situation) -> list[Finding]:
    settle = situation.spec.wait.settle_ns
    worst = export_lags_ns(situation.trace.spans, situation.now_unix_nano)
    declared = declared_export_delays(situation.trace.spans)
    return [
        Finding(FindingKind.EXPORT_LAG, _export_lag_advice(service, lag, declared.get(service), settle))
        for service, lag in sorted(worst.items())
        if lag > settle
    ]


def _export_lag_advice(service: str, lag_ns: int, declared_ns: int | None, settle_ns: int) -> str:
    """Where the lag comes from decides the fix: a service that declares a short batch delay
    yet arrives late lost the time between its exporter and the store (a Collector's batch
    processor, a loaded store), which no SDK setting shortens."""
    head = f"{service} exports {format_duration_ns(lag_ns)} after its spans end"
    too_short = f"settle {format_duration_ns(settle_ns)} is too short"
    if declared_ns is None:
        return f"{head}; {too_short} — set OTEL_BSP_SCHEDULE_DELAY=50 (tracebaton.sut_env())"
    if 2 * declared_ns < lag_ns:
        return (f"{head}, though it holds them only {format_duration_ns(declared_ns)} before export: "
                f"the rest is spent between its exporter and the store (a Collector's batch "
                f"processor, a loaded store); {too_short} — raise wait.settle past "
                f"{format_duration_ns(lag_ns)}, or lower the batch processor's timeout")
    return (f"{head} (it holds them {format_duration_ns(declared_ns)} before export); {too_short} — "
            "lower OTEL_BSP_SCHEDULE_DELAY (tracebaton.sut_env() sets 50) or raise wait.settle")


def unmatched_rule_findings(situation: Situation) -> list[Finding]:
    """Budgets and allowed errors naming a hop the flow never had, once the flow settled with
    hops of its own (before that the hop may still come; a flow that timed out or made no hop
    has its own failure, which this would only bury)."""
    seen = sorted({hop.text for hop in situation.hops if not hop.from_test})
    if not situation.settled or situation.final or not seen:
        return []
    expect = situation.spec.expect
    rules = [("budgets.hops", pattern) for pattern, _ in expect.budgets.hops]
    rules += [("errors.allow", entry) for entry in expect.errors.allow if isinstance(entry, HopPattern)]
    findings = []
    for where, pattern in rules:
        if not any(hop_matches(pattern, hop) for hop in situation.hops):
            shown = ", ".join(seen[:6]) + (", …" if len(seen) > 6 else "")
            findings.append(Finding(
                FindingKind.UNMATCHED_RULE,
                f"{where}: {pattern} matched no hop of this flow, so it decided nothing; check its "
                f"spelling (hops seen: {shown})", str(pattern)))
    return findings


def result_of(situation: Situation, checks: list[CheckResult], *, waited_ms: int) -> FlowResult:
    state = overall(checks)
    divergence = first_divergence(checks)
    # why the engine stopped waiting; `satisfied` only ever on a pass
    if situation.final:
        reason = WaitedReason.TIMEOUT
    elif state is CheckState.PASS:
        reason = WaitedReason.SETTLED if situation.settled else WaitedReason.SATISFIED
    elif situation.gave_up:
        reason = WaitedReason.QUIET
    elif situation.settled:
        reason = WaitedReason.SETTLED
    else:
        reason = WaitedReason.VIOLATED
    findings = [*situation.trace.findings, *propagation_findings(situation), *export_lag_findings(situation),
                *unmatched_rule_findings(situation)]
    return FlowResult(
        passed=state is CheckState.PASS,
        name=situation.spec.name,
        trace_id=situation.trace.trace_id,
        waited_ms=waited_ms,
        waited_reason=reason,
        first_divergence=divergence.message if divergence else None,
        checks=tuple(checks),
        hops=tuple(hop_results(situation)),
        expected_hops=tuple(str(p) for group in situation.spec.expect.hops for p in group),
        findings=tuple(findings),
        trace_ids=situation.trace.trace_ids,
        span_count=len(situation.trace.spans),
        last_arrival_unix_nano=situation.trace.last_arrival_unix_nano,
    )


def judge_settled(spec: FlowSpec, trace: FlowTrace, *, now_unix_nano: int) -> FlowResult:
    """Judge a flow that will not change any more (a stored or imported trace): what is
    pending now never comes, so it fails. Pure: no store, no waiting."""
    situation = Situation(
        spec=spec,
        trace=trace,
        hops=tuple(extract_hops(trace, peers=spec.peers)),
        settled=True,
        final=True,
        now_unix_nano=now_unix_nano,
        missing_parents=trace.orphans,
    )
    result = result_of(situation, evaluate(situation), waited_ms=0)
    return dataclasses.replace(result, waited_reason=WaitedReason.SETTLED)


_LISTED = 8
"""Services a "nothing arrived" message names before it says `…`."""


def nothing_arrived(
    situation: Situation,
    checks: list[CheckResult],
    *,
    waited_ms: int,
    timeout_ns: int,
    recent_ns: int,
    recent_services: Sequence[str],
    stored_services: Sequence[str],
) -> FlowResult:
    """The verdict on a trace id of which no span arrived by the timeout: one failure that
    says so, what did arrive lately, and how a service exports here, instead of every
    check failing for want of spans. The other checks stay undecided (pending)."""
    trace_id = situation.trace.trace_id
    headline = f"no span of trace {trace_id} arrived in {format_duration_ns(timeout_ns)}"
    recent = _names(s for s in recent_services if s != TEST_SERVICE)
    stored = _names(s for s in stored_services if s != TEST_SERVICE)
    if recent:
        seen = (
            f"in the last {format_duration_ns(recent_ns)}, spans of other traces came from {recent}: "
            "is the trace id right, and does the service that starts the trace export here?"
        )
    elif stored:
        window = format_duration_ns(recent_ns)
        seen = (f"no span at all arrived in the last {window}; earlier ones came from {stored}: is the "
                "trace id right (the dashboard's Traces page lists the stored ones), and does the "
                "service that starts the trace export here now?")
    else:
        seen = "this tracebaton has received no span at all"
    message = "\n".join((
        headline,
        seen,
        "a service exports here with OTEL_EXPORTER_OTLP_ENDPOINT=http://HOST:PORT (the http= address "
        "`tracebaton serve` prints) and OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf; tracebaton.sut_env() "
        "returns both",
    ))
    first = checks[0].check if checks else "hops"
    decided = (CheckResult(first, CheckState.FAIL, message), *(CheckResult(c.check, CheckState.PENDING)
                                                              for c in checks[1:]))
    result = result_of(situation, checks, waited_ms=waited_ms)
    return dataclasses.replace(result, passed=False, first_divergence=headline, checks=decided)


def _names(services: Iterable[str]) -> str:
    listed = sorted(set(services))
    return ", ".join(listed[:_LISTED]) + (", …" if len(listed) > _LISTED else "")
