"""Background upkeep: checkpoints and retention, never on the acknowledgement path."""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Protocol

import duckdb

from ._schema import only_row

log = logging.getLogger("tracebaton.collector")

_PRUNE_ATTEMPTS = 3
"""Deletes tried while checks keep pinning old traces; the last one holds pinning off."""
_STEP_COMMIT_S = 0.05
"""How long one retention commit may hold up the writer's commits."""
_MIN_STEP_ROWS, _MAX_STEP_ROWS = 1024, 65_536


class RowLayout:
    """Whether rows kept their row ids: a checkpoint after deletes may renumber them.

    A read that finds a trace's row ids first and reads them in a second statement checks
    `version` before and after, rather than holding a transaction open for both (two more
    statements, about a fifth of a trace read): an odd version is a checkpoint running, a
    changed one a checkpoint in between. Only the holder of the store's maintenance lock
    moves it.
    """

    def __init__(self) -> None:
        self.version = 0

    @contextlib.contextmanager
    def moving(self) -> Iterator[None]:
        self.version += 1
        try:
            yield
        finally:
            self.version += 1


class PinSet:
    """Trace ids (16 bytes) that waiting checks hold, counted: two checks may pin one trace."""

    def __init__(self) -> None:
        self._counts: collections.Counter[bytes] = collections.Counter()
        self._lock = threading.Lock()

    def pin(self, trace_id: bytes) -> None:
        with self._lock:
            self._counts[trace_id] += 1
            first = self._counts[trace_id] == 1
        if first:  # says when retention starts sparing it (and lets a test wait for that)
            log.debug("retention: trace %s pinned", trace_id.hex())

    def unpin(self, trace_id: bytes) -> None:
        with self._lock:
            self._counts[trace_id] -= 1
            last = self._counts[trace_id] <= 0
            if last:
                del self._counts[trace_id]
        if last:
            log.debug("retention: trace %s unpinned", trace_id.hex())

    def snapshot(self) -> frozenset[bytes]:
        with self._lock:
            return frozenset(self._counts)

    @contextlib.contextmanager
    def held(self) -> Iterator[frozenset[bytes]]:
        """The pinned ids, with `pin` held off until the block ends.

        Retention commits its delete inside this block: a check that pins a trace and then
        reads it either reads before the delete is visible and pinned it in time (the delete
        is rolled back), or pins after the commit and never saw the pruned spans as its own.
        """
        with self._lock:
            yield frozenset(self._counts)


class ReferenceSweeper(Protocol):
    """The writer's side of pruning resources and scopes that no span refers to any more."""

    def note_references(self) -> None:
        """From now on, remember the resource and scope ids that commits refer to."""
        ...

    def forget(self, resource_ids: set[int], scope_ids: set[int]) -> None:
        """Delete these rows between two commits unless a commit since `note_references`
        refers to them."""
        ...

    def pruned_before(self, arrival_ns: int) -> None:
        """Rows that arrived before `arrival_ns` may be gone from the file (pinned traces
        excepted): what memory keeps of them goes too."""
        ...


class Maintenance:
    """Checkpoints when the WAL grows or ingest goes quiet; prunes oldest spans first.

    A checkpoint compresses and rewrites the WAL's data into the file; DuckDB holds commits
    while it runs, so the writer's queue absorbs that pause instead of an exporter's request.
    The file does not shrink when spans are pruned, but the blocks they held are free after
    the next checkpoint and new data reuses them, so under retention the file plateaus.
    """

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        wal_path: str | None,
        *,
        pins: PinSet,
        layout: RowLayout | None = None,
        sweeper: ReferenceSweeper | None = None,
        retention_max_spans: int | None,
        retention_max_age_ns: int | None,
        wal_checkpoint_bytes: int = 128 * 1024 * 1024,
        interval_s: float = 0.5,
        retention_interval_s: float = 0.5,
        sweep_interval_s: float = 5.0,
    ) -> None:
        self._connection = connection
        # Reads the committed state while `_connection` holds an uncommitted delete.
        self._probe = connection.cursor()
        self._wal_path = wal_path
        self._pins = pins
        self._layout = layout if layout is not None else RowLayout()
        self._sweeper = sweeper
        self._max_spans = retention_max_spans
        self._max_age_ns = retention_max_age_ns
        self._wal_checkpoint_bytes = wal_checkpoint_bytes
        self._interval_s = interval_s
        # Retention looks every tick (a count is about a millisecond), so the store holds at
        # most about half a second of ingest beyond its limit, plus any checkpoint's pause.
        self._retention_interval_s = retention_interval_s
        # The sweep joins resources and scopes against every span: seconds apart is enough.
        self._sweep_interval_s = sweep_interval_s
        self._last_sweep = 0.0
        self._stop = threading.Event()
        # `checkpoint()` and `prune()` may also be called from outside (tests, an admin
        # call) while the thread runs; they share one connection, which is not thread-safe.
        self._busy = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="tracebaton-maintenance", daemon=True)
        self.checkpoints = 0
        self.pruned_spans = 0
        self.prune_passes = 0
        self.longest_prune_s = 0.0
        self.longest_commit_s = 0.0
        self._pass_commit_s = 0.0
        self._step_rows = 8192
        self.swept_resources = 0

    def start(self) -> None:
        self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._probe.close()

    def _wal_bytes(self) -> int:
        if self._wal_path is None:
            return 0
        try:
            return os.path.getsize(self._wal_path)
        except OSError:
            return 0

    def _run(self) -> None:
        last_retention = 0.0
        last_wal = 0
        while not self._stop.wait(self._interval_s):
            try:
                wal = self._wal_bytes()
                # Quiet (the WAL stopped growing) or large: fold it into the file.
                if wal >= self._wal_checkpoint_bytes or (wal and wal == last_wal):
                    self.checkpoint()
                    wal = self._wal_bytes()
                last_wal = wal
                now = time.monotonic()
                if (self._max_spans or self._max_age_ns) and (
                        now - last_retention >= self._retention_interval_s):
                    last_retention = now
                    self.prune()
            except duckdb.Error:
                log.exception("store maintenance failed; retrying at the next tick")

    def checkpoint(self) -> None:
        with self._busy, self._layout.moving():
            started = time.perf_counter()
            self._connection.execute("CHECKPOINT")
            self.checkpoints += 1
        log.info("checkpoint: the WAL folded into the file in %.0f ms",
                 (time.perf_counter() - started) * 1000)

    def _cutoff(self) -> int | None:
        """Spans that arrived before this (unix ns) are beyond the limits; None: none are."""
        cutoff: int | None = None
        if self._max_age_ns:
            cutoff = time.time_ns() - self._max_age_ns
        if self._max_spans:
            row = only_row(self._connection.execute("SELECT count(*) FROM spans"))
            if row is not None and int(row[0]) > self._max_spans:
                # One commit is one arrival time, so this may prune a few more than needed:
                # the bound is kept, never exceeded by a partly pruned commit.
                row = only_row(self._connection.execute(
                    "SELECT arrival_ns FROM spans ORDER BY arrival_ns DESC LIMIT 1 OFFSET ?",
                    [self._max_spans],
                ))
                if row is not None:
                    cutoff = max(cutoff or 0, int(row[0]) + 1)
        return cutoff

    def prune(self) -> int:
        """Delete the oldest spans beyond the limits, sparing pinned traces. Returns rows deleted.

        Pinned spans stay however old they are, so the store may hold up to the limit plus
        the pinned traces; they go at the first pass after their last unpin.

        Deleted in steps of a few thousand rows, one transaction each: committing a delete
        removes its rows from the trace id index, which takes microseconds a row while every
        other commit waits, so one big delete would stall ingest for seconds.
        """
        with self._busy:
            return self._prune()

    def _prune(self) -> int:
        cutoff = self._cutoff()
        if cutoff is None:
            return 0
        started = time.perf_counter()
        self._pass_commit_s = 0.0
        deleted = 0
        step = 0
        while step < cutoff and not self._stop.is_set():
            step = self._step_cutoff(cutoff)
            for attempt in range(_PRUNE_ATTEMPTS):
                rows = self._delete_before(step, hold_pins=attempt == _PRUNE_ATTEMPTS - 1)
                if rows is not None:
                    deleted += rows
                    if rows and self._sweeper is not None:
                        self._sweeper.pruned_before(step)
                    break
        elapsed = time.perf_counter() - started
        self.prune_passes += 1
        self.longest_prune_s = max(self.longest_prune_s, elapsed)
        if deleted:
            self.pruned_spans += deleted
            swept = 0
            if time.monotonic() - self._last_sweep >= self._sweep_interval_s:
                self._last_sweep = time.monotonic()
                swept = self._sweep_references()
            if log.isEnabledFor(logging.INFO):
                row = only_row(self._connection.execute("SELECT count(*) FROM spans"))
                log.info("retention: pruned %d spans (arrived before %d) in %.0f ms, longest commit "
                         "%.0f ms; %d spans stored, %d traces pinned; %d resources and scopes unreferenced",
                         deleted, cutoff, elapsed * 1000, self._pass_commit_s * 1000,
                         int(row[0]) if row else 0, len(self._pins.snapshot()), swept)
        return deleted

    def _step_cutoff(self, cutoff: int) -> int:
        """The cutoff of the next step: about `_step_rows` of the oldest spans, whole commits."""
        row = only_row(self._connection.execute(
            "SELECT arrival_ns FROM spans WHERE arrival_ns < ? ORDER BY arrival_ns LIMIT 1 OFFSET ?",
            [cutoff, self._step_rows],
        ))
        return cutoff if row is None else min(cutoff, int(row[0]) + 1)

    def _delete_before(self, cutoff: int, *, hold_pins: bool) -> int | None:
        """One delete transaction; None if a check pinned a trace it would prune meanwhile."""
        if hold_pins:
            with self._pins.held() as pinned:
                return self._delete(cutoff, pinned, None)
        return self._delete(cutoff, self._pins.snapshot(), self._pins)

    def _delete(self, cutoff: int, pinned: frozenset[bytes], pins: PinSet | None) -> int | None:
        connection = self._connection
        spared = list(pinned)
        connection.execute("BEGIN")
        try:
            row = only_row(connection.execute(
                "DELETE FROM spans WHERE arrival_ns < ? AND NOT list_contains(?::BLOB[], trace_id)",
                [cutoff, spared],
            ))
            deleted = int(row[0]) if row else 0
            connection.execute(
                "DELETE FROM span_links WHERE arrival_ns < ? AND NOT list_contains(?::BLOB[], trace_id)",
                [cutoff, spared],
            )
            if pins is None:
                self._commit(deleted)
                return deleted
            # Pinning waits while this commits, so no check starts reading a trace that is
            # about to go; one pinned since the delete began may have spans in it: start over.
            with pins.held() as now_pinned:
                if self._has_spans_before(now_pinned - pinned, cutoff):
                    connection.execute("ROLLBACK")
                    return None
                self._commit(deleted)
            return deleted
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                connection.execute("ROLLBACK")
            raise

    def _commit(self, deleted: int) -> None:
        """Commit a delete, and size the next step so that its commit takes about
        `_STEP_COMMIT_S` (the cost per row grows with the index)."""
        started = time.perf_counter()
        self._connection.execute("COMMIT")
        elapsed = time.perf_counter() - started
        self._pass_commit_s = max(self._pass_commit_s, elapsed)
        self.longest_commit_s = max(self.longest_commit_s, elapsed)
        if deleted >= _MIN_STEP_ROWS:
            per_row = max(elapsed, 1e-4) / deleted
            self._step_rows = max(_MIN_STEP_ROWS, min(_MAX_STEP_ROWS, int(_STEP_COMMIT_S / per_row)))

    def _has_spans_before(self, trace_ids: frozenset[bytes], cutoff: int) -> bool:
        if not trace_ids:
            return False
        row = only_row(self._probe.execute(
            "SELECT count(*) FROM spans WHERE list_contains(?::BLOB[], trace_id) AND arrival_ns < ?",
            [list(trace_ids), cutoff],
        ))
        return bool(row and row[0])

    def _sweep_references(self) -> int:
        """Have the writer delete resources and scopes that no stored span refers to.

        Each service instance brings a resource of its own, so without this the resource
        table (and the writer's memory of which ids it stored) would keep growing with every
        new instance while retention removes the instances' spans.
        """
        if self._sweeper is None:
            return 0
        # Noted before the query starts, so a commit the query does not see is remembered.
        self._sweeper.note_references()
        resources = {r for (r,) in self._connection.execute(
            "SELECT r.resource_id FROM resources r WHERE NOT EXISTS "
            "(SELECT 1 FROM spans s WHERE s.resource_id = r.resource_id)").fetchall()}
        scopes = {s for (s,) in self._connection.execute(
            "SELECT c.scope_id FROM scopes c WHERE NOT EXISTS "
            "(SELECT 1 FROM spans s WHERE s.scope_id = c.scope_id)").fetchall()}
        self._sweeper.forget(resources, scopes)
        self.swept_resources += len(resources) + len(scopes)
        return len(resources) + len(scopes)
