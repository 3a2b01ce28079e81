"""The embedded store: DuckDB file, grouped-commit writer, arrival board, maintenance."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any, cast

import duckdb

from tracebaton import StoreClosedError

from ._addresses import parse_call_target
from ._arrivals import ArrivalBoard
from ._columns import SpanBatch, span_batch
from ._decode import protobuf_body
from ._decode_pool import DecodePool
from ._ids import trace_id_bytes
from ._ingest_log import IngestLog
from ._maintenance import Maintenance, PinSet, RowLayout
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
from ._protocol import PROTOBUF
from ._reads import DecodedSpans, SpanReader
from ._runs import RunLog
from ._schema import open_database
from ._writer import CommitWriter

log = logging.getLogger("tracebaton.collector")


# One request is decoded in this process at a time. DuckDB's Python client takes the GIL
# back after every execution task to check for Ctrl-C; with several decoding threads
# holding the GIL in turn, each of those checks waits out a switch interval and a 10 ms
# commit takes 200 ms. Decoding one request at a time leaves the writer one rival, not
# thirty-two. (`serve` decodes in worker processes instead: `decode_workers`.)
_DECODE_SLOT = threading.Lock()


class DuckDBSpanStore:
    """Spans in one DuckDB file (or `:memory:`), written by one thread, read by any.

    A `SpanStore`. Lifecycle as in OpenTelemetry: `start()`, `force_flush()`,
    `shutdown()`; also a context manager. With `decode_workers`, requests are decoded in
    that many worker processes (started by `start()`), off the writer's GIL.
    """

    capabilities = StoreCapabilities(
        typed_attributes=True, remote_parent_flags=True, retention_by_span_count=True, instant_wake=True)

    def __init__(
        self,
        path: str = ":memory:",
        *,
        max_pending_spans: int = 256 * 1024,
        retention_max_spans: int | None = None,
        retention_max_age_ns: int | None = None,
        memory_limit: str | None = None,
        max_runs: int = 100_000,
        decode_workers: int = 0,
    ) -> None:
        self.path = path
        self._decode_workers = decode_workers
        self._decode_pool: DecodePool[SpanBatch] | None = None
        self._connection = open_database(path, memory_limit=memory_limit)
        self._board = ArrivalBoard()
        # Beside the file: `tracebaton.duckdb.ingest/`, the acknowledged requests the file
        # has not caught up with (an in-memory store has nothing to be durable against).
        ingest_log = None if path == ":memory:" else IngestLog(Path(path + ".ingest"))
        self._writer = CommitWriter(self._connection.cursor(), self._board,
                                    max_pending_spans=max_pending_spans, ingest_log=ingest_log)
        self._pins = PinSet()
        self._layout = RowLayout()
        self._maintenance = Maintenance(
            self._connection.cursor(),
            None if path == ":memory:" else path + ".wal",
            pins=self._pins,
            layout=self._layout,
            sweeper=self._writer,
            retention_max_spans=retention_max_spans,
            retention_max_age_ns=retention_max_age_ns,
        )
        self._runs = RunLog(self._connection.cursor(), max_runs=max_runs)
        self._decoded = DecodedSpans()
        self._local = threading.local()
        self._readers: list[duckdb.DuckDBPyConnection] = []
        self._readers_lock = threading.Lock()
        self._started = False
        self._closed = False

    # lifecycle ---------------------------------------------------------------------

    def start(self) -> DuckDBSpanStore:
        if self._closed:
            raise StoreClosedError("the store is shut down; open a new one")
        if not self._started:
            if self._decode_workers:
                self._decode_pool = DecodePool(self._decode_workers).start()
            self._writer.start()
            self._maintenance.start()
            self._started = True
        return self

    def __enter__(self) -> DuckDBSpanStore:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Wait until everything ingested so far is acknowledged (durable and readable)."""
        return self._writer.flush(timeout_millis / 1000)

    def flush_to_file(self, timeout_millis: int = 30_000) -> bool:
        """Wait until everything acknowledged so far is in the DuckDB file, not only the head."""
        return self._writer.flush_to_file(timeout_millis / 1000)

    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._runs.shutdown()
        if self._started:
            self._writer.shutdown()
            self._maintenance.shutdown()
        if self._decode_pool is not None:
            self._decode_pool.shutdown()
        self._board.close()
        try:
            if self.path != ":memory:":
                with self._layout.moving():  # a read begun before the close may still run
                    self._connection.execute("CHECKPOINT")
        except duckdb.Error:
            log.exception("final checkpoint failed; the WAL is replayed at the next start")
        with self._readers_lock:
            for reader in self._readers:
                reader.close()
            self._readers.clear()
        self._connection.close()

    # ingest --------------------------------------------------------------------------

    def ingest(self, body: bytes, content_type: str = PROTOBUF) -> Future[IngestResult]:
        if self._closed:
            raise StoreClosedError("the store is shut down; nothing more is accepted")
        # Arrival is when the request came, not when decoding and the queue were done with
        # it: export lag (arrival − end) measures the service under test, not this process.
        arrival_ns = time.time_ns()
        with self._writer.announce():  # the writer holds a small group open for this one
            if self._decode_pool is not None and self._decode_pool.warm:
                batch = self._decode_pool.decode(body, content_type)
            else:
                with _DECODE_SLOT:
                    batch = span_batch(protobuf_body(body, content_type))
            return self._writer.submit(batch, body, content_type, arrival_ns)

    @property
    def pending_spans(self) -> int:
        return self._writer.pending_spans

    # reads -----------------------------------------------------------------------------

    def _reader(self) -> SpanReader:
        if self._closed:
            raise StoreClosedError("the store is shut down")
        reader: SpanReader | None = getattr(self._local, "reader", None)
        if reader is None:
            cursor = self._connection.cursor()
            with self._readers_lock:
                self._readers.append(cursor)
            reader = SpanReader(cursor, self._writer.head, lambda: self._writer.resource_generation,
                                self._decoded, self._layout)
            self._local.reader = reader
        return reader

    def trace(self, trace_id: str) -> list[StoredSpan]:
        return self._reader().trace(trace_id)

    def traces(self, query: TraceQuery) -> list[TraceSummary]:
        return self._reader().traces(query)

    def roots(self, target: str, start_unix_nano: int, end_unix_nano: int) -> list[StoredSpan]:
        address = parse_call_target(target)
        if address is not None:
            return self._reader().roots(None, address, start_unix_nano, end_unix_nano)
        return self._reader().roots(target, None, start_unix_nano, end_unix_nano)

    def linked(self, trace_id: str) -> list[str]:
        return self._reader().linked(trace_id)

    def services(self) -> list[str]:
        return self._reader().services()

    def operations(self, service: str) -> list[Operation]:
        return self._reader().operations(service)

    # recorded flow results ---------------------------------------------------------------

    def record_run(self, result: Mapping[str, Any], *, test_id: str | None = None,
                   session_id: str | None = None) -> str:
        if self._closed:
            raise StoreClosedError("the store is shut down")
        return self._runs.record(result, test_id=test_id, session_id=session_id).run_id

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

    def cursor(self) -> WaitCursor:
        return WaitCursor(self, self._board.sequence)

    def wait(self, trace_ids: Iterable[str] | None, until: float,
             after: WaitCursor | None = None) -> WaitCursor | None:
        wanted = None if trace_ids is None else frozenset(trace_id_bytes(t) for t in trace_ids)
        start = self._board.sequence if after is None else after.position_for(self)
        if self._closed:
            return None
        sequence = self._board.wait(wanted, until, cast(int, start))
        return None if sequence is None else WaitCursor(self, sequence)

    def pin(self, trace_id: str) -> None:
        self._pins.pin(trace_id_bytes(trace_id))

    def unpin(self, trace_id: str) -> None:
        self._pins.unpin(trace_id_bytes(trace_id))

    # upkeep ----------------------------------------------------------------------------

    def checkpoint(self) -> None:
        self._writer.flush_to_file()
        self._maintenance.checkpoint()

    def prune(self) -> int:
        """Apply retention now (to everything acknowledged so far); returns the rows deleted."""
        self._writer.flush_to_file()
        return self._maintenance.prune()
