"""Flow spec v1 as typed, immutable values (DESIGN §5).

`parse_flow_spec` (in `_spec_parse`) turns YAML or a dict into these; everything else in
the engine reads only these objects, never the raw mapping.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

from tracebaton import format_duration_ns
from tracebaton.collector import AttributeValue, SpanKind, StatusCode

_MS = 1_000_000
_S = 1_000_000_000


class Order(enum.Enum):
    SUBSEQUENCE = "subsequence"
    EXACT = "exact"
    ANY = "any"


class HeaderRule(enum.Enum):
    VALID = "valid"
    """W3C-valid traceparent, same trace id, parent-id = the caller's span id."""
    SAME = "same"
    """Present on every hop, one value across the flow."""
    PRESENT = "present"


class ErrorsMode(enum.Enum):
    NONE = "none"
    ANY = "any"
    ALLOW = "allow"


PRESENT = "*"
"""An attribute expectation of `"*"` means "present, any value"."""


@dataclasses.dataclass(frozen=True, slots=True)
class HopPattern:
    """`caller -> callee` (synchronous) or `caller ~> callee` (asynchronous); `*` is any service."""

    caller: str
    callee: str
    asynchronous: bool = False

    def __str__(self) -> str:
        return f"{self.caller} {'~>' if self.asynchronous else '->'} {self.callee}"


@dataclasses.dataclass(frozen=True, slots=True)
class Selector:
    """Which spans a `spans` entry (or an `errors.allow` entry) is about. None = any."""

    service: str | None = None
    name: str | None = None
    """A glob (fnmatch, case-sensitive)."""
    kind: SpanKind | None = None
    status: StatusCode | None = None
    attributes: Mapping[str, AttributeValue] = dataclasses.field(default_factory=dict)
    """Equality per key (old and stable semantic-convention names alike); `"*"` = present."""

    def __str__(self) -> str:
        parts = [
            f"{key}={value}"
            for key, value in (
                ("service", self.service),
                ("name", self.name),
                ("kind", self.kind.label if self.kind is not None else None),
                ("status", self.status.label if self.status is not None else None),
            )
            if value is not None
        ]
        parts += [f"{key}={value!r}" for key, value in self.attributes.items()]
        return "{" + ", ".join(parts) + "}"


@dataclasses.dataclass(frozen=True, slots=True)
class CountBound:
    """`1` (exactly), `">=1"`, `"<=2"`, `"0"`."""

    op: str  # "==", ">=", "<="
    n: int

    def holds(self, count: int) -> bool:
        if self.op == ">=":
            return count >= self.n
        if self.op == "<=":
            return count <= self.n
        return count == self.n

    def __str__(self) -> str:
        return str(self.n) if self.op == "==" else f"{self.op}{self.n}"


@dataclasses.dataclass(frozen=True, slots=True)
class FindSpec:
    root_service: str | None = None
    root_name: str | None = None
    """A glob over the root span's name."""
    attributes: Mapping[str, AttributeValue] = dataclasses.field(default_factory=dict)
    """On any span of the trace."""
    since_ns: int = 60 * _S


@dataclasses.dataclass(frozen=True, slots=True)
class WaitSpec:
    timeout_ns: int = 10 * _S
    settle_ns: int = 250 * _MS
    parent_grace_ns: int = 1 * _S


SERVER_MAX_WAIT_NS = 10 * 60 * _S
"""The longest `wait.timeout` a server-side check (`POST /api/check`) waits: a request held
longer than that outlives proxies' and clients' timeouts."""


def server_wait_problem(wait: WaitSpec) -> str | None:
    """Why a server would refuse to wait as long as `wait` asks, or None. The CLI asks it
    before it runs anything, the API before it waits."""
    if wait.timeout_ns <= SERVER_MAX_WAIT_NS:
        return None
    return (f"wait.timeout {format_duration_ns(wait.timeout_ns)} is longer than a server-side check "
            f"waits ({format_duration_ns(SERVER_MAX_WAIT_NS)}); shorten it")


@dataclasses.dataclass(frozen=True, slots=True)
class SpanExpectation:
    select: Selector
    count: CountBound | None = None
    attributes: Mapping[str, AttributeValue] = dataclasses.field(default_factory=dict)
    max_duration_ns: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Budgets:
    trace_ns: int | None = None
    hops: tuple[tuple[HopPattern, int], ...] = ()
    deadlines: bool = False
    deadline_slack_ns: int = 10 * _MS


@dataclasses.dataclass(frozen=True, slots=True)
class Propagation:
    connected: bool = True
    headers: Mapping[str, HeaderRule] = dataclasses.field(default_factory=dict)
    """Lower-case header names."""
    baggage: Mapping[str, str] = dataclasses.field(default_factory=dict)
    check_async: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorsPolicy:
    mode: ErrorsMode = ErrorsMode.NONE
    allow: tuple[HopPattern | Selector, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Expectations:
    hops: tuple[tuple[HopPattern, ...], ...] = ()
    """Expected hops in order; an inner tuple of more than one is a group (any order inside)."""
    order: Order = Order.SUBSEQUENCE
    times: tuple[tuple[HopPattern, int], ...] = ()
    chains: tuple[tuple[str, ...], ...] = ()
    budgets: Budgets = Budgets()
    propagation: Propagation = Propagation()
    errors: ErrorsPolicy = ErrorsPolicy()
    spans: tuple[SpanExpectation, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class FlowSpec:
    name: str
    find: FindSpec | None = None
    wait: WaitSpec = WaitSpec()
    peers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Uninstrumented peer name -> "host:port"."""
    expect: Expectations = Expectations()
