"""`tracebaton serve --store clickhouse://… | chdb:…` as a person runs it: a real process.
Every bad start is one line that says what to do, never a traceback; a good one serves
spans it received over OTLP, written in the exporter's rows, back through the API."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from otlp_requests import new_trace_id, valid_request

pytestmark = pytest.mark.xdist_group("heavy")  # a chdb engine per process: ~330 MB each


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(*args: str, env: dict[str, str] | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracebaton", "serve", "--grpc-port", "0", "--http-port", "0",
         "--api-port", "0", *args],
        capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, check=False)


def _one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    return lines[0]


def _chdb(script: str, path: Path) -> None:
    """Prepare a chdb data directory in a process of its own (this one may hold another)."""
    code = textwrap.dedent(f"""
        import clickhouse_connect
        client = clickhouse_connect.get_client(dsn="chdb://{path}")
        for statement in {script!r}.split(";"):
            if statement.strip():
                client.command(statement)
        """)
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, capture_output=True)


def test_an_unreachable_clickhouse_is_one_line_naming_the_address() -> None:
    port = _closed_port()
    line = _one_line_error(_serve("--store", f"clickhouse://127.0.0.1:{port}/default"))
    assert f"ClickHouse at http://127.0.0.1:{port} does not answer (connection refused)" in line
    assert "start ClickHouse or correct the host and port" in line


def test_a_database_without_the_exporters_tables_names_both_ways_to_create_them(tmp_path: Path) -> None:
    line = _one_line_error(_serve("--store", f"chdb:{tmp_path / 'ch'}?database=otel"))
    assert "has no table 'otel_traces'" in line
    assert "--create-schema" in line
    assert "create_schema" in line
    # the refused start leaves no data directory where there was none: a typo in the path
    # would otherwise grow a stray database the next try (with the flag) fills
    assert not (tmp_path / "ch").exists()


def test_a_refused_start_keeps_a_data_directory_that_was_there(tmp_path: Path) -> None:
    path = tmp_path / "ch"
    _chdb("CREATE DATABASE otel; CREATE TABLE otel.kept (x UInt8) ENGINE = MergeTree ORDER BY x; "
          "INSERT INTO otel.kept VALUES (1)", path)
    line = _one_line_error(_serve("--store", f"chdb:{path}?database=otel"))
    assert "has no table 'otel_traces'" in line
    _chdb("SELECT throwIf(count() != 1) FROM otel.kept", path)


def test_a_traces_table_of_another_shape_is_refused_and_never_altered(tmp_path: Path) -> None:
    path = tmp_path / "ch"
    _chdb("CREATE DATABASE otel; CREATE TABLE otel.otel_traces (TraceId String, Timestamp DateTime) "
          "ENGINE = MergeTree ORDER BY TraceId; CREATE TABLE otel.otel_traces_trace_id_ts (TraceId String) "
          "ENGINE = MergeTree ORDER BY TraceId", path)
    line = _one_line_error(_serve("--store", f"chdb:{path}?database=otel", "--create-schema"))
    assert "does not have the clickhouse exporter's otel_traces schema" in line
    assert "Timestamp is DateTime, not DateTime64(9)" in line
    assert "SpanId is missing" in line
    assert "never alters" in line


def test_the_exporters_json_variant_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "ch"
    _chdb("CREATE DATABASE otel; CREATE TABLE otel.otel_traces (TraceId String, SpanAttributes JSON, "
          "Timestamp DateTime64(9)) ENGINE = MergeTree ORDER BY TraceId; "
          "CREATE TABLE otel.otel_traces_trace_id_ts (TraceId String) ENGINE = MergeTree "
          "ORDER BY TraceId", path)
    line = _one_line_error(_serve("--store", f"chdb:{path}?database=otel"))
    assert "`json: true` variant" in line
    assert "json: false" in line


def test_a_chdb_directory_another_process_holds_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "ch"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import clickhouse_connect, sys, time\n"
         f"c = clickhouse_connect.get_client(dsn='chdb://{path}')\nc.query('SELECT 1')\n"
         "print('held', flush=True)\ntime.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        line = _one_line_error(_serve("--store", f"chdb:{path}", "--create-schema"))
        assert f"chdb data directory {path} is held by another process" in line
        assert "stop that process, or give this one another chdb:PATH" in line
    finally:
        holder.kill()
        holder.wait(30)
        if holder.stdout is not None:
            holder.stdout.close()


@pytest.mark.parametrize("args", [["--retention-max-spans", "1000"], ["--retention-max-age", "1h"]])
def test_retention_options_with_a_clickhouse_store_are_refused(tmp_path: Path, args: list[str]) -> None:
    line = _one_line_error(_serve("--store", f"chdb:{tmp_path / 'ch'}", "--create-schema", *args))
    assert "retention is its tables' TTL" in line


def test_a_password_in_the_url_is_refused_for_the_environment_variable() -> None:
    line = _one_line_error(_serve("--store", "clickhouse://reader:secret@127.0.0.1:8123/otel"))
    assert "TRACEBATON_CLICKHOUSE_PASSWORD" in line
    assert "secret" not in line.split("'")[-1]  # named only as the URL given, never echoed apart


def test_serve_with_create_schema_receives_otlp_and_serves_it_back(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    process = subprocess.Popen(
        [sys.executable, "-m", "tracebaton", "serve", "--store", f"chdb:{tmp_path / 'ch'}?database=otel",
         "--create-schema", "--grpc-port", "0", "--http-port", "0", "--api-port", "0",
         "--ready-file", str(ready)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("tracebaton: ready "), (line, process.stderr and process.stderr.read())
        fields = dict(part.split("=", 1) for part in line.split()[2:])
        trace_id = new_trace_id()
        body = valid_request(trace_id, 3).SerializeToString()
        sent = httpx.post(f"http://{fields['http']}/v1/traces", content=body,
                          headers={"Content-Type": "application/x-protobuf"}, timeout=30)
        assert sent.status_code == 200, sent.text
        got = httpx.get(f"{fields['api']}/api/traces/{trace_id.hex()}", timeout=30)
        assert got.status_code == 200, got.text
        spans = got.json()["spans"]
        assert len(spans) == 3
        assert {s["kind"] for s in spans} == {"server"}
        assert httpx.get(f"{fields['api']}/api/traces", params={"service": "checkout"}, timeout=30).json()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(60)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert code == 0
    # the rows are the exporter's: another process reads them with plain SQL
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import clickhouse_connect
        c = clickhouse_connect.get_client(dsn="chdb://{tmp_path / 'ch'}")
        print(c.query("SELECT SpanKind, StatusCode, ParentSpanId FROM otel.otel_traces "
                      "WHERE TraceId = '{trace_id.hex()}' LIMIT 1").result_rows[0])
        """)], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "('Server', 'Unset', '')"
