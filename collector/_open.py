"""Stores by URL (DESIGN §3a): the one place that turns `--store` / `TRACEBATON_STORE` (and
`--db`, its short form) into a `SpanStore`. `serve`, the embedded collector and the pytest
plugin open stores here and use them through the protocol only."""

from __future__ import annotations

import dataclasses

from tracebaton import ConfigurationError

from ._protocol import SpanStore

DUCKDB_SCHEME = "duckdb:"
MEMORY = ":memory:"
_CLICKHOUSE_SCHEMES = ("clickhouse://", "clickhouses://", "chdb:")
_FORMS = ("duckdb:PATH (duckdb:./tracebaton.duckdb, duckdb::memory:), "
          "clickhouse://[user@]host:8123/database, clickhouses://…, chdb:PATH")


@dataclasses.dataclass(frozen=True, slots=True)
class StoreOptions:
    """What a store is opened with besides its URL; a backend ignores what it has no use for
    and refuses what it cannot honour (ClickHouse: retention is its TTL)."""

    max_pending_spans: int = 256 * 1024
    """Spans accepted but not yet committed; past this, ingest refuses with a retry delay."""
    retention_max_spans: int | None = None
    retention_max_age_ns: int | None = None
    decode_workers: int = 0
    """Processes that decode OTLP off the writer's GIL; 0 decodes on the calling thread."""
    max_runs: int = 100_000
    """Recorded flow results kept, newest first."""
    create_schema: bool = False
    """ClickHouse: create the exporter's tables (its DDL) where they are missing (`--create-schema`)."""
    password: str | None = dataclasses.field(default=None, repr=False)
    """ClickHouse: the user's password (from TRACEBATON_CLICKHOUSE_PASSWORD, never argv)."""


def duckdb_url(path: str) -> str:
    """The store URL for a DuckDB file (`--db FILE`, `:memory:`)."""
    return DUCKDB_SCHEME + path


@dataclasses.dataclass(frozen=True, slots=True)
class StoreLocation:
    """A parsed store URL."""

    backend: str
    """`duckdb`, `clickhouse` or `chdb`."""
    target: str
    """The DuckDB path, `:memory:`, or the ClickHouse URL as given."""


def parse_store_url(url: str) -> StoreLocation:
    """Read a store URL; ConfigurationError naming the forms when it is none of them."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"store URL {url!r} is empty; give one of {_FORMS}")
    if url.startswith(DUCKDB_SCHEME):
        path = url[len(DUCKDB_SCHEME):]
        if not path:
            raise ConfigurationError(
                f"store URL {url!r} names no file; give duckdb:PATH, or duckdb::memory: for memory")
        return StoreLocation("duckdb", path)
    if url.startswith(_CLICKHOUSE_SCHEMES):
        backend = "chdb" if url.startswith("chdb:") else "clickhouse"
        return StoreLocation(backend, url)
    raise ConfigurationError(
        f"store URL {url!r} has no known scheme; give one of {_FORMS} (or --db FILE for a DuckDB file)")


def open_store(url: str, options: StoreOptions | None = None) -> SpanStore:
    """The store a URL names, not yet started (call `start()`)."""
    location = parse_store_url(url)
    opts = options or StoreOptions()
    if location.backend == "duckdb":
        from ._store import DuckDBSpanStore

        return DuckDBSpanStore(
            location.target,
            max_pending_spans=opts.max_pending_spans,
            retention_max_spans=opts.retention_max_spans,
            retention_max_age_ns=opts.retention_max_age_ns,
            decode_workers=opts.decode_workers,
            max_runs=opts.max_runs,
        )
    from ._clickhouse_store import ClickHouseSpanStore, parse_clickhouse_url

    if opts.retention_max_spans is not None or opts.retention_max_age_ns is not None:
        raise ConfigurationError(
            f"store URL {url!r}: --retention-max-spans and --retention-max-age apply to a DuckDB store; "
            "a ClickHouse store's retention is its tables' TTL (the Collector exporter's `ttl` option): "
            "drop the retention options")
    return ClickHouseSpanStore(
        parse_clickhouse_url(url),
        password=opts.password,
        create_schema=opts.create_schema,
        max_pending_spans=opts.max_pending_spans,
        max_runs=opts.max_runs,
        decode_workers=opts.decode_workers,
    )
