"""Giving up early (DESIGN §5, `waited_reason: quiet`): when a flow is complete and has been
quiet long enough, an expected hop that has not come will not come, and waiting on to the
timeout only makes a person wait for the same verdict.

Complete means nothing in the flow still points at a span to come: its entry span ended, no
span names a parent that is missing, every call has its callee (or goes to a named peer),
and every service that may still send a span says how long it holds spans before export.
That last part is never assumed: a service exporting with the SDK's default 5 s batch delay
looks exactly like a service that is done, so a delay is known only when the service
declares it (`tracebaton.sut_env()` puts `tracebaton.export_delay_ms` into its resource)
and is then raised to the longest lag measured on its spans.

Pure: spans, the spec and what the store said about services in; a reason to keep waiting,
or the quiet window, out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set

from tracebaton import format_duration_ns
from tracebaton.collector import SpanKind, StoredSpan

from ._checks_budgets import entry_span
from ._hops import TEST_SERVICE, Hop, dangling_calls
from ._situation import unseen_services_hint
from ._spec import FlowSpec
from ._trace import FlowTrace, implausible_start

EXPORT_DELAY_ATTRIBUTE = "tracebaton.export_delay_ms"
"""The resource attribute in which a service declares its batch export delay, in ms.
`tracebaton.sut_env()` sets it beside OTEL_BSP_SCHEDULE_DELAY (core/_sut_env.py names it
too: the base layer cannot import the engine)."""

_SETTLES = 4
_DELAYS = 2
"""The quiet window: max(4 × settle, 2 × the largest export delay known in the flow)."""


def declared_export_delay_ns(span: StoredSpan) -> int | None:
    """The delay the span's resource declares; None when it declares none (or nonsense)."""
    value = span.resource.get(EXPORT_DELAY_ATTRIBUTE)
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        # OTEL_RESOURCE_ATTRIBUTES values arrive as strings
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, int | float) or not 0 <= value < 86_400_000:
        return None
    return round(value * 1_000_000)


def export_delays(spans: Iterable[StoredSpan], *, now_unix_nano: int) -> dict[str, int | None]:
    """Each service's export delay as far as it is known: what its spans declare, raised to
    the longest lag (arrival − end) measured on them, since load, retries and a changed
    OTEL_BSP_SCHEDULE_DELAY all show there. None: unknown — one span that declares
    nothing makes its service unknown (two processes may share a service name). The test's
    own spans are exported by tracebaton, acknowledged before the check: 0."""
    delays: dict[str, int | None] = {}
    for span in spans:
        if span.service == TEST_SERVICE:
            delays.setdefault(TEST_SERVICE, 0)
            continue
        known = delays.get(span.service, 0)
        declared = declared_export_delay_ns(span)
        if known is None or declared is None:
            delays[span.service] = None
            continue
        delays[span.service] = max(known, declared, export_lag_ns(span, now_unix_nano))
    return delays


def declared_export_delays(spans: Iterable[StoredSpan]) -> dict[str, int | None]:
    """Each service's declared export delay, the longest its spans declare; None when one
    of its spans declares none. The test's own spans are left out."""
    declared: dict[str, int | None] = {}
    for span in spans:
        if span.service == TEST_SERVICE:
            continue
        delay = declared_export_delay_ns(span)
        known = declared.get(span.service, 0)
        declared[span.service] = None if known is None or delay is None else max(known, delay)
    return declared


def export_lag_ns(span: StoredSpan, now_unix_nano: int) -> int:
    """How long after its end the span reached the store. A span from 1970 "arrives" decades
    after it ended: its lag measures nothing (0; its clock_skew finding says why)."""
    return 0 if implausible_start(span, now_unix_nano) else span.arrival_unix_nano - span.end_unix_nano


def export_lags_ns(spans: Iterable[StoredSpan], now_unix_nano: int) -> dict[str, int]:
    """Each service's longest export lag on these spans; the test's own spans are not a
    service's export (tracebaton acknowledges them before the check)."""
    worst: dict[str, int] = {}
    for span in spans:
        if span.service != TEST_SERVICE and not implausible_start(span, now_unix_nano):
            lag = export_lag_ns(span, now_unix_nano)
            worst[span.service] = max(worst.get(span.service, lag), lag)
    return worst


def quiet_window_ns(settle_ns: int, delays: Iterable[int]) -> int:
    """How long no span may arrive before a complete flow gives up."""
    return max(_SETTLES * settle_ns, _DELAYS * max(delays, default=0))


def _lower_bound(count_op: str | None, n: int) -> int:
    if count_op is None:
        return 1
    return n if count_op in ("==", ">=") else 0


def awaited_services(spec: FlowSpec) -> tuple[frozenset[str], str | None]:
    """The services whose spans the spec's existential checks wait for, and what in the
    spec waits for a span of any service at all (`frontend -> *`, a `spans` count with no
    service): its span may come from a service that has not exported yet."""
    expect = spec.expect
    names: set[str] = set()
    anyone: str | None = None
    patterns = [p for group in expect.hops for p in group] + [p for p, n in expect.times if n > 0]
    for pattern in patterns:
        names.update((pattern.caller, pattern.callee))
        if pattern.callee == "*" and anyone is None:
            anyone = f"the spec expects {pattern}, a hop to any service"
    for chain in expect.chains:
        names.update(chain)
    for index, expectation in enumerate(expect.spans):
        count = expectation.count
        if _lower_bound(count.op if count else None, count.n if count else 1) <= 0:
            continue
        if expectation.select.service is not None:
            names.add(expectation.select.service)
        elif anyone is None:
            anyone = f"spans[{index}] waits for a span of any service"
    names -= {"*", TEST_SERVICE, *spec.peers}
    return frozenset(names), anyone


def incomplete(
    spec: FlowSpec,
    trace: FlowTrace,
    hops: Iterable[Hop],
    *,
    store_services: Set[str] | None,
) -> str | None:
    """Why the flow may still grow, from the spec and the shape of the flow; None when
    nothing in them points at a span to come. Export delays are `unknown_delay`'s part."""
    expect = spec.expect
    if any(p.asynchronous for group in expect.hops for p in group) or any(
        p.asynchronous for p, _ in expect.times
    ):
        return "the spec expects an asynchronous hop: a queue may hold its message for any time"
    _, anyone = awaited_services(spec)
    if anyone is not None:
        return anyone
    if entry_span(trace) is None:  # spans are exported once they end: arrived is ended
        return "the entry span has not arrived"
    for orphan in trace.orphans:
        return (
            f"{orphan.service}: span {orphan.span_id} names parent {orphan.parent_span_id}, "
            "which has not arrived"
        )
    in_flow = {s.service for s in trace.spans}
    peer_addresses = {address.strip().lower() for address in spec.peers.values()}
    for call in dangling_calls(trace):
        # a named peer is uninstrumented: nothing more comes from it. A peer.service that
        # names a service with spans is an instrumented callee whose span is still to come.
        peer = call.peer_service
        instrumented = peer in in_flow or (store_services is not None and peer in store_services)
        named = (peer is not None and not instrumented) or (
            call.target is not None and call.target.lower() in peer_addresses
        )
        if not named:
            return (
                f"{call.span.service}: the call {call.span.name!r} (span {call.span.span_id}) "
                "has no callee span yet"
            )
    consumed = {h.anchor.span_id for h in hops if h.callee_span is not None}
    for span in trace.spans:
        if span.kind is SpanKind.PRODUCER and span.span_id not in consumed:
            return (
                f"{span.service}: the message {span.name!r} (span {span.span_id}) has no consumer span yet"
            )
    return None


def absent_services(spec: FlowSpec, trace: FlowTrace, hops: Iterable[Hop]) -> list[str]:
    """Services the spec waits for that have no span in the flow (and name no peer hop of it):
    their spans may still come, as late as their export delay allows."""
    named, _ = awaited_services(spec)
    present = {s.service for s in trace.spans}
    for hop in hops:
        present.update((hop.caller, hop.callee))
    return sorted(named - present)


def unknown_delay(delays: Mapping[str, int | None], absent: Iterable[str] = ()) -> str | None:
    """Why a service keeps the flow waiting to the timeout: its export delay is unknown, so
    its next span may be seconds away. `delays` covers the flow's services and the `absent`
    ones (as their stored spans tell; None for a service the store never saw)."""
    away = set(absent)
    for service, delay in sorted(delays.items()):
        if delay is None:
            if service in away:
                return f"{service} has no span in the flow, and its export delay is unknown"
            return f"{service} does not declare its export delay ({EXPORT_DELAY_ATTRIBUTE})"
    return None


WARN_OF_UNSEEN_AFTER_S = 1.0
"""A check still waiting this long says which services of its spec the store never saw:
not at its very start, when a flow's later services are often still exporting."""


def unseen_services_warning(spec: FlowSpec, store_services: Set[str],
                            named_by_hops: Set[str] = frozenset()) -> str | None:
    """What to say when a check waits for a service the store never saw (a typo, or a
    service not pointed here yet): it waits the whole timeout, its export delay being
    unknown. None when the store saw them all; an uninstrumented peer the flow's hops name
    (`named_by_hops`, by peer.service or address) is no such service."""
    names, _ = awaited_services(spec)
    hint = unseen_services_hint(sorted(names - named_by_hops), store_services, spec)
    if not hint:
        return None
    return (f"flow {spec.name!r}: {hint.removeprefix('; ')}; its check waits for it up to "
            f"wait.timeout ({format_duration_ns(spec.wait.timeout_ns)})")
