"""Recorded flow results in `tracebaton_runs` (the ClickHouse store's `RunLog`).

Written behind the verdict by a run writer thread (`_run_writer`); listeners hear of the
runs this process records, after the insert. When several tracebaton
replicas share one ClickHouse, a replica's dashboard lists the others' runs by reading the
table (each page load and each live-list refresh); it is not told of them as they land.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from ._clickhouse_reads import glob_regex
from ._clickhouse_schema import Tables
from ._model import RunQuery, RunRecord, RunSummary
from ._run_writer import QueuedRun, RunListeners, RunWriter, run_summary
from ._runs import MAX_RUN_LIMIT, is_run_id, new_run_id

log = logging.getLogger("tracebaton.collector")

_SUMMARY = "run_id, name, trace_id, passed, test_id, session_id, recorded_ns, first_divergence, waited_ms"
_COLUMNS = ("run_id", "name", "trace_id", "passed", "test_id", "session_id", "recorded_ns",
            "first_divergence", "waited_ms", "trace_ids", "result")


def _summary(row: Sequence[Any]) -> RunSummary:
    return RunSummary(
        run_id=row[0], name=row[1] or "", trace_id=row[2], passed=bool(row[3]), test_id=row[4],
        session_id=row[5], recorded_unix_nano=int(row[6]), first_divergence=row[7],
        waited_ms=None if row[8] is None else int(row[8]),
    )


class ClickHouseRuns:
    def __init__(self, tables: Tables, client: Callable[[], Any], *, max_runs: int) -> None:
        self._tables = tables
        self._client = client
        """The calling thread's client (one per thread): the run writer's, when it writes."""
        self._max_runs = max_runs
        self._listeners = RunListeners()
        self._writer = RunWriter(self._write, self._listeners, name="tracebaton-clickhouse-runs")
        self._recorded = 0
        # a lightweight DELETE is a mutation: now and then, not per run (reads bound themselves)
        self._trim_every = max(50, min(1000, max_runs // 10))

    def _kept(self) -> str:
        """The newest `max_runs` runs: reads never see more, whatever trimming has not removed yet."""
        return (f"(SELECT * FROM {self._tables.runs} ORDER BY recorded_ns DESC, run_id DESC "
                f"LIMIT {int(self._max_runs)})")

    def record(self, result: Mapping[str, Any], *, test_id: str | None,
               session_id: str | None) -> RunSummary:
        now = time.time_ns()
        summary = run_summary(result, run_id=new_run_id(now), recorded_ns=now, test_id=test_id,
                              session_id=session_id)
        self._writer.submit(QueuedRun.of(summary, result))
        return summary

    def _write(self, runs: Sequence[QueuedRun]) -> None:
        client = self._client()
        client.insert(self._tables.runs_name, [[
            r.summary.run_id, r.summary.name, r.summary.trace_id, r.summary.passed, r.summary.test_id,
            r.summary.session_id, r.summary.recorded_unix_nano, r.summary.first_divergence,
            r.summary.waited_ms, list(r.trace_ids), r.result_json,
        ] for r in runs], column_names=list(_COLUMNS), database=self._tables.database,
            settings={"async_insert": 0})
        before, self._recorded = self._recorded, self._recorded + len(runs)
        if before // self._trim_every != self._recorded // self._trim_every:
            self._trim(client)

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait for the runs this process recorded so far to be inserted (reads call it first)."""
        return self._writer.flush(timeout_s)

    def shutdown(self) -> None:
        self._writer.shutdown()

    def _trim(self, client: Any) -> None:
        try:
            runs, kept = self._tables.runs, int(self._max_runs)
            client.command(
                f"DELETE FROM {runs} WHERE recorded_ns < (SELECT min(recorded_ns) FROM "
                f"(SELECT recorded_ns FROM {runs} ORDER BY recorded_ns DESC LIMIT {kept}))"
                f" AND (SELECT count() FROM {runs}) > {kept}")
        except Exception:  # reads bound themselves to the newest runs; the next trim retries
            log.warning("trimming old runs failed; the next record retries", exc_info=True)

    def runs(self, client: Any, query: RunQuery) -> list[RunSummary]:
        self.flush()
        where: list[str] = []
        params: dict[str, Any] = {}
        if query.passed is not None:
            where.append("passed = {passed:Bool}")
            params["passed"] = query.passed
        if query.name is not None:
            where.append("match(name, {name_re:String})")
            params["name_re"] = glob_regex(query.name)
        if query.test_id is not None:
            where.append("match(ifNull(test_id, ''), {test_re:String}) AND test_id IS NOT NULL")
            params["test_re"] = glob_regex(query.test_id)
        if query.session_id is not None:
            where.append("session_id = {session:String}")
            params["session"] = query.session_id
        if query.trace_id is not None:
            where.append("(trace_id = {tid:String} OR has(trace_ids, {tid:String}))")
            params["tid"] = query.trace_id
        if query.since_unix_nano is not None:
            where.append("recorded_ns >= {since:Int64}")
            params["since"] = int(query.since_unix_nano)
        params["limit"] = max(1, min(int(query.limit), MAX_RUN_LIMIT))
        rows = client.query(
            f"SELECT {_SUMMARY} FROM {self._kept()} WHERE {' AND '.join(where) or '1'} "
            "ORDER BY passed ASC, recorded_ns DESC, run_id DESC LIMIT {limit:UInt32}",
            parameters=params).result_rows
        return [_summary(row) for row in rows]

    def run(self, client: Any, run_id: str) -> RunRecord | None:
        if not is_run_id(run_id):
            return None
        self.flush()
        rows = client.query(
            f"SELECT {_SUMMARY}, result FROM {self._kept()} WHERE run_id = {{rid:String}} LIMIT 1",
            parameters={"rid": run_id}).result_rows
        if not rows:
            return None
        result = orjson.loads(rows[0][9]) if rows[0][9] else {}
        return RunRecord(summary=_summary(rows[0]), result=result if isinstance(result, dict) else {})

    def subscribe(self, listener: Callable[[RunSummary], None]) -> Callable[[], None]:
        return self._listeners.subscribe(listener)
