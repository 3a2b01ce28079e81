"""The service map: services and the hops between them (DESIGN §4), aggregated over the
traces of a time window — what the dashboard's map draws and Jaeger's dependencies answer.

Finding a trace's hops builds its tree and resolves its dangling calls, far more work than
counting; so each trace's hops are summarised once and kept, keyed by what the store says
of the trace (its span count and last arrival). A trace that gains a span is summarised
again; a settled one never is, and a warm map only lists the window and adds up.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Iterable

from tracebaton.collector import SpanStore, StatusCode, StoredSpan, TraceQuery, TraceSummary

from ._hops import Hop
from ._spec import HopPattern
from ._trace import build_trace
from ._trace_view import Trace

log = logging.getLogger("tracebaton.assertions")

MAP_MAX_TRACES = 10_000
"""A map adds up at most this many traces of its window, the most recent (the store's
largest listing)."""
MAP_MAX_SPANS = 2_000_000
"""Spans read in full while summarising traces the cache does not hold yet, per map."""
MAP_TIME_BUDGET_S = 0.5
"""How long a map request summarises traces it holds no summary of; the rest are summarised
in the background and the answer says how many are pending (reading a trace from a DuckDB
file takes ~10 ms, so 10,000 new traces take minutes, not a request)."""
KEEP_AFTER_NS = 5 * 10**9
"""A trace's summary is kept once nothing arrived for it this long: before, a linked
producer trace or the trace a broken call went on in may still come, and change its hops."""
FULL_LISTING_S = 30.0
"""How often a map lists every trace of its window again rather than only the new arrivals."""
LISTING_OVERLAP_NS = 2 * 10**9
"""An arrivals-only listing reaches this far before the last one, so a span stamped just
before it and acknowledged just after is not missed."""
ARRIVAL_SLACK_NS = 60 * 10**9
"""Traces are preselected by arrival time; a service's clock may run this far ahead."""


@dataclasses.dataclass(frozen=True, slots=True)
class HopSample:
    """One hop of one trace, as the map counts it."""

    caller: str
    callee: str
    asynchronous: bool
    duration_ns: int
    error: bool


@dataclasses.dataclass(frozen=True, slots=True)
class HopGroup:
    """The hops of one trace between one caller and callee: what a trace's summary keeps, so
    a map adds up a few groups a trace rather than every hop."""

    caller: str
    callee: str
    asynchronous: bool
    errors: int
    durations_ns: tuple[int, ...]


def group_hops(samples: Iterable[HopSample]) -> tuple[HopGroup, ...]:
    grouped: dict[tuple[str, str, bool], list[HopSample]] = {}
    for sample in samples:
        grouped.setdefault((sample.caller, sample.callee, sample.asynchronous), []).append(sample)
    return tuple(HopGroup(caller, callee, asynchronous, sum(s.error for s in group),
                          tuple(s.duration_ns for s in group))
                 for (caller, callee, asynchronous), group in grouped.items())


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceLink:
    """`caller -> callee` over the window: how often, how often it failed, how long it took."""

    caller: str
    callee: str
    asynchronous: bool
    calls: int
    errors: int
    p50_ns: int
    p99_ns: int

    @property
    def text(self) -> str:
        return str(HopPattern(self.caller, self.callee, self.asynchronous))  # one way to write a hop

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class ServiceMap:
    links: tuple[ServiceLink, ...]
    depths: dict[str, int]
    """Each service's call depth: 0 for a service nobody calls, else one more than its
    shallowest caller (a cycle's services keep the depth they are first reached at)."""
    traces: int
    """Traces added up."""
    truncated: bool
    """The window held more traces than the map adds up (`MAP_MAX_TRACES`, `MAP_MAX_SPANS`)."""
    pending: int = 0
    """Traces of the window left out because they are still being summarised; ask again."""


def hop_failed(hop: Hop) -> bool:
    """A hop failed when its callee span did, or its caller span did (a call that never got
    an answer has only the caller's word)."""
    spans = [hop.anchor] if hop.callee_span is None else [hop.anchor, hop.callee_span]
    return any(span.status_code is StatusCode.ERROR for span in spans)


def _quantile(sorted_values: list[int], q: float) -> int:
    """Nearest rank, so a p99 is a duration some hop really took."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(len(sorted_values), rank) - 1]


def aggregate(groups: Iterable[HopGroup]) -> tuple[ServiceLink, ...]:
    durations: dict[tuple[str, str, bool], list[int]] = {}
    errors: dict[tuple[str, str, bool], int] = {}
    for group in groups:
        key = (group.caller, group.callee, group.asynchronous)
        durations.setdefault(key, []).extend(group.durations_ns)
        errors[key] = errors.get(key, 0) + group.errors
    links = []
    for key, taken in sorted(durations.items()):
        taken.sort()
        p50, p99 = _quantile(taken, 0.5), _quantile(taken, 0.99)
        links.append(ServiceLink(*key, len(taken), errors[key], p50, p99))
    return tuple(links)


def call_depths(links: Iterable[ServiceLink]) -> dict[str, int]:
    callees: dict[str, set[str]] = {}
    called: set[str] = set()
    for link in links:
        callees.setdefault(link.caller, set()).add(link.callee)
        callees.setdefault(link.callee, set())
        if link.callee != link.caller:
            called.add(link.callee)
    depths = {service: 0 for service in sorted(callees) if service not in called}
    frontier = list(depths)
    while frontier:
        following = []
        for service in frontier:
            for callee in sorted(callees[service]):
                if callee not in depths:
                    depths[callee] = depths[service] + 1
                    following.append(callee)
        frontier = following
    for service in sorted(callees):  # only in cycles nobody outside enters
        depths.setdefault(service, 0)
    return depths


class ServiceMapper:
    """Service maps over one store, keeping each trace's hop summary between maps."""

    def __init__(self, store: SpanStore, *, max_traces: int = MAP_MAX_TRACES,
                 time_budget_s: float = MAP_TIME_BUDGET_S, keep_after_ns: int = KEEP_AFTER_NS) -> None:
        self._store = store
        self._keep_after_ns = keep_after_ns
        self._max_traces = max_traces
        self._time_budget_s = time_budget_s
        self._lock = threading.Lock()
        self._summaries: dict[str, tuple[tuple[int, int], tuple[HopGroup, ...]]] = {}
        self._listed: dict[str, TraceSummary] = {}
        self._listed_since = 0
        self._listed_at = 0
        self._full_listing_at = -math.inf
        self._relist_due = False
        self._backlog: dict[str, TraceSummary] = {}
        self._wake = threading.Condition(self._lock)
        self._worker: threading.Thread | None = None
        self._closed = False

    def close(self) -> None:
        """Stop summarising in the background (before the store it reads shuts down)."""
        with self._lock:
            self._closed = True
            self._wake.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout=5)

    def service_map(self, start_ns: int, end_ns: int) -> ServiceMap:
        """Hops of the traces that overlap [start_ns, end_ns], the most recent first.

        Each trace's hops are found by the flow engine on that trace together with the traces
        its spans link to (so a consumer's async hop from its producer counts), and a hop
        counts in the trace of its callee span (of its caller span when it has none)."""
        listed = self._listing(max(0, start_ns - ARRIVAL_SLACK_NS))
        in_window = [s for s in listed if s.end_unix_nano >= start_ns and s.start_unix_nano <= end_ns]
        groups: list[HopGroup] = []
        budget = [MAP_MAX_SPANS]
        added = 0
        with self._lock:
            summaries = dict(self._summaries)
        fresh: dict[str, tuple[tuple[int, int], tuple[HopGroup, ...]]] = {}
        settled_before = time.time_ns() - self._keep_after_ns
        deadline = time.perf_counter() + self._time_budget_s
        pending: list[TraceSummary] = []
        for summary in in_window:
            key = (summary.span_count, summary.last_arrival_unix_nano)
            kept = summaries.get(summary.trace_id)
            if kept is None or kept[0] != key:
                if budget[0] <= 0 or time.perf_counter() > deadline:
                    pending.append(summary)
                    continue
                kept = (key, group_hops(self._summarise(summary, budget)))
                if summary.last_arrival_unix_nano < settled_before:
                    fresh[summary.trace_id] = kept
            groups.extend(kept[1])
            added += 1
        with self._lock:
            self._summaries.update(fresh)
            if len(self._summaries) > 2 * self._max_traces:  # forget what left every window
                listed_ids = {s.trace_id for s in listed}
                self._summaries = {k: v for k, v in self._summaries.items() if k in listed_ids}
        if pending:
            self._queue(pending)
        links = aggregate(groups)
        truncated = len(listed) >= self._max_traces
        return ServiceMap(links, call_depths(links), added, truncated, len(pending))

    def _listing(self, since_ns: int) -> list[TraceSummary]:
        """The store's traces with a span that arrived since `since_ns`, the most recent first.

        Listing 10,000 traces takes the store most of a second; so a request lists every
        trace only when it has no listing reaching back far enough, else only the traces with
        new arrivals, merged into the last listing; every FULL_LISTING_S the background lists
        everything again, so a trace that retention pruned leaves the map by then."""
        now_ns = time.time_ns()
        with self._lock:
            listed, listed_since, listed_at = self._listed, self._listed_since, self._listed_at
            full = not listed or since_ns < listed_since
            stale = time.monotonic() - self._full_listing_at > FULL_LISTING_S
        if not full and stale:
            self._ask_relist()
        if full:
            listed = {s.trace_id: s for s in self._store.traces(
                TraceQuery(since_unix_nano=since_ns, limit=self._max_traces))}
            listed_since = since_ns
        else:
            listed = dict(listed)
            listed.update((s.trace_id, s) for s in self._store.traces(
                TraceQuery(since_unix_nano=max(0, listed_at - LISTING_OVERLAP_NS), limit=self._max_traces)))
        with self._lock:
            self._listed, self._listed_since, self._listed_at = listed, listed_since, now_ns
            if full:
                self._full_listing_at = time.monotonic()
        recent = [s for s in listed.values() if s.last_arrival_unix_nano >= since_ns]
        recent.sort(key=lambda s: (s.last_arrival_unix_nano, s.trace_id), reverse=True)
        return recent[:self._max_traces]

    def _queue(self, summaries: list[TraceSummary]) -> None:
        with self._lock:
            for summary in summaries:
                if len(self._backlog) < 2 * self._max_traces:
                    self._backlog[summary.trace_id] = summary
            self._start_worker()

    def _ask_relist(self) -> None:
        with self._lock:
            self._relist_due = True
            self._start_worker()

    def _start_worker(self) -> None:
        """With the lock held."""
        if self._closed:
            return
        if self._worker is None:
            self._worker = threading.Thread(target=self._work, name="tracebaton-service-map", daemon=True)
            self._worker.start()
        self._wake.notify()

    def _relist(self) -> None:
        with self._lock:
            since_ns, self._relist_due = self._listed_since, False
        started_ns = time.time_ns()
        listed = {s.trace_id: s for s in self._store.traces(
            TraceQuery(since_unix_nano=since_ns, limit=self._max_traces))}
        with self._lock:
            if self._listed_since == since_ns:  # no request listed further back meanwhile
                self._listed, self._full_listing_at = listed, time.monotonic()
                # what requests merged in while this listed is gone: the next one lists it again
                self._listed_at = min(self._listed_at, started_ns)

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._backlog and not self._relist_due and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                relist = self._relist_due
                summary = None if relist else self._backlog.pop(next(iter(self._backlog)))
            if summary is None:
                try:
                    self._relist()
                except Exception as error:  # a background helper: the next request tries again
                    log.warning("service map: listing the traces failed: %s", error)
                continue
            if summary.last_arrival_unix_nano >= time.time_ns() - self._keep_after_ns:
                continue  # not settled: the next map request summarises it again anyway
            try:
                samples = self._summarise(summary, [MAP_MAX_SPANS])
            except Exception as error:  # a background helper: the next request tries again
                log.warning("service map: summarising trace %s failed: %s", summary.trace_id, error)
                continue
            with self._lock:
                self._summaries[summary.trace_id] = (
                    (summary.span_count, summary.last_arrival_unix_nano), group_hops(samples))

    def _summarise(self, summary: TraceSummary, budget: list[int]) -> tuple[HopSample, ...]:
        trace_id = summary.trace_id
        spans = self._store.trace(trace_id)
        budget[0] -= len(spans)
        flow: list[StoredSpan] = list(spans)
        for other in sorted({link.trace_id for span in spans for link in span.links} - {trace_id}):
            linked = self._store.trace(other)
            budget[0] -= len(linked)
            flow += linked
        samples = []
        for hop in Trace(build_trace(trace_id, flow, now_unix_nano=time.time_ns())).hops:
            home = hop.callee_span or hop.anchor
            if home.trace_id == trace_id:
                samples.append(HopSample(hop.caller, hop.callee, hop.asynchronous,
                                         hop.anchor.duration_ns, hop_failed(hop)))
        return tuple(samples)
