"""Grouped commits: many requests, one transaction, acknowledged after COMMIT.

Receivers decode on their own threads and hand batches here. One writer thread owns the
write connection and takes everything queued (up to `max_group_spans`) into a single
transaction, so a commit's fixed cost (the WAL flush) is shared under load while a lone
request under light load is committed at once. DuckDB releases the GIL while it writes,
so decoding the next requests overlaps with writing these.

The queue is bounded in spans: when it is full, `submit` refuses at once and receivers
answer 503 / UNAVAILABLE with a retry delay, so memory stays bounded under overload.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future

import duckdb
import pyarrow as pa

from tracebaton import StoreClosedError, StoreError, StoreSaturatedError

from ._arrivals import ArrivalBoard
from ._columns import SpanBatch
from ._model import IngestResult

log = logging.getLogger("tracebaton.collector")

RETRY_AFTER_S = 1.0


class _Pending:
    __slots__ = ("batch", "future")

    def __init__(self, batch: SpanBatch) -> None:
        self.batch = batch
        self.future: Future[IngestResult] = Future()


class CommitWriter:
    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        board: ArrivalBoard,
        *,
        max_pending_spans: int,
        max_group_spans: int = 65_536,
        linger_s: float = 0.020,
        linger_below_spans: int = 4096,
    ) -> None:
        self._connection = connection
        self._board = board
        self._max_pending = max_pending_spans
        self._max_group = max_group_spans
        self._linger_s = linger_s
        self._linger_below = linger_below_spans
        self._announced = 0
        self._queue: collections.deque[_Pending] = collections.deque()
        self._in_flight: set[Future[IngestResult]] = set()
        self._pending_spans = 0
        self._cond = threading.Condition()
        self._closing = False
        self._known_resources: set[int] = set()
        self._known_scopes: set[int] = set()
        # Retention's sweep of unreferenced resources and scopes (see `forget`).
        self._noting = False
        self._noted_resources: set[int] = set()
        self._noted_scopes: set[int] = set()
        self._forget: tuple[set[int], set[int]] | None = None
        self._thread = threading.Thread(target=self._run, name="tracebaton-writer", daemon=True)
        self.committed_spans = 0
        self.commits = 0
        self.swept = 0

    def start(self) -> None:
        self._known_resources = {r for (r,) in self._connection.execute(
            "SELECT resource_id FROM resources").fetchall()}
        self._known_scopes = {s for (s,) in self._connection.execute(
            "SELECT scope_id FROM scopes").fetchall()}
        self._thread.start()

    @property
    def pending_spans(self) -> int:
        return self._pending_spans

    @contextlib.contextmanager
    def announce(self) -> Iterator[None]:
        """Say that a request is being decoded and will be submitted soon.

        While requests are announced, the writer holds a small group open for them (up to
        `linger_s`), so that a commit's fixed cost (the WAL flush, DuckDB's round trips to
        the GIL) is shared by more spans. With nothing announced it commits at once, so a
        lone request is not delayed.
        """
        with self._cond:
            self._announced += 1
        try:
            yield
        finally:
            with self._cond:
                self._announced -= 1
                self._cond.notify_all()

    def submit(self, batch: SpanBatch) -> Future[IngestResult]:
        """Queue a batch; the future resolves once it is committed and readable."""
        pending = _Pending(batch)
        with self._cond:
            if self._closing:
                raise StoreClosedError("the store is shutting down; nothing more is accepted")
            # With nothing pending, any batch is admitted, however large, so that a request
            # within the body limit can never be refused forever.
            if self._pending_spans and self._pending_spans + batch.span_count > self._max_pending:
                raise StoreSaturatedError(
                    f"ingest is saturated: {self._pending_spans} spans wait to be written "
                    f"(limit {self._max_pending}); retry in {RETRY_AFTER_S:g} s",
                    retry_after_s=RETRY_AFTER_S,
                )
            self._queue.append(pending)
            self._in_flight.add(pending.future)
            self._pending_spans += batch.span_count
            self._cond.notify()
        return pending.future

    def note_references(self) -> None:
        """From now on, remember the resource and scope ids that commits refer to."""
        with self._cond:
            self._noting = True
            # With an earlier sweep's ids not yet forgotten, keep what was noted for it:
            # it is forgotten against everything noted since its own query began.
            if self._forget is None:
                self._noted_resources = set()
                self._noted_scopes = set()

    def forget(self, resource_ids: set[int], scope_ids: set[int]) -> None:
        """Delete these resource and scope rows, found unreferenced by a query that started
        after `note_references`, unless a commit since then refers to them.

        Done on the writer thread between two commits: the writer skips storing a resource
        it believes stored, so the row and the writer's memory of it must go together.
        """
        with self._cond:
            self._forget = (resource_ids, scope_ids)
            self._cond.notify_all()

    def flush(self, timeout_s: float) -> bool:
        """Wait until everything submitted before this call is committed (or failed)."""
        with self._cond:
            waiting = list(self._in_flight)
        return not concurrent.futures.wait(waiting, timeout_s).not_done

    def shutdown(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then stop."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def _take_group(self) -> list[_Pending] | None:
        with self._cond:
            while not self._queue:
                if self._closing:
                    return None
                if self._forget is not None:
                    return []  # nothing to commit: the sweep runs now
                self._cond.wait()
            group = [self._queue.popleft()]
            spans = group[0].batch.span_count
            deadline = time.monotonic() + self._linger_s
            while True:
                while self._queue and spans + self._queue[0].batch.span_count <= self._max_group:
                    item = self._queue.popleft()
                    spans += item.batch.span_count
                    group.append(item)
                if (self._queue or not self._announced or self._closing
                        or spans >= self._linger_below):
                    return group  # big enough, or nothing more on its way
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return group
                self._cond.wait(remaining)

    def _run(self) -> None:
        while (group := self._take_group()) is not None:
            if self._forget is not None:
                self._sweep()
            if not group:
                continue
            span_total = sum(p.batch.span_count for p in group)
            try:
                self._commit([p.batch for p in group])
            except Exception as error:  # the exporter must hear of it, never the thread die
                log.exception("commit of %d spans failed", span_total)
                failure = StoreError(f"the store could not commit {span_total} spans: {error}")
                for pending in group:
                    pending.future.set_exception(failure)
            else:
                self._board.publish(frozenset().union(*(p.batch.trace_ids for p in group)))
                self.committed_spans += span_total
                self.commits += 1
                for pending in group:
                    batch = pending.batch
                    pending.future.set_result(IngestResult(
                        batch.span_count, batch.rejected_spans, batch.rejection_message))
                with self._cond:
                    # Noted after the commit: a commit noted before the sweep's query began
                    # is one that query sees.
                    if self._noting:
                        for pending in group:
                            self._noted_resources.update(pending.batch.resources)
                            self._noted_scopes.update(pending.batch.scopes)
            finally:
                with self._cond:
                    self._pending_spans -= span_total
                    self._in_flight.difference_update(p.future for p in group)

    def _sweep(self) -> None:
        with self._cond:
            if self._forget is None:
                return
            resources, scopes = self._forget
            self._forget = None
            resources = resources - self._noted_resources
            scopes = scopes - self._noted_scopes
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

    def _commit(self, batches: list[SpanBatch]) -> None:
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
