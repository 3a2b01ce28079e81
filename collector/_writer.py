"""The DuckDB store's writer: one transaction a group, behind the shared `IngestQueue`.

DuckDB releases the GIL while it writes, so decoding the next requests overlaps with
writing these. The writer also owns the resource and scope rows: it remembers which ids it
stored, so a new service instance's resource is a plain append with no conflict check, and
pruning rows no span refers to any more happens on its thread, between two commits.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future

import duckdb
import pyarrow as pa

from ._arrivals import ArrivalBoard
from ._columns import SpanBatch
from ._ingest_queue import IngestQueue
from ._model import IngestResult

log = logging.getLogger("tracebaton.collector")


class CommitWriter:
    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        board: ArrivalBoard,
        *,
        max_pending_spans: int,
    ) -> None:
        self._connection = connection
        self._queue: IngestQueue[SpanBatch] = IngestQueue(
            self._commit, on_committed=board.publish, max_pending_spans=max_pending_spans)
        self._known_resources: set[int] = set()
        self._known_scopes: set[int] = set()
        # Retention's sweep of unreferenced resources and scopes (see `forget`).
        self._lock = threading.Lock()
        self._noting = False
        self._sweep_pending = False
        self._noted_resources: set[int] = set()
        self._noted_scopes: set[int] = set()
        self.swept = 0

    def start(self) -> None:
        self._known_resources = {r for (r,) in self._connection.execute(
            "SELECT resource_id FROM resources").fetchall()}
        self._known_scopes = {s for (s,) in self._connection.execute(
            "SELECT scope_id FROM scopes").fetchall()}
        self._queue.start()

    @property
    def pending_spans(self) -> int:
        return self._queue.pending_spans

    @property
    def committed_spans(self) -> int:
        return self._queue.committed_spans

    @property
    def commits(self) -> int:
        return self._queue.commits

    def announce(self) -> contextlib.AbstractContextManager[None]:
        return self._queue.announce()

    def submit(self, batch: SpanBatch) -> Future[IngestResult]:
        """Queue a batch; the future resolves once it is committed and readable."""
        return self._queue.submit(batch)

    def flush(self, timeout_s: float) -> bool:
        return self._queue.flush(timeout_s)

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Commit what is queued, then stop."""
        self._queue.shutdown(timeout_s)

    def note_references(self) -> None:
        """From now on, remember the resource and scope ids that commits refer to."""
        with self._lock:
            self._noting = True
            # With an earlier sweep's ids not yet forgotten, keep what was noted for it:
            # it is forgotten against everything noted since its own query began.
            if not self._sweep_pending:
                self._noted_resources = set()
                self._noted_scopes = set()

    def forget(self, resource_ids: set[int], scope_ids: set[int]) -> None:
        """Delete these resource and scope rows, found unreferenced by a query that started
        after `note_references`, unless a commit since then refers to them.

        Done on the writer thread between two commits: the writer skips storing a resource
        it believes stored, so the row and the writer's memory of it must go together.
        """
        with self._lock:
            self._sweep_pending = True
        self._queue.run_between_commits(lambda: self._sweep(resource_ids, scope_ids))

    def _sweep(self, resources: set[int], scopes: set[int]) -> None:
        with self._lock:
            resources = resources - self._noted_resources
            scopes = scopes - self._noted_scopes
            self._sweep_pending = False
            self._noting = False
            self._noted_resources = set()
            self._noted_scopes = set()
        if not resources and not scopes:
            return
        connection = self._connection
        try:
            connection.execute("BEGIN")
            connection.execute("DELETE FROM resources WHERE list_contains(?::BIGINT[], resource_id)",
                               [list(resources)])
            connection.execute("DELETE FROM scopes WHERE list_contains(?::BIGINT[], scope_id)",
                               [list(scopes)])
            connection.execute("COMMIT")
        except duckdb.Error:
            with contextlib.suppress(duckdb.Error):
                connection.execute("ROLLBACK")
            log.exception("could not delete unreferenced resources and scopes; the next sweep retries")
            return
        self._known_resources -= resources
        self._known_scopes -= scopes
        self.swept += len(resources) + len(scopes)

    def _commit(self, batches: Sequence[SpanBatch]) -> None:
        connection = self._connection
        # One chunk: DuckDB scans an Arrow table a record batch per task, and an INSERT
        # spread over its threads costs about a third more CPU (more, smaller row-group
        # appends to merge) than the copy that combining the chunks takes.
        spans = pa.concat_tables([b.spans for b in batches]).combine_chunks()
        link_tables = [b.links for b in batches if b.links is not None]
        new_resources = {rid: v for b in batches for rid, v in b.resources.items()
                         if rid not in self._known_resources}
        new_scopes = {sid: v for b in batches for sid, v in b.scopes.items()
                      if sid not in self._known_scopes}
        arrival = time.time_ns()
        # One execute for the whole transaction: every call into DuckDB costs a return
        # trip to the GIL, which a busy receiver thread can delay.
        statements = ["BEGIN"]
        registered = []
        if spans.num_rows:
            connection.register("incoming_spans", spans)
            registered.append("incoming_spans")
            statements.append(f"INSERT INTO spans SELECT *, {arrival} FROM incoming_spans")
        if link_tables:
            connection.register("incoming_links", pa.concat_tables(link_tables))
            registered.append("incoming_links")
            statements.append(f"INSERT INTO span_links SELECT *, {arrival} FROM incoming_links")
        # A new service instance brings a new resource; the writer remembers which ids it
        # stored, so these are plain appends with no conflict check.
        if new_resources:
            connection.register("incoming_resources", pa.table({
                "resource_id": pa.array(list(new_resources), pa.int64()),
                "service": pa.array([v[0] for v in new_resources.values()], pa.string()),
                "body": pa.array([v[1] for v in new_resources.values()], pa.binary()),
            }))
            registered.append("incoming_resources")
            statements.append("INSERT INTO resources SELECT * FROM incoming_resources")
        if new_scopes:
            connection.register("incoming_scopes", pa.table({
                "scope_id": pa.array(list(new_scopes), pa.int64()),
                "body": pa.array(list(new_scopes.values()), pa.binary()),
            }))
            registered.append("incoming_scopes")
            statements.append("INSERT INTO scopes SELECT * FROM incoming_scopes")
        statements.append("COMMIT")
        try:
            connection.execute(";\n".join(statements))
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                connection.execute("ROLLBACK")
            raise
        finally:
            for name in registered:
                connection.unregister(name)
        self._known_resources.update(new_resources)
        self._known_scopes.update(new_scopes)
        with self._lock:
            # Noted after the commit: a commit noted before the sweep's query began is one
            # that query sees.
            if self._noting:
                for batch in batches:
                    self._noted_resources.update(batch.resources)
                    self._noted_scopes.update(batch.scopes)
