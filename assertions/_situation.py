"""What every check reads, and the two ways a check reaches its verdict (DESIGN §5).

Existential checks pass the moment what they want is seen and fail only at the timeout;
universal checks fail the moment a violation is seen and pass only once the flow settled.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable, Sequence, Set

from tracebaton import format_duration_ns
from tracebaton.collector import StoredSpan

from ._hops import TEST_SERVICE, Hop
from ._result import CheckResult, CheckState
from ._spec import FlowSpec
from ._trace import FlowTrace

NEVER_SETTLED = "no violation seen, but the flow never settled before the timeout"
"""How a universal check fails at the timeout with nothing against it: such a failure
explains no other, so it is never the first divergence while a real one exists."""


@dataclasses.dataclass(frozen=True)
class Situation:
    spec: FlowSpec
    trace: FlowTrace
    hops: tuple[Hop, ...]
    settled: bool
    """No new span for `settle` and no missing parent still within `parent_grace`."""
    final: bool
    """The timeout passed: pending checks are decided now."""
    now_unix_nano: int
    missing_parents: tuple[StoredSpan, ...] = ()
    """Orphans whose parent did not arrive within `parent_grace`."""
    gave_up: bool = False
    """The flow is complete and was quiet for the quiet window (DESIGN §5 "Giving up early"):
    what existential checks still wait for will not come, so they are decided now."""
    store_services: frozenset[str] | None = None
    """Every service the store has a span of, for the hint at a name it never saw; None
    where no store is asked (a stored trace judged on its own)."""

    @property
    def deciding(self) -> bool:
        """The engine stops waiting after this round: pending existential checks fail now."""
        return self.final or self.gave_up


@dataclasses.dataclass(frozen=True, slots=True)
class Violation:
    message: str
    span_ids: tuple[str, ...] = ()
    hop: str | None = None
    tentative: bool = False
    """About a hop whose callee has not arrived yet: the check waits for it, at most parent_grace."""


def universal(check: str, violations: Sequence[Violation], situation: Situation) -> CheckResult:
    if any(v.tentative for v in violations) and not (situation.settled or situation.final):
        # which failure comes first (deepest error, earliest hop) may change when the
        # missing callee arrives: hold the verdict until then, at most parent_grace
        return CheckResult(check, CheckState.PENDING, violations[0].message, hop=violations[0].hop)
    if violations:
        first = violations[0]
        more = f" (and {len(violations) - 1} more)" if len(violations) > 1 else ""
        span_ids = tuple(dict.fromkeys(s for v in violations for s in v.span_ids))
        return CheckResult(check, CheckState.FAIL, first.message + more, span_ids, first.hop,
                           tuple(v.message for v in violations[1:]))
    if situation.settled:
        return CheckResult(check, CheckState.PASS)
    if situation.final:
        last = situation.trace.last_arrival_unix_nano
        ago = (
            ""
            if last is None
            else f"; the last span came {format_duration_ns(situation.now_unix_nano - last)} ago"
        )
        return CheckResult(
            check,
            CheckState.FAIL,
            f"{NEVER_SETTLED}{ago}: "
            "raise wait.timeout or lower wait.settle",
        )
    return CheckResult(check, CheckState.PENDING)


def existential(check: str, missing: Sequence[Violation], situation: Situation) -> CheckResult:
    if not missing:
        return CheckResult(check, CheckState.PASS)
    if situation.deciding:
        first = missing[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        span_ids = tuple(dict.fromkeys(s for v in missing for s in v.span_ids))
        return CheckResult(check, CheckState.FAIL, first.message + more, span_ids, first.hop,
                           tuple(v.message for v in missing[1:]))
    return CheckResult(check, CheckState.PENDING, missing[0].message, hop=missing[0].hop)


_SEEN_LISTED = 6
"""Services a hint lists before it says `…`: the close matches come first, so few suffice."""


def never_stored(service: str, situation: Situation) -> bool:
    """Whether the spec names a service the store has no span of (peers and `*` are no services)."""
    return _never_stored(service, situation.store_services, situation.spec)


def _never_stored(service: str, known: Set[str] | None, spec: FlowSpec) -> bool:
    return (
        known is not None
        and service not in ("*", TEST_SERVICE)
        and service not in spec.peers
        and service not in known
    )


def unknown_service_hint(names: Iterable[str], situation: Situation) -> str:
    """"; no span of 'invntory' ever arrived; seen: inventory, …" for each of `names` the
    store never saw (a typo, or a service not pointed here yet), the likeliest meant names
    first; "" when the store was not asked or saw them all."""
    return unseen_services_hint(names, situation.store_services, situation.spec)


def unseen_services_hint(names: Iterable[str], known: Set[str] | None, spec: FlowSpec) -> str:
    """`unknown_service_hint` before any judging: what the engine says at once, when a
    check starts, about the services its spec names and the store never saw."""
    unseen = [name for name in dict.fromkeys(names) if _never_stored(name, known, spec)]
    if not unseen:
        return ""
    others = sorted((known or frozenset()) - {TEST_SERVICE})
    hints = []
    for name in unseen:
        close = difflib.get_close_matches(name, others, n=3, cutoff=0.6)
        listed = [*close, *(s for s in others if s not in close)]
        seen = ", ".join(listed[:_SEEN_LISTED]) + (", …" if len(listed) > _SEEN_LISTED else "")
        tail = f"; seen: {seen}" if seen else ", nor of any service"
        hints.append(f"no span of {name!r} ever arrived{tail}")
    return "; " + "; ".join(hints)


def ms(ns: int) -> str:
    return format_duration_ns(ns)
