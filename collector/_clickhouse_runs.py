"""Recorded flow results in `tracebaton_runs` (the ClickHouse store's `RunLog`).

Listeners hear of the runs this process records, after the insert. When several tracebaton
replicas share one ClickHouse, a replica's dashboard lists the others' runs by reading the
table (each page load and each live-list refresh); it is not told of them as they land.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from ._clickhouse_reads import glob_regex
from ._clickhouse_schema import Tables
from ._model import RunQuery, RunRecord, RunSummary
from ._runs import MAX_RUN_LIMIT, RunLog, is_run_id, new_run_id

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
    def __init__(self, tables: Tables, *, max_runs: int) -> None:
        self._tables = tables
        self._max_runs = max_runs
        # the DuckDB store's run log, for its listeners only: who hears of a run, and how a
        # broken listener is kept from failing the check that recorded it, is one rule
        self._listeners = RunLog(max_runs=max_runs)
        self._lock = threading.Lock()
        self._recorded = 0
        # a lightweight DELETE is a mutation: now and then, not per run (reads bound themselves)
        self._trim_every = max(50, min(1000, max_runs // 10))

    def _kept(self) -> str:
        """The newest `max_runs` runs: reads never see more, whatever trimming has not removed yet."""
        return (f"(SELECT * FROM {self._tables.runs} ORDER BY recorded_ns DESC, run_id DESC "
                f"LIMIT {int(self._max_runs)})")

    def record(self, client: Any, result: Mapping[str, Any], *, test_id: str | None,
               session_id: str | None) -> RunSummary:
        now = time.time_ns()
        run_id = new_run_id(now)
        trace_id = result.get("trace_id")
        waited = result.get("waited_ms")
        first = result.get("first_divergence")
        covered = result.get("trace_ids")
        summary = RunSummary(
            run_id=run_id,
            name=str(result.get("name") or ""),
            trace_id=trace_id if isinstance(trace_id, str) else None,
            passed=bool(result.get("passed")),
            test_id=test_id,
            session_id=session_id,
            recorded_unix_nano=now,
            first_divergence=first if isinstance(first, str) else None,
            waited_ms=waited if isinstance(waited, int) and not isinstance(waited, bool) else None,
        )
        client.insert(self._tables.runs_name, [[
            summary.run_id, summary.name, summary.trace_id, summary.passed, test_id, session_id, now,
            summary.first_divergence, summary.waited_ms,
            [t for t in covered if isinstance(t, str)] if isinstance(covered, list) else [],
            orjson.dumps(result, option=orjson.OPT_NON_STR_KEYS).decode(),
        ]], column_names=list(_COLUMNS), database=self._tables.database, settings={"async_insert": 0})
        self._listeners._announce(summary)
        with self._lock:
            self._recorded += 1
            trim = self._recorded % self._trim_every == 0
        if trim:
            self._trim(client)
        return summary

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
        rows = client.query(
            f"SELECT {_SUMMARY}, result FROM {self._kept()} WHERE run_id = {{rid:String}} LIMIT 1",
            parameters={"rid": run_id}).result_rows
        if not rows:
            return None
        result = orjson.loads(rows[0][9]) if rows[0][9] else {}
        return RunRecord(summary=_summary(rows[0]), result=result if isinstance(result, dict) else {})

    def subscribe(self, listener: Callable[[RunSummary], None]) -> Callable[[], None]:
        return self._listeners.subscribe(listener)
