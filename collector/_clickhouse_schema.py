"""The ClickHouse store's schema (DESIGN §3b): the tables the OpenTelemetry Collector's
`clickhouse` exporter writes, which tracebaton reads and never alters, and the few tables of
its own, all prefixed `tracebaton_`.

The exporter's DDL below is its own text, rendered as the exporter renders it with its
defaults (`table_engine: MergeTree()`, no `ttl`, no `cluster_name`, the bloom-filter index
branch that every ClickHouse version accepts). It follows opentelemetry-collector-contrib
`exporter/clickhouseexporter/internal/sqltemplates/` — `traces_table.sql` @ 2bf6b9e1,
`traces_id_ts_lookup_table.sql` @ 1b085030, `traces_id_ts_lookup_mv.sql` @ 57b29d74 and the
column list of `traces_insert.sql` @ 61540ced (the v0.13x-v0.16x generation of the
exporter; older generations differ in indexes and sort key, not in the columns read here).
`serve --create-schema` runs it for an empty database; otherwise the tables must exist.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

from tracebaton import ConfigurationError

DEFAULT_TRACES_TABLE = "otel_traces"


def ident(name: str) -> str:
    """A ClickHouse identifier in backticks, as the exporter's `ident` template function writes it."""
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


@dataclasses.dataclass(frozen=True, slots=True)
class Tables:
    """The qualified names of every table the store uses, for one database and the exporter's
    `traces_table_name` option."""

    database: str
    traces_table: str = DEFAULT_TRACES_TABLE

    def _q(self, name: str) -> str:
        return f"{ident(self.database)}.{ident(name)}"

    @property
    def traces(self) -> str:
        return self._q(self.traces_table)

    @property
    def trace_id_ts_name(self) -> str:
        return self.traces_table + "_trace_id_ts"

    @property
    def trace_id_ts(self) -> str:
        return self._q(self.trace_id_ts_name)

    @property
    def trace_id_ts_mv(self) -> str:
        return self._q(self.traces_table + "_trace_id_ts_mv")

    # tracebaton's own: named after the traces table they follow, so two exporters' tables
    # in one database (traces_table_name) each get their own
    def own_name(self, what: str) -> str:
        suffix = "" if self.traces_table == DEFAULT_TRACES_TABLE else "_" + self.traces_table
        return f"tracebaton_{what}{suffix}"

    def own(self, what: str) -> str:
        return self._q(self.own_name(what))

    @property
    def arrivals(self) -> str:
        return self.own("arrivals")

    @property
    def links(self) -> str:
        return self.own("links")

    @property
    def pinned(self) -> str:
        return self.own("pinned")

    @property
    def operations(self) -> str:
        return self.own("operations")

    runs_name = "tracebaton_runs"

    @property
    def runs(self) -> str:
        return self._q(self.runs_name)


# --- the exporter's DDL, verbatim but for the template fields it fills ---------------------

_TRACES_TABLE = """CREATE TABLE IF NOT EXISTS {traces}  (
    Timestamp DateTime64(9) CODEC(Delta(8), ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(T64, ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
{alias_columns}
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1,
    INDEX idx_lower_span_name lower(SpanName) TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8
) ENGINE = MergeTree()
PARTITION BY toDate(Timestamp)
PRIMARY KEY (ServiceName, SpanName, toDateTime(Timestamp))
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp), Timestamp)

SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"""

# (two lines of the template longer than this file's lines may be, joined back as written)
_ALIAS_COLUMNS = (
    "    ResourceAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), "
    "CAST(ResourceAttributes, 'Array(Tuple(String, String))')),\n"
    "    SpanAttributeItems Array(String) ALIAS arrayMap(kv -> concat(kv.1, '=', kv.2), "
    "CAST(SpanAttributes, 'Array(Tuple(String, String))')),"
)

_TRACE_ID_TS_TABLE = """CREATE TABLE IF NOT EXISTS {trace_id_ts}  (
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
) ENGINE = MergeTree()
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)

SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1"""

_TRACE_ID_TS_MV = """CREATE MATERIALIZED VIEW IF NOT EXISTS {trace_id_ts_mv}{cluster}
TO {trace_id_ts}
AS SELECT
              TraceId,
              min(Timestamp) as Start,
              max(Timestamp) as End
   FROM {traces}
   WHERE TraceId != ''
   GROUP BY TraceId"""

EXPORTER_DDL = (_TRACES_TABLE, _TRACE_ID_TS_TABLE, _TRACE_ID_TS_MV)

# The exporter's INSERT column list (traces_insert.sql), which tracebaton's writer sends too.
INSERT_COLUMNS = (
    "Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState", "SpanName", "SpanKind",
    "ServiceName", "ResourceAttributes", "ScopeName", "ScopeVersion", "SpanAttributes", "Duration",
    "StatusCode", "StatusMessage", "Events.Timestamp", "Events.Name", "Events.Attributes",
    "Links.TraceId", "Links.SpanId", "Links.TraceState", "Links.Attributes",
)
OPTIONAL_COLUMNS = frozenset({"ScopeName", "ScopeVersion"})
"""Absent in exporters before v0.10x, which put the scope into SpanAttributes['otel.scope.*']."""

# --- tracebaton's own tables ------------------------------------------------------------------

_END_NS = "toUnixTimestamp64Nano(Timestamp) + toInt64(Duration)"

# One row per insert block, trace and service: when spans arrived (the insert time, which
# the exporter's schema does not keep) and which span ends the block held, so export lag is
# known per service and `wait` has something to poll.
_OWN_DDL = (
    """CREATE TABLE IF NOT EXISTS {arrivals} (
    TraceId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String),
    Spans UInt64,
    MinEndNs Int64,
    MaxEndNs Int64,
    InsertTime DateTime64(6),
    INDEX idx_insert_time InsertTime TYPE minmax GRANULARITY 1
) ENGINE = MergeTree()
ORDER BY (TraceId, ServiceName)
TTL toDateTime(InsertTime) + toIntervalDay(30)""",
    f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {{arrivals_mv}} TO {{arrivals}} AS
SELECT TraceId, ServiceName, count() AS Spans, min({_END_NS}) AS MinEndNs,
       max({_END_NS}) AS MaxEndNs, now64(6) AS InsertTime
FROM {{traces}}
WHERE TraceId != ''
GROUP BY TraceId, ServiceName""",
    # Which traces link into which: `has(Links.TraceId, …)` has no index and scans.
    """CREATE TABLE IF NOT EXISTS {links} (
    LinkedTraceId String CODEC(ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    InsertTime DateTime64(6),
    INDEX idx_insert_time InsertTime TYPE minmax GRANULARITY 1
) ENGINE = MergeTree()
ORDER BY (LinkedTraceId, TraceId)""",
    """CREATE MATERIALIZED VIEW IF NOT EXISTS {links_mv} TO {links} AS
SELECT LinkedTraceId, TraceId, now64(6) AS InsertTime
FROM {traces}
ARRAY JOIN Links.TraceId AS LinkedTraceId
WHERE LinkedTraceId != '' AND LinkedTraceId != TraceId""",
    # The operations (service, span name, kind) the traces table holds, a row per operation and
    # insert block, merged to one an operation: `services()` starts every check, and over
    # otel_traces `DISTINCT ServiceName` reads every row (24-48 ms at 10 million spans) and a
    # service's operations all of its rows (123-190 ms). No TTL of its own: an operation is
    # listed while the traces table may still hold one of its spans (`ClickHouseReads.services`).
    # Spans written before this table existed are listed by `operations_backfill`.
    """CREATE TABLE IF NOT EXISTS {operations} (
    ServiceName LowCardinality(String),
    SpanName LowCardinality(String),
    SpanKind LowCardinality(String),
    LastSeen DateTime
) ENGINE = ReplacingMergeTree(LastSeen)
ORDER BY (ServiceName, SpanName, SpanKind)""",
    """CREATE MATERIALIZED VIEW IF NOT EXISTS {operations_mv} TO {operations} AS
SELECT ServiceName, SpanName, SpanKind, now() AS LastSeen FROM {traces}
GROUP BY ServiceName, SpanName, SpanKind""",
    # Copies of pinned traces' rows, with no TTL: ClickHouse's TTL drops whole parts and
    # cannot spare one trace under a waiting check.
    """CREATE TABLE IF NOT EXISTS {pinned} AS {traces}
ENGINE = MergeTree() PARTITION BY tuple() PRIMARY KEY (TraceId, SpanId) ORDER BY (TraceId, SpanId)""",
    """CREATE TABLE IF NOT EXISTS {runs} (
    run_id String,
    name String,
    trace_id Nullable(String),
    passed Bool,
    test_id Nullable(String),
    session_id Nullable(String),
    recorded_ns Int64,
    first_divergence Nullable(String),
    waited_ms Nullable(Int64),
    trace_ids Array(String),
    result String CODEC(ZSTD(3))
) ENGINE = MergeTree()
ORDER BY (recorded_ns, run_id)""",
)


def _fields(tables: Tables) -> dict[str, str]:
    return {
        "traces": tables.traces,
        "trace_id_ts": tables.trace_id_ts,
        "trace_id_ts_mv": tables.trace_id_ts_mv,
        "arrivals": tables.arrivals,
        "arrivals_mv": tables.own("arrivals_mv"),
        "links": tables.links,
        "links_mv": tables.own("links_mv"),
        "pinned": tables.pinned,
        "operations": tables.operations,
        "operations_mv": tables.own("operations_mv"),
        "runs": tables.runs,
        "alias_columns": _ALIAS_COLUMNS,
        "cluster": " ",  # the exporter's empty ClusterString
    }


def exporter_ddl(tables: Tables) -> list[str]:
    """The exporter's CREATE statements for these tables (its `create_schema: true`)."""
    fields = _fields(tables)
    return [f"CREATE DATABASE IF NOT EXISTS {ident(tables.database)}",
            *(ddl.format(**fields) for ddl in EXPORTER_DDL)]


def own_ddl(tables: Tables) -> list[str]:
    fields = _fields(tables)
    return [ddl.format(**fields) for ddl in _OWN_DDL]


OPERATIONS_FILLED = "tracebaton: filled from the traces table"
"""The operations table's comment once `operations_backfill` succeeded: a start that failed
part way fills it again at the next start (a repeat is merged away)."""


def operations_backfill(tables: Tables) -> list[str]:
    """Lists the operations of spans written before the operations table existed, then marks
    the table filled; run after its view exists, so an insert meanwhile is not missed."""
    return [f"INSERT INTO {tables.operations} (ServiceName, SpanName, SpanKind, LastSeen) "
            f"SELECT ServiceName, SpanName, SpanKind, now() FROM {tables.traces} "
            "GROUP BY ServiceName, SpanName, SpanKind",
            f"ALTER TABLE {tables.operations} MODIFY COMMENT '{OPERATIONS_FILLED}'"]


# --- checking what is there -----------------------------------------------------------------

_STRING = re.compile(r"^(LowCardinality\()?String\)?$")
_ID_STRING = re.compile(r"^(LowCardinality\()?(Nullable\()?String\)?\)?$")
_MAP = re.compile(r"^Map\((LowCardinality\()?String\)?, ?String\)$")
_DATETIME64_9 = re.compile(r"^DateTime64\(9(, ?'[^']*')?\)$")

_EXPECTED: dict[str, tuple[str, Callable[[str], bool]]] = {
    "Timestamp": ("DateTime64(9)", lambda t: bool(_DATETIME64_9.match(t))),
    "TraceId": ("String", lambda t: bool(_ID_STRING.match(t))),
    "SpanId": ("String", lambda t: bool(_ID_STRING.match(t))),
    "ParentSpanId": ("String", lambda t: bool(_ID_STRING.match(t))),
    "TraceState": ("String", lambda t: bool(_STRING.match(t))),
    "SpanName": ("LowCardinality(String)", lambda t: bool(_STRING.match(t))),
    "SpanKind": ("LowCardinality(String)", lambda t: bool(_STRING.match(t))),
    "ServiceName": ("LowCardinality(String)", lambda t: bool(_STRING.match(t))),
    "ResourceAttributes": ("Map(LowCardinality(String), String)", lambda t: bool(_MAP.match(t))),
    "ScopeName": ("String", lambda t: bool(_STRING.match(t))),
    "ScopeVersion": ("String", lambda t: bool(_STRING.match(t))),
    "SpanAttributes": ("Map(LowCardinality(String), String)", lambda t: bool(_MAP.match(t))),
    "Duration": ("UInt64", lambda t: t in ("UInt64", "Int64")),
    "StatusCode": ("LowCardinality(String)", lambda t: bool(_STRING.match(t))),
    "StatusMessage": ("String", lambda t: bool(_STRING.match(t))),
    "Events.Timestamp": ("Array(DateTime64(9))",
                         lambda t: t.startswith("Array(") and bool(_DATETIME64_9.match(t[6:-1]))),
    "Events.Name": ("Array(LowCardinality(String))",
                    lambda t: t.startswith("Array(") and bool(_STRING.match(t[6:-1]))),
    "Events.Attributes": ("Array(Map(LowCardinality(String), String))",
                          lambda t: t.startswith("Array(") and bool(_MAP.match(t[6:-1]))),
    "Links.TraceId": ("Array(String)", lambda t: t.startswith("Array(") and bool(_STRING.match(t[6:-1]))),
    "Links.SpanId": ("Array(String)", lambda t: t.startswith("Array(") and bool(_STRING.match(t[6:-1]))),
    "Links.TraceState": ("Array(String)",
                         lambda t: t.startswith("Array(") and bool(_STRING.match(t[6:-1]))),
    "Links.Attributes": ("Array(Map(LowCardinality(String), String))",
                         lambda t: t.startswith("Array(") and bool(_MAP.match(t[6:-1]))),
}


def _create_hint(tables: Tables) -> str:
    return (f"start tracebaton with --create-schema to create it (an empty database, a laptop, tests), "
            f"or let the Collector's clickhouse exporter create it (its create_schema: true, the default, "
            f"with database: {tables.database} and traces_table_name: {tables.traces_table})")


def check_traces_columns(tables: Tables, columns: Mapping[str, str]) -> frozenset[str]:
    """Refuse a traces table tracebaton cannot read or write as the exporter does; returns the
    optional columns it has. `columns` maps each column (as DESCRIBE names it) to its type."""
    where = f"table {tables.database}.{tables.traces_table}"
    attributes = columns.get("SpanAttributes", "")
    if attributes.startswith("JSON") or columns.get("ResourceAttributes", "").startswith("JSON"):
        raise ConfigurationError(
            f"{where} is the clickhouse exporter's `json: true` variant (SpanAttributes is {attributes}); "
            "tracebaton reads the default Map(String, String) schema only: point it at a database the "
            "exporter writes with json: false (the default), or at another traces_table_name")
    problems = []
    for column, (wanted, fits) in _EXPECTED.items():
        actual = columns.get(column)
        if actual is None:
            if column not in OPTIONAL_COLUMNS:
                problems.append(f"{column} is missing")
        elif not fits(actual):
            problems.append(f"{column} is {actual}, not {wanted}")
    if problems:
        raise ConfigurationError(
            f"{where} does not have the clickhouse exporter's otel_traces schema: {'; '.join(problems)}. "
            "tracebaton never alters the exporter's tables: point --store at the database the exporter "
            "writes (or name its table with ?traces_table=…), or recreate the table with the exporter's DDL")
    return frozenset(c for c in OPTIONAL_COLUMNS if c in columns)


def missing_table_error(tables: Tables, name: str) -> ConfigurationError:
    return ConfigurationError(
        f"ClickHouse database {tables.database!r} has no table {name!r} (the clickhouse exporter's); "
        + _create_hint(tables))


def describe(rows: list[tuple[Any, ...]]) -> dict[str, str]:
    """DESCRIBE TABLE rows as {column: type}, ALIAS columns left out (they are not written)."""
    return {str(r[0]): str(r[1]) for r in rows if len(r) < 3 or r[2] != "ALIAS"}
