"""Retention's rules inside the store, each made to happen on purpose: a check pinning a
trace while a delete is under way, pins that keep the count above its limit, deletes in
steps, and the sweep of resources no span refers to any more.

test_retention.py shows the same under steady ingest through `tracebaton serve`.
"""

from __future__ import annotations

import os

import duckdb
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from otlp_requests import new_trace_id, valid_request
from store_backends import StoreMaker

from tracebaton.collector import PROTOBUF, DuckDBSpanStore
from tracebaton.collector._maintenance import Maintenance, PinSet


@pytest.fixture
def store(make_store: StoreMaker) -> DuckDBSpanStore:
    # No retention of its own: each test drives a Maintenance it made, pass by pass.
    opened = make_store()
    assert isinstance(opened, DuckDBSpanStore), "these tests look inside the DuckDB store"
    return opened


def _retention(store: DuckDBSpanStore, pins: PinSet, max_spans: int) -> Maintenance:
    return Maintenance(store._connection.cursor(), None, pins=pins, sweeper=store._writer,
                       retention_max_spans=max_spans, retention_max_age_ns=None)


def _commit(store: DuckDBSpanStore, request: ExportTraceServiceRequest) -> None:
    store.ingest(request.SerializeToString(), PROTOBUF).result(30)
    assert store.flush_to_file(), "the spans did not reach the file, where retention runs"


def test_a_trace_pinned_while_a_delete_runs_is_spared(store: DuckDBSpanStore) -> None:
    """The delete began before the pin (its snapshot of pins lacks the trace); it must not
    commit the trace's removal: it starts over, sparing it."""
    pins = PinSet()
    old = [new_trace_id() for _ in range(3)]
    for trace_id in old:
        _commit(store, valid_request(trace_id, 3))
    _commit(store, valid_request(new_trace_id(), 3))
    snapshot = pins.snapshot
    late = iter(old)

    def pinned_just_after_the_snapshot() -> frozenset[bytes]:
        taken = snapshot()
        trace_id = next(late, None)
        if trace_id is not None:
            pins.pin(trace_id)  # a check pins another old trace each time a delete begins
        return taken

    pins.snapshot = pinned_just_after_the_snapshot  # type: ignore[method-assign]
    retention = _retention(store, pins, max_spans=3)
    # Two deletes start over (old[0], then old[1] pinned meanwhile); the third holds pinning
    # off while it runs, so it commits, and takes only the trace nobody pinned.
    assert retention.prune() == 3
    assert [len(store.trace(t.hex())) for t in old] == [3, 3, 0]
    pins.unpin(old[0])
    assert retention.prune() == 3
    assert store.trace(old[0].hex()) == []


def test_pinned_traces_stay_past_the_limit_and_go_after_unpin(store: DuckDBSpanStore) -> None:
    pins = PinSet()
    retention = _retention(store, pins, max_spans=6)
    pinned = new_trace_id()
    _commit(store, valid_request(pinned, 3))
    pins.pin(pinned)
    for _ in range(5):
        _commit(store, valid_request(new_trace_id(), 3))
        retention.prune()
        # At most the limit plus the pinned trace; it stays whole while pinned.
        assert store.span_count() <= 6 + 3
        assert len(store.trace(pinned.hex())) == 3
    pins.unpin(pinned)
    retention.prune()
    assert store.trace(pinned.hex()) == []
    assert store.span_count() <= 6


def test_a_large_prune_goes_in_steps_oldest_first(store: DuckDBSpanStore) -> None:
    traces = [new_trace_id() for _ in range(12)]
    for trace_id in traces:  # twelve commits of 1,000 spans, oldest first
        _commit(store, valid_request(trace_id, 1000))
    retention = _retention(store, PinSet(), max_spans=2500)
    assert retention.prune() == 10_000
    assert store.span_count() == 2000  # whole commits: a partly kept one would exceed the limit
    assert [len(store.trace(t.hex())) for t in traces] == [0] * 10 + [1000, 1000]
    assert retention.longest_commit_s > 0


def _instance_request(trace_id: bytes, instance: str) -> ExportTraceServiceRequest:
    request = valid_request(trace_id, 2)
    attribute = request.resource_spans[0].resource.attributes.add()
    attribute.key, attribute.value.string_value = "service.instance.id", instance
    return request


def test_resources_of_pruned_spans_are_swept_and_come_back_when_used_again(make_store: StoreMaker) -> None:
    store = make_store("sweep")
    assert isinstance(store, DuckDBSpanStore)
    path = store.path
    retention = _retention(store, PinSet(), max_spans=2)
    for i in range(5):  # five service instances, one request each
        _commit(store, _instance_request(new_trace_id(), f"instance-{i}"))
    assert retention.prune() == 8
    # The writer forgets swept resources before its next commit: this one reuses the
    # first instance's resource, which must be stored again.
    again = new_trace_id()
    _commit(store, _instance_request(again, "instance-0"))
    assert store._writer.swept == 4  # instances 0 to 3; the scope is still in use
    (span, _) = store.trace(again.hex())
    assert span.resource["service.instance.id"] == "instance-0"
    store.shutdown()
    with duckdb.connect(path, read_only=True) as connection:
        instances = connection.execute("SELECT count(*) FROM resources").fetchone()
    assert instances == (2,), "instances 1 to 3 have no span left; 4 and 0 (stored again) have"


def test_pins_are_counted(store: DuckDBSpanStore) -> None:
    trace_id = os.urandom(16)
    pins = PinSet()
    pins.pin(trace_id)
    pins.pin(trace_id)
    pins.unpin(trace_id)
    assert pins.snapshot() == {trace_id}
    pins.unpin(trace_id)
    assert pins.snapshot() == frozenset()
