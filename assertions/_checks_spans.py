"""Checks on individual spans: `errors`, attributed to hops, and the free-form `spans[i]`."""

from __future__ import annotations

from collections.abc import Callable

from tracebaton.collector import SpanKind, StatusCode, StoredSpan

from ._hops import Hop, hop_matches
from ._result import CheckResult, CheckState
from ._selectors import attribute_lookup, attribute_matches, selector_matches
from ._situation import Situation, Violation, existential, ms, universal
from ._spec import ErrorsMode, HopPattern, SpanExpectation
from ._trace import FlowTrace

_STATUS_KEYS = ("http.response.status_code", "rpc.grpc.status_code")


def hop_of(situation: Situation, span: StoredSpan) -> Hop | None:
    """The hop a span stands for: as its caller span first, else as its callee span."""
    return hop_finder(situation)(span)


def hop_finder(situation: Situation) -> Callable[[StoredSpan], Hop | None]:
    """`hop_of` for many spans: the hops are indexed once, since a scan per span is quadratic
    in a trace of thousands of hops (a batch job, a load test)."""
    as_anchor: dict[str, Hop] = {}
    as_callee: dict[str, Hop] = {}
    for hop in situation.hops:
        as_anchor.setdefault(hop.anchor.span_id, hop)
        if hop.callee_span is not None:
            as_callee.setdefault(hop.callee_span.span_id, hop)

    def find(span: StoredSpan) -> Hop | None:
        hop = as_anchor.get(span.span_id)
        return hop if hop is not None else as_callee.get(span.span_id)

    return find


def _depths(trace: FlowTrace) -> dict[str, int]:
    """Each span's number of ancestors, in one pass: counting them per span is quadratic in a
    deep chain, and a failure deep down makes every span above it fail too."""
    depth: dict[str, int] = {}
    for span in trace.spans:
        path: list[str] = []
        current = span.span_id
        while current not in depth:
            parent = trace.parent.get(current)
            if parent is None:
                depth[current] = 0
                break
            path.append(current)
            current = parent
        base = depth[current]
        for height, span_id in enumerate(reversed(path), 1):
            depth[span_id] = base + height
    return depth


def _answer(span: StoredSpan) -> str:
    # instrumentations write "ReadTimeout: " for an exception without a message
    message = span.status_message.strip().rstrip(":").strip()
    for key in _STATUS_KEYS:
        found, value = attribute_lookup(span.attributes, key)
        if found and value is not None:
            return f"answered {value}" + (f" ({message})" if message else "")
    return f"failed: {message}" if message else "failed"


def check_errors(situation: Situation) -> CheckResult | None:
    policy = situation.spec.expect.errors
    if policy.mode is ErrorsMode.ANY:
        return None
    trace = situation.trace
    failed = [s for s in trace.spans if s.status_code is StatusCode.ERROR]
    depth = _depths(trace) if failed else {}
    failed.sort(key=lambda s: (-depth[s.span_id], s.start_unix_nano, s.span_id))  # deepest first
    hop_of_span = hop_finder(situation)
    orphans = {o.span_id for o in trace.orphans}
    violations = []
    for span in failed:
        hop = hop_of_span(span)
        if _allowed(situation, span, hop) or _reported_by_parent(trace, span):
            continue
        if hop is not None and hop.anchor.span_id == span.span_id:
            message = f"{hop.text} {_answer(span)}"
        elif hop is not None:
            message = f"{hop.text}: {span.service} {_answer(span)} in {span.name!r}"
        else:
            message = f"{span.service}: {span.name!r} {_answer(span)}"
        # under a span whose parent has not arrived, the hop this error belongs to is unknown yet
        tentative = (hop is not None and hop.tentative) or _under_orphan(trace, span, orphans)
        violations.append(Violation(message, (span.span_id,), hop.text if hop else None, tentative))
    if not violations:  # a deeper error already says why the system answered with one
        violations = _rejected_by_the_system(situation)
    return universal("errors", violations, situation)


def _rejected_by_the_system(situation: Situation) -> list[Violation]:
    """The test's own requests that the system answered with an error. Per the HTTP
    conventions a 4xx marks only the client span ERROR, and the test's client (curl, a test's
    HTTP client) exports none: the test stands for it, so its hop is the failed one."""
    violations = []
    for hop in situation.hops:
        span = hop.callee_span
        if not hop.from_test or span is None or span.status_code is StatusCode.ERROR:
            continue  # an ERROR server span is reported above already
        if _error_answer(span) and not _allowed(situation, span, hop):
            violations.append(Violation(f"{hop.text} {_answer(span)}", (span.span_id,), hop.text,
                                        hop.tentative))
    return violations


def _error_answer(span: StoredSpan) -> bool:
    """An HTTP status of 400 or more, or a gRPC status other than OK, on a server span."""
    if span.kind is not SpanKind.SERVER:
        return False
    for key, least in ((_STATUS_KEYS[0], 400), (_STATUS_KEYS[1], 1)):
        found, value = attribute_lookup(span.attributes, key)
        if found and value is not None and not isinstance(value, bool):
            try:  # ClickHouse and OTEL_RESOURCE_ATTRIBUTES deliver numbers as strings
                return int(str(value).strip()) >= least
            except ValueError:
                return False
    return False


def _under_orphan(trace: FlowTrace, span: StoredSpan, orphans: set[str]) -> bool:
    if not orphans:
        return False
    return span.span_id in orphans or any(a.span_id in orphans for a in trace.ancestors(span))


def _reported_by_parent(trace: FlowTrace, span: StoredSpan) -> bool:
    """The ASGI `… http send` span of a 5xx answer repeats its server span's error: the
    server span names the hop, this one would only push it down the list."""
    parent = trace.parent_of(span)
    return (
        span.kind is SpanKind.INTERNAL
        and span.name.endswith((" http send", " http receive"))
        and parent is not None
        and parent.service == span.service
        and parent.status_code is StatusCode.ERROR
    )


def _allowed(situation: Situation, span: StoredSpan, hop: Hop | None) -> bool:
    for entry in situation.spec.expect.errors.allow:
        if isinstance(entry, HopPattern):
            if hop is not None and hop_matches(entry, hop):
                return True
        elif selector_matches(entry, span):
            return True
    return False


def check_span_expectation(situation: Situation, index: int, expectation: SpanExpectation) -> CheckResult:
    check = f"spans[{index}]"
    selected = [s for s in situation.trace.spans if selector_matches(expectation.select, s)]
    label = f"spans {expectation.select}"
    hop_of_span = hop_finder(situation)
    violations = []
    for span in selected:
        hop = hop_of_span(span)
        where = f"{hop.text}: " if hop else ""
        for key, expected in expectation.attributes.items():
            found, actual = attribute_lookup(span.attributes, key)
            if not found or not attribute_matches(expected, actual):
                shown = "absent" if not found else repr(actual)
                violations.append(
                    Violation(
                        f"{where}{span.service} {span.name!r}: {key} is {shown}, expected {expected!r}",
                        (span.span_id,),
                        hop.text if hop else None,
                    )
                )
        limit = expectation.max_duration_ns
        if limit is not None and span.duration_ns > limit:
            violations.append(
                Violation(
                    f"{where}{span.service} {span.name!r} took {ms(span.duration_ns)}, "
                    f"max_duration {ms(limit)}",
                    (span.span_id,),
                    hop.text if hop else None,
                )
            )
    count = expectation.count
    ids = tuple(s.span_id for s in selected)
    if count is not None and count.op in ("==", "<=") and len(selected) > count.n:
        violations.insert(0, Violation(f"{label}: {len(selected)} matched, expected {count}", ids))
    if violations:
        return universal(check, violations, situation)
    lower = count.n if count is not None and count.op in ("==", ">=") else (1 if count is None else 0)
    if len(selected) < lower:
        return existential(
            check,
            [
                Violation(
                    f"{label}: {len(selected)} matched, expected {count if count is not None else '>=1'}", ids
                )
            ],
            situation,
        )
    needs_settle = (
        bool(expectation.attributes)
        or expectation.max_duration_ns is not None
        or (count is not None and count.op in ("==", "<="))
    )
    if needs_settle:
        return universal(check, [], situation)
    return CheckResult(check, CheckState.PASS)
