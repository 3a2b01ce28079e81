"""The `tracebaton` command."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from ._cli_client import add_client_commands, run_check, run_import, run_spec
from ._cli_diff import add_diff_command, run_diff
from ._cli_run import add_run_command, run_run
from ._cli_tracetest import add_tracetest_command, run_import_tracetest
from ._config import (
    DEFAULT_API_PORT,
    DEFAULT_DB,
    DEFAULT_GRPC_PORT,
    DEFAULT_HOST,
    DEFAULT_HTTP_PORT,
    DEFAULT_LOG_LEVEL,
    DEFAULT_STORE,
    ENV_API_PORT,
    ENV_DB,
    ENV_GRPC_PORT,
    ENV_HOST,
    ENV_HTTP_PORT,
    ENV_INGEST_TOKEN,
    ENV_JAEGER_UI_DIR,
    ENV_JAEGER_UI_URL,
    ENV_LOG_LEVEL,
    ENV_RETENTION_MAX_AGE,
    ENV_RETENTION_MAX_SPANS,
    ENV_STORE,
    ENV_TOKEN,
    LOG_LEVELS,
    ServerSettings,
    parse_jaeger_ui_dir,
    parse_jaeger_ui_url,
    parse_log_level,
    parse_port,
    parse_positive_int,
    server_settings,
)
from ._durations import parse_duration_ns
from ._errors import ConfigurationError, TracebatonError

_T = TypeVar("_T")


def _argument(parse: Callable[[str, str], _T]) -> Callable[[str], _T]:
    """An argparse type from a settings parser: the same rules as the environment's."""
    def convert(text: str) -> _T:
        try:
            return parse("value", text)
        except ConfigurationError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix("value: ")) from None
    return convert


_port = _argument(parse_port)
_positive = _argument(parse_positive_int)
_duration = _argument(lambda name, text: parse_duration_ns(text, what=name))
_log_level = _argument(parse_log_level)
_jaeger_ui_dir = _argument(parse_jaeger_ui_dir)
_jaeger_ui_url = _argument(parse_jaeger_ui_url)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracebaton",
        description="Trace-based integration testing: assert the hand-offs between services.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve = commands.add_parser(
        "serve", help="receive OTLP spans, store them, serve the API and dashboard",
        description="Run the OTLP receivers (gRPC and HTTP), the REST API and the dashboard over "
                    "one store (a DuckDB file by default). Prints a ready line when listening; "
                    "stops on Ctrl-C/SIGTERM.")
    where = serve.add_mutually_exclusive_group()
    where.add_argument("--store", metavar="URL",
                       help=f"the store: duckdb:PATH, duckdb::memory:, "
                            f"clickhouse://[user@]host:8123/database, clickhouses://… or chdb:PATH "
                            f"(default {DEFAULT_STORE}; "
                            f"env {ENV_STORE})")
    where.add_argument("--db", metavar="FILE",
                       help=f"short for --store duckdb:FILE; :memory: keeps spans in memory "
                            f"(default {DEFAULT_DB}; env {ENV_DB})")
    serve.add_argument("--host", help=f"address to bind (default {DEFAULT_HOST}; env {ENV_HOST})")
    serve.add_argument("--grpc-port", type=_port,
                       help=f"OTLP/gRPC port (default {DEFAULT_GRPC_PORT}; env {ENV_GRPC_PORT})")
    serve.add_argument("--http-port", type=_port,
                       help=f"OTLP/HTTP port (default {DEFAULT_HTTP_PORT}; env {ENV_HTTP_PORT})")
    serve.add_argument("--api-port", type=_port,
                       help=f"API and dashboard port (default {DEFAULT_API_PORT}; env {ENV_API_PORT})")
    serve.add_argument("--token", help=f"bearer token for /api/* and the dashboard (env {ENV_TOKEN})")
    serve.add_argument("--ingest-token", help=f"bearer token for OTLP ingest (env {ENV_INGEST_TOKEN})")
    serve.add_argument("--retention-max-spans", type=_positive, metavar="N",
                       help=f"keep at most N spans, pruning oldest first (env {ENV_RETENTION_MAX_SPANS})")
    serve.add_argument("--retention-max-age", type=_duration, metavar="D",
                       help=f"prune spans older than D, e.g. 30m (env {ENV_RETENTION_MAX_AGE})")
    serve.add_argument("--create-schema", action="store_true", default=None,
                       help="ClickHouse store: create the Collector clickhouse exporter's tables (its DDL) "
                            "where the database lacks them; never alters existing ones")
    serve.add_argument("--jaeger-ui", type=_jaeger_ui_dir, metavar="DIR",
                       help=f"serve this built Jaeger UI bundle at /jaeger/, over the Jaeger API at "
                            f"/jaeger/api (env {ENV_JAEGER_UI_DIR})")
    serve.add_argument("--jaeger-ui-url", type=_jaeger_ui_url, metavar="URL",
                       help="a Jaeger UI reading these traces: the dashboard links every trace to "
                            f"URL/trace/<trace id> too (env {ENV_JAEGER_UI_URL})")
    serve.add_argument("--ready-file", metavar="F", help="also write the ready line to this file")
    serve.add_argument("--log-level", type=_log_level, metavar="LEVEL",
                       help=f"what to log on stderr: {', '.join(LOG_LEVELS)} "
                            f"(default {DEFAULT_LOG_LEVEL}; env {ENV_LOG_LEVEL})")
    add_client_commands(commands)
    add_diff_command(commands)
    add_run_command(commands)
    add_tracetest_command(commands)
    demo = commands.add_parser(
        "demo", help="run the demo shop, catch its integration bugs, show them in the dashboard",
        description="Start tracebaton and the demo shop (nine service processes), send a healthy "
                    "checkout, one checkout per fault and two racing checkouts, judge each against "
                    "the demo's flow specs, print a table of the verdicts, then serve the dashboard "
                    "until Ctrl-C. Exit 0 when every verdict matched its expectation.")
    demo.add_argument("--check-only", action="store_true",
                      help="exit after the table (0: every verdict as expected, 1: not), for CI")
    demo.add_argument("--api-port", type=_port,
                      help=f"dashboard port (default {DEFAULT_API_PORT}, else a free one; "
                           "--check-only: a free one)")
    demo.add_argument("--workdir", metavar="DIR",
                      help="keep the store and the shop's logs here (default: a temporary directory, "
                           "removed at exit)")
    return parser


def _write_ready_file(path: str, line: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    # Written whole or not at all: a waiting test never reads half a line.
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=".ready-")
    with os.fdopen(fd, "w") as handle:
        handle.write(line + "\n")
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def _serve(args: argparse.Namespace) -> int:
    from ._server import TracebatonServer

    # DuckDB's Python client re-takes the GIL after every execution task; a short switch
    # interval keeps each of those waits short while a receiver thread decodes. Set here,
    # in the server's own process, never in a test process that embeds the collector.
    sys.setswitchinterval(0.0001)

    defaults = {"decode_workers": max(1, (os.cpu_count() or 2) - 1)}
    settings = server_settings(
        defaults=defaults,
        store=args.store, db=args.db, host=args.host, grpc_port=args.grpc_port, http_port=args.http_port,
        api_port=args.api_port, token=args.token, ingest_token=args.ingest_token,
        retention_max_spans=args.retention_max_spans, retention_max_age_ns=args.retention_max_age,
        ready_file=args.ready_file, log_level=args.log_level, create_schema=args.create_schema,
        jaeger_ui_dir=args.jaeger_ui, jaeger_ui_url=args.jaeger_ui_url,
    )
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="tracebaton: %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    server = TracebatonServer(settings)
    addresses = server.start()
    # once it listens: a host that cannot be bound gets its error alone, not warnings first
    for warning in exposure_warnings(settings):
        print(f"tracebaton: warning: {warning}", file=sys.stderr)
    try:
        line = addresses.ready_line()
        # The file first: whoever reacts to the printed line may read the file at once.
        if settings.ready_file:
            _write_ready_file(settings.ready_file, line)
        print(line, flush=True)
        stop.wait()
        print("tracebaton: stopping: committing what was acknowledged", file=sys.stderr, flush=True)
    finally:
        server.shutdown()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from tracebaton.demo import run_demo

    return run_demo(check_only=args.check_only, api_port=args.api_port, workdir=args.workdir)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def exposure_warnings(settings: ServerSettings) -> list[str]:
    """What `serve` says when it listens beyond this machine without a token."""
    if _loopback(settings.host):
        return []
    warnings = []
    if not settings.token:
        warnings.append(f"listening on {settings.host} without --token: anyone who reaches this "
                        "address can read the stored spans")
    if not settings.ingest_token:
        warnings.append(f"listening on {settings.host} without --ingest-token: anyone who reaches this "
                        "address can write spans into flows being checked")
    return warnings


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "serve": _serve, "check": run_check, "spec": run_spec, "import": run_import, "demo": _demo,
        "run": run_run,
        "import-tracetest": run_import_tracetest, "diff": run_diff}
    try:
        return commands[args.command](args)
    except TracebatonError as error:
        print(f"tracebaton {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tracebaton {args.command}: interrupted", file=sys.stderr)
        return 130
