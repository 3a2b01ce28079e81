"""The embedded store: DuckDB file, grouped-commit writer, arrival board, maintenance."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from typing import Any

import duckdb
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tracebaton import StoreClosedError

from ._arrivals import ArrivalBoard
from ._columns import SpanBatch, span_batch
from ._maintenance import Maintenance, PinSet
from ._model import IngestResult, RunQuery, RunRecord, RunSummary, StoredSpan, TraceQuery, TraceSummary
from ._reads import SpanReader, trace_id_bytes
from ._runs import RunLog
from ._schema import open_database
from ._writer import CommitWriter

log = logging.getLogger("tracebaton.collector")

_HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$")


class DuckDBSpanStore:
    """Spans in one DuckDB file (or `:memory:`), written by one thread, read by any.

    Lifecycle as in OpenTelemetry: `start()`, `force_flush()`, `shutdown()`. Also a
    context manager.
    """

    def __init__(
        self,
        path: str = ":memory:",
        *,
        max_pending_spans: int = 256 * 1024,
        retention_max_spans: int | None = None,
        retention_max_age_ns: int | None = None,
        memory_limit: str | None = None,
        max_runs: int = 100_000,
    ) -> None:
        self.path = path
        self._connection = open_database(path, memory_limit=memory_limit)
        self._board = ArrivalBoard()
        self._writer = CommitWriter(
            self._connection.cursor(), self._board, max_pending_spans=max_pending_spans)
        self._pins = PinSet()
        self._maintenance = Maintenance(
            self._connection.cursor(),
            None if path == ":memory:" else path + ".wal",
            pins=self._pins,
            sweeper=self._writer,
            retention_max_spans=retention_max_spans,
            retention_max_age_ns=retention_max_age_ns,
        )
        self._runs = RunLog(max_runs=max_runs)
        self._local = threading.local()
        self._readers: list[duckdb.DuckDBPyConnection] = []
        self._readers_lock = threading.Lock()
        self._started = False
        self._closed = False

    # lifecycle ---------------------------------------------------------------------

    def start(self) -> DuckDBSpanStore:
        if not self._started:
            self._writer.start()
            self._maintenance.start()
            self._started = True
        return self

    def __enter__(self) -> DuckDBSpanStore:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def force_flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until everything submitted so far is committed."""
        return self._writer.flush(timeout_s)

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._started:
            self._writer.shutdown()
            self._maintenance.shutdown()
        self._board.close()
        try:
            if self.path != ":memory:":
                self._connection.execute("CHECKPOINT")
        except duckdb.Error:
            log.exception("final checkpoint failed; the WAL is replayed at the next start")
        with self._readers_lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
        self._connection.close()

    # ingest --------------------------------------------------------------------------

    def ingest(self, request: ExportTraceServiceRequest) -> Future[IngestResult]:
        """Queue a decoded request; the future resolves once its spans are readable.

        Raises StoreSaturatedError at once when the queue is full (answer 503/UNAVAILABLE).
        """
        return self.ingest_batch(span_batch(request.SerializeToString()))

    def ingest_batch(self, batch: SpanBatch) -> Future[IngestResult]:
        """`ingest` for a request already turned into columns (by a decoding worker)."""
        if self._closed:
            raise StoreClosedError("the store is shut down")
        return self._writer.submit(batch)

    def announce(self) -> contextlib.AbstractContextManager[None]:
        """Receivers wrap decoding in this, so the writer can group requests on their way."""
        return self._writer.announce()

    @property
    def pending_spans(self) -> int:
        return self._writer.pending_spans

    # reads -----------------------------------------------------------------------------

    def _reader(self) -> SpanReader:
        reader: SpanReader | None = getattr(self._local, "reader", None)
        if reader is None:
            if self._closed:
                raise StoreClosedError("the store is shut down")
            cursor = self._connection.cursor()
            with self._readers_lock:
                self._readers.append(cursor)
            reader = SpanReader(cursor)
            self._local.reader = reader
        return reader

    def trace(self, trace_id: str) -> list[StoredSpan]:
        return self._reader().trace(trace_id)

    def traces(self, query: TraceQuery) -> list[TraceSummary]:
        return self._reader().traces(query)

    def roots(self, target: str, start_unix_nano: int, end_unix_nano: int) -> list[StoredSpan]:
        match = _HOST_PORT.match(target)
        if match and 0 < int(match.group(2)) <= 65535:
            address = (match.group(1).strip("[]"), int(match.group(2)))
            return self._reader().roots(None, address, start_unix_nano, end_unix_nano)
        return self._reader().roots(target, None, start_unix_nano, end_unix_nano)

    def linked(self, trace_id: str) -> list[str]:
        return self._reader().linked(trace_id)

    # recorded flow results ---------------------------------------------------------------

    def record_run(self, result: Mapping[str, Any], *, test_id: str | None = None,
                   session_id: str | None = None) -> str:
        return self._runs.record(self._reader().connection, result, test_id=test_id,
                                 session_id=session_id).run_id

    def runs(self, query: RunQuery) -> list[RunSummary]:
        return self._runs.runs(self._reader().connection, query)

    def run(self, run_id: str) -> RunRecord | None:
        return self._runs.run(self._reader().connection, run_id)

    def on_run_recorded(self, listener: Callable[[RunSummary], None]) -> Callable[[], None]:
        return self._runs.subscribe(listener)

    def span_count(self) -> int:
        """Rows stored, re-sent duplicates included."""
        return self._reader().span_count()

    # notifications and pins -------------------------------------------------------------

    @property
    def sequence(self) -> int:
        return self._board.sequence

    def wait(self, trace_ids: Iterable[str] | None, until: float, after: int | None = None) -> int | None:
        wanted = None if trace_ids is None else frozenset(trace_id_bytes(t) for t in trace_ids)
        start = self._board.sequence if after is None else after
        if self._closed:
            return None
        return self._board.wait(wanted, until, start)

    def pin(self, trace_id: str) -> None:
        self._pins.pin(trace_id_bytes(trace_id))

    def unpin(self, trace_id: str) -> None:
        self._pins.unpin(trace_id_bytes(trace_id))

    # upkeep ----------------------------------------------------------------------------

    def checkpoint(self) -> None:
        self._maintenance.checkpoint()

    def prune(self) -> int:
        """Apply retention now; returns the rows deleted."""
        return self._maintenance.prune()
