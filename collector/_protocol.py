"""The read API every store offers: what the flow engine, the API and the dashboard use."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from ._model import StoredSpan, TraceQuery, TraceSummary


@runtime_checkable
class SpanStore(Protocol):
    """Read access to stored spans, independent of the storage engine.

    DuckDB (embedded) is the default; a ClickHouse implementation serves the same calls
    when the ingest tier is the OpenTelemetry Collector. Ids are lower-case hex strings.
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
