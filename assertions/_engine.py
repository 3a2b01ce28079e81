"""The flow engine: read a flow from the store, judge it, and wait for arrivals until the
verdict is reached. Woken by the store's arrival notifications; no polling interval.

Each round reads the flow afresh and judges it from scratch, so a verdict never depends
on the order in which spans happened to arrive.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import logging
import time
from collections.abc import Callable, Iterable, Iterator

from tracebaton import FlowSpecError, format_duration_ns
from tracebaton.collector import SpanStore, StoredSpan, TraceQuery, TraceSummary, WaitCursor

from ._hops import (
    DanglingCall,
    Hop,
    choose_stitch,
    dangling_calls,
    extract_hops,
    imprecise_edges,
    orphan_candidates,
    server_addresses,
    unanswered,
    unsettled,
)
from ._quiet import (
    WARN_OF_UNSEEN_AFTER_S,
    absent_services,
    export_delays,
    export_lags_ns,
    incomplete,
    quiet_window_ns,
    unknown_delay,
    unseen_services_warning,
)
from ._result import CheckResult, CheckState, Finding, FindingKind, FlowResult, HopKind, WaitedReason
from ._selectors import STRING_ATTRIBUTES, header_values
from ._situation import Situation
from ._spec import FindSpec, FlowSpec, HeaderRule
from ._trace import FlowTrace, build_trace
from ._verdict import evaluate, nothing_arrived, overall, result_of

SKEW_NS = 5_000_000
"""How far a callee may start outside its caller's window on another host's clock."""
_MAX_TRACES = 64
"""Linked and stitched traces one flow may take in: a bound, so a hub trace cannot stall a verdict."""
_MAX_ADDRESSES = 10_000
_CORRELATION_HEADERS = ("x-request-id", "x-correlation-id", "correlation-id", "request-id")
_RECENT_NS = 60 * 1_000_000_000
"""How far back "which services exported lately" looks when a trace never arrived."""

log = logging.getLogger("tracebaton.assertions")


class FlowEngine:
    """Judges flow specs against a `SpanStore`. Thread-safe: it keeps no state between calls."""

    def __init__(self, store: SpanStore, *, wall_clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._store = store
        self._now = wall_clock_ns
        # host:port -> service, from SERVER spans of flows judged before: a call whose callee
        # span is missing is named by the service that answered there (DESIGN §4, known address)
        self._addresses: dict[tuple[str, int], str] = {}

    def _learn_addresses(self, trace: FlowTrace) -> None:
        learned = server_addresses(trace.spans)
        if len(self._addresses) + len(learned) > _MAX_ADDRESSES:
            self._addresses.clear()  # a bound, not a cache policy: addresses are cheap to relearn
        self._addresses.update(learned)

    def find_trace(self, find: FindSpec, until: float) -> str | None:
        """The most recent trace matching `find`, waiting for one until the monotonic deadline."""
        while True:
            cursor = self._store.cursor()
            query = _find_query(find, since_unix_nano=self._now() - find.since_ns)
            for summary in _rooted_as(find, self._store.traces(query)):
                return summary.trace_id
            if self._store.wait(None, until, after=cursor) is None and time.monotonic() >= until:
                return None

    def check(
        self, spec: FlowSpec, trace_id: str | None = None, *, timeout_ns: int | None = None
    ) -> FlowResult:
        """Judge `spec` on the trace `trace_id` (found by `spec.find` when None)."""
        started = time.monotonic()
        until = started + (spec.wait.timeout_ns if timeout_ns is None else timeout_ns) / 1e9
        if trace_id is None:
            if spec.find is None:
                raise FlowSpecError(
                    f"flow spec {spec.name!r}: no trace id was given and the spec has no `find:` "
                    "section to look for one; pass trace_id, or add e.g. find: {root_service: frontend}"
                )
            trace_id = self.find_trace(spec.find, until)
            if trace_id is None:
                return self._not_found(spec, started)
        pinned: set[str] = set()
        try:
            # a store that keeps attribute values as text: expected values match their text
            typed = self._store.capabilities.typed_attributes
            token = STRING_ATTRIBUTES.set(not typed)
            try:
                return self._judge(spec, trace_id, started, until, pinned)
            finally:
                STRING_ATTRIBUTES.reset(token)
        finally:
            for pinned_id in pinned:
                self._store.unpin(pinned_id)

    def _pin(self, trace_ids: list[str], pinned: set[str]) -> None:
        """Linked and stitched traces join the flow as it is judged: retention must not
        prune any of them under the check either."""
        for joined in trace_ids:
            if joined not in pinned:
                self._store.pin(joined)
                pinned.add(joined)

    def _judge(self, spec: FlowSpec, trace_id: str, started: float, until: float,
               pinned: set[str]) -> FlowResult:
        stitches: dict[str, str] = {}
        stitched_traces: set[str] = set()
        # asked once up front (a name the store never saw gets its hint in every message)
        # and again when the verdict is given, so the hint is current
        services = frozenset(self._store.services())
        warn_at: float | None = started + WARN_OF_UNSEEN_AFTER_S  # None once said (or needless)
        stored_delays: dict[str, int | None] = {}
        # The position the last wait woke at precedes the read that follows it, so it serves as
        # that read's cursor: a store whose cursor is a query (ClickHouse) asks once a wake, not twice.
        cursor: WaitCursor | None = None
        while True:
            if cursor is None:
                cursor = self._store.cursor()
            final = time.monotonic() >= until
            trace_ids = self._flow_trace_ids(trace_id, stitched_traces)
            self._pin(trace_ids, pinned)
            spans = [span for tid in trace_ids for span in self._store.trace(tid)]
            now = self._now()
            trace = build_trace(trace_id, spans, now_unix_nano=now, stitches=stitches)
            last = trace.last_arrival_unix_nano
            settle_ns = self._settle_ns(spec, spans, now)
            quiet = last is not None and now - last >= settle_ns
            if (quiet or final) and self._stitch(spec, trace, trace_ids, stitches, stitched_traces):
                continue  # read again with the stitched traces in
            grace = spec.wait.parent_grace_ns
            self._learn_addresses(trace)
            hops = extract_hops(trace, peers=spec.peers, known_addresses=self._addresses)
            # spans that should still come hold settling up for at most parent_grace: the
            # parent an orphan names, and the callee span of a call to a known service (it
            # may still be working after its caller gave up)
            waiting = [trace.parent_awaited_since(o) for o in trace.orphans
                       if now - trace.parent_awaited_since(o) < grace]
            waiting += [
                h.anchor.arrival_unix_nano
                for h in hops
                if _awaits_callee(h) and now - h.anchor.arrival_unix_nano < grace
            ]
            settled = quiet and not waiting
            if warn_at is not None and (settled or final or time.monotonic() >= warn_at):
                warn_at = None
                # a peer the flow's hops name (peer.service) never exports spans of its own
                named = frozenset(name for hop in hops for name in (hop.caller, hop.callee))
                self._warn_of_unseen_services(spec, services, named)
            if not settled:
                hops = unsettled(hops)
            window = None
            if settled and not final:
                window = self._quiet_window(spec, trace, hops, now, services, stored_delays)
            gave_up = window is not None and last is not None and now - last >= window
            if final or gave_up:
                services = frozenset(self._store.services())
            situation = Situation(
                spec=spec,
                trace=trace,
                hops=tuple(hops),
                settled=settled,
                final=final,
                now_unix_nano=now,
                missing_parents=tuple(o for o in trace.orphans
                                      if now - trace.parent_awaited_since(o) >= grace),
                gave_up=gave_up,
                store_services=services,
            )
            checks = evaluate(situation)
            if final and not trace.spans and overall(checks) is not CheckState.PASS:
                return self._nothing_arrived(situation, checks, started, until)
            if final or overall(checks) is not CheckState.PENDING:
                return self._store_findings(result_of(situation, checks, waited_ms=_ms_since(started)), trace)
            wake = until if warn_at is None else min(until, warn_at)
            if last is not None and not quiet:
                wake = min(wake, time.monotonic() + (last + settle_ns - now) / 1e9)
            elif waiting:
                wake = min(wake, time.monotonic() + (min(waiting) + grace - now) / 1e9)
            elif window is not None and last is not None:
                wake = min(wake, time.monotonic() + (last + window - now) / 1e9)
            cursor = self._store.wait(trace_ids, wake, after=cursor)

    def _warn_of_unseen_services(self, spec: FlowSpec, services: frozenset[str],
                                 named: frozenset[str]) -> None:
        """A service the store never saw waits the whole timeout (its export delay is unknown):
        say so once the flow has settled without it (or after `WARN_OF_UNSEEN_AFTER_S`), long before the
        verdict (a typo shows in pytest's captured log, the server's log, and live with
        --log-cli-level=WARNING). Not at the very start: a flow's later services are often
        still exporting then, and a peer is only known once a hop names it."""
        if not unseen_services_warning(spec, services, named):
            return  # the store had seen them all when the check began: no need to ask again
        warning = unseen_services_warning(spec, frozenset(self._store.services()), named)
        if warning:
            log.warning("%s", warning)

    def _settle_ns(self, spec: FlowSpec, spans: list[StoredSpan], now: int) -> int:
        """The quiet time that settles a flow. On a store whose arrivals are polled (spans come
        through Collectors, their batching and async inserts), a service of the flow exporting
        later than `settle` holds settling for its lag: a universal check never passes on a
        settle its spans could still outrun (the export_lag finding says what to set)."""
        settle = spec.wait.settle_ns
        if self._store.capabilities.instant_wake:
            return settle
        lag = max(export_lags_ns(spans, now).values(), default=0)
        return max(settle, min(lag, spec.wait.timeout_ns))

    def _store_findings(self, result: FlowResult, trace: FlowTrace) -> FlowResult:
        """What the store's schema could not decide exactly, said in the result (store_imprecise)."""
        if self._store.capabilities.remote_parent_flags:
            return result
        unsure = imprecise_edges(trace)
        if not unsure:
            return result
        finding = Finding(
            FindingKind.STORE_IMPRECISE,
            f"the store keeps no is-remote flags: {len(unsure)} edge(s) inside one service "
            f"({', '.join(sorted({c.service for _, c in unsure}))}) end in a SERVER/CONSUMER span under a "
            "parent that is not CLIENT/PRODUCER, so whether they are hops is guessed (here: not); "
            "a store that keeps OTLP flags (DuckDB) decides it exactly",
            span_ids=tuple(c.span_id for _, c in unsure))
        return dataclasses.replace(result, findings=(*result.findings, finding))

    def _quiet_window(
        self,
        spec: FlowSpec,
        trace: FlowTrace,
        hops: list[Hop],
        now: int,
        services: frozenset[str],
        stored_delays: dict[str, int | None],
    ) -> int | None:
        """How long a complete flow must be quiet before it gives up early (DESIGN §5); None
        while it is not complete, or a service in it has an unknown export delay."""
        if incomplete(spec, trace, hops, store_services=services) is not None:
            return None
        delays = export_delays(trace.spans, now_unix_nano=now)
        absent = absent_services(spec, trace, hops)
        for service in absent:
            if service not in stored_delays:  # once per check: the flow's own spans come first
                stored_delays[service] = self._stored_delay(service, now)
            delays[service] = stored_delays[service]
        if unknown_delay(delays, absent) is not None:
            return None
        return quiet_window_ns(spec.wait.settle_ns, (d for d in delays.values() if d is not None))

    def _stored_delay(self, service: str, now: int) -> int | None:
        """A service's export delay as its latest stored spans tell; None if it has none."""
        latest = self._store.traces(TraceQuery(service=service, limit=1))
        if not latest:
            return None
        spans = [s for s in self._store.trace(latest[0].trace_id) if s.service == service]
        return export_delays(spans, now_unix_nano=now).get(service)

    def _nothing_arrived(
        self, situation: Situation, checks: list[CheckResult], started: float, until: float
    ) -> FlowResult:
        now = self._now()
        recent = self._store.traces(TraceQuery(since_unix_nano=now - _RECENT_NS, limit=100))
        return nothing_arrived(
            situation,
            checks,
            waited_ms=_ms_since(started),
            timeout_ns=round((until - started) * 1e9),
            recent_ns=_RECENT_NS,
            recent_services=sorted({s for summary in recent for s in summary.services}),
            stored_services=sorted(situation.store_services or ()),
        )

    def _flow_trace_ids(self, trace_id: str, stitched: set[str]) -> list[str]:
        """The flow's trace, every trace linking into it (transitively) and stitched ones."""
        ids = [trace_id]
        seen = {trace_id}
        index = 0
        while index < len(ids) and len(ids) < _MAX_TRACES:
            for linked in self._store.linked(ids[index]):
                if linked not in seen:
                    seen.add(linked)
                    ids.append(linked)
            index += 1
        ids += sorted(stitched - seen)
        return ids[:_MAX_TRACES]

    def _stitch(
        self,
        spec: FlowSpec,
        trace: FlowTrace,
        trace_ids: list[str],
        stitches: dict[str, str],
        stitched_traces: set[str],
    ) -> bool:
        """Diagnose broken hand-offs: a dangling call whose callee started a trace of its own
        (or named a parent that never came). Returns whether anything new was stitched."""
        same = [h for h, rule in spec.expect.propagation.headers.items() if rule is HeaderRule.SAME]
        correlation = _correlation_values(trace, (*same, *_CORRELATION_HEADERS))
        claimed = set(stitches)
        changed = False
        for call in dangling_calls(trace):
            if call.span.span_id in stitches.values():
                continue
            candidates = [o for o in orphan_candidates(trace, call, SKEW_NS) if o.span_id not in claimed]
            if not candidates:
                candidates = self._foreign_roots(call, trace_ids, claimed)
            chosen, _why = choose_stitch(call, candidates, correlation)
            if chosen is not None:
                stitches[chosen.span_id] = call.span.span_id
                claimed.add(chosen.span_id)
                if chosen.trace_id not in trace_ids:
                    stitched_traces.add(chosen.trace_id)
                changed = True
        return changed

    def _foreign_roots(self, call: DanglingCall, trace_ids: list[str], claimed: set[str]) -> list[StoredSpan]:
        if call.target is None or len(trace_ids) >= _MAX_TRACES:
            return []
        roots = self._store.roots(
            call.target, call.span.start_unix_nano - SKEW_NS, call.span.end_unix_nano + SKEW_NS
        )
        return [r for r in roots if r.trace_id not in trace_ids and r.span_id not in claimed]

    def _not_found(self, spec: FlowSpec, started: float) -> FlowResult:
        find = spec.find
        assert find is not None
        wanted = ", ".join(
            f"{k}={v!r}"
            for k, v in (("root_service", find.root_service), ("root_name", find.root_name))
            if v is not None
        )
        wanted += "".join(f", {k}={v!r}" for k, v in find.attributes.items())
        wanted = wanted.lstrip(", ") or "anything"
        older = list(_rooted_as(find, self._store.traces(_find_query(find, since_unix_nano=None))))
        if older:
            age = max(0, self._now() - max(s.last_arrival_unix_nano for s in older))
            count = f"{len(older)}{'+' if len(older) == 100 else ''}"
            message = (
                f"no trace matched find ({wanted}) that arrived in the last "
                f"{format_duration_ns(find.since_ns)} (find.since); {count} older matching "
                f"trace{'s are' if len(older) > 1 else ' is'} stored, the newest {format_duration_ns(age)} "
                "old: raise find.since, or give the trace id"
            )
        else:
            message = (
                f"no trace matched find ({wanted}) within "
                f"{spec.wait.timeout_ns / 1e9:g} s: check that the services export to this collector "
                "and that find names the entry service and span"
            )
        return FlowResult(
            passed=False,
            name=spec.name,
            trace_id=None,
            waited_ms=_ms_since(started),
            waited_reason=WaitedReason.TIMEOUT,
            first_divergence=message,
            checks=(CheckResult("hops", CheckState.FAIL, message),),
            hops=(),
            expected_hops=tuple(str(p) for group in spec.expect.hops for p in group),
        )


def _awaits_callee(hop: Hop) -> bool:
    return hop.kind is HopKind.SYNC and unanswered(hop)


def _correlation_values(trace: FlowTrace, headers: tuple[str, ...]) -> dict[str, str]:
    """Correlation header values the flow carries, to tell concurrent candidate traces apart."""
    values: dict[str, str] = {}
    for span in trace.spans:
        for header in headers:
            if header not in values and (found := header_values(span.attributes, header)):
                values[header] = found[0]
    return values


def _ms_since(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _find_query(find: FindSpec, *, since_unix_nano: int | None) -> TraceQuery:
    attributes = {k: v for k, v in find.attributes.items() if isinstance(v, str | int | float | bool)}
    return TraceQuery(service=find.root_service, name=find.root_name, attributes=attributes,
                      since_unix_nano=since_unix_nano, limit=100)


def _rooted_as(find: FindSpec, summaries: Iterable[TraceSummary]) -> Iterator[TraceSummary]:
    """The summaries whose root is the one `find` names (a store's search matches any span)."""
    for summary in summaries:
        if find.root_service is not None and summary.root_service != find.root_service:
            continue
        if find.root_name is not None and not fnmatch.fnmatchcase(summary.root_name or "", find.root_name):
            continue
        yield summary
