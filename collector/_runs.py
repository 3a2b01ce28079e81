"""Recorded flow results (DESIGN §3, §6): every checked flow lands in `flow_results`, so the
dashboard lists them and a failure message's link finds its verdict.

Written by the run writer's thread on its own cursor, behind the verdict (`_run_writer`): a
run is one small row; it needs no grouped commit and must never queue behind span ingest.
Listeners hear of it after its commit, so a dashboard open on the Flows page shows it at
once, without polling.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import duckdb
import orjson

from ._model import RunQuery, RunRecord, RunSummary
from ._run_writer import QueuedRun, RunListeners, RunWriter, run_summary

log = logging.getLogger("tracebaton.collector")

MAX_RUN_LIMIT = 1000
_SUMMARY_COLUMNS = (
    "run_id, name, trace_id, passed, test_id, session_id, recorded_ns, "
    "json_extract_string(result, '$.first_divergence'), "
    "TRY_CAST(json_extract(result, '$.waited_ms') AS BIGINT)"
)


def new_run_id(now_ns: int) -> str:
    """`r` + 12 hex digits of milliseconds + 8 random: sorts by time, never 32 hex digits, so
    `/flows/{id}` tells a run id from a trace id at a glance."""
    return f"r{now_ns // 1_000_000:012x}{os.urandom(4).hex()}"


def is_run_id(text: str) -> bool:
    return len(text) == 21 and text[0] == "r" and all(c in "0123456789abcdef" for c in text[1:])


def _summary(row: Sequence[Any]) -> RunSummary:
    return RunSummary(
        run_id=row[0],
        name=row[1] or "",
        trace_id=row[2],
        passed=bool(row[3]),
        test_id=row[4],
        session_id=row[5],
        recorded_unix_nano=int(row[6]),
        first_divergence=row[7],
        waited_ms=None if row[8] is None else int(row[8]),
    )


class RunLog:
    """Runs in the store's `flow_results` table, written behind the check (`RunWriter`)."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, *, max_runs: int = 100_000) -> None:
        self._connection = connection
        """The run writer's own cursor (used on its thread only)."""
        self._listeners = RunListeners()
        self._writer = RunWriter(self._write, self._listeners)
        # Runs outlive their spans' retention otherwise: the newest `max_runs` are kept,
        # trimmed now and then rather than on every record.
        self._max_runs = max_runs
        self._trim_every = max(1, min(1000, max_runs // 10))
        self._recorded = 0

    def record(self, result: Mapping[str, Any], *, test_id: str | None,
               session_id: str | None) -> RunSummary:
        now = time.time_ns()
        summary = run_summary(result, run_id=new_run_id(now), recorded_ns=now, test_id=test_id,
                              session_id=session_id)
        self._writer.submit(QueuedRun.of(summary, result))
        return summary

    def _write(self, runs: Sequence[QueuedRun]) -> None:
        connection = self._connection
        connection.executemany(
            "INSERT INTO flow_results VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [[r.summary.run_id, r.summary.name, r.summary.trace_id, r.summary.passed, r.summary.test_id,
              r.summary.session_id, r.summary.recorded_unix_nano, r.result_json] for r in runs],
        )
        before, self._recorded = self._recorded, self._recorded + len(runs)
        if before // self._trim_every != self._recorded // self._trim_every:
            self._trim(connection)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait for the runs recorded so far to be written (reads of runs call it first)."""
        return self._writer.flush(timeout_s)

    def shutdown(self) -> None:
        """Write the queued runs (before the store closes its connection)."""
        self._writer.shutdown()

    def _trim(self, connection: duckdb.DuckDBPyConnection) -> None:
        # on the run writer's thread; a trim that fails is retried at the next one and never
        # keeps a run from being written
        try:
            connection.execute(
                "DELETE FROM flow_results WHERE run_id NOT IN "
                "(SELECT run_id FROM flow_results ORDER BY recorded_ns DESC, run_id DESC LIMIT ?)",
                [self._max_runs],
            )
        except duckdb.Error:
            log.warning("trimming recorded runs failed; retried later", exc_info=True)

    def runs(self, connection: duckdb.DuckDBPyConnection, query: RunQuery) -> list[RunSummary]:
        self.flush()
        where: list[str] = []
        params: list[Any] = []
        if query.passed is not None:
            where.append("passed = ?")
            params.append(query.passed)
        if query.name is not None:
            where.append("name GLOB ?")
            params.append(query.name)
        if query.test_id is not None:
            where.append("test_id GLOB ?")
            params.append(query.test_id)
        if query.session_id is not None:
            where.append("session_id = ?")
            params.append(query.session_id)
        if query.trace_id is not None:
            # The flow's own trace, or one it covered (linked, stitched).
            where.append(
                "(trace_id = ? OR list_contains("
                "CAST(json_extract_string(result, '$.trace_ids[*]') AS VARCHAR[]), ?))"
            )
            params += [query.trace_id, query.trace_id]
        if query.since_unix_nano is not None:
            where.append("recorded_ns >= ?")
            params.append(query.since_unix_nano)
        limit = max(1, min(int(query.limit), MAX_RUN_LIMIT))
        rows = connection.execute(
            f"SELECT {_SUMMARY_COLUMNS} FROM flow_results WHERE {' AND '.join(where) or 'TRUE'} "
            "ORDER BY passed ASC, recorded_ns DESC, run_id DESC LIMIT ?",
            [*params, limit],
        ).fetchall()
        return [_summary(row) for row in rows]

    def run(self, connection: duckdb.DuckDBPyConnection, run_id: str) -> RunRecord | None:
        self.flush()
        # Fetched to the end: a result left open on this thread's connection would make its
        # next read refuse to register the in-memory head.
        rows = connection.execute(
            f"SELECT {_SUMMARY_COLUMNS}, result FROM flow_results WHERE run_id = ?", [run_id]
        ).fetchall()
        if not rows:
            return None
        row = rows[0]
        result = orjson.loads(row[9]) if row[9] else {}
        return RunRecord(summary=_summary(row), result=result if isinstance(result, dict) else {})

    def subscribe(self, listener: Callable[[RunSummary], None]) -> Callable[[], None]:
        return self._listeners.subscribe(listener)
