"""Judging a flow against its snapshot, and recording one (DESIGN §6 "Flow snapshots").

One function, `judge_snapshot`, does it where the store is: in the test process for an
embedded collector, in `tracebaton serve` (`POST /api/snapshots/check`) for a remote one, so
both wait on arrivals the same way and record the same run.

How a flow is judged:
1. Wait as a spec would: the snapshot's flow spec part, plus every hop the snapshot says
   must happen (so a message still in a queue is waited for up to `wait.timeout`), plus a
   guard that holds the verdict until the flow settled. When a check fails before that (a
   header missing on the first hop), wait for the flow to settle anyway: the diff is drawn
   from the whole flow, never from the spans that happened to have arrived.
2. Draw the flow's shape (`_snapshot.flow_shape`) from the hops the engine found, broken
   hand-offs stitched in, and diff it against the snapshot's (`_snapshot_diff`).
3. Record one run: the spec part's checks and a `snapshot` check for the diff.

A snapshot is written only from a complete flow: no missing parent, no call without its
callee, no message without its consumer, no service whose export lag exceeds `settle`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tracebaton.collector import SpanKind, SpanStore, StoredSpan

from ._engine import FlowEngine
from ._hops import Hop
from ._quiet import export_lags_ns
from ._result import (
    CheckResult,
    CheckState,
    Finding,
    FindingKind,
    FlowResult,
    HopKind,
    HopStatus,
    WaitedReason,
)
from ._selectors import captures_any_headers, header_values
from ._snapshot import (
    FlowShape,
    HopNode,
    SnapshotFile,
    budget_for,
    captured_header_names,
    flow_shape,
    read_snapshot,
    shape_to_json,
    snapshot_yaml,
    with_budgets,
)
from ._snapshot_diff import ShapeDiff, diff_shapes
from ._spec import (
    CountBound,
    ErrorsMode,
    ErrorsPolicy,
    Expectations,
    FlowSpec,
    HeaderRule,
    HopPattern,
    Order,
    Propagation,
    Selector,
    SpanExpectation,
)
from ._spec_dump import flow_spec_to_dict
from ._spec_parse import parse_flow_spec
from ._trace import FlowTrace, build_trace
from ._verdict import judge_settled

__all__ = ["SnapshotOutcome", "diff_stored", "flow_of", "judge_snapshot", "merge_shapes", "spec_part_for",
           "stored_shape", "unrecordable"]

SNAPSHOT_CHECK = "snapshot"
"""The check id of the diff against the snapshot (beside DESIGN §5's fixed ids)."""
_SETTLED = (WaitedReason.SETTLED, WaitedReason.QUIET, WaitedReason.TIMEOUT)
"""Verdicts after which the flow is as complete as waiting makes it."""
_GUARD = SpanExpectation(select=Selector(), count=CountBound("<=", 10**12))
"""A universal check that holds on every flow: with it a verdict waits until the flow settled."""
_LOOK = Expectations(errors=ErrorsPolicy(ErrorsMode.ANY), propagation=Propagation(connected=False))
"""Expectations that judge nothing: the flow as it is."""


# the flow as the engine saw it -----------------------------------------------------------------


def flow_of(result: FlowResult, spans: Sequence[StoredSpan], *,
            now_unix_nano: int) -> tuple[FlowTrace, list[Hop]]:
    """The flow's tree and its hops exactly as the engine judged them: broken hand-offs are
    stitched back in below their callers (from the verdict's broken hops), and the hops are
    the verdict's own, not found again (the engine names a refused call by the service that
    answers at its address, which it learned from earlier flows)."""
    plain = build_trace(result.trace_id, spans, now_unix_nano=now_unix_nano)
    stitches: dict[str, str] = {}
    for hop in result.hops:
        callee = plain.by_id.get(hop.callee_span_id or "")
        if hop.status is HopStatus.BROKEN and callee is not None and hop.caller_span_id in plain.by_id:
            top = callee
            while (above := plain.parent_of(top)) is not None:
                top = above
            stitches[top.span_id] = hop.caller_span_id or ""
    trace = build_trace(result.trace_id, spans, now_unix_nano=now_unix_nano, stitches=stitches)
    hops = [
        Hop(h.caller_service, h.callee_service, h.kind, caller, trace.by_id.get(h.callee_span_id or ""),
            broken=h.status is HopStatus.BROKEN, detail=h.detail)
        for h in result.hops
        if h.status not in (HopStatus.MISSING, HopStatus.PENDING)
        and (caller := trace.by_id.get(h.caller_span_id or "")) is not None
    ]
    return trace, hops


def unconsumed(trace: FlowTrace, hops: Iterable[Hop]) -> list[StoredSpan]:
    """PRODUCER spans no consumer span answered (yet)."""
    consumed = {h.anchor.span_id for h in hops if h.callee_span is not None}
    return [s for s in trace.spans if s.kind is SpanKind.PRODUCER and s.span_id not in consumed]


def unrecordable(result: FlowResult, trace: FlowTrace, hops: Sequence[Hop]) -> str | None:
    """Why this flow must not become a snapshot (it is not complete, or a service lags); None
    when it may. A snapshot taken from half a flow would fail every later, whole one."""
    if not trace.spans:
        return "no span of the flow arrived"
    for orphan in trace.orphans:
        return (f"{orphan.service}: span {orphan.span_id} ({orphan.name!r}) names parent "
                f"{orphan.parent_span_id}, which never arrived (a missing parent)")
    for hop in hops:
        if hop.callee_span is None and hop.kind is not HopKind.PEER and not hop.broken:
            why = hop.detail or "it never came"
            return f"{hop.text}: the call {hop.anchor.name!r} has no callee span ({why})"
    for producer in unconsumed(trace, hops):
        return (f"{producer.service}: the message {producer.name!r} (span {producer.span_id}) has no "
                "consumer span")
    for finding in result.findings:
        if finding.kind is FindingKind.EXPORT_LAG:
            return finding.message
    if not [h for h in hops if not h.from_test]:
        return ("the flow has no hop between services: did the request inside `with tracebaton.flow(...)` "
                "reach them, carrying flow.headers?")
    return None


def stored_shape(store: SpanStore, engine: FlowEngine, trace_id: str) -> tuple[FlowShape, FlowResult]:
    """A stored flow's shape as it stands now, without waiting (for `tracebaton diff`)."""
    result = engine.check(FlowSpec(name="diff", expect=_LOOK), trace_id, timeout_ns=0)
    spans = [span for tid in result.trace_ids for span in store.trace(tid)]
    trace, hops = flow_of(result, spans, now_unix_nano=time.time_ns())
    return flow_shape(trace, hops), result


def diff_stored(store: SpanStore, engine: FlowEngine, before: str, after: str) -> ShapeDiff:
    """The diff of two stored flows, the first read as a snapshot of itself would be."""
    old, _ = stored_shape(store, engine, before)
    new, _ = stored_shape(store, engine, after)
    return diff_shapes(with_budgets(old), new)


# writing and updating ----------------------------------------------------------------------------


def spec_part_for(trace: FlowTrace, hops: Sequence[Hop], base: Mapping[str, Any]) -> dict[str, Any]:
    """The flow spec a recorded flow satisfies, to stand above its `snapshot:` section: the
    propagation rules every hand-off kept (`traceparent: valid`, a header that is `same`
    across the flow), no errors, no deadline overrun, no broken hand-off — each rule only if
    the flow satisfies it. `base` keeps `name`, `find`, `wait` and `peers` as they were."""
    kept = {k: v for k, v in base.items() if k != "expect"}
    spec = parse_flow_spec(kept)
    now = time.time_ns()

    def holds(expect: Expectations) -> bool:
        return judge_settled(dataclasses.replace(spec, expect=expect), trace, now_unix_nano=now).passed

    expect = _LOOK
    for candidate in (
        dataclasses.replace(expect, propagation=Propagation()),
        dataclasses.replace(expect, errors=ErrorsPolicy()),
        dataclasses.replace(expect, budgets=dataclasses.replace(expect.budgets, deadlines=True)),
    ):
        merged = _merge_expect(expect, candidate)
        if holds(merged):
            expect = merged
    for name in _shared_headers(hops):
        rules = [HeaderRule.VALID] if name == "traceparent" else [HeaderRule.SAME, HeaderRule.PRESENT]
        for rule in rules:
            propagation = dataclasses.replace(expect.propagation,
                                              headers={**expect.propagation.headers, name: rule})
            if holds(dataclasses.replace(expect, propagation=propagation)):
                expect = dataclasses.replace(expect, propagation=propagation)
                break
    written = flow_spec_to_dict(dataclasses.replace(spec, expect=expect))
    return {**kept, **({"expect": written["expect"]} if "expect" in written else {})}


def _merge_expect(current: Expectations, candidate: Expectations) -> Expectations:
    """`current` with the one section `candidate` changed from the nothing-judged default."""
    def pick(name: str) -> Any:
        chosen = getattr(candidate, name)
        return chosen if chosen != getattr(_LOOK, name) else getattr(current, name)

    return dataclasses.replace(current, propagation=pick("propagation"), errors=pick("errors"),
                               budgets=pick("budgets"))


def _shared_headers(hops: Sequence[Hop]) -> list[str]:
    """Captured headers every hand-off between services received, in name order."""
    shared: set[str] | None = None
    for hop in hops:
        callee = hop.callee_span
        if (hop.from_test or hop.broken or hop.kind is not HopKind.SYNC or callee is None
                or not captures_any_headers(callee.attributes)):
            continue
        names = {name for name in captured_header_names(callee) if header_values(callee.attributes, name)}
        shared = names if shared is None else shared & names
    return sorted(shared or ())


def merge_shapes(old: FlowShape, new: FlowShape) -> FlowShape:
    """The shape an update writes: the flow now, with what the person wrote into the old
    snapshot kept where the flow does not contradict it — `optional: true` (an optional hop
    that did not happen stays, optional), a `times` range the count lies in, and each
    budget the hop stayed within (a budget is written once; only one exceeded is raised)."""
    return FlowShape(_merge_steps(old.hops, new.hops))


def _merge_steps(old_steps: tuple[tuple[HopNode, ...], ...],
                 new_steps: tuple[tuple[HopNode, ...], ...]) -> tuple[tuple[HopNode, ...], ...]:
    old_by_key = {node.key: (index, node) for index, step in enumerate(old_steps) for node in step}
    steps: list[list[HopNode]] = [[_merge_node(old_by_key.get(n.key, (0, None))[1], n) for n in step]
                                  for step in new_steps]
    where = {node.key: index for index, step in enumerate(steps) for node in step}
    flat_old = [(index, node) for index, step in enumerate(old_steps) for node in step]
    for position, (old_index, node) in enumerate(flat_old):
        if node.key in where or node.bounds[0] > 0:
            continue  # kept as the flow has it, or gone: a hop that must happen and did not
        mates = [m.key for m in old_steps[old_index] if m.key in where]
        if mates:
            steps[where[mates[0]]].append(node)
            where[node.key] = where[mates[0]]
            continue
        earlier = [where[n.key] for _, n in flat_old[:position] if n.key in where]
        at = earlier[-1] + 1 if earlier else 0
        steps.insert(at, [node])
        where = {n.key: i for i, step in enumerate(steps) for n in step}
    return tuple(tuple(sorted(step, key=lambda n: (n.text, n.key))) for step in steps)


def _merge_node(old: HopNode | None, new: HopNode) -> HopNode:
    if old is None:
        return with_budgets(FlowShape(((new,),))).hops[0][0]
    times_range = old.times_range
    if times_range is not None and not times_range[0] <= new.times <= times_range[1]:
        times_range = None  # the flow contradicts the range: the count it has now
    budget = old.budget_ns
    if budget is None or (new.took_ns is not None and new.took_ns > budget):
        budget = None if new.took_ns is None else budget_for(new.took_ns)
    return dataclasses.replace(new, times_range=times_range, optional=old.optional, budget_ns=budget,
                               calls=_merge_steps(old.calls, new.calls))


# judging ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SnapshotOutcome:
    result: FlowResult
    """The verdict: the spec part's checks and the `snapshot` check of the diff."""
    existed: bool
    """Whether there was a snapshot to compare with."""
    diff: ShapeDiff | None = None
    written: str | None = None
    """The snapshot file's new text, when an update (or a first recording) writes one."""
    refused: str | None = None
    """Why no snapshot could be written although one was asked for."""
    run_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"result": self.result.to_json(), "existed": self.existed,
                "diff": None if self.diff is None else self.diff.to_json(), "written": self.written,
                "refused": self.refused, "run_id": self.run_id}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SnapshotOutcome:
        diff = data.get("diff")
        return cls(FlowResult.from_json(data["result"]), bool(data["existed"]),
                   None if diff is None else ShapeDiff.from_json(diff), data.get("written"),
                   data.get("refused"), data.get("run_id"))


def expected_patterns(shape: FlowShape) -> list[HopPattern]:
    """The hops a snapshot says must happen: not optional, nor below an optional hop."""
    found: dict[HopPattern, None] = {}

    def visit(steps: tuple[tuple[HopNode, ...], ...]) -> None:
        for step in steps:
            for node in step:
                if node.bounds[0] > 0:
                    found[HopPattern(node.caller, node.callee, node.kind is HopKind.ASYNC)] = None
                    visit(node.calls)

    visit(shape.hops)
    return list(found)


def _waiting_spec(spec: FlowSpec, hops: Sequence[HopPattern]) -> FlowSpec:
    expect = spec.expect
    return dataclasses.replace(spec, expect=dataclasses.replace(
        expect, hops=(tuple(hops),) if hops else (), order=Order.ANY if hops else expect.order,
        spans=(*expect.spans, _GUARD)))


def judge_snapshot(
    store: SpanStore,
    engine: FlowEngine,
    *,
    trace_id: str,
    name: str,
    snapshot: str | bytes | None,
    origin: str = "snapshot",
    update: bool = False,
    test_id: str | None = None,
    session_id: str | None = None,
    record: bool = True,
) -> SnapshotOutcome:
    """Judge the flow `trace_id` against the snapshot file's text (None: there is none yet);
    with `update`, also say what the file should hold now. Raises FlowSpecError for a
    snapshot file that does not read, naming the file, the key and the fix."""
    started = time.monotonic()
    existing: SnapshotFile | None = None if snapshot is None else read_snapshot(snapshot, origin)
    base = existing.spec if existing is not None else FlowSpec(name=name, expect=_LOOK)
    judged = _waiting_spec(base, expected_patterns(existing.shape) if existing is not None else [])
    first = engine.check(judged, trace_id)
    final = first
    if first.waited_reason not in _SETTLED:
        final = engine.check(_waiting_spec(dataclasses.replace(base, expect=_LOOK), []), trace_id)
    trace, hops = _load(store, final)
    waiting = unconsumed(trace, hops)
    if waiting and first.waited_reason is not WaitedReason.TIMEOUT:
        # a message still in its queue: wait for its consumer as long as the spec waits
        patterns = [HopPattern(s.service, "*", asynchronous=True) for s in waiting]
        final = engine.check(_waiting_spec(dataclasses.replace(base, expect=_LOOK), patterns), trace_id)
        trace, hops = _load(store, final)
    advice: tuple[Finding, ...] = ()
    lag = max(export_lags_ns(trace.spans, time.time_ns()).values(), default=0)
    if lag > base.wait.settle_ns and final.waited_reason is not WaitedReason.TIMEOUT:
        # A service exported later than settle: a span it still held could be missing from
        # what settled. Waiting that lag out once (quiet for lag + settle) gives it time to
        # come; the finding stays in the result, so the advice to export sooner is not lost.
        advice = tuple(f for f in final.findings if f.kind is FindingKind.EXPORT_LAG)
        settle = min(lag + base.wait.settle_ns, base.wait.timeout_ns)
        patient = dataclasses.replace(base.wait, settle_ns=settle)
        final = engine.check(_waiting_spec(dataclasses.replace(base, expect=_LOOK, wait=patient),
                                           [HopPattern(s.service, "*", asynchronous=True) for s in waiting]),
                             trace_id)
        trace, hops = _load(store, final)
    shape = flow_shape(trace, hops)
    diff = diff_shapes(existing.shape, shape) if existing is not None else None
    guard = f"spans[{len(base.expect.spans)}]"
    checks = [c for c in first.checks if not (c.check == guard and c.state is not CheckState.FAIL)]
    spec_failed = any(c.state is CheckState.FAIL and c.check != "hops" for c in checks)
    written = refused = None
    if update and (diff is None or not diff.same or not first.passed):
        refused = unrecordable(final, trace, hops)
        if refused is None:
            written = _written(existing, shape, trace, hops, name, spec_failed)
    result = _combined(first, final, checks, diff, existing is not None, written, origin,
                       waited_ms=round((time.monotonic() - started) * 1000))
    if advice:
        result = dataclasses.replace(result, findings=(*result.findings, *(
            f for f in advice if f not in result.findings)))
    run_id = None
    if record:
        run_id = store.record_run(
            {**result.to_json(), "spec": flow_spec_to_dict(judged),
             "snapshot": None if existing is None else shape_to_json(existing.shape),
             "snapshot_diff": None if diff is None else diff.to_json()},
            test_id=test_id, session_id=session_id)
    return SnapshotOutcome(result, existing is not None, diff, written, refused, run_id)


def _load(store: SpanStore, result: FlowResult) -> tuple[FlowTrace, list[Hop]]:
    spans = [span for tid in result.trace_ids for span in store.trace(tid)]
    return flow_of(result, spans, now_unix_nano=time.time_ns())


def _written(existing: SnapshotFile | None, shape: FlowShape, trace: FlowTrace, hops: Sequence[Hop],
             name: str, spec_failed: bool) -> str:
    if existing is None:
        return snapshot_yaml(spec_part_for(trace, hops, {"name": name}), with_budgets(shape))
    # the spec part as the person left it, unless the flow now fails it: then what it satisfies
    spec = spec_part_for(trace, hops, existing.spec_raw) if spec_failed else existing.spec_raw
    return snapshot_yaml(spec, merge_shapes(existing.shape, shape))


def _combined(first: FlowResult, final: FlowResult, checks: list[CheckResult], diff: ShapeDiff | None,
              existed: bool, written: str | None, origin: str, *, waited_ms: int) -> FlowResult:
    if written is not None:
        what = "recorded" if not existed else "updated"
        checks = [c for c in checks if c.state is CheckState.PASS]
        snapshot = CheckResult(SNAPSHOT_CHECK, CheckState.PASS, f"{origin}: {what}")
        passed, divergence = True, None
    elif not existed:
        message = f"no snapshot {origin} to compare the flow with"
        snapshot = CheckResult(SNAPSHOT_CHECK, CheckState.FAIL, message)
        passed, divergence = False, message
    else:
        assert diff is not None
        culprit = diff.rows[diff.culprit] if diff.culprit is not None else None
        snapshot = CheckResult(SNAPSHOT_CHECK, CheckState.PASS if diff.same else CheckState.FAIL,
                               diff.first_change or "", hop=culprit.hop if culprit else None)
        passed = first.passed and diff.same
        divergence = diff.first_change or first.first_divergence
    return dataclasses.replace(
        final,
        passed=passed,
        name=first.name,
        waited_ms=waited_ms,
        waited_reason=first.waited_reason if first.waited_reason in _SETTLED else final.waited_reason,
        first_divergence=divergence,
        checks=(*checks, snapshot),
        expected_hops=first.expected_hops,
    )

