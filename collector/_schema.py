"""The DuckDB schema, and opening a file with errors a person can act on."""

from __future__ import annotations

import os
from typing import Any

import duckdb

from tracebaton import ConfigurationError


def only_row(result: duckdb.DuckDBPyConnection) -> tuple[Any, ...] | None:
    """The first row of a query's result, the result read to its end.

    DuckDB keeps a result that was not read to the end open on its connection and refuses
    `register()` there until it is: a later read registering the in-memory head, or the
    flush registering its batch, would fail on the same thread.
    """
    rows = result.fetchall()
    return rows[0] if rows else None

SCHEMA_VERSION = "1"
META_TABLE = "tracebaton_meta"

# Columns are what queries filter on; `body` keeps the whole span (typed attributes,
# events, links) and compresses to about a sixth with zstd, which also checkpoints
# three times faster than DuckDB's default choice for blobs.
DDL = [
    f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR)",
    """CREATE TABLE IF NOT EXISTS spans (
        trace_id BLOB NOT NULL,
        span_id BLOB NOT NULL,
        parent_span_id BLOB,
        trace_state VARCHAR,
        flags UINTEGER,
        name VARCHAR,
        kind INTEGER,
        start_ns UBIGINT,
        end_ns UBIGINT,
        status_code INTEGER,
        status_message VARCHAR,
        service VARCHAR,
        resource_id BIGINT,
        scope_id BIGINT,
        body BLOB USING COMPRESSION zstd,
        arrival_ns BIGINT NOT NULL
    )""",
    # Not unique: uniqueness would cost a conflict check per row; re-sent spans are
    # dropped on read instead.
    "CREATE INDEX IF NOT EXISTS spans_by_trace ON spans (trace_id)",
    """CREATE TABLE IF NOT EXISTS span_links (
        trace_id BLOB NOT NULL,
        span_id BLOB NOT NULL,
        linked_trace_id BLOB NOT NULL,
        linked_span_id BLOB NOT NULL,
        arrival_ns BIGINT NOT NULL
    )""",
    # Keyed by a digest of their content; the writer appends each id once (no constraint,
    # so no conflict check on the commit path).
    "CREATE TABLE IF NOT EXISTS resources (resource_id BIGINT NOT NULL, service VARCHAR, body BLOB)",
    "CREATE TABLE IF NOT EXISTS scopes (scope_id BIGINT NOT NULL, body BLOB)",
    # How far the file has caught up with the ingest log, a row per commit (`_writer`):
    # appended, not updated, since DuckDB checkpoints beside appends but not beside an update.
    """CREATE TABLE IF NOT EXISTS ingest_log_marks (
        segment BIGINT NOT NULL,
        record BIGINT NOT NULL,
        rows BIGINT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS flow_results (
        run_id VARCHAR PRIMARY KEY,
        name VARCHAR,
        trace_id VARCHAR,
        passed BOOLEAN,
        test_id VARCHAR,
        session_id VARCHAR,
        recorded_ns BIGINT,
        result JSON
    )""",
]


def _describe_open_failure(path: str, error: Exception) -> str:
    text = str(error)
    if "lock" in text.lower():
        return (
            f"DuckDB file {path}: another process has it open for writing ({text.strip()}); "
            "DuckDB allows one writer per file: stop that process or give tracebaton another file"
        )
    if "not a valid DuckDB database file" in text or "Corrupt" in text or "corrupt" in text:
        return (
            f"DuckDB file {path}: this is not a readable DuckDB database ({text.strip()}); "
            "give tracebaton a store it wrote, or a path that does not exist yet"
        )
    return f"DuckDB file {path}: cannot open it as a DuckDB database: {text.strip()}"


def _refuse_other_files(path: str) -> None:
    """DuckDB opens some files that are no database (a JSON file reads as tables of its
    keys): a file that is not empty must carry DuckDB's magic bytes ("DUCK" at offset 8)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(12)
    except FileNotFoundError:
        return
    except OSError as error:
        raise ConfigurationError(f"DuckDB file {path}: cannot read it ({error.strerror})") from None
    if head and head[8:12] != b"DUCK":
        shown = head.decode("utf-8", "replace").strip()
        raise ConfigurationError(
            f"DuckDB file {path}: this is no DuckDB database (it begins {shown!r}); give tracebaton "
            "a store it wrote, or a path that does not exist yet")


def open_database(path: str, *, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open (or create) a tracebaton store; raise ConfigurationError when it cannot be."""
    if path != ":memory:":
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise ConfigurationError(
                f"DuckDB file {path}: the folder {parent} does not exist; create it first")
        if os.path.isdir(path):
            raise ConfigurationError(
                f"DuckDB file {path}: is a folder; give a file path such as {path}/tracebaton.duckdb")
        _refuse_other_files(path)
    # Commits never checkpoint inline: a checkpoint compresses and rewrites data, and the
    # store runs it on its maintenance thread, off the acknowledgement path.
    config: dict[str, str | bool | int | float | list[str]] = {"checkpoint_threshold": "1TB"}
    if memory_limit:
        config["memory_limit"] = memory_limit
    try:
        connection = duckdb.connect(path, config=config)
    except (duckdb.Error, OSError) as error:
        raise ConfigurationError(_describe_open_failure(path, error)) from None
    try:
        _check_or_create_schema(connection, path)
    except BaseException:
        connection.close()
        raise
    return connection


def _check_or_create_schema(connection: duckdb.DuckDBPyConnection, path: str) -> None:
    tables = {row[0] for row in connection.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()}
    if tables and META_TABLE not in tables:
        listed = ", ".join(sorted(tables)[:5])
        raise ConfigurationError(
            f"DuckDB file {path}: it belongs to something else (tables: {listed}); "
            "tracebaton will not write into it: give it a new file"
        )
    if META_TABLE in tables:
        row = only_row(connection.execute(
            f"SELECT value FROM {META_TABLE} WHERE key = 'schema_version'"
        ))
        if row is None or row[0] != SCHEMA_VERSION:
            found = row[0] if row else "none"
            raise ConfigurationError(
                f"DuckDB file {path}: store schema version {found}, this tracebaton reads version "
                f"{SCHEMA_VERSION}; use a tracebaton of that version or start a new file"
            )
    connection.execute("BEGIN")
    for statement in DDL:
        connection.execute(statement)
    connection.execute(
        f"INSERT OR IGNORE INTO {META_TABLE} VALUES ('schema_version', ?)", [SCHEMA_VERSION]
    )
    connection.execute("COMMIT")
