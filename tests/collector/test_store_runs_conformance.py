"""Recorded flow results in every store (part of the conformance suite): what the API lists
and the dashboard shows."""

from __future__ import annotations

import threading
import time

from store_backends import StoreMaker
from store_backends import every_backend as store_backend  # noqa: F401  (every store runs this module)

from tracebaton.collector import RunQuery, RunSummary, SpanStore, is_run_id


def _result(name: str, passed: bool, trace_id: str, **extra: object) -> dict[str, object]:
    return {
        "name": name,
        "passed": passed,
        "trace_id": trace_id,
        "waited_ms": 7,
        "first_divergence": None if passed else f"{name}: a -> b failed",
        "trace_ids": [trace_id],
        **extra,
    }


def test_a_recorded_run_reads_back_whole_with_its_test_and_session(store: SpanStore) -> None:
    assert isinstance(store, SpanStore)
    result = _result("checkout", False, "a" * 32, checks=[{"check": "hops", "passed": False}], big=2**60)
    run_id = store.record_run(result, test_id="tests/test_shop.py::test_pay", session_id="s1")
    assert is_run_id(run_id)
    assert not is_run_id("a" * 32), "a run id never looks like a trace id"
    record = store.run(run_id)
    assert record is not None
    assert record.result == result, "the JSON comes back as it was recorded (ints stay ints)"
    summary = record.summary
    assert (summary.name, summary.passed, summary.trace_id) == ("checkout", False, "a" * 32)
    assert (summary.test_id, summary.session_id) == ("tests/test_shop.py::test_pay", "s1")
    assert summary.first_divergence == "checkout: a -> b failed"
    assert summary.waited_ms == 7
    assert store.run("r" + "0" * 20) is None


def test_runs_list_failed_first_then_newest_and_filter(store: SpanStore) -> None:
    ids = {}
    for name, passed, test in [
        ("checkout", True, "t::a"),
        ("checkout", False, "t::b"),
        ("refund", True, "u::c"),
        ("refund", False, "u::d"),
    ]:
        ids[test] = store.record_run(
            _result(name, passed, test[-1] * 32),
            test_id=test,
            session_id="s1" if test.startswith("t") else "s2",
        )
    order = [r.test_id for r in store.runs(RunQuery())]
    assert order == ["u::d", "t::b", "u::c", "t::a"], "failed first, then newest first"
    assert [r.test_id for r in store.runs(RunQuery(passed=True))] == ["u::c", "t::a"]
    assert [r.test_id for r in store.runs(RunQuery(name="ref*"))] == ["u::d", "u::c"]
    assert [r.test_id for r in store.runs(RunQuery(test_id="t::*"))] == ["t::b", "t::a"]
    assert [r.test_id for r in store.runs(RunQuery(session_id="s2", passed=False))] == ["u::d"]
    assert [r.test_id for r in store.runs(RunQuery(trace_id="d" * 32))] == ["u::d"]
    assert store.runs(RunQuery(since_unix_nano=time.time_ns() + 10**9)) == []
    assert len(store.runs(RunQuery(limit=2))) == 2


def test_a_run_is_found_by_any_trace_its_flow_covered(store: SpanStore) -> None:
    run_id = store.record_run(
        {**_result("checkout", False, "a" * 32), "trace_ids": ["a" * 32, "b" * 32]},
        test_id=None,
        session_id=None,
    )
    assert [r.run_id for r in store.runs(RunQuery(trace_id="b" * 32))] == [run_id]


def test_listeners_hear_of_each_run_after_it_is_readable(store: SpanStore) -> None:
    heard: list[RunSummary] = []
    readable: list[bool] = []
    first_heard = threading.Event()

    def listener(summary: RunSummary) -> None:
        heard.append(summary)
        readable.append(store.run(summary.run_id) is not None)
        first_heard.set()

    unsubscribe = store.on_run_recorded(listener)
    recorded = threading.Thread(
        target=store.record_run,
        args=(_result("checkout", True, "c" * 32),),
        kwargs={"test_id": "t::x", "session_id": None},
    )
    recorded.start()
    recorded.join(30)
    assert first_heard.wait(30), "the listener heard of the run"
    assert [s.test_id for s in heard] == ["t::x"]
    assert readable == [True]
    unsubscribe()
    later = threading.Event()
    store.on_run_recorded(lambda summary: later.set())
    store.record_run(_result("checkout", True, "c" * 32))
    assert later.wait(30), "the run after it was announced"
    assert len(heard) == 1, "unsubscribed"


def test_a_run_reads_back_at_once_from_another_thread(store: SpanStore) -> None:
    # recorded behind the verdict, yet a reader (the dashboard, the API) never misses it
    run_ids = [store.record_run(_result("checkout", True, "c" * 32), test_id=f"t::{i}") for i in range(20)]
    found: list[object] = []
    reader = threading.Thread(target=lambda: found.extend(store.run(run_id) for run_id in run_ids))
    reader.start()
    reader.join(30)
    assert len(found) == 20
    assert None not in found, "every run read back"
    assert {r.run_id for r in store.runs(RunQuery(limit=100))} >= set(run_ids)


def test_a_broken_listener_does_not_fail_the_recording(store: SpanStore) -> None:
    def broken(summary: RunSummary) -> None:
        raise RuntimeError("a listener with a bug")

    store.on_run_recorded(broken)
    run_id = store.record_run(_result("checkout", True, "c" * 32))
    assert store.run(run_id) is not None


def test_runs_survive_a_restart(make_store: StoreMaker) -> None:
    first = make_store("kept")
    run_id = first.record_run(_result("checkout", False, "e" * 32), test_id="t::kept")
    first.shutdown()
    record = make_store("kept").run(run_id)
    assert record is not None
    assert record.summary.test_id == "t::kept"


def test_only_the_newest_runs_are_kept(make_store: StoreMaker) -> None:
    store = make_store("runs", max_runs=10)
    ids = [store.record_run({"name": f"flow-{i}", "passed": True, "trace_id": None, "waited_ms": 1})
           for i in range(25)]
    kept = {r.run_id for r in store.runs(RunQuery(limit=100))}
    assert kept == set(ids[-10:])


def test_an_unknown_or_malformed_run_id_reads_as_none(store: SpanStore) -> None:
    assert store.run("0" * 26) is None
    assert store.run("not a run id") is None
