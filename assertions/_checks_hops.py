"""Checks about which hops happened, how often, in what order and nesting:
`hops`, `order`, `times`, `chains`."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from tracebaton.collector import SpanKind, StoredSpan

from ._hops import Hop, hop_matches, names_test
from ._order import Relation, hop_relation
from ._result import CheckResult, CheckState
from ._situation import (
    Situation,
    Violation,
    existential,
    never_stored,
    universal,
    unknown_service_hint,
)
from ._spec import HopPattern, Order
from ._trace import FlowTrace

_EXACT_INSTANCES = 32


def _matching(pattern: HopPattern, hops: Iterable[Hop]) -> list[Hop]:
    return [hop for hop in hops if hop_matches(pattern, hop)]


def _never_seen(pattern: HopPattern, situation: Situation) -> Violation:
    """Why an expected hop is missing, in the words that point at the fix."""
    trace, hops = situation.trace, situation.hops
    flipped = HopPattern(pattern.caller, pattern.callee, not pattern.asynchronous)
    if seen := _matching(flipped, hops):
        return Violation(
            f"{pattern}: never seen; seen as {seen[0].text} "
            f"({'asynchronous' if seen[0].asynchronous else 'synchronous'}) — "
            f"write it as {flipped}",
            (seen[0].anchor.span_id,),
            str(pattern),
        )
    # a name the store never saw is likelier a typo than a service that is merely late
    hint = unknown_service_hint((pattern.caller, pattern.callee), situation)
    services = {span.service for span in trace.spans}
    if pattern.caller != "*" and pattern.caller not in services:
        absent = "" if never_stored(pattern.caller, situation) else f"; no span of {pattern.caller} arrived"
        return Violation(f"{pattern}: never seen{absent}{hint}", (), str(pattern))
    if pattern.asynchronous:
        unconsumed = [
            s
            for s in trace.spans
            if s.kind is SpanKind.PRODUCER
            and (pattern.caller == "*" or s.service == pattern.caller)
            and not any(h.anchor.span_id == s.span_id for h in hops)
        ]
        if unconsumed:
            producer = unconsumed[0]
            return Violation(
                f"{pattern}: never seen; {producer.service} produced {producer.name!r} "
                f"(span {producer.span_id}) but no consumer span arrived with a link to it{hint}",
                (producer.span_id,),
                str(pattern),
            )
    called = sorted({h.callee for h in hops if pattern.caller in ("*", h.caller)})
    tail = f"; {pattern.caller} called {', '.join(called)}" if called and pattern.caller != "*" else ""
    return Violation(f"{pattern}: never seen{tail}{hint}", (), str(pattern))


def check_hops(situation: Situation) -> CheckResult | None:
    expected = situation.spec.expect.hops
    if not expected:
        return None
    missing = [
        _never_seen(p, situation) for group in expected for p in group if not _matching(p, situation.hops)
    ]
    return existential("hops", missing, situation)


def check_order(situation: Situation) -> CheckResult | None:
    expect = situation.spec.expect
    if not expect.hops or expect.order is Order.ANY:
        return None
    if expect.order is Order.EXACT:
        return _exact_order(situation)
    inversions = []
    groups = expect.hops
    # each pattern matched once, not once for every pair it is in
    matches = {p: _matching(p, situation.hops) for group in groups for p in group}
    for i, earlier_group in enumerate(groups):
        for later_group in groups[i + 1 :]:
            for x_pattern in earlier_group:
                for y_pattern in later_group:
                    xs, ys = matches[x_pattern], matches[y_pattern]
                    x = xs[0] if xs else None
                    if x is None or not ys:
                        continue
                    # A subsequence needs one Y after the first X: an extra Y before it (a
                    # pre-check, a retry) is no inversion. The latest Y is the likeliest: ask it first.
                    if all(hop_relation(situation.trace, x, y) is Relation.AFTER for y in reversed(ys)):
                        y = ys[0]
                        inversions.append(
                            Violation(
                                f"{y.text}: happened before {x.text}, expected after it",
                                (y.anchor.span_id, x.anchor.span_id),
                                y.text,
                            )
                        )
    all_seen = all(matches.values())
    if inversions:
        # spans arrive out of order: an earlier instance of the first hop may still come
        if situation.settled or situation.final:
            return universal("order", inversions, situation)
        return CheckResult("order", CheckState.PENDING, inversions[0].message, hop=inversions[0].hop)
    if all_seen or situation.deciding:
        return CheckResult("order", CheckState.PASS)
    return CheckResult("order", CheckState.PENDING)


def _exact_order(situation: Situation) -> CheckResult:
    groups = situation.spec.expect.hops
    patterns = [p for group in groups for p in group]
    counted = [h for h in situation.hops if not h.from_test or names_test(patterns)]
    violations = [
        Violation(
            f"{hop.text}: not in the expected hops (order: exact)",
            (hop.anchor.span_id,),
            hop.text,
            hop.tentative,
        )
        for hop in counted
        if not any(hop_matches(p, hop) for p in patterns)
    ]
    # neighbouring groups only: "each after the one before" orders them all, and a spec of
    # many hops must not make the engine compare every pair over a 10,000-hop trace
    for earlier_group, later_group in itertools.pairwise(groups):
        # every pair of instances is compared, up to a bound; the first ones decide most
        earlier = [h for p in earlier_group for h in _matching(p, counted)][:_EXACT_INSTANCES]
        later = [h for p in later_group for h in _matching(p, counted)][:_EXACT_INSTANCES]
        for x in earlier:
            for y in later:
                related = hop_relation(situation.trace, x, y)
                if related is Relation.AFTER or related is Relation.OVERLAP:
                    when = "overlapped" if related is Relation.OVERLAP else "happened before"
                    violations.append(
                        Violation(
                            f"{y.text}: {when} {x.text}, expected after it (order: exact)",
                            (y.anchor.span_id, x.anchor.span_id),
                            y.text,
                        )
                    )
    if violations:
        return universal("order", violations, situation)
    missing = [_never_seen(p, situation) for p in patterns if not _matching(p, counted)]
    if missing:
        return existential("order", missing, situation)
    return universal("order", [], situation)


def check_times(situation: Situation) -> CheckResult | None:
    times = situation.spec.expect.times
    if not times:
        return None
    too_many, too_few = [], []
    for pattern, n in times:
        seen = _matching(pattern, situation.hops)
        ids = tuple(h.anchor.span_id for h in seen)
        if len(seen) > n:
            what = f"{seen[0].text}" if len({h.text for h in seen}) == 1 else str(pattern)
            too_many.append(
                Violation(
                    f"{what}: happened {len(seen)} times, expected {n}"
                    + (" (a retry?)" if n >= 1 and len({h.text for h in seen}) == 1 else ""),
                    ids,
                    what,
                    any(h.tentative for h in seen),
                )
            )
        elif len(seen) < n:
            too_few.append(
                Violation(f"{pattern}: happened {len(seen)} times, expected {n}", ids, str(pattern))
            )
    if too_many:
        return universal("times", too_many, situation)
    if too_few:
        return existential("times", too_few, situation)
    return universal("times", [], situation)


def check_chains(situation: Situation) -> CheckResult | None:
    chains = situation.spec.expect.chains
    if not chains:
        return None
    missing = []
    for chain in chains:
        reached = _longest_chain(situation, chain)
        if reached < len(chain):
            written = " → ".join(chain)
            if reached <= 1:
                hop = str(HopPattern(chain[0], chain[1]))
                hint = unknown_service_hint(chain[:2], situation)
                missing.append(Violation(f"{hop}: chain {written} never started{hint}", (), hop))
            else:
                outer = str(HopPattern(chain[reached - 2], chain[reached - 1]))
                hop = str(HopPattern(chain[reached - 1], chain[reached]))
                hint = unknown_service_hint(chain[reached:reached + 1], situation)
                missing.append(
                    Violation(f"{hop}: never happened inside {outer} (chain {written}){hint}", (), hop)
                )
    return existential("chains", missing, situation)


def _longest_chain(situation: Situation, chain: tuple[str, ...]) -> int:
    """How many services of `chain` a nested run of hops reaches (1 = none of its hops)."""

    def links(caller: str, callee: str) -> list[Hop]:
        return [h for h in situation.hops if h.caller == caller and h.callee == callee]

    best = 1
    frontier = links(chain[0], chain[1])
    if frontier:
        best = 2
    for index in range(2, len(chain)):
        inside = _below(situation.trace, [h.callee_span for h in frontier if h.callee_span is not None])
        frontier = [h for h in links(chain[index - 1], chain[index]) if h.anchor.span_id in inside]
        if not frontier:
            break
        best = index + 1
    return best


def _below(trace: FlowTrace, tops: Iterable[StoredSpan]) -> set[str]:
    """Ids of the spans strictly below any of `tops` (what `nested_in` asks), in one walk for
    the whole frontier: asking per pair of hops is quadratic in a deep chain."""
    seen: set[str] = set()
    stack = [child for top in tops for child in trace.children_of(top)]
    while stack:
        span = stack.pop()
        if span.span_id not in seen:
            seen.add(span.span_id)
            stack.extend(trace.children_of(span))
    return seen
