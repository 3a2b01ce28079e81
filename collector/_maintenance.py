"""Background upkeep: checkpoints and retention, never on the acknowledgement path."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import duckdb

log = logging.getLogger("tracebaton.collector")


class Maintenance:
    """Checkpoints when the WAL grows or ingest goes quiet; prunes oldest spans first.

    A checkpoint compresses and rewrites the WAL's data into the file; DuckDB holds commits
    while it runs, so the writer's queue absorbs that pause instead of an exporter's request.
    """

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        wal_path: str | None,
        *,
        pinned: Callable[[], list[bytes]],
        retention_max_spans: int | None,
        retention_max_age_ns: int | None,
        wal_checkpoint_bytes: int = 128 * 1024 * 1024,
        interval_s: float = 0.5,
        retention_interval_s: float = 2.0,
    ) -> None:
        self._connection = connection
        self._wal_path = wal_path
        self._pinned = pinned
        self._max_spans = retention_max_spans
        self._max_age_ns = retention_max_age_ns
        self._wal_checkpoint_bytes = wal_checkpoint_bytes
        self._interval_s = interval_s
        self._retention_interval_s = retention_interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tracebaton-maintenance", daemon=True)
        self.checkpoints = 0
        self.pruned_spans = 0

    def start(self) -> None:
        self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()
        self._thread.join()

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
        self._connection.execute("CHECKPOINT")
        self.checkpoints += 1

    def prune(self) -> int:
        """Delete the oldest spans beyond the limits, sparing pinned traces. Returns rows deleted."""
        cutoff: int | None = None
        if self._max_age_ns:
            cutoff = time.time_ns() - self._max_age_ns
        if self._max_spans:
            row = self._connection.execute(
                "SELECT arrival_ns FROM spans ORDER BY arrival_ns DESC LIMIT 1 OFFSET ?",
                [self._max_spans],
            ).fetchone()
            if row is not None:
                cutoff = max(cutoff or 0, int(row[0]) + 1)
        if cutoff is None:
            return 0
        pinned = self._pinned()
        connection = self._connection
        connection.execute("BEGIN")
        try:
            row = connection.execute(
                "DELETE FROM spans WHERE arrival_ns < ? AND NOT list_contains(?::BLOB[], trace_id)",
                [cutoff, pinned],
            ).fetchone()
            connection.execute(
                "DELETE FROM span_links WHERE arrival_ns < ? AND NOT list_contains(?::BLOB[], trace_id)",
                [cutoff, pinned],
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        deleted = int(row[0]) if row else 0
        self.pruned_spans += deleted
        return deleted
