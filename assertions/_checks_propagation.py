"""Propagation checks: `connected`, `headers`, `baggage`, and the findings they imply."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator

from tracebaton.collector import StoredSpan

from ._hops import Hop
from ._result import CheckResult, Finding, FindingKind, HopKind
from ._selectors import captures_any_headers, header_values
from ._situation import Situation, Violation, ms, universal
from ._spec import HeaderRule

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
CAPTURE_ENV = "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST"


def parse_traceparent(value: str) -> tuple[str, str] | None:
    """(trace id, parent id) of a W3C-valid traceparent, else None."""
    match = _TRACEPARENT.match(value.strip())
    if match is None:
        return None
    version, trace_id, parent_id, _flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or set(trace_id) == {"0"} or set(parent_id) == {"0"}:
        return None
    return trace_id, parent_id


def _checked_hops(situation: Situation, *, include_test: bool) -> Iterator[Hop]:
    """Hops whose callee span can show what it received: not peers, not async unless asked."""
    for hop in situation.hops:
        if hop.kind is HopKind.PEER or hop.callee_span is None:
            continue
        if hop.asynchronous and not situation.spec.expect.propagation.check_async:
            continue
        if hop.from_test and not include_test:
            continue
        yield hop


def _no_capture(hop: Hop, callee: StoredSpan, names: str) -> Violation:
    return Violation(
        f"{hop.text}: {callee.service} captures no request headers; set {CAPTURE_ENV}={names} "
        "in its environment (tracebaton.sut_env() does)",
        (callee.span_id,),
        hop.text,
    )


def check_connected(situation: Situation) -> CheckResult | None:
    if not situation.spec.expect.propagation.connected:
        return None
    violations = [
        Violation(
            f"{hop.text}: propagation broken — {hop.detail}",
            (hop.anchor.span_id,) + ((hop.callee_span.span_id,) if hop.callee_span else ()),
            hop.text,
        )
        for hop in situation.hops
        if hop.broken
    ]
    grace = situation.spec.wait.parent_grace_ns
    violations += [
        Violation(
            f"{span.service}: span {span.span_id} ({span.name!r}) names parent "
            f"{span.parent_span_id}, which did not arrive within parent_grace {ms(grace)}",
            (span.span_id,),
        )
        for span in situation.missing_parents
    ]
    return universal("connected", violations, situation)


def check_headers(situation: Situation) -> CheckResult | None:
    rules = situation.spec.expect.propagation.headers
    if not rules:
        return None
    names = ",".join(rules)
    violations: list[Violation] = []
    first_same: dict[str, tuple[str, Hop]] = {}
    for hop in _checked_hops(situation, include_test=True):
        callee = hop.callee_span
        assert callee is not None
        if not captures_any_headers(callee.attributes):
            if not hop.from_test:
                violations.append(_no_capture(hop, callee, names))
            continue
        for header, rule in rules.items():
            if hop.from_test and rule is not HeaderRule.VALID:
                continue  # what the test itself sent is not the services' propagation
            values = header_values(callee.attributes, header)
            if not values:
                if not (rule is HeaderRule.VALID and hop.broken):
                    violations.append(
                        Violation(
                            f"{hop.text}: {header} missing on {callee.service}'s request",
                            (callee.span_id,),
                            hop.text,
                        )
                    )
                continue
            value = values[0]
            if rule is HeaderRule.VALID:
                problem = _traceparent_problem(value, hop)
                if problem and not hop.broken:
                    violations.append(
                        Violation(
                            f"{hop.text}: traceparent {value!r} {problem}",
                            (callee.span_id, hop.anchor.span_id),
                            hop.text,
                        )
                    )
            elif rule is HeaderRule.SAME:
                if header not in first_same:
                    first_same[header] = (value, hop)
                elif value != first_same[header][0]:
                    was, where = first_same[header]
                    violations.append(
                        Violation(
                            f"{hop.text}: {header} is {value!r}, but {was!r} on {where.text}: one value must "
                            "travel the whole flow",
                            (callee.span_id,),
                            hop.text,
                        )
                    )
    return universal("headers", violations, situation)


def _traceparent_problem(value: str, hop: Hop) -> str | None:
    parsed = parse_traceparent(value)
    callee = hop.callee_span
    assert callee is not None
    if parsed is None:
        return "is not W3C-valid (version-traceid-parentid-flags, lower-case hex)"
    trace_id, parent_id = parsed
    if trace_id != callee.trace_id:
        return f"carries trace id {trace_id}, but the callee span is in trace {callee.trace_id}"
    if parent_id != hop.anchor.span_id:
        return (
            f"names parent {parent_id}, not the caller span {hop.anchor.span_id} of {hop.caller} — "
            f"a proxy or wrapper in between did not propagate"
        )
    return None


def baggage_entries(header: str) -> dict[str, str]:
    """W3C baggage: `k=v;props, k2=v2`, percent-decoded; malformed members are skipped."""
    entries = {}
    for member in header.split(","):
        key, sep, value = member.split(";", 1)[0].partition("=")
        if sep and key.strip():
            entries[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return entries


def check_baggage(situation: Situation) -> CheckResult | None:
    expected = situation.spec.expect.propagation.baggage
    if not expected:
        return None
    violations = []
    for hop in _checked_hops(situation, include_test=False):
        callee = hop.callee_span
        assert callee is not None
        headers = header_values(callee.attributes, "baggage")
        seen = baggage_entries(",".join(headers)) if headers else {}
        for key, value in expected.items():
            actual = callee.attributes.get(key, seen.get(key))
            if actual is None and key not in callee.attributes and not headers:
                violations.append(
                    Violation(
                        f"{hop.text}: {callee.service} cannot see baggage: set {CAPTURE_ENV}=baggage "
                        "or add a "
                        "baggage span processor (tracebaton.sut_env() does the first)",
                        (callee.span_id,),
                        hop.text,
                    )
                )
                break
            if actual is None:
                violations.append(
                    Violation(
                        f"{hop.text}: baggage {key} lost (not on {callee.service}'s request)",
                        (callee.span_id,),
                        hop.text,
                    )
                )
            elif str(actual) != value:
                violations.append(
                    Violation(
                        f"{hop.text}: baggage {key} is {actual!r}, expected {value!r}",
                        (callee.span_id,),
                        hop.text,
                    )
                )
    return universal("baggage", violations, situation)


def propagation_findings(situation: Situation) -> list[Finding]:
    findings = [
        Finding(
            FindingKind.PROPAGATION_BROKEN,
            f"{hop.text}: {hop.detail}",
            hop.text,
            (hop.anchor.span_id,) + ((hop.callee_span.span_id,) if hop.callee_span else ()),
        )
        for hop in situation.hops
        if hop.broken
    ]
    findings += [
        Finding(
            FindingKind.MISSING_PARENT,
            f"{span.service}: span {span.span_id} ({span.name!r}) names parent {span.parent_span_id}, "
            "which never arrived",
            span_ids=(span.span_id,),
        )
        for span in situation.missing_parents
    ]
    for hop in _checked_hops(situation, include_test=True):
        callee = hop.callee_span
        assert callee is not None
        values = header_values(callee.attributes, "traceparent")
        if values and not hop.broken and (problem := _traceparent_problem(values[0], hop)):
            findings.append(
                Finding(
                    FindingKind.TRACEPARENT_MISMATCH,
                    f"{hop.text}: traceparent {problem}",
                    hop.text,
                    (callee.span_id,),
                )
            )
    return findings
