"""The demo's switchable integration faults: `x-demo-fault: <fault>@<service>[, ...]`.

Pure and free of OpenTelemetry on purpose: the uninstrumented payment-gateway stub reads
the same header.
"""

from __future__ import annotations

import dataclasses

from ._shop import SERVICES

FAULT_HEADER = "x-demo-fault"
REQUEST_ID_HEADER = "x-request-id"
ATTEMPT_HEADER = "x-demo-attempt"
"""Which attempt of a call this is (1, 2): lets a `retry` callee fail only the first one
without keeping state between requests."""

SLOW_S = 1.0
"""`slow`: extra time the named service takes. A recorded snapshot's budget is three times
what a hop took, rounded up to 250 ms, 500 ms, 1 s, …: a full second outruns it for any hop
recorded under 333 ms, as on a loaded CI machine (400 ms did not once a hop took 60 ms)."""
SHORT_TIMEOUT_S = 0.2
"""`outlive-timeout`: the caller's timeout for its call to the named service."""
OUTLIVE_S = 0.5
"""`outlive-timeout`: how long the named service works on after its caller gave up."""

FAULTS: dict[str, str] = {
    "drop-traceparent": "calls onward without traceparent/tracestate: its callees start new traces",
    "wrong-order": "(frontend) charges payment before it checks out the cart and reads the catalog",
    "slow": f"takes {SLOW_S * 1000:.0f} ms extra before it answers",
    "retry": "answers 503 to the first attempt; its caller retries, so the hop happens twice",
    "format-mismatch": "answers 422 (its caller's request does not match its format)",
    "expired-token": "answers 401 (auth: the token expired); callers pass the 401 on",
    "drop-request-id": "does not forward x-request-id on its outgoing calls",
    "outlive-timeout": (
        f"its caller calls it with a {SHORT_TIMEOUT_S * 1000:.0f} ms timeout and gives up; "
        f"it keeps working {OUTLIVE_S * 1000:.0f} ms after that"
    ),
    "lost-message": "(email) claims the outbox message and never processes it",
}
"""Each fault and what the named service does under it, for one request only."""


class FaultHeaderError(ValueError):
    """A malformed or unknown fault: refused loudly, since a typo would silently pass a test."""


@dataclasses.dataclass(frozen=True)
class Faults:
    header: str | None
    """The header as received, forwarded unchanged on every outgoing call."""
    pairs: frozenset[tuple[str, str]]

    @classmethod
    def parse(cls, header: str | None) -> Faults:
        pairs = set()
        for item in (header or "").split(","):
            if not item.strip():
                continue
            fault, at, service = item.strip().partition("@")
            if not at or not service.strip():
                raise FaultHeaderError(f"{FAULT_HEADER} item {item.strip()!r} is not <fault>@<service>")
            if fault.strip() not in FAULTS:
                raise FaultHeaderError(
                    f"unknown fault {fault.strip()!r} in {FAULT_HEADER}; known: {', '.join(FAULTS)}"
                )
            if service.strip() not in SERVICES:
                raise FaultHeaderError(
                    f"unknown service {service.strip()!r} in {FAULT_HEADER} item {item.strip()!r}; "
                    f"the shop's services: {', '.join(SERVICES)}"
                )
            pairs.add((fault.strip(), service.strip()))
        return cls(header if pairs else None, frozenset(pairs))

    def on(self, fault: str, service: str) -> bool:
        """Whether `service` misbehaves with `fault` for this request."""
        return (fault, service) in self.pairs


NO_FAULTS = Faults(None, frozenset())
