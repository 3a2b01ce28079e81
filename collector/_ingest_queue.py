"""Grouped commits behind a bounded queue: the part of ingest every store's writer shares.

Receivers decode on their own threads and queue batches here. One writer thread takes
everything queued (up to `max_group_spans`) and hands it to the store's `commit` as one
group, so a commit's fixed cost (a WAL flush, an INSERT round trip) is shared under load,
while a lone request under light load is committed at once. A batch's future resolves only
after its group's commit returned: acknowledged means committed and readable.

The queue is bounded in spans: when it is full, `submit` refuses at once with a retry
delay (503 / UNAVAILABLE), so memory stays bounded under overload.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Generic, Protocol, TypeVar

from tracebaton import StoreClosedError, StoreError, StoreSaturatedError

from ._model import IngestResult

log = logging.getLogger("tracebaton.collector")

RETRY_AFTER_S = 1.0


class QueuedBatch(Protocol):
    """What the queue needs to know of a store's decoded request."""

    @property
    def span_count(self) -> int: ...

    @property
    def trace_ids(self) -> frozenset[bytes]: ...

    def ingest_result(self) -> IngestResult:
        """What the exporter hears once the batch is committed."""
        ...


B = TypeVar("B", bound=QueuedBatch)


class _Pending(Generic[B]):
    __slots__ = ("batch", "future")

    def __init__(self, batch: B) -> None:
        self.batch = batch
        self.future: Future[IngestResult] = Future()


class IngestQueue(Generic[B]):
    """Bounded, grouping, one writer thread.

    `commit(batches)` writes one group in one transaction and raises if it failed (every
    batch's exporter then hears a retryable StoreError); `on_committed(trace_ids)` runs
    after a successful commit, before the futures resolve (the arrival notifications).
    `run_between_commits(task)` runs store upkeep on the writer thread between two groups.
    """

    def __init__(
        self,
        commit: Callable[[Sequence[B]], None],
        *,
        on_committed: Callable[[frozenset[bytes]], object],
        max_pending_spans: int,
        max_group_spans: int = 65_536,
        linger_s: float = 0.020,
        linger_below_spans: int = 4096,
        name: str = "tracebaton-writer",
    ) -> None:
        self._commit = commit
        self._on_committed = on_committed
        self._max_pending = max_pending_spans
        self._max_group = max_group_spans
        self._linger_s = linger_s
        self._linger_below = linger_below_spans
        self._announced = 0
        self._queue: collections.deque[_Pending[B]] = collections.deque()
        self._tasks: collections.deque[Callable[[], None]] = collections.deque()
        self._in_flight: set[Future[IngestResult]] = set()
        self._pending_spans = 0
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.committed_spans = 0
        self.commits = 0

    def start(self) -> None:
        self._thread.start()

    @property
    def pending_spans(self) -> int:
        return self._pending_spans

    @contextlib.contextmanager
    def announce(self) -> Iterator[None]:
        """Say that a request is being decoded and will be submitted soon.

        While requests are announced, the writer holds a small group open for them (up to
        `linger_s`), so that a commit's fixed cost is shared by more spans. With nothing
        announced it commits at once, so a lone request is not delayed.
        """
        with self._cond:
            self._announced += 1
        try:
            yield
        finally:
            with self._cond:
                self._announced -= 1
                self._cond.notify_all()

    def submit(self, batch: B) -> Future[IngestResult]:
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

    def run_between_commits(self, task: Callable[[], None]) -> None:
        """Run `task` on the writer thread before its next group (it must not raise)."""
        with self._cond:
            self._tasks.append(task)
            self._cond.notify_all()

    def flush(self, timeout_s: float) -> bool:
        """Wait until everything submitted before this call is committed (or failed)."""
        with self._cond:
            waiting = list(self._in_flight)
        return not concurrent.futures.wait(waiting, timeout_s).not_done

    def shutdown(self, timeout_s: float = 30.0) -> None:
        """Commit what is queued, then stop."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _take_group(self) -> tuple[list[_Pending[B]], list[Callable[[], None]]] | None:
        with self._cond:
            while not self._queue:
                if self._tasks:
                    return [], self._take_tasks()
                if self._closing:
                    return None
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
                    return group, self._take_tasks()  # big enough, or nothing more on its way
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return group, self._take_tasks()
                self._cond.wait(remaining)

    def _take_tasks(self) -> list[Callable[[], None]]:
        tasks = list(self._tasks)
        self._tasks.clear()
        return tasks

    def _run(self) -> None:
        while (taken := self._take_group()) is not None:
            group, tasks = taken
            for task in tasks:
                try:
                    task()
                except Exception:  # upkeep retries later; the writer must not die of it
                    log.exception("store upkeep on the writer thread failed")
            if group:
                self._commit_group(group)

    def _commit_group(self, group: list[_Pending[B]]) -> None:
        span_total = sum(p.batch.span_count for p in group)
        try:
            self._commit([p.batch for p in group])
        except Exception as error:  # the exporter must hear of it, never the thread die
            log.exception("commit of %d spans failed", span_total)
            failure = StoreError(f"the store could not commit {span_total} spans: {error}")
            for pending in group:
                pending.future.set_exception(failure)
        else:
            self._on_committed(frozenset().union(*(p.batch.trace_ids for p in group)))
            self.committed_spans += span_total
            self.commits += 1
            for pending in group:
                pending.future.set_result(pending.batch.ingest_result())
        finally:
            with self._cond:
                self._pending_spans -= span_total
                self._in_flight.difference_update(p.future for p in group)
