"""Recording runs behind the verdict, the part every store's run log shares.

A check's answer does not wait for its run's row: one small INSERT costs DuckDB 2–6 ms
from Python (more at the tail) and a ClickHouse insert a round trip, which is most of an
existential check's latency. So `record_run` hands the row to a writer thread and returns
the run id at once. Reads of runs wait for the rows recorded before them (`flush`), so a
caller that reads back the run it recorded, or a dashboard told of it, always finds it.
Listeners hear of a run once its row is written.

The thread waits `GATHER_S` after a run is queued before it writes: the INSERT then runs
once the answer is on its way, not beside it on a two-core machine (measured: the remote
existential verdict's p50 went from about 4 to 3 ms), and runs recorded close together
share one INSERT. A read of runs (`flush`) and `shutdown` cut the wait short.

What this costs: a run recorded in the last few milliseconds before the process is killed
(not shut down) is lost; its spans are not (they have their own log). `shutdown` writes
what is queued.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tracebaton import StoreClosedError

from ._model import RunSummary

log = logging.getLogger("tracebaton.collector")

_RETRY_S = 1.0
GATHER_S = 0.02
"""How long the writer lets a queued run wait for the answer to leave and for others to join it."""
MAX_QUEUED_RUNS = 10_000
"""Runs waiting to be written while the store refuses them; past this the oldest are dropped."""


def run_summary(result: Mapping[str, Any], *, run_id: str, recorded_ns: int,
                test_id: str | None, session_id: str | None) -> RunSummary:
    """The list entry of a recorded flow result (a result's JSON, as `FlowResult.to_json()`)."""
    trace_id = result.get("trace_id")
    waited = result.get("waited_ms")
    first = result.get("first_divergence")
    return RunSummary(
        run_id=run_id,
        name=str(result.get("name") or ""),
        trace_id=trace_id if isinstance(trace_id, str) else None,
        passed=bool(result.get("passed")),
        test_id=test_id,
        session_id=session_id,
        recorded_unix_nano=recorded_ns,
        first_divergence=first if isinstance(first, str) else None,
        waited_ms=waited if isinstance(waited, int) and not isinstance(waited, bool) else None,
    )


class RunListeners:
    """Who hears of recorded runs (the dashboard's live list)."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[RunSummary], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Callable[[RunSummary], None]) -> Callable[[], None]:
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def announce(self, summary: RunSummary) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(summary)
            except Exception:  # one broken listener must not stop the runs after it
                log.exception("a run listener failed")


@dataclass(frozen=True, slots=True)
class QueuedRun:
    summary: RunSummary
    result_json: str
    """The whole result, serialized when it was recorded (the caller may change its dict)."""
    trace_ids: tuple[str, ...]
    """The traces the flow covered (linked, stitched), besides its own."""

    @staticmethod
    def of(summary: RunSummary, result: Mapping[str, Any]) -> QueuedRun:
        covered = result.get("trace_ids")
        return QueuedRun(
            summary, orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS).decode(),
            tuple(t for t in covered if isinstance(t, str)) if isinstance(covered, list) else ())


class RunWriter:
    """One thread writing queued runs with `write(runs)` (which raises if nothing was
    written: the runs are kept and written again a second later), then announcing them."""

    def __init__(self, write: Callable[[Sequence[QueuedRun]], None], listeners: RunListeners,
                 *, name: str = "tracebaton-runs") -> None:
        self._write = write
        self._listeners = listeners
        self._name = name
        self._queue: list[QueuedRun] = []
        self._submitted = 0
        self._settled = 0
        """Runs written, or dropped: what `flush` has stopped waiting for."""
        self._cond = threading.Condition()
        self._closing = False
        self._hurry = 0
        """Readers waiting in `flush`: while any does, runs are written without gathering."""
        self._thread: threading.Thread | None = None

    def submit(self, run: QueuedRun) -> None:
        with self._cond:
            if self._closing:
                raise StoreClosedError("the store is shut down; no more runs are recorded")
            if len(self._queue) >= MAX_QUEUED_RUNS:
                dropped = self._queue.pop(0)
                self._settled += 1
                log.warning("run %s was not recorded: %d runs wait for the store to accept them",
                            dropped.summary.run_id, MAX_QUEUED_RUNS)
            self._queue.append(run)
            self._submitted += 1
            if self._thread is None:  # a store that never records runs has no such thread
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every run submitted before this call is written (False: timed out,
        the store refuses them for now)."""
        if threading.current_thread() is self._thread:
            return True  # a listener reading runs: what this thread wrote is written
        with self._cond:
            target = self._submitted
            if self._settled >= target:
                return True
            self._hurry += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._settled >= target, timeout_s)
            finally:
                self._hurry -= 1

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Write what is queued (one more try if the store refused), then stop."""
        with self._cond:
            self._closing = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout_s)

    def _run(self) -> None:
        failed = False
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                if failed and not self._closing:
                    self._cond.wait(_RETRY_S)
                else:
                    self._cond.wait_for(lambda: self._closing or self._hurry > 0, GATHER_S)
                runs, self._queue = self._queue, []
            try:
                self._write(runs)
                failed = False
            except Exception:
                with self._cond:
                    closing = self._closing
                    if not closing:
                        self._queue[:0] = runs
                if closing:
                    log.exception("%d recorded runs could not be written at shutdown", len(runs))
                    self._settle(len(runs))
                    return
                if not failed:
                    log.warning("recording %d runs failed; retrying every %g s", len(runs), _RETRY_S,
                                exc_info=True)
                failed = True
                continue
            self._settle(len(runs))
            for run in runs:  # written and settled first: a listener that reads it finds it
                self._listeners.announce(run.summary)

    def _settle(self, count: int) -> None:
        with self._cond:
            self._settled += count
            self._cond.notify_all()
