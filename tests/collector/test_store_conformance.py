"""The store conformance suite: what the flow engine, the API and the receivers rely on,
held against every store in `store_backends.BACKENDS` through the `SpanStore` protocol alone.

A test that needs a capability a store may lack is marked `needs(...)` and runs only where
the store declares it; nothing here names a backend.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from otlp_requests import new_trace_id, request, valid_request
from store_backends import StoreMaker, needs
from store_backends import every_backend as store_backend  # noqa: F401  (every store runs this module)

from tracebaton import OtlpDecodeError, StoreClosedError, StoreSaturatedError
from tracebaton.collector import (
    JSON,
    PROTOBUF,
    Operation,
    SpanKind,
    SpanStore,
    StatusCode,
    StoreCapabilities,
    TraceQuery,
    WaitCursor,
    encode_export_request_json,
)


def _commit(store: SpanStore, req: ExportTraceServiceRequest) -> None:
    assert store.ingest(req.SerializeToString(), PROTOBUF).result(30).accepted_spans >= 0


def _attr(key: str, **value: object) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))  # type: ignore[arg-type]


def test_the_store_is_a_span_store_and_declares_its_capabilities(store: SpanStore) -> None:
    assert isinstance(store, SpanStore)
    assert isinstance(store.capabilities, StoreCapabilities)


def test_wait_wakes_on_the_commit_of_a_watched_trace(store: SpanStore) -> None:
    watched, other = new_trace_id(), new_trace_id()
    after = store.cursor()
    woke: list[WaitCursor | None] = []
    waiting = threading.Thread(
        target=lambda: woke.append(store.wait([watched.hex()], time.monotonic() + 30, after)))
    waiting.start()
    _commit(store, valid_request(other))          # another trace: no wake-up
    waiting.join(0.2)
    assert waiting.is_alive()
    _commit(store, valid_request(watched))
    waiting.join(30)
    assert woke != [None], "the waiter timed out"
    assert isinstance(woke[0], WaitCursor)
    assert len(store.trace(watched.hex())) == 3    # woken means readable


def test_spans_committed_between_a_read_and_a_wait_are_not_missed(store: SpanStore) -> None:
    trace_id = new_trace_id()
    before_read = store.cursor()
    assert store.trace(trace_id.hex()) == []
    _commit(store, valid_request(trace_id))       # lands after the read, before the wait
    started = time.monotonic()
    assert store.wait([trace_id.hex()], time.monotonic() + 30, before_read) is not None
    assert time.monotonic() - started < 5


def test_reads_of_every_kind_interleaved_with_ingest_on_one_thread_all_answer(make_store: StoreMaker) -> None:
    """One thread reads, spans arrive, it reads again: no read leaves the next one unable to
    see what arrived in between (an API thread serves many requests in a row)."""
    store = make_store()
    reads = {
        "trace": lambda: store.trace(new_trace_id().hex()),
        "traces by attribute": lambda: store.traces(TraceQuery(attributes={"never.set": "x"})),
        "traces by service": lambda: store.traces(TraceQuery(service="nobody")),
        "services": store.services,
        "run": lambda: store.run("no-such-run"),
        "rows": lambda: make_store.backend.span_rows(store),
    }
    for before, read_before in reads.items():
        for after, read_after in reads.items():
            read_before()
            arrived = new_trace_id()
            _commit(store, valid_request(arrived))
            read_after()
            found = {s.trace_id for s in store.traces(TraceQuery(limit=1000))}
            assert arrived.hex() in found, f"{before}, then spans, then {after}"


def test_wait_returns_none_at_the_deadline(store: SpanStore) -> None:
    assert store.wait([new_trace_id().hex()], time.monotonic() + 0.05) is None


def test_wait_for_any_trace(store: SpanStore) -> None:
    after = store.cursor()
    _commit(store, valid_request(new_trace_id()))
    assert store.wait(None, time.monotonic() + 30, after) is not None


def test_shutdown_releases_waiters(make_store: StoreMaker) -> None:
    store = make_store("released")
    result: list[WaitCursor | int | None] = [0]
    waiting = threading.Thread(
        target=lambda: result.__setitem__(0, store.wait([new_trace_id().hex()], time.monotonic() + 60)))
    waiting.start()
    store.shutdown()
    waiting.join(10)
    assert not waiting.is_alive()
    assert result == [None]


def test_a_resent_span_reads_once_but_a_changed_one_is_kept(store: SpanStore) -> None:
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


def test_traces_filter_by_typed_attributes_name_status_and_service(store: SpanStore) -> None:
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


def test_roots_by_service_and_by_address(store: SpanStore) -> None:
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


def test_linked_finds_traces_that_link_into_a_trace(store: SpanStore) -> None:
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


@needs("retention_by_span_count")
def test_retention_prunes_oldest_first_and_spares_pinned_traces(make_store: StoreMaker) -> None:
    store = make_store("retained", retention_max_spans=6)
    backend = make_store.backend
    oldest, pinned, newest = new_trace_id(), new_trace_id(), new_trace_id()
    _commit(store, valid_request(oldest, 3))
    _commit(store, valid_request(pinned, 3))
    store.pin(pinned.hex())
    _commit(store, valid_request(newest, 3))
    _commit(store, valid_request(new_trace_id(), 3))
    assert backend.apply_retention(store) > 0
    assert store.trace(oldest.hex()) == []
    assert len(store.trace(pinned.hex())) == 3
    assert len(store.trace(newest.hex())) == 3
    store.unpin(pinned.hex())
    _commit(store, valid_request(new_trace_id(), 3))
    backend.apply_retention(store)
    assert store.trace(pinned.hex()) == []
    assert backend.span_rows(store) <= 6


@needs("retention_by_span_count")
def test_retention_by_age(make_store: StoreMaker) -> None:
    store = make_store("aged", retention_max_age_ns=1)
    trace_id = new_trace_id()
    _commit(store, valid_request(trace_id))
    assert make_store.backend.apply_retention(store) == 3
    assert store.trace(trace_id.hex()) == []


def test_committed_spans_survive_a_restart(make_store: StoreMaker) -> None:
    trace_id = new_trace_id()
    first = make_store("restarted")
    _commit(first, valid_request(trace_id, 4))
    first.shutdown()
    second = make_store("restarted")
    spans = second.trace(trace_id.hex())
    assert len(spans) == 4
    assert spans[0].resource["service.name"] == "checkout"


def test_bad_trace_ids_are_refused_with_the_value(store: SpanStore) -> None:
    with pytest.raises(ValueError, match="'xyz' is not 32 hex digits"):
        store.trace("xyz")




# lifecycle ------------------------------------------------------------------------------


def test_start_and_shutdown_are_idempotent_and_a_shut_store_refuses_work(make_store: StoreMaker) -> None:
    store = make_store("lifecycle")
    assert store.start() is store
    _commit(store, valid_request(new_trace_id()))
    assert store.force_flush(timeout_millis=30_000) is True
    store.shutdown()
    store.shutdown()
    with pytest.raises(StoreClosedError):
        store.ingest(valid_request(new_trace_id()).SerializeToString(), PROTOBUF)
    with pytest.raises(StoreClosedError):
        store.trace(new_trace_id().hex())
    assert store.wait(None, time.monotonic() + 5) is None


def test_ingest_before_start_is_acknowledged_once_the_store_runs(make_store: StoreMaker) -> None:
    store = make_store("late", start=False)
    trace_id = new_trace_id()
    future = store.ingest(valid_request(trace_id, 2).SerializeToString(), PROTOBUF)
    store.start()
    assert future.result(30).accepted_spans == 2
    assert len(store.trace(trace_id.hex())) == 2


def test_force_flush_waits_for_everything_ingested(store: SpanStore) -> None:
    trace_ids = [new_trace_id() for _ in range(20)]
    futures = [store.ingest(valid_request(t).SerializeToString(), PROTOBUF) for t in trace_ids]
    assert store.force_flush(30_000)
    assert all(f.done() for f in futures)
    assert all(len(store.trace(t.hex())) == 3 for t in trace_ids)


# ingest -----------------------------------------------------------------------------------


def test_otlp_json_and_protobuf_bodies_read_back_alike(store: SpanStore) -> None:
    as_json, as_protobuf = new_trace_id(), new_trace_id()
    for trace_id, content_type in ((as_json, JSON), (as_protobuf, PROTOBUF)):
        req = request([(trace_id, os.urandom(8), b"")], service="cart", name="POST /items")
        req.resource_spans[0].scope_spans[0].spans[0].attributes.append(_attr("qty", int_value=3))
        body = encode_export_request_json(req) if content_type == JSON else req.SerializeToString()
        assert store.ingest(body, content_type).result(30).accepted_spans == 1
    (from_json,) = store.trace(as_json.hex())
    (from_protobuf,) = store.trace(as_protobuf.hex())
    assert from_json.attributes == from_protobuf.attributes
    assert (from_json.service, from_json.name, from_json.kind) == ("cart", "POST /items", SpanKind.SERVER)


@pytest.mark.parametrize(("body", "content_type", "named"), [
    (b"\xff\xfe not protobuf", PROTOBUF, "not an OTLP ExportTraceServiceRequest"),
    (b"{not json", JSON, "JSON"),
    (b"spans", "text/plain", "'text/plain' is not OTLP"),
])
def test_a_body_that_does_not_decode_is_refused_and_the_store_goes_on(
        store: SpanStore, body: bytes, content_type: str, named: str) -> None:
    with pytest.raises(OtlpDecodeError, match=named):
        store.ingest(body, content_type)
    trace_id = new_trace_id()
    _commit(store, valid_request(trace_id))
    assert len(store.trace(trace_id.hex())) == 3


def test_spans_with_invalid_ids_are_rejected_and_the_valid_ones_kept(store: SpanStore) -> None:
    trace_id = new_trace_id()
    req = request([(trace_id, os.urandom(8), b""), (b"\x01" * 5, os.urandom(8), b"")])
    result = store.ingest(req.SerializeToString(), PROTOBUF).result(30)
    assert (result.accepted_spans, result.rejected_spans) == (1, 1)
    assert "trace" in result.error_message
    assert len(store.trace(trace_id.hex())) == 1


def test_past_the_pending_bound_ingest_is_refused_with_a_retry_delay(make_store: StoreMaker) -> None:
    store = make_store("bounded", start=False, max_pending_spans=10)
    trace_id = new_trace_id()
    admitted = store.ingest(valid_request(trace_id, 10).SerializeToString(), PROTOBUF)
    with pytest.raises(StoreSaturatedError) as refused:
        store.ingest(valid_request(new_trace_id(), 1).SerializeToString(), PROTOBUF)
    assert refused.value.retry_after_s > 0
    store.start()
    assert admitted.result(30).accepted_spans == 10
    assert len(store.trace(trace_id.hex())) == 10


# every read sees a span the moment its ingest is acknowledged -----------------------------


def _ingest_for_every_read(store: SpanStore) -> tuple[str, str, tuple[int, int]]:
    """A span every read can find, and one it links to; returns their trace ids and a time
    window around the span's start."""
    producer_trace, trace_id = new_trace_id(), new_trace_id()
    producer_span = os.urandom(8)
    _commit(store, request([(producer_trace, producer_span, b"")], service="orders", name="publish"))
    req = request([(trace_id, os.urandom(8), b"")], service="stock-keeper", name="POST /reserve")
    span = req.resource_spans[0].scope_spans[0].spans[0]
    span.attributes.extend([_attr("order.id", string_value="Z-9"),
                            _attr("server.address", string_value="127.0.0.1"),
                            _attr("server.port", int_value=9123)])
    link = span.links.add()
    link.trace_id, link.span_id = producer_trace, producer_span
    start = span.start_time_unix_nano
    _commit(store, req)
    return trace_id.hex(), producer_trace.hex(), (start - 5_000_000, start + 5_000_000)


def _assert_every_read_sees(store: SpanStore, hex_id: str, producer: str, window: tuple[int, int]) -> None:
    assert [s.trace_id for s in store.trace(hex_id)] == [hex_id]
    summaries = store.traces(TraceQuery(service="stock-keeper"))
    assert [(t.trace_id, t.span_count) for t in summaries] == [(hex_id, 1)]
    assert hex_id in {t.trace_id for t in store.traces(TraceQuery(attributes={"order.id": "Z-9"}))}
    assert hex_id in {t.trace_id for t in store.traces(TraceQuery(name="POST /res*"))}
    assert [s.trace_id for s in store.roots("stock-keeper", *window)] == [hex_id]
    assert [s.trace_id for s in store.roots("127.0.0.1:9123", *window)] == [hex_id]
    assert store.linked(producer) == [hex_id]
    assert "stock-keeper" in store.services()
    assert store.operations("stock-keeper") == [Operation("POST /reserve", SpanKind.SERVER)]


def test_every_read_sees_an_acknowledged_span_at_once(store: SpanStore) -> None:
    # no flush, no wait: acknowledged means readable
    _assert_every_read_sees(store, *_ingest_for_every_read(store))


def test_every_read_sees_an_acknowledged_span_after_it_settled(make_store: StoreMaker) -> None:
    store = make_store()
    seen = _ingest_for_every_read(store)
    make_store.backend.settle(store)
    _assert_every_read_sees(store, *seen)


def test_every_read_sees_an_acknowledged_span_after_a_restart(make_store: StoreMaker) -> None:
    first = make_store("restarted")
    seen = _ingest_for_every_read(first)
    first.shutdown()
    _assert_every_read_sees(make_store("restarted"), *seen)


def test_a_span_resent_after_it_settled_reads_once(make_store: StoreMaker) -> None:
    """The first copy is where the store keeps spans for good, the re-sent one where it keeps
    them first (DuckDB: the file and the head); then both settled."""
    store = make_store()
    trace_id = new_trace_id()
    body = valid_request(trace_id, 4).SerializeToString()
    assert store.ingest(body, PROTOBUF).result(30).accepted_spans == 4
    make_store.backend.settle(store)
    assert store.ingest(body, PROTOBUF).result(30).accepted_spans == 4
    for _ in range(2):
        assert len(store.trace(trace_id.hex())) == 4
        assert [t.span_count for t in store.traces(TraceQuery(service="checkout"))] == [4]
        assert len(store.roots("checkout", 0, 2**63 - 1)) == 4  # every span a root, each once
        make_store.backend.settle(store)


def test_services_and_operations_are_sorted_and_distinct(store: SpanStore) -> None:
    for service, name, kind in (("zeta", "GET /a", 2), ("alpha", "GET /b", 2), ("alpha", "GET /b", 2),
                                ("alpha", "GET /a", 3), ("alpha", "GET /a", 2)):
        req = request([(new_trace_id(), os.urandom(8), b"")], service=service, name=name)
        req.resource_spans[0].scope_spans[0].spans[0].kind = kind
        _commit(store, req)
    services = store.services()
    assert services == sorted(set(services))
    assert {"alpha", "zeta"} <= set(services)
    assert store.operations("alpha") == [
        Operation("GET /a", SpanKind.SERVER), Operation("GET /a", SpanKind.CLIENT),
        Operation("GET /b", SpanKind.SERVER)]
    assert store.operations("nobody") == []


# waits --------------------------------------------------------------------------------------


def test_a_span_that_links_into_a_watched_trace_wakes_its_waiter(store: SpanStore) -> None:
    watched, consumer_trace = new_trace_id(), new_trace_id()
    producer_span = os.urandom(8)
    _commit(store, request([(watched, producer_span, b"")], service="orders"))
    after = store.cursor()
    consumer = request([(consumer_trace, os.urandom(8), b"")], service="email")
    link = consumer.resource_spans[0].scope_spans[0].spans[0].links.add()
    link.trace_id, link.span_id = watched, producer_span
    _commit(store, consumer)
    assert store.wait([watched.hex()], time.monotonic() + 30, after) is not None


def test_a_cursor_belongs_to_the_store_that_made_it(make_store: StoreMaker) -> None:
    one, other = make_store("one"), make_store("other")
    with pytest.raises(ValueError, match="another store"):
        other.wait(None, time.monotonic() + 1, one.cursor())


def test_a_returned_cursor_waits_for_what_comes_after_it(store: SpanStore) -> None:
    trace_id = new_trace_id()
    after = store.cursor()
    _commit(store, valid_request(trace_id))
    woke = store.wait([trace_id.hex()], time.monotonic() + 30, after)
    assert woke is not None
    assert store.wait([trace_id.hex()], time.monotonic() + 0.05, woke) is None  # nothing newer
    # a check waits from the cursor its last wake returned: the next span must wake it
    _commit(store, valid_request(trace_id))
    assert store.wait([trace_id.hex()], time.monotonic() + 30, woke) is not None


# bad ids --------------------------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    lambda s: s.trace("xyz"), lambda s: s.linked("xyz"), lambda s: s.pin("xyz"),
    lambda s: s.unpin("xyz"), lambda s: s.wait(["xyz"], time.monotonic() + 1),
])
def test_every_call_taking_a_trace_id_refuses_a_bad_one_by_value(store: SpanStore, call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="'xyz' is not 32 hex digits"):
        call(store)
