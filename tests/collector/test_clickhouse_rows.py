"""tracebaton writes spans as the Collector's clickhouse exporter does (an emulation of the Go
exporter, checked here against rows built by hand from its documented mapping — never
against tracebaton's own output), and rows the exporter wrote read the same as its own."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import clickhouse_connect
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue, KeyValueList
from store_backends import BACKENDS, StoreBackend, StoreMaker

from tracebaton import OtlpDecodeError
from tracebaton.collector import (
    JSON,
    PROTOBUF,
    ClickHouseSpanStore,
    DecodePool,
    Operation,
    SpanKind,
    SpanStore,
    StatusCode,
    TraceQuery,
    encode_export_request_json,
)
from tracebaton.collector._clickhouse_rows import arrow_rows, exporter_rows, row_batch
from tracebaton.collector._clickhouse_schema import exporter_ddl, own_ddl
from tracebaton.collector._clickhouse_store import parse_clickhouse_url

TRACE = bytes.fromhex("4bf92f3577b34da6a3ce929d0e0e4736")
ROOT = bytes.fromhex("00f067aa0ba902b7")
CHILD = bytes.fromhex("b7ad6b7169203331")
LINKED_TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
LINKED_SPAN = bytes.fromhex("b9c7c989f97918e1")
T0 = 1_763_700_000_123_456_789


@pytest.fixture
def store_backend() -> StoreBackend:
    return BACKENDS["chdb"]


def _kv(key: str, value: AnyValue) -> KeyValue:
    return KeyValue(key=key, value=value)


def _request() -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.extend([_kv("service.name", AnyValue(string_value="payment")),
                                   _kv("service.instance.id", AnyValue(int_value=7))])
    ss = rs.scope_spans.add()
    ss.scope.name, ss.scope.version = "opentelemetry.instrumentation.fastapi", "0.48b0"
    root = ss.spans.add()
    root.trace_id, root.span_id, root.parent_span_id = TRACE, ROOT, b""
    root.name, root.kind, root.trace_state = "POST /charge", 2, "tracebaton=1"
    root.start_time_unix_nano, root.end_time_unix_nano = T0, T0 + 2_500_000
    root.status.code, root.status.message = 2, "card declined"
    root.attributes.extend([
        _kv("http.response.status_code", AnyValue(int_value=402)),
        _kv("retry", AnyValue(bool_value=False)),
        _kv("ratio", AnyValue(double_value=2.0)),
        _kv("amount", AnyValue(double_value=12.5)),
        _kv("tiny", AnyValue(double_value=1e-7)),
        _kv("huge", AnyValue(double_value=1e21)),
        _kv("token", AnyValue(bytes_value=b"\x00\xffab")),
        _kv("http.request.header.x_request_id", AnyValue(array_value=ArrayValue(values=[
            AnyValue(string_value="req-1")]))),
        _kv("mixed", AnyValue(array_value=ArrayValue(values=[
            AnyValue(int_value=1), AnyValue(string_value="a"), AnyValue(bool_value=True),
            AnyValue(double_value=2.5), AnyValue()]))),
        _kv("nested", AnyValue(kvlist_value=KeyValueList(values=[
            _kv("b", AnyValue(int_value=1)), _kv("a", AnyValue(string_value="x<y&z"))]))),
        _kv("empty", AnyValue()),
    ])
    event = root.events.add()
    event.time_unix_nano, event.name = T0 + 1_000, "card.checked"
    event.attributes.append(_kv("attempt", AnyValue(int_value=1)))
    child = ss.spans.add()
    child.trace_id, child.span_id, child.parent_span_id = TRACE, CHILD, ROOT
    child.name, child.kind = "stripe.charge", 3
    child.start_time_unix_nano, child.end_time_unix_nano = T0 + 10, T0 + 2_000_010
    link = child.links.add()
    link.trace_id, link.span_id, link.trace_state = LINKED_TRACE, LINKED_SPAN, "k=v"
    link.attributes.append(_kv("messaging.batch", AnyValue(bool_value=True)))
    return req


# What the exporter's pushTraceData appends for _request(), worked out by hand from its mapping:
# hex ids or '', Kind().String(), Code().String(), AsString() values, Duration = end - start.
GOLDEN: list[dict[str, Any]] = [
    {
        "Timestamp": T0, "TraceId": TRACE.hex(), "SpanId": ROOT.hex(), "ParentSpanId": "",
        "TraceState": "tracebaton=1", "SpanName": "POST /charge", "SpanKind": "Server",
        "ServiceName": "payment",
        "ResourceAttributes": {"service.name": "payment", "service.instance.id": "7"},
        "ScopeName": "opentelemetry.instrumentation.fastapi", "ScopeVersion": "0.48b0",
        "SpanAttributes": {
            "http.response.status_code": "402", "retry": "false", "ratio": "2", "amount": "12.5",
            "tiny": "1e-7", "huge": "1e+21", "token": "AP9hYg==",
            "http.request.header.x_request_id": '["req-1"]',
            "mixed": '[1,"a",true,2.5,null]',
            "nested": '{"a":"x\\u003cy\\u0026z","b":1}',
            "empty": "",
        },
        "Duration": 2_500_000, "StatusCode": "Error", "StatusMessage": "card declined",
        "Events.Timestamp": [T0 + 1_000], "Events.Name": ["card.checked"],
        "Events.Attributes": [{"attempt": "1"}],
        "Links.TraceId": [], "Links.SpanId": [], "Links.TraceState": [], "Links.Attributes": [],
    },
    {
        "Timestamp": T0 + 10, "TraceId": TRACE.hex(), "SpanId": CHILD.hex(), "ParentSpanId": ROOT.hex(),
        "TraceState": "", "SpanName": "stripe.charge", "SpanKind": "Client", "ServiceName": "payment",
        "ResourceAttributes": {"service.name": "payment", "service.instance.id": "7"},
        "ScopeName": "opentelemetry.instrumentation.fastapi", "ScopeVersion": "0.48b0",
        "SpanAttributes": {}, "Duration": 2_000_000, "StatusCode": "Unset", "StatusMessage": "",
        "Events.Timestamp": [], "Events.Name": [], "Events.Attributes": [],
        "Links.TraceId": [LINKED_TRACE.hex()], "Links.SpanId": [LINKED_SPAN.hex()],
        "Links.TraceState": ["k=v"], "Links.Attributes": [{"messaging.batch": "true"}],
    },
]
_COLUMNS = list(GOLDEN[0])
_SELECT = ", ".join(
    "toUnixTimestamp64Nano(Timestamp)" if c == "Timestamp"
    else "arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`)" if c == "Events.Timestamp"
    else f"`{c}`" for c in _COLUMNS)


def _client(store: SpanStore) -> Any:
    assert isinstance(store, ClickHouseSpanStore)
    return clickhouse_connect.get_client(dsn=f"chdb://{store.location.chdb_path}")


def _stored_rows(store: SpanStore) -> list[dict[str, Any]]:
    assert isinstance(store, ClickHouseSpanStore)
    rows = _client(store).query(
        f"SELECT {_SELECT} FROM {store.tables.traces} WHERE TraceId = {{t:String}} ORDER BY Timestamp",
        parameters={"t": TRACE.hex()}).result_rows
    return [dict(zip(_COLUMNS, row, strict=True)) for row in rows]


def test_tracebatons_rows_are_the_exporters_rows(store: SpanStore) -> None:
    assert store.ingest(_request().SerializeToString(), PROTOBUF).result(30).accepted_spans == 2
    assert _stored_rows(store) == GOLDEN


def test_a_resent_request_is_two_rows_and_reads_once(store: SpanStore) -> None:
    for _ in range(2):
        store.ingest(_request().SerializeToString(), PROTOBUF).result(30)
    assert len(_stored_rows(store)) == 4                     # MergeTree keeps both copies
    assert [s.span_id for s in store.trace(TRACE.hex())] == [ROOT.hex(), CHILD.hex()]


def test_rows_built_in_a_decoding_worker_are_the_rows_built_here() -> None:
    request = _request()
    pool = DecodePool(1, exporter_rows(with_scope_columns=True)).start()
    try:
        here = row_batch(request.SerializeToString())
        for body, content_type in [(request.SerializeToString(), PROTOBUF),
                                   (encode_export_request_json(request), JSON)]:
            there = pool.decode(body, content_type)
            assert there.rows.equals(here.rows)
            assert (there.trace_ids, there.ingest_result()) == (here.trace_ids, here.ingest_result())
        with pytest.raises(OtlpDecodeError, match="not an OTLP ExportTraceServiceRequest in protobuf"):
            pool.decode(b"\xff\xff\xff garbage", PROTOBUF)
        assert pool.decode(request.SerializeToString(), PROTOBUF).rows.equals(here.rows)  # still serving
    finally:
        pool.shutdown()


def test_a_store_decoding_in_workers_writes_the_exporters_rows(make_store: StoreMaker) -> None:
    store = make_store(decode_workers=1)
    assert isinstance(store, ClickHouseSpanStore)
    pool = store._decode_pool
    assert pool is not None
    pool.decode(b"", PROTOBUF)  # queued behind the worker's start: once answered, the worker is warm
    assert pool.warm
    assert store.ingest(_request().SerializeToString(), PROTOBUF).result(30).accepted_spans == 2
    with pytest.raises(OtlpDecodeError):
        store.ingest(b"\xff\xff\xff garbage", PROTOBUF)
    assert _stored_rows(store) == GOLDEN
    assert [s.span_id for s in store.trace(TRACE.hex())] == [ROOT.hex(), CHILD.hex()]


def _insert_as_the_exporter_does(store: SpanStore, rows: list[dict[str, Any]]) -> None:
    assert isinstance(store, ClickHouseSpanStore)
    _client(store).insert(store.tables.traces_table, [[r[c] for c in _COLUMNS] for r in rows],
                          column_names=_COLUMNS, database=store.tables.database)


def test_rows_the_exporter_wrote_read_as_tracebatons_own(store: SpanStore) -> None:
    store.ingest(_request().SerializeToString(), PROTOBUF).result(30)
    ours = store.trace(TRACE.hex())
    other = "5bf92f3577b34da6a3ce929d0e0e4736"
    _insert_as_the_exporter_does(store, [{**r, "TraceId": other} for r in GOLDEN])
    theirs = store.trace(other)

    def comparable(spans: list[Any]) -> list[Any]:
        return [dataclasses.replace(s, trace_id="", arrival_unix_nano=0) for s in spans]

    assert comparable(theirs) == comparable(ours)
    root = ours[0]
    assert (root.kind, root.status_code, root.parent_span_id, root.flags) == (
        SpanKind.SERVER, StatusCode.ERROR, None, 0)
    assert root.attributes["http.request.header.x_request_id"] == ["req-1"]
    assert root.attributes["mixed"] == '[1,"a",true,2.5,null]'    # only captured headers are arrays
    assert ours[1].links[0].trace_id == LINKED_TRACE.hex()
    assert store.linked(LINKED_TRACE.hex()) == [TRACE.hex(), other]


def test_the_old_exporters_spellings_read_the_same(store: SpanStore) -> None:
    old = "6bf92f3577b34da6a3ce929d0e0e4736"
    _insert_as_the_exporter_does(store, [
        {**GOLDEN[0], "TraceId": old, "SpanKind": "SPAN_KIND_SERVER", "StatusCode": "STATUS_CODE_ERROR"},
        {**GOLDEN[1], "TraceId": old, "SpanKind": "SPAN_KIND_CLIENT", "StatusCode": "STATUS_CODE_UNSET"},
    ])
    root, child = store.trace(old)
    assert (root.kind, root.status_code) == (SpanKind.SERVER, StatusCode.ERROR)
    assert (child.kind, child.status_code) == (SpanKind.CLIENT, StatusCode.UNSET)
    (summary,) = [t for t in store.traces(TraceQuery(status=StatusCode.ERROR)) if t.trace_id == old]
    assert summary.error_count == 1


def test_a_trace_missing_from_the_lookup_table_is_still_read(store: SpanStore) -> None:
    # the 1970 pitfall: without its _trace_id_ts row the bounds come out at the epoch
    assert isinstance(store, ClickHouseSpanStore)
    store.ingest(_request().SerializeToString(), PROTOBUF).result(30)
    _client(store).command(f"TRUNCATE TABLE {store.tables.trace_id_ts}")
    assert len(store.trace(TRACE.hex())) == 2


def test_a_key_sent_twice_in_a_span_is_one_entry_with_its_last_value(store: SpanStore) -> None:
    # the exporter's AttributesToMap: a map keeps a key once, the last value written wins
    req = _request()
    root = req.resource_spans[0].scope_spans[0].spans[0]
    root.attributes.append(_kv("retry", AnyValue(bool_value=True)))
    store.ingest(req.SerializeToString(), PROTOBUF).result(30)
    assert isinstance(store, ClickHouseSpanStore)
    ((keys, values),) = _client(store).query(
        f"SELECT mapKeys(SpanAttributes), mapValues(SpanAttributes) FROM {store.tables.traces} "
        "WHERE SpanId = {s:String}", parameters={"s": ROOT.hex()}).result_rows
    assert keys == list(GOLDEN[0]["SpanAttributes"])          # once, where it first came
    assert values[keys.index("retry")] == "true"


def test_spans_left_out_for_their_ids_leave_the_other_rows_whole(store: SpanStore) -> None:
    req = _request()
    spans = req.resource_spans[0].scope_spans[0].spans
    bad = spans.add()
    bad.CopyFrom(spans[0])
    bad.span_id = bytes(8)                                    # all zeros: W3C Trace Context forbids it
    spans.insert(0, bad)
    del spans[-1]
    result = store.ingest(req.SerializeToString(), PROTOBUF).result(30)
    assert (result.accepted_spans, result.rejected_spans) == (2, 1)
    assert _stored_rows(store) == GOLDEN


def test_the_same_request_makes_the_same_rows_with_its_values_already_seen() -> None:
    body = _request().SerializeToString()
    assert row_batch(body).rows.equals(row_batch(body).rows)


def test_a_table_without_scope_columns_gets_the_scope_as_attributes() -> None:
    # exporters before ScopeName/ScopeVersion wrote the scope into SpanAttributes
    rows = arrow_rows([row_batch(_request().SerializeToString(), with_scope_columns=False)],
                      with_scope_columns=False)
    assert "ScopeName" not in rows.column_names
    attributes = [dict(m) for m in rows.column("SpanAttributes").to_pylist()]
    assert attributes[1] == {"otel.scope.name": "opentelemetry.instrumentation.fastapi",
                             "otel.scope.version": "0.48b0"}
    assert attributes[0] == {**GOLDEN[0]["SpanAttributes"], **attributes[1]}


def test_a_pinned_trace_outlives_its_rows_in_a_traces_table_with_a_ttl(make_store: StoreMaker) -> None:
    # the exporter's `ttl` option; the rows going is what TTL does to a whole part
    location = parse_clickhouse_url(make_store.url("ttl"))
    client = clickhouse_connect.get_client(dsn=f"chdb://{location.chdb_path}")
    ddl = exporter_ddl(location.tables)
    ddl[1] = ddl[1].replace("\nSETTINGS", "\nTTL toDateTime(Timestamp) + toIntervalDay(3650)\nSETTINGS")
    for statement in ddl:
        client.command(statement)
    store = make_store("ttl")
    store.ingest(_request().SerializeToString(), PROTOBUF).result(30)
    store.pin(TRACE.hex())
    client.command(f"TRUNCATE TABLE {location.tables.traces}")
    assert [s.span_id for s in store.trace(TRACE.hex())] == [ROOT.hex(), CHILD.hex()]
    store.unpin(TRACE.hex())
    assert store.trace(TRACE.hex()) == []


@pytest.mark.parametrize("refill", [False, True], ids=["first-start", "after-a-failed-start"])
def test_operations_the_exporter_wrote_before_tracebaton_came_are_listed(make_store: StoreMaker,
                                                                          refill: bool) -> None:
    # a Collector filled the tables first; tracebaton's operations table is made later
    location = parse_clickhouse_url(make_store.url("before"))
    client = clickhouse_connect.get_client(dsn=f"chdb://{location.chdb_path}")
    for statement in exporter_ddl(location.tables):
        client.command(statement)
    client.insert(location.tables.traces_table,
                  [[r[c] for c in _COLUMNS] for r in [{**GOLDEN[0], "ServiceName": "ledger"}]],
                  column_names=_COLUMNS, database=location.tables.database)
    if refill:  # a first start made tracebaton's tables, then died before it filled them
        for statement in own_ddl(location.tables):
            client.command(statement)
    store = make_store("before")
    assert store.services() == ["ledger"]
    assert store.operations("ledger") == [Operation("POST /charge", SpanKind.SERVER)]
    store.ingest(_request().SerializeToString(), PROTOBUF).result(30)
    assert store.services() == ["ledger", "payment"]
    assert store.operations("payment") == [Operation("POST /charge", SpanKind.SERVER),
                                           Operation("stripe.charge", SpanKind.CLIENT)]
    store.shutdown()
    assert make_store("before").services() == ["ledger", "payment"]   # listed once, not backfilled again


def test_a_service_whose_spans_all_expired_is_not_listed(store: SpanStore) -> None:
    # TTL dropped every span of 'ledger' (last seen two days ago); the oldest span stored is
    # a day old: only the services that may still have spans are listed
    assert isinstance(store, ClickHouseSpanStore)
    day_ago = time.time_ns() - 86_400 * 10**9
    _insert_as_the_exporter_does(store, [{**GOLDEN[0], "Timestamp": day_ago}])
    _client(store).command(
        f"INSERT INTO {store.tables.operations} VALUES ('ledger', 'POST /post', 'Server', now() - 2 * 86400)")
    assert store.services() == ["payment"]
    assert store.operations("ledger") == []
