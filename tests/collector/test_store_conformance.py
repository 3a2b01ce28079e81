"""The store's read API on a real DuckDB file: what the flow engine and API rely on."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from otlp_requests import new_trace_id, request, valid_request

from tracebaton import ConfigurationError
from tracebaton.collector import DuckDBSpanStore, SpanKind, SpanStore, StatusCode, TraceQuery


@pytest.fixture
def store(tmp_path: Path) -> Iterator[DuckDBSpanStore]:
    with DuckDBSpanStore(str(tmp_path / "store.duckdb")) as opened:
        yield opened


def _commit(store: DuckDBSpanStore, req: ExportTraceServiceRequest) -> None:
    assert store.ingest(req).result(30).accepted_spans >= 0


def _attr(key: str, **value: object) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))  # type: ignore[arg-type]


def test_the_duckdb_store_is_a_span_store(store: DuckDBSpanStore) -> None:
    assert isinstance(store, SpanStore)


def test_wait_wakes_on_the_commit_of_a_watched_trace(store: DuckDBSpanStore) -> None:
    watched, other = new_trace_id(), new_trace_id()
    after = store.sequence
    woke: list[int | None] = []
    waiting = threading.Thread(
        target=lambda: woke.append(store.wait([watched.hex()], time.monotonic() + 30, after)))
    waiting.start()
    _commit(store, valid_request(other))          # another trace: no wake-up
    waiting.join(0.2)
    assert waiting.is_alive()
    _commit(store, valid_request(watched))
    waiting.join(30)
    assert woke != [None], "the waiter timed out"
    assert woke[0] is not None
    assert woke[0] > after
    assert len(store.trace(watched.hex())) == 3    # woken means readable


def test_spans_committed_between_a_read_and_a_wait_are_not_missed(store: DuckDBSpanStore) -> None:
    trace_id = new_trace_id()
    before_read = store.sequence
    assert store.trace(trace_id.hex()) == []
    _commit(store, valid_request(trace_id))       # lands after the read, before the wait
    started = time.monotonic()
    assert store.wait([trace_id.hex()], time.monotonic() + 30, before_read) is not None
    assert time.monotonic() - started < 5


def test_wait_returns_none_at_the_deadline(store: DuckDBSpanStore) -> None:
    assert store.wait([new_trace_id().hex()], time.monotonic() + 0.05) is None


def test_wait_for_any_trace(store: DuckDBSpanStore) -> None:
    after = store.sequence
    _commit(store, valid_request(new_trace_id()))
    assert store.wait(None, time.monotonic() + 30, after) is not None


def test_shutdown_releases_waiters(tmp_path: Path) -> None:
    store = DuckDBSpanStore(str(tmp_path / "s.duckdb")).start()
    result: list[int | None] = [0]
    waiting = threading.Thread(
        target=lambda: result.__setitem__(0, store.wait([new_trace_id().hex()], time.monotonic() + 60)))
    waiting.start()
    store.shutdown()
    waiting.join(10)
    assert not waiting.is_alive()


def test_a_resent_span_reads_once_but_a_changed_one_is_kept(store: DuckDBSpanStore) -> None:
    trace_id = new_trace_id()
    req = valid_request(trace_id, 2)
    _commit(store, req)
    _commit(store, req)                            # an exporter's retry
    assert len(store.trace(trace_id.hex())) == 2
    changed = ExportTraceServiceRequest()
    changed.CopyFrom(req)
    changed.resource_spans[0].scope_spans[0].spans[0].name = "renamed"
    del changed.resource_spans[0].scope_spans[0].spans[1]
    _commit(store, changed)                        # same span id, other content: both stay,
    spans = store.trace(trace_id.hex())            # the flow engine reports duplicate_span
    assert len(spans) == 3
    assert sorted(s.name for s in spans) == ["GET /cart", "GET /cart", "renamed"]
    summary = store.traces(TraceQuery(service="checkout", limit=10))
    assert {s.trace_id: s.span_count for s in summary}[trace_id.hex()] == 2


def test_traces_filter_by_typed_attributes_name_status_and_service(store: DuckDBSpanStore) -> None:
    paid, refused = new_trace_id(), new_trace_id()
    req = request([(paid, os.urandom(8), b"")], service="payment", name="POST /charge")
    span = req.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.extend([
        _attr("order.id", string_value="A-17"), _attr("http.response.status_code", int_value=200),
        _attr("retry", bool_value=False), _attr("amount", double_value=12.5)])
    other = request([(refused, os.urandom(8), b"")], service="payment", name="POST /charge")
    other_span = other.resource_spans[0].scope_spans[0].spans[0]
    other_span.attributes.extend([_attr("order.id", string_value="A-18"),
                                  _attr("http.response.status_code", int_value=402)])
    other_span.status.code = 2
    _commit(store, req)
    _commit(store, other)

    def ids(**query: object) -> set[str]:
        return {s.trace_id for s in store.traces(TraceQuery(**query))}  # type: ignore[arg-type]

    assert ids(attributes={"order.id": "A-17"}) == {paid.hex()}
    assert ids(attributes={"http.response.status_code": 402}) == {refused.hex()}
    assert ids(attributes={"http.response.status_code": "200"}) == {paid.hex()}   # text from a URL
    assert ids(attributes={"retry": "false"}) == {paid.hex()}
    assert ids(attributes={"amount": 12.5}) == {paid.hex()}
    assert ids(attributes={"retry": "*"}) == {paid.hex()}
    assert ids(attributes={"order.id": "A-1"}) == set()          # equality, not substring
    assert ids(attributes={"order.id": "A-17", "http.response.status_code": 402}) == set()
    assert ids(status=StatusCode.ERROR) == {refused.hex()}
    assert {paid.hex(), refused.hex()} <= ids(name="POST /ch*")
    assert ids(name="POST /ch*", service="cart") == set()
    assert ids(since_unix_nano=time.time_ns() + 10**12) == set()
    assert len(store.traces(TraceQuery(service="payment", limit=1))) == 1
    (summary,) = store.traces(TraceQuery(attributes={"order.id": "A-18"}))
    assert (summary.root_service, summary.root_name, summary.error_count) == ("payment", "POST /charge", 1)


def test_roots_by_service_and_by_address(store: DuckDBSpanStore) -> None:
    trace_id = new_trace_id()
    req = request([(trace_id, os.urandom(8), b"")], service="inventory", name="POST /reserve")
    span = req.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.extend([_attr("server.address", string_value="127.0.0.1"),
                            _attr("server.port", int_value=9001)])
    _commit(store, req)
    start = span.start_time_unix_nano
    window = (start - 5_000_000, start + 5_000_000)
    assert [s.span_id for s in store.roots("inventory", *window)] == [span.span_id.hex()]
    assert [s.span_id for s in store.roots("127.0.0.1:9001", *window)] == [span.span_id.hex()]
    assert store.roots("127.0.0.1:9002", *window) == []
    assert store.roots("inventory", start + 10**9, start + 2 * 10**9) == []


def test_linked_finds_traces_that_link_into_a_trace(store: DuckDBSpanStore) -> None:
    producer_trace, consumer_trace = new_trace_id(), new_trace_id()
    producer_span = os.urandom(8)
    _commit(store, request([(producer_trace, producer_span, b"")], service="orders"))
    consumer = request([(consumer_trace, os.urandom(8), b"")], service="email")
    link = consumer.resource_spans[0].scope_spans[0].spans[0].links.add()
    link.trace_id, link.span_id = producer_trace, producer_span
    _commit(store, consumer)
    assert store.linked(producer_trace.hex()) == [consumer_trace.hex()]
    assert store.linked(consumer_trace.hex()) == []
    (stored,) = store.trace(consumer_trace.hex())
    assert stored.links[0].trace_id == producer_trace.hex()
    assert stored.kind is SpanKind.SERVER


def test_retention_prunes_oldest_first_and_spares_pinned_traces(tmp_path: Path) -> None:
    store = DuckDBSpanStore(str(tmp_path / "r.duckdb"), retention_max_spans=6).start()
    try:
        oldest, pinned, newest = new_trace_id(), new_trace_id(), new_trace_id()
        _commit(store, valid_request(oldest, 3))
        _commit(store, valid_request(pinned, 3))
        store.pin(pinned.hex())
        _commit(store, valid_request(newest, 3))
        _commit(store, valid_request(new_trace_id(), 3))
        assert store.prune() > 0
        assert store.trace(oldest.hex()) == []
        assert len(store.trace(pinned.hex())) == 3
        assert len(store.trace(newest.hex())) == 3
        store.unpin(pinned.hex())
        _commit(store, valid_request(new_trace_id(), 3))
        store.prune()
        assert store.trace(pinned.hex()) == []
        assert store.span_count() <= 6
    finally:
        store.shutdown()


def test_retention_by_age(tmp_path: Path) -> None:
    store = DuckDBSpanStore(str(tmp_path / "a.duckdb"), retention_max_age_ns=1).start()
    try:
        trace_id = new_trace_id()
        _commit(store, valid_request(trace_id))
        assert store.prune() == 3
        assert store.trace(trace_id.hex()) == []
    finally:
        store.shutdown()


def test_committed_spans_survive_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "p.duckdb")
    trace_id = new_trace_id()
    with DuckDBSpanStore(path) as first:
        _commit(first, valid_request(trace_id, 4))
    with DuckDBSpanStore(path) as second:
        spans = second.trace(trace_id.hex())
        assert len(spans) == 4
        assert spans[0].resource["service.name"] == "checkout"


def test_bad_trace_ids_are_refused_with_the_value(store: DuckDBSpanStore) -> None:
    with pytest.raises(ValueError, match="'xyz' is not 32 hex digits"):
        store.trace("xyz")


def test_a_foreign_duckdb_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    with duckdb.connect(str(path)) as other:
        other.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(ConfigurationError, match=r"belongs to something else.*invoices"):
        DuckDBSpanStore(str(path))


def test_a_file_that_is_not_duckdb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are not spans\n" * 100)
    with pytest.raises(ConfigurationError, match=r"--db .*notes\.txt"):
        DuckDBSpanStore(str(path))


def test_a_store_from_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "v.duckdb")
    DuckDBSpanStore(path).shutdown()
    with duckdb.connect(path) as connection:
        connection.execute("UPDATE tracebaton_meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(ConfigurationError, match="schema version 999"):
        DuckDBSpanStore(path)
