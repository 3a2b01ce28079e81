"""The protocol every store implements (DESIGN §3, §3a): its lifecycle, the one ingest
entry the receivers call, span reads, arrival notifications, pins, and the recorded flow
results (runs) the dashboard lists.

The flow engine, the API, the dashboard, `serve`, the embedded collector and the pytest
plugin use stores through this protocol only, never through a concrete class; one
conformance suite (`tests/collector/test_store_conformance.py`) holds every store to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Any, Protocol, Self, runtime_checkable

from ._model import (
    IngestResult,
    Operation,
    RunQuery,
    RunRecord,
    RunSummary,
    StoreCapabilities,
    StoredSpan,
    TraceQuery,
    TraceSummary,
    WaitCursor,
)

PROTOBUF = "application/x-protobuf"
"""Content type of a serialized OTLP ExportTraceServiceRequest."""
JSON = "application/json"
"""Content type of OTLP/JSON."""


@runtime_checkable
class SpanStore(Protocol):
    """Stored spans and judged flows, independent of the storage engine.

    Lifecycle as OpenTelemetry's components have it: `start()`, `force_flush()`,
    `shutdown()`; both ends are idempotent, and calls after `shutdown()` raise
    StoreClosedError. Ids are lower-case hex strings; a malformed id raises ValueError
    naming it. Every read sees every span whose ingest future has resolved.
    """

    @property
    def capabilities(self) -> StoreCapabilities:
        """What this store's schema can tell (see `StoreCapabilities`)."""
        ...

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        """Open connections and start background work; returns the store."""
        ...

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wait until everything ingested so far is readable; False if the time ran out."""
        ...

    def shutdown(self) -> None:
        """Refuse new ingest, make what was acknowledged durable, wake every waiter, close."""
        ...

    # ingest ------------------------------------------------------------------------------

    def ingest(self, body: bytes, content_type: str = PROTOBUF) -> Future[IngestResult]:
        """Take one OTLP export request as received: protobuf (`PROTOBUF`) or OTLP/JSON (`JSON`).
        Before `start()`, requests queue and are acknowledged once the store runs.

        Decodes before it returns (call it off an event loop): raises OtlpDecodeError for a
        body that does not decode, StoreSaturatedError (retryable, with its delay) when
        ingest is behind, StoreClosedError after shutdown. The future resolves at
        acknowledgement — the spans durable and readable by every read — with the count of
        spans taken and rejected (invalid ids: OTLP's partial success), or fails with a
        retryable StoreError.
        """
        ...

    # reads -------------------------------------------------------------------------------

    def trace(self, trace_id: str) -> list[StoredSpan]:
        """Every span of one trace, ordered by start time then span id; [] if none.
        A re-sent span (an exporter's retry) reads once."""
        ...

    def traces(self, query: TraceQuery) -> list[TraceSummary]:
        """Summaries of the traces with a span matching `query`, most recent first."""
        ...

    def roots(self, target: str, start_unix_nano: int, end_unix_nano: int) -> list[StoredSpan]:
        """Root SERVER spans starting in the window, in a service or answering at a
        `host:port` (read with `collector.parse_call_target`)."""
        ...

    def linked(self, trace_id: str) -> list[str]:
        """Ids of other traces with a span that links into `trace_id`."""
        ...

    def services(self) -> list[str]:
        """Every service with a stored span, sorted."""
        ...

    def operations(self, service: str) -> list[Operation]:
        """The span names (with kinds) `service` has used, sorted by name then kind."""
        ...

    # notifications and pins --------------------------------------------------------------

    def cursor(self) -> WaitCursor:
        """The current position in the arrivals: take it before a read, pass it to `wait`."""
        ...

    def wait(self, trace_ids: Iterable[str] | None, until: float,
             after: WaitCursor | None = None) -> WaitCursor | None:
        """Block until spans of, or linking into, one of `trace_ids` (None: any trace)
        arrive after `after` (default: now), or until the `time.monotonic()` deadline.

        Returns the new cursor, or None at the deadline or at shutdown. Spans that land
        between the read that followed `cursor()` and this call are never missed.
        """
        ...

    def pin(self, trace_id: str) -> None:
        """Keep this trace from retention until as many `unpin` calls."""
        ...

    def unpin(self, trace_id: str) -> None:
        ...

    # recorded flow results ---------------------------------------------------------------

    def record_run(self, result: Mapping[str, Any], *, test_id: str | None = None,
                   session_id: str | None = None) -> str:
        """Record a flow result (its JSON, DESIGN §5) with the test and session that checked
        it; returns the new run id. Listeners of `on_run_recorded` hear of it after the commit."""
        ...

    def runs(self, query: RunQuery) -> list[RunSummary]:
        """Recorded runs matching `query`: failed first, then newest first."""
        ...

    def run(self, run_id: str) -> RunRecord | None:
        """One recorded run with its whole result JSON; None when there is none by that id."""
        ...

    def on_run_recorded(self, listener: Callable[[RunSummary], None]) -> Callable[[], None]:
        """Call `listener` (on the recording thread; it must not block) for each run recorded
        from now on; returns the function that unsubscribes. The dashboard's live list
        waits on this: no polling."""
        ...
