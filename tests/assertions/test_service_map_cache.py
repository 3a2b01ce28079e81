"""The service map over a real DuckDB file: a request that runs out of time answers with what
it summarised and how many traces are pending, the rest are summarised in the background,
and the map it converges to is the one a single unhurried request draws."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.otlp_workload import build_request

from tracebaton.assertions import ServiceMap, ServiceMapper
from tracebaton.collector import SpanStore, StoreOptions, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SpanStore]:
    opened = open_store(f"duckdb:{tmp_path / 'store.duckdb'}", StoreOptions()).start()
    base = time.time_ns() - 600 * 10**9
    for seed in range(3):
        opened.ingest(build_request(seed=seed, base_ns=base + seed * 10**9).SerializeToString()).result()
    yield opened
    opened.shutdown()


def _window() -> tuple[int, int]:
    now = time.time_ns()
    return now - 3600 * 10**9, now


def test_a_hurried_map_leaves_traces_pending_and_the_background_completes_them(store: SpanStore) -> None:
    unhurried = ServiceMapper(store, time_budget_s=60).service_map(*_window())
    assert unhurried.pending == 0
    assert unhurried.traces > 70
    assert sum(link.calls for link in unhurried.links) > 100

    hurried = ServiceMapper(store, time_budget_s=0, keep_after_ns=0)
    try:
        first = hurried.service_map(*_window())
        assert first.pending >= unhurried.traces - 1, "no time: (almost) every trace is left pending"
        deadline = time.monotonic() + 60
        answer: ServiceMap = first
        while answer.pending and time.monotonic() < deadline:
            time.sleep(0.05)  # the page asks again the same way
            answer = hurried.service_map(*_window())
        assert answer.pending == 0, "the background summarised every pending trace"
        assert answer.links == unhurried.links
        assert answer.traces == unhurried.traces
    finally:
        hurried.close()


def test_new_traces_join_the_summaries_the_map_kept(store: SpanStore) -> None:
    mapper = ServiceMapper(store, time_budget_s=60, keep_after_ns=0)
    before = mapper.service_map(*_window())
    store.ingest(build_request(seed=99, base_ns=time.time_ns() - 60 * 10**9).SerializeToString()).result()
    after = mapper.service_map(*_window())
    assert after.traces > before.traces
    assert sum(link.calls for link in after.links) > sum(link.calls for link in before.links)
    assert after.links == ServiceMapper(store, time_budget_s=60).service_map(*_window()).links
