"""Under load the DuckDB store writes whole row groups: the rows past the last whole one
wait in the head, even when that cuts a request in two. Such a request reads once while
its first rows are in the file and the rest in memory, its link is found once, and a
kill -9 between the two writes loses nothing and writes nothing twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from otlp_requests import new_trace_id, request
from support.otlp_workload import build_request

from tracebaton.collector import PROTOBUF, DuckDBSpanStore, TraceQuery

pytestmark = pytest.mark.xdist_group("heavy")  # with the other heavy tests on one xdist worker

ROW_GROUP = 122_880  # DuckDB's rows a row group
WORKLOAD_REQUESTS = 239  # of 512 spans: 122,368, so the mailer spans after them cross the boundary
CROSSING_SPANS = 600
TOTAL = WORKLOAD_REQUESTS * 512 + CROSSING_SPANS


def _crossing_request(trace_id: bytes, linked_trace_id: bytes) -> bytes:
    """600 spans of one trace; the first (written with the first row group) links out."""
    req = request([(trace_id, os.urandom(8), b"") for _ in range(CROSSING_SPANS)], service="mailer")
    link = req.resource_spans[0].scope_spans[0].spans[0].links.add()
    link.trace_id, link.span_id = linked_trace_id, os.urandom(8)
    return req.SerializeToString()


def _ingest(store: DuckDBSpanStore, crossing: bytes) -> None:
    # One request (serialized messages concatenated are one message with every part), the
    # mailer's spans last, so they cross the row group's end. As two requests, a loaded
    # machine could let two passes of the flush clock come between them, and the second,
    # seeing nothing new, would write the first whole: then nothing is ever cut.
    bulk = b"".join(build_request(seed=seed).SerializeToString() for seed in range(WORKLOAD_REQUESTS))
    store.ingest(bulk + crossing, PROTOBUF).result(60)


def _wait_for_the_split(store: DuckDBSpanStore) -> None:
    """Until one row group is in the file and the request that crossed it still in the head:
    its first rows then count in both (`span_count` says so)."""
    deadline = time.monotonic() + 60
    while (count := store.span_count()) != ROW_GROUP + TOTAL:
        assert time.monotonic() < deadline, f"no whole row group was written: {count} spans counted"
        time.sleep(0.002)


def _assert_the_crossing_request_reads_once(store: DuckDBSpanStore, trace_id: bytes,
                                            linked_trace_id: bytes) -> None:
    spans = store.trace(trace_id.hex())
    assert len(spans) == CROSSING_SPANS
    assert len({s.span_id for s in spans}) == CROSSING_SPANS
    assert store.linked(linked_trace_id.hex()) == [trace_id.hex()]


def test_a_request_cut_by_a_row_group_reads_once_before_and_after_its_rest_is_written(
        tmp_path: Path) -> None:
    trace_id, linked_trace_id = new_trace_id(), new_trace_id()
    path = str(tmp_path / "spans.duckdb")
    with DuckDBSpanStore(path).start() as store:
        _ingest(store, _crossing_request(trace_id, linked_trace_id))
        _wait_for_the_split(store)
        _assert_the_crossing_request_reads_once(store, trace_id, linked_trace_id)
        assert store.flush_to_file()
        assert store.span_count() == TOTAL
        _assert_the_crossing_request_reads_once(store, trace_id, linked_trace_id)


_KILLED_BETWEEN_THE_TWO_WRITES = textwrap.dedent("""
    import os, signal, sys
    sys.path[:0] = sys.argv[3:]
    from test_row_group_flush import _ingest, _wait_for_the_split
    from tracebaton.collector import DuckDBSpanStore
    store = DuckDBSpanStore(sys.argv[1]).start()
    _ingest(store, bytes.fromhex(sys.argv[2]))
    _wait_for_the_split(store)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_kill_between_the_two_writes_of_a_cut_request_loses_and_rewrites_nothing(
        tmp_path: Path) -> None:
    trace_id, linked_trace_id = new_trace_id(), new_trace_id()
    path = str(tmp_path / "spans.duckdb")
    here = Path(__file__).parent
    child = subprocess.run(
        [sys.executable, "-c", _KILLED_BETWEEN_THE_TWO_WRITES, path,
         _crossing_request(trace_id, linked_trace_id).hex(), str(here), str(here.parent)],
        capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr
    with DuckDBSpanStore(path).start() as store:
        # The replay wrote what the file lacked, and only that: the file's own mark of how
        # far it has caught up with the log says which requests, and which rows of the cut one.
        assert store.span_count() == TOTAL
        _assert_the_crossing_request_reads_once(store, trace_id, linked_trace_id)
        summaries = store.traces(TraceQuery(limit=10_000))
        assert sum(s.span_count for s in summaries) == TOTAL
        workload = [s for s in summaries if s.trace_id != trace_id.hex()]
        doubled = [s.trace_id for s in workload[:50] if len(store.trace(s.trace_id)) != s.span_count]
        assert doubled == []
