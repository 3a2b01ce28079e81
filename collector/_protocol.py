"""The API every store offers: what the flow engine, the API and the dashboard use — span
reads, arrival notifications, and the recorded flow results (runs) the dashboard lists."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Any, Protocol, runtime_checkable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ._model import IngestResult, RunQuery, RunRecord, RunSummary, StoredSpan, TraceQuery, TraceSummary


@runtime_checkable
class SpanStore(Protocol):
    """Read access to stored spans, and the record of judged flows, independent of the
    storage engine.

    DuckDB (embedded) is the default; a ClickHouse implementation serves the same calls
    when the ingest tier is the OpenTelemetry Collector (runs then live in a table of its
    own there). Ids are lower-case hex strings.
    """

    def trace(self, trace_id: str) -> list[StoredSpan]:
        """Every span of one trace, ordered by start time then span id; [] if none."""
        ...

    def traces(self, query: TraceQuery) -> list[TraceSummary]:
        """Summaries of the traces with a span matching `query`, most recent first."""
        ...

    def roots(self, target: str, start_unix_nano: int, end_unix_nano: int) -> list[StoredSpan]:
        """Root SERVER spans starting in the window, in a service or at a `host:port`."""
        ...

    def linked(self, trace_id: str) -> list[str]:
        """Ids of other traces with a span that links into `trace_id`."""
        ...

    @property
    def sequence(self) -> int:
        """The latest commit's sequence number: note it before a read, pass it to `wait`."""
        ...

    def wait(self, trace_ids: Iterable[str] | None, until: float, after: int | None = None) -> int | None:
        """Block until spans of, or linking into, one of `trace_ids` (None: any) are committed after
        sequence `after` (default: now), or until the `time.monotonic()` deadline `until`.

        Returns the new sequence, or None at the deadline. No polling interval.
        """
        ...

    def pin(self, trace_id: str) -> None:
        """Keep this trace from retention until as many `unpin` calls."""
        ...

    def unpin(self, trace_id: str) -> None:
        ...

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


@runtime_checkable
class SpanSink(Protocol):
    """A store that takes spans in this process (the embedded DuckDB store does; a ClickHouse
    store takes them through its own ingest tier instead). `POST /api/import` needs it."""

    def ingest(self, request: ExportTraceServiceRequest) -> Future[IngestResult]:
        """Queue a request; the future resolves once its spans are readable. Raises
        StoreSaturatedError at once when ingest is behind."""
        ...
