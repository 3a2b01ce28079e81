"""Runs recorded behind the verdict: a store that refuses a write loses no run, and reads
wait for what was recorded before them."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from tracebaton import StoreClosedError
from tracebaton.collector import RunSummary
from tracebaton.collector._run_writer import QueuedRun, RunListeners, RunWriter, run_summary


def _queued(number: int) -> QueuedRun:
    result = {"name": f"flow-{number}", "passed": True, "trace_id": None, "trace_ids": ["a" * 32]}
    summary = run_summary(result, run_id=f"r{number:020x}", recorded_ns=number, test_id=None, session_id=None)
    return QueuedRun.of(summary, result)


class FlakyTable:
    """A table that refuses the first `refusals` writes, as a ClickHouse going away would."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.rows: list[str] = []
        self.attempts = 0

    def write(self, runs: Sequence[QueuedRun]) -> None:
        self.attempts += 1
        if self.attempts <= self.refusals:
            raise ConnectionError("the store went away")
        self.rows += [run.summary.run_id for run in runs]


def test_runs_refused_for_a_while_are_written_once_the_store_takes_them() -> None:
    table = FlakyTable(refusals=2)
    listeners = RunListeners()
    heard: list[RunSummary] = []
    listeners.subscribe(heard.append)
    writer = RunWriter(table.write, listeners)
    runs = [_queued(i) for i in range(5)]
    for run in runs:
        writer.submit(run)
    assert writer.flush(timeout_s=30), "written after the refusals"
    assert sorted(table.rows) == sorted(r.summary.run_id for r in runs), "each run once, none lost"
    assert table.attempts >= 3
    writer.shutdown()
    assert sorted(s.run_id for s in heard) == sorted(table.rows), "listeners hear of written runs only"


def test_flush_times_out_while_the_store_refuses_and_says_so() -> None:
    table = FlakyTable(refusals=10**6)
    writer = RunWriter(table.write, RunListeners())
    writer.submit(_queued(1))
    assert writer.flush(timeout_s=0.2) is False
    assert table.rows == []
    writer.shutdown(timeout_s=5)


def test_shutdown_writes_what_is_queued_then_refuses_more() -> None:
    table = FlakyTable(refusals=0)
    gate = threading.Event()

    def slow(runs: Sequence[QueuedRun]) -> None:
        gate.wait(30)
        table.write(runs)

    writer = RunWriter(slow, RunListeners())
    for i in range(3):
        writer.submit(_queued(i))
    gate.set()
    writer.shutdown()
    assert len(table.rows) == 3
    with pytest.raises(StoreClosedError, match="shut down"):
        writer.submit(_queued(9))


def test_runs_queued_together_share_one_write_and_a_read_does_not_wait_for_the_gathering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An hour of gathering: only a reader's flush can get these runs written within the test.
    monkeypatch.setattr("tracebaton.collector._run_writer.GATHER_S", 3600.0)
    writes: list[list[str]] = []
    writer = RunWriter(lambda runs: writes.append([r.summary.run_id for r in runs]), RunListeners())
    runs = [_queued(i) for i in range(5)]
    for run in runs:
        writer.submit(run)
    assert writer.flush(timeout_s=30), "a read of runs has them written at once"
    assert writes == [[r.summary.run_id for r in runs]], "one INSERT for the runs recorded together"
    writer.submit(_queued(7))
    writer.shutdown(timeout_s=30)
    assert writes[-1] == [_queued(7).summary.run_id], "shutdown writes what is queued without gathering"
