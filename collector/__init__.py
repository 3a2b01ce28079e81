"""The collector: OTLP receivers and the span stores.

Other components use only what is exported here: the `SpanStore` protocol (lifecycle,
ingest, reads, waits) and its model, `open_store` that opens a store from its URL, and the
receivers, which take any `SpanStore`. `DuckDBSpanStore` is the embedded default.
"""

from __future__ import annotations

import inspect as _inspect
from typing import TYPE_CHECKING

import tracebaton as _tracebaton

from ._addresses import call_address, parse_call_target, served_address, served_at
from ._decode_pool import DecodePool
from ._grpc_receiver import GrpcReceiver
from ._http_receiver import otlp_http_app
from ._ids import trace_id_bytes
from ._listen import listen_socket
from ._model import (
    AttributeValue,
    IngestResult,
    Operation,
    RunQuery,
    RunRecord,
    RunSummary,
    SpanEvent,
    SpanKind,
    SpanLink,
    StatusCode,
    StoreCapabilities,
    StoredSpan,
    TraceQuery,
    TraceSummary,
    WaitCursor,
)
from ._open import StoreLocation, StoreOptions, duckdb_url, open_store, parse_store_url
from ._otlp_json_decode import decode_export_request_json
from ._otlp_json_encode import encode_export_request_json
from ._otlp_spans import export_request_from_spans
from ._protocol import JSON, PROTOBUF, SpanStore
from ._runs import is_run_id
from ._store import DuckDBSpanStore

if TYPE_CHECKING:
    from ._clickhouse_store import ClickHouseSpanStore

__all__ = [
    "JSON",
    "PROTOBUF",
    "AttributeValue",
    "ClickHouseSpanStore",
    "DecodePool",
    "DuckDBSpanStore",
    "GrpcReceiver",
    "IngestResult",
    "Operation",
    "RunQuery",
    "RunRecord",
    "RunSummary",
    "SpanEvent",
    "SpanKind",
    "SpanLink",
    "SpanStore",
    "StatusCode",
    "StoreCapabilities",
    "StoreLocation",
    "StoreOptions",
    "StoredSpan",
    "TraceQuery",
    "TraceSummary",
    "WaitCursor",
    "call_address",
    "decode_export_request_json",
    "duckdb_url",
    "encode_export_request_json",
    "export_request_from_spans",
    "is_run_id",
    "listen_socket",
    "open_store",
    "otlp_http_app",
    "parse_call_target",
    "parse_store_url",
    "served_address",
    "served_at",
    "trace_id_bytes",
]


def _report_here(name: str, value: object) -> None:
    """Classes and functions are reported where users meet them (reprs, pickles), not in a
    private module."""
    if isinstance(value, type) or (callable(value) and _inspect.isfunction(_inspect.unwrap(value))):
        value.__module__ = "tracebaton" if name in _tracebaton.__all__ else __name__


def __getattr__(name: str) -> object:
    # The ClickHouse store and its client library cost a quarter of a second to import:
    # loaded when first named, so that a DuckDB server, the plugin and the CLI start without.
    if name == "ClickHouseSpanStore":
        from ._clickhouse_store import ClickHouseSpanStore

        _report_here(name, ClickHouseSpanStore)
        globals()[name] = ClickHouseSpanStore
        return ClickHouseSpanStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


for _name in __all__:
    _report_here(_name, globals().get(_name))
