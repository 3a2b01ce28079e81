"""Reads answered from memory: the DuckDB store keeps flushed batches readable for a while
and asks the file only for traces whose spans may have left memory. Each test makes a
trace's spans sit where a read from memory alone would miss them."""

from __future__ import annotations

import os
import time

from otlp_requests import new_trace_id, request, valid_request
from store_backends import StoreMaker

from tracebaton.collector import PROTOBUF, DuckDBSpanStore
from tracebaton.collector._trace_filter import TraceIdFilter


def _ack(store: DuckDBSpanStore, *requests: object) -> None:
    for req in requests:
        store.ingest(req.SerializeToString(), PROTOBUF).result(30)  # type: ignore[attr-defined]


def _duckdb(make_store: StoreMaker, key: str = "store") -> DuckDBSpanStore:
    store = make_store(key)
    assert isinstance(store, DuckDBSpanStore), "these tests look inside the DuckDB store"
    return store


def _wait_until_the_file_s_ids_are_known(store: DuckDBSpanStore) -> None:
    deadline = time.monotonic() + 30
    while not store._writer.head.left_memory.ready:
        assert time.monotonic() < deadline, "the store never finished reading the file's trace ids"
        time.sleep(0.01)


def test_a_trace_begun_before_a_restart_reads_whole_after_it(make_store: StoreMaker) -> None:
    trace_id = new_trace_id()
    before = _duckdb(make_store, "restarted")
    _ack(before, valid_request(trace_id, 4))
    before.shutdown()
    after = _duckdb(make_store, "restarted")
    _wait_until_the_file_s_ids_are_known(after)
    _ack(after, valid_request(trace_id, 2))  # the rest of the trace, in memory only
    assert len(after.trace(trace_id.hex())) == 6


def test_a_link_from_before_a_restart_is_found_after_it(make_store: StoreMaker) -> None:
    producer_trace, consumer_trace = new_trace_id(), new_trace_id()
    producer_span = os.urandom(8)
    consumer = request([(consumer_trace, os.urandom(8), b"")], service="email")
    link = consumer.resource_spans[0].scope_spans[0].spans[0].links.add()
    link.trace_id, link.span_id = producer_trace, producer_span
    before = _duckdb(make_store, "restarted")
    _ack(before, consumer)
    before.shutdown()
    after = _duckdb(make_store, "restarted")
    _wait_until_the_file_s_ids_are_known(after)
    _ack(after, request([(producer_trace, producer_span, b"")], service="orders"))
    assert after.linked(producer_trace.hex()) == [consumer_trace.hex()]


def test_a_trace_pushed_out_of_memory_by_newer_ones_is_read_from_the_file(make_store: StoreMaker) -> None:
    store = _duckdb(make_store)
    early = new_trace_id()
    _ack(store, valid_request(early, 3))
    # More than memory keeps of flushed batches (65,536 spans), flushed as they come.
    for _ in range(70):
        _ack(store, valid_request(new_trace_id(), 1000))
        assert store.flush_to_file()
    head = store._writer.head
    assert not any(early in held.trace_ids for held in head.in_memory())
    assert head.holding(early) == (), "the trace's index entry left memory with its batch"
    assert head.left_memory.may_hold(early)
    _ack(store, valid_request(early, 2))  # the trace goes on, in memory again
    assert [held.spans.num_rows for held in head.holding(early)] == [2]
    assert len(store.trace(early.hex())) == 5


def test_a_flushed_trace_still_reads_whole_from_memory_and_file_alike(make_store: StoreMaker) -> None:
    store = _duckdb(make_store)
    trace_id = new_trace_id()
    _ack(store, valid_request(trace_id, 3))
    assert store.flush_to_file()
    _ack(store, valid_request(trace_id, 3))  # not yet flushed
    from_memory = store.trace(trace_id.hex())
    store._writer.head.left_memory.ready = False  # every read asks the file too
    assert store.trace(trace_id.hex()) == from_memory
    assert len(from_memory) == 6


def test_a_trace_read_again_and_again_while_it_grows_never_reads_stale(make_store: StoreMaker) -> None:
    # A check reads its trace on every round; what was decoded for one read is kept for
    # the next, and must never hide a batch, a re-send or a link that came in between.
    store = _duckdb(make_store)
    trace_id, other = new_trace_id(), new_trace_id()
    first = valid_request(trace_id, 2)
    _ack(store, first, valid_request(other, 1))
    assert len(store.trace(trace_id.hex())) == 2
    assert store.linked(trace_id.hex()) == []
    _ack(store, first)  # re-sent: read once
    assert len(store.trace(trace_id.hex())) == 2
    linking = request([(other, os.urandom(8), b"")], service="orders")
    link = linking.resource_spans[0].scope_spans[0].spans[0].links.add()
    link.trace_id, link.span_id = trace_id, os.urandom(8)
    _ack(store, valid_request(trace_id, 3), linking)
    assert len(store.trace(trace_id.hex())) == 5
    assert store.linked(trace_id.hex()) == [other.hex()]
    assert store.flush_to_file()
    spans = store.trace(trace_id.hex())
    assert len(spans) == 5
    assert {s.span_id for s in spans} == {s.span_id for s in store.trace(trace_id.hex())}


def test_decoded_spans_stay_within_their_bound() -> None:
    from tracebaton.collector._reads import DecodedSpans

    class Batch:
        def __init__(self, serial: int) -> None:
            self.serial = serial

    decoded = DecodedSpans(max_spans=100)
    entry = tuple((b"s", b"b", None) for _ in range(30))
    for serial in range(10):
        decoded.put(Batch(serial), b"t", entry)  # type: ignore[arg-type]
    kept = [serial for serial in range(10) if decoded.get(Batch(serial), b"t") is not None]  # type: ignore[arg-type]
    assert kept == [7, 8, 9], "the newest that fit in 100 spans"


def test_the_filter_never_says_no_to_an_id_it_was_given_as_it_grows() -> None:
    given = [os.urandom(16) for _ in range(300_000)]  # past several doublings of its first size
    never_given = [os.urandom(16) for _ in range(20_000)]
    ids = TraceIdFilter()
    ids.add(given)
    ids.ready = True
    assert all(ids.may_hold(key) for key in given)
    false_maybes = sum(ids.may_hold(key) for key in never_given) / len(never_given)
    assert false_maybes < 0.05, f"{false_maybes:.1%} of ids never given were a maybe"


def test_an_unready_filter_says_maybe_to_everything() -> None:
    ids = TraceIdFilter()
    assert ids.may_hold(os.urandom(16))
