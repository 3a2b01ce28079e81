"""`tracebaton serve` as a user runs it: bad flags and files get a message and exit 2."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import duckdb
import httpx
import pytest
from conftest import start_server


def _serve(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracebaton", "serve", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


FREE = ("--grpc-port", "0", "--http-port", "0", "--api-port", "0")


@pytest.mark.parametrize(("args", "message"), [
    (("--grpc-port", "70000"), "'70000' is not a port"),
    (("--api-port", "http"), "'http' is not a port"),
    (("--retention-max-age", "5 minutes"), "is not a duration"),
    (("--retention-max-spans", "-3"), "is not a positive whole number"),
    (("--no-such-flag",), "unrecognized arguments: --no-such-flag"),
    (("--store", "postgres://db/spans"), "store URL 'postgres://db/spans' has no known scheme"),
    (("--store", "duckdb:"), "names no file"),
    (("--store", "duckdb::memory:", "--db", "x.duckdb"), "not allowed with argument --store"),
    (("--log-level", "loud"), "'loud' is not a log level; give one of debug, info, warning, error"),
], ids=["port-range", "port-text", "duration", "negative-retention", "unknown-flag", "store-scheme",
        "store-no-file", "store-and-db", "log-level"])
def test_bad_flags_exit_2_with_a_message(args: tuple[str, ...], message: str) -> None:
    done = _serve(*args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_environment_values_exit_2_naming_the_variable(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tracebaton", "serve", "--db", str(tmp_path / "x.duckdb")],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "TRACEBATON_GRPC_PORT": "not-a-port"})
    assert done.returncode == 2
    assert "TRACEBATON_GRPC_PORT: 'not-a-port' is not a port" in done.stderr


@pytest.mark.parametrize(("value", "message"), [
    ("2147483648", "'2147483648' is more than gRPC takes as a message size; give at most 2147483647"),
    ("100000000000000000000", "'100000000000000000000' is more than gRPC takes"),
    ("1", "'1' bytes would refuse nearly every export request"),
], ids=["past-grpc", "huge", "tiny"])
def test_a_body_limit_grpc_cannot_take_or_no_export_fits_exits_2(
        tmp_path: Path, value: str, message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tracebaton", "serve", "--db", str(tmp_path / "x.duckdb"), *FREE],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "TRACEBATON_MAX_BODY_BYTES": value})
    assert done.returncode == 2
    assert f"TRACEBATON_MAX_BODY_BYTES: {message}" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_store_and_its_short_form_from_the_environment_must_agree(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tracebaton", "serve", *FREE],
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "TRACEBATON_STORE": "duckdb::memory:",
                               "TRACEBATON_DB": str(tmp_path / "x.duckdb")})
    assert done.returncode == 2
    assert "TRACEBATON_STORE and TRACEBATON_DB both name the store" in done.stderr


@pytest.mark.parametrize("level", ["info", "warning"])
def test_serve_opens_the_store_its_url_names_and_logs_at_the_level_asked(tmp_path: Path, level: str) -> None:
    path = tmp_path / "by-url.duckdb"
    process = subprocess.Popen(
        [sys.executable, "-m", "tracebaton", "serve", "--store", f"duckdb:{path}", "--log-level", level,
         *FREE],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().startswith("tracebaton: ready ")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0
    assert path.is_file()
    opened = f"tracebaton: INFO tracebaton: store duckdb:{path} started"
    assert (opened in stderr) is (level == "info"), stderr


def test_unusable_db_files_exit_2_with_the_fix(tmp_path: Path) -> None:
    foreign = tmp_path / "shop.duckdb"
    with duckdb.connect(str(foreign)) as connection:
        connection.execute("CREATE TABLE orders (id INTEGER)")
    text = tmp_path / "readme.txt"
    text.write_text("not a database\n" * 200)
    json_file = tmp_path / "settings.json"  # DuckDB itself would open it, as tables of its keys
    json_file.write_text('{"file": 1, "s": 2}\n')
    cases = {
        str(foreign): "belongs to something else (tables: orders)",
        str(text): f"DuckDB file {text}: this is no DuckDB database (it begins 'not a databa')",
        str(json_file): f"DuckDB file {json_file}: this is no DuckDB database (it begins",
        str(tmp_path / "missing" / "x.duckdb"): "does not exist; create it first",
        str(tmp_path): "is a folder",
    }
    for db, message in cases.items():
        done = _serve("--db", db, *FREE)
        assert done.returncode == 2, db
        assert message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


def test_a_port_in_use_exits_2_naming_it(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _serve("--db", str(tmp_path / "x.duckdb"), "--grpc-port", "0", "--http-port", str(port),
                      "--api-port", "0")
    assert done.returncode == 2
    assert (f"OTLP/HTTP cannot listen on 127.0.0.1:{port}: the port is in use: another process "
            "holds it; pick another --http-port, or 0 for a free one") in done.stderr


def test_a_grpc_port_in_use_exits_2_naming_it_without_grpc_core_lines(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = _serve("--db", str(tmp_path / "x.duckdb"), "--grpc-port", str(port), "--http-port", "0",
                      "--api-port", "0")
    assert done.returncode == 2
    assert (f"OTLP/gRPC cannot listen on 127.0.0.1:{port}: the port is in use: another process "
            "holds it; pick another --grpc-port, or 0 for a free one") in done.stderr
    # grpcio logs its own bind failure as a core line ("E1207 ... Failed to add port"): the
    # address is tried before grpcio binds, so the user reads one message
    assert "add_port" not in done.stderr, done.stderr
    assert "Failed to add" not in done.stderr, done.stderr


@pytest.mark.parametrize(("host", "message"), [
    ("999.1.1.1", "'999.1.1.1' is neither an IP address nor a host name this machine resolves"),
    ("192.0.2.1", "192.0.2.1 is not an address of this machine"),
], ids=["not-an-address", "another-machine"])
def test_a_host_that_cannot_be_bound_is_named_not_blamed_on_the_port(
        tmp_path: Path, host: str, message: str) -> None:
    done = _serve("--db", str(tmp_path / "x.duckdb"), "--host", host, *FREE)
    assert done.returncode == 2
    assert message in done.stderr
    assert "127.0.0.1 for this machine only, 0.0.0.0 for every interface" in done.stderr
    assert "port is in use" not in done.stderr
    assert "Traceback" not in done.stderr
    assert "warning" not in done.stderr, "exposure warnings belong to a server that listens"


def test_a_second_server_on_the_same_file_is_refused(tmp_path: Path) -> None:
    first = start_server(tmp_path / "shared.duckdb")
    try:
        done = _serve("--db", str(tmp_path / "shared.duckdb"), *FREE)
        assert done.returncode == 2
        assert "another process has it open for writing" in done.stderr
    finally:
        assert first.stop() == 0


def test_ready_line_and_ready_file_and_sigint(tmp_path: Path) -> None:
    ready = tmp_path / "ready.txt"
    running = start_server(tmp_path / "x.duckdb", "--ready-file", str(ready))
    try:
        line = ready.read_text().strip()
        assert line == f"tracebaton: ready grpc={running.grpc} http={running.http} api={running.api}"
        assert running.grpc.startswith("127.0.0.1:")
        assert httpx.get(f"{running.api}/healthz").json()["status"] == "ok"
    finally:
        assert running.stop(signal.SIGINT) == 0
    assert "stopping" in running.stderr


def test_ctrl_c_in_a_terminal_stops_serve_and_its_workers_quietly(tmp_path: Path) -> None:
    # a terminal sends SIGINT to the whole foreground process group, workers included
    running = start_server(tmp_path / "x.duckdb", env={"TRACEBATON_DECODE_WORKERS": "1"})
    try:
        assert httpx.get(f"{running.api}/healthz").json()["status"] == "ok"
    finally:
        os.killpg(running.process.pid, signal.SIGINT)
        code = running.stop(signal.SIGINT)
    assert code == 0, running.stderr
    assert "Traceback" not in running.stderr, running.stderr
    assert "starting another" not in running.stderr
    assert running.session_processes() == []


def test_help_lists_every_serve_flag() -> None:
    done = _serve("--help")
    assert done.returncode == 0
    for flag in ("--db", "--host", "--grpc-port", "--http-port", "--api-port", "--token", "--ingest-token",
                 "--retention-max-spans", "--retention-max-age", "--ready-file"):
        assert flag in done.stdout


@pytest.mark.parametrize(
    ("host", "token", "ingest_token", "warned"),
    [
        ("127.0.0.1", None, None, []),
        ("::1", None, None, []),
        ("127.0.0.2", None, None, []),
        ("localhost", None, None, []),
        ("0.0.0.0", None, None, ["--token", "--ingest-token"]),
        ("0.0.0.0", "t", None, ["--ingest-token"]),
        ("10.1.2.3", "t", "i", []),
        ("tracebaton.internal", None, "i", ["--token"]),
    ],
)
def test_serve_warns_when_it_listens_beyond_this_machine_without_a_token(
    host: str, token: str | None, ingest_token: str | None, warned: list[str]
) -> None:
    from tracebaton import ServerSettings
    from tracebaton._cli import exposure_warnings

    warnings = exposure_warnings(ServerSettings(host=host, token=token, ingest_token=ingest_token))
    assert [w.split(" without ")[1].split(":")[0] for w in warnings] == warned
    assert all(host in w for w in warnings)
