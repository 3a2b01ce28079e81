"""A flow's verdict as data (DESIGN §5 "Result"): what the engine returns, the API sends,
the dashboard lists and the failure renderer reads."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any


class CheckState(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    PENDING = "pending"


CHECK_IDS = (
    "hops",
    "order",
    "times",
    "chains",
    "budgets.trace",
    "budgets.hops",
    "deadlines",
    "connected",
    "headers",
    "baggage",
    "errors",
)
"""The fixed check ids, in report order; `spans[i]` follow them."""


class HopKind(enum.Enum):
    SYNC = "sync"
    ASYNC = "async"
    PEER = "peer"


class HopStatus(enum.Enum):
    MATCHED = "matched"
    UNEXPECTED = "unexpected"
    MISSING = "missing"
    """Expected, and the flow was judged to the end without it."""
    BROKEN = "broken"
    PENDING = "pending"
    """Expected and not seen yet when another check failed first: the verdict came before
    the flow was whole, so the hop is not judged (it may well have come)."""


class FindingKind(enum.Enum):
    PROPAGATION_BROKEN = "propagation_broken"
    MISSING_PARENT = "missing_parent"
    TRACEPARENT_MISMATCH = "traceparent_mismatch"
    EXPORT_LAG = "export_lag"
    CLOCK_SKEW = "clock_skew"
    PARENT_CYCLE = "parent_cycle"
    DUPLICATE_SPAN = "duplicate_span"
    STORE_IMPRECISE = "store_imprecise"
    """A rule the store's schema cannot decide exactly (is-remote on ClickHouse)."""
    UNMATCHED_RULE = "unmatched_rule"
    """A budget or an allowed error names a hop the settled flow never had: a misspelt hop
    turns its rule off without a word otherwise."""


class WaitedReason(enum.Enum):
    """Why the engine stopped waiting (DESIGN §5): never `satisfied` on a failure."""

    SATISFIED = "satisfied"
    """Passed before the flow settled: only existential checks, all seen."""
    SETTLED = "settled"
    TIMEOUT = "timeout"
    VIOLATED = "violated"
    """A universal check failed before the flow settled."""
    QUIET = "quiet"
    """Gave up early: the flow was complete and no span came for the quiet window."""


@dataclasses.dataclass(frozen=True, slots=True)
class CheckResult:
    check: str
    state: CheckState
    message: str = ""
    span_ids: tuple[str, ...] = ()
    hop: str | None = None
    """The hop the message is about, written `caller -> callee`, when there is one."""
    more: tuple[str, ...] = ()
    """The check's other violations after the first, in full: `message` ends
    `(and N more)` for them, and the renderers list them under it."""

    @property
    def passed(self) -> bool:
        return self.state is CheckState.PASS

    def to_json(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "passed": self.passed,
            "state": self.state.value,
            "message": self.message,
            "span_ids": list(self.span_ids),
            "hop": self.hop,
            "more": list(self.more),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class HopResult:
    hop: str
    kind: HopKind
    status: HopStatus
    caller_span_id: str | None
    callee_span_id: str | None
    caller_service: str
    callee_service: str
    start_unix_nano: int | None = None
    duration_ns: int | None = None
    detail: str = ""
    """Why a hop is broken or has no callee span, in a few words."""

    def to_json(self) -> dict[str, Any]:
        return {
            "hop": self.hop,
            "kind": self.kind.value,
            "status": self.status.value,
            "caller_span_id": self.caller_span_id,
            "callee_span_id": self.callee_span_id,
            "caller_service": self.caller_service,
            "callee_service": self.callee_service,
            "start_unix_nano": None if self.start_unix_nano is None else str(self.start_unix_nano),
            "duration_ns": None if self.duration_ns is None else str(self.duration_ns),
            "detail": self.detail,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    message: str
    hop: str | None = None
    span_ids: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "hop": self.hop,
            "message": self.message,
            "span_ids": list(self.span_ids),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class FlowResult:
    passed: bool
    name: str
    trace_id: str | None
    waited_ms: int
    waited_reason: WaitedReason
    first_divergence: str | None
    checks: tuple[CheckResult, ...]
    hops: tuple[HopResult, ...]
    expected_hops: tuple[str, ...] = ()
    """The spec's expected hops as written (groups flattened), for the `-`/`+` diff."""
    findings: tuple[Finding, ...] = ()
    trace_ids: tuple[str, ...] = ()
    """Every trace the flow covers: its own, linked ones and stitched broken ones."""
    span_count: int = 0
    last_arrival_unix_nano: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "name": self.name,
            "trace_id": self.trace_id,
            "waited_ms": self.waited_ms,
            "waited_reason": self.waited_reason.value,
            "first_divergence": self.first_divergence,
            "checks": [c.to_json() for c in self.checks],
            "hops": [h.to_json() for h in self.hops],
            "expected_hops": list(self.expected_hops),
            "findings": [f.to_json() for f in self.findings],
            "trace_ids": list(self.trace_ids),
            "span_count": self.span_count,
            "last_arrival_unix_nano": (
                None if self.last_arrival_unix_nano is None else str(self.last_arrival_unix_nano)
            ),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FlowResult:
        """The inverse of `to_json`, for results a remote server judged."""

        def opt_int(value: Any) -> int | None:
            return None if value is None else int(value)

        return cls(
            passed=bool(data["passed"]),
            name=str(data["name"]),
            trace_id=data.get("trace_id"),
            waited_ms=int(data["waited_ms"]),
            waited_reason=WaitedReason(data["waited_reason"]),
            first_divergence=data.get("first_divergence"),
            checks=tuple(
                CheckResult(
                    check=c["check"],
                    state=CheckState(c.get("state") or ("pass" if c["passed"] else "fail")),
                    message=c.get("message", ""),
                    span_ids=tuple(c.get("span_ids", ())),
                    hop=c.get("hop"),
                    more=tuple(c.get("more", ())),
                )
                for c in data.get("checks", ())
            ),
            hops=tuple(
                HopResult(
                    hop=h["hop"],
                    kind=HopKind(h["kind"]),
                    status=HopStatus(h["status"]),
                    caller_span_id=h.get("caller_span_id"),
                    callee_span_id=h.get("callee_span_id"),
                    caller_service=h.get("caller_service", ""),
                    callee_service=h.get("callee_service", ""),
                    start_unix_nano=opt_int(h.get("start_unix_nano")),
                    duration_ns=opt_int(h.get("duration_ns")),
                    detail=h.get("detail", ""),
                )
                for h in data.get("hops", ())
            ),
            expected_hops=tuple(data.get("expected_hops", ())),
            findings=tuple(
                Finding(
                    kind=FindingKind(f["kind"]),
                    message=f["message"],
                    hop=f.get("hop"),
                    span_ids=tuple(f.get("span_ids", ())),
                )
                for f in data.get("findings", ())
            ),
            trace_ids=tuple(data.get("trace_ids", ())),
            span_count=int(data.get("span_count", 0)),
            last_arrival_unix_nano=opt_int(data.get("last_arrival_unix_nano")),
        )


def divergent_hops(result: FlowResult) -> list[HopResult]:
    """The hops the first divergence names: it starts with `caller -> callee`, by DESIGN §5."""
    text = result.first_divergence
    if not text:
        return []
    named = [h for h in result.hops if h.hop and _starts_with_word(text, h.hop)]
    if not named:
        named = [h for h in result.hops if h.hop and h.hop in text]
    longest = max((len(h.hop) for h in named), default=0)
    # `cart -> inventory` must not also claim a divergence about `cart -> inventory-v2`.
    return [h for h in named if len(h.hop) == longest]


def _starts_with_word(text: str, prefix: str) -> bool:
    return text.startswith(prefix) and (len(text) == len(prefix) or text[len(prefix)] in " :,;([")


@dataclasses.dataclass(frozen=True, slots=True)
class HopBlame:
    """Which hops of a verdict a reader should look at, as indexes into `FlowResult.hops`."""

    culprits: tuple[int, ...]
    """The hops that broke: those the first divergence names (every attempt of a retried hop).
    When it names none, every hop a failed check names: none stands out from the others."""
    implicated: tuple[int, ...]
    """The other hops a failed check or a finding names: the hop an inverted one was compared
    with, the caller of an erroring hop. Context for the culprit, not a second culprit."""


def hop_blame(result: FlowResult) -> HopBlame:
    """Culprit and implicated hops: what the dashboard draws red and in a secondary style."""
    failed = [c for c in result.checks if c.state is CheckState.FAIL]
    names = {c.hop for c in failed if c.hop} | {f.hop for f in result.findings if f.hop}
    span_ids = {i for c in failed for i in c.span_ids}
    failing = [
        i
        for i, h in enumerate(result.hops)
        if h.status is HopStatus.BROKEN
        or h.hop in names
        or h.caller_span_id in span_ids
        or h.callee_span_id in span_ids
    ]
    divergent = {h.hop for h in divergent_hops(result)}
    culprits = [i for i, h in enumerate(result.hops) if h.hop in divergent]
    if not culprits:
        return HopBlame(tuple(failing), ())
    return HopBlame(tuple(culprits), tuple(i for i in failing if i not in culprits))
