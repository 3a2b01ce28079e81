"""The one place for configuration: every TRACEBATON_* variable is a constant here.

Precedence, everywhere: an explicit argument (CLI flag or keyword) overrides the
environment, which overrides the default.
"""

from __future__ import annotations

import dataclasses
import os
import urllib.parse
from collections.abc import Mapping
from typing import Any

from ._durations import parse_duration_ns
from ._errors import ConfigurationError

ENV_URL = "TRACEBATON_URL"
"""A remote tracebaton server's API URL; the pytest plugin then judges flows there, and
`tracebaton check`, `spec` and `import` talk to it when no --server is given."""
ENV_TOKEN = "TRACEBATON_TOKEN"
"""Bearer token required on /api/* and the dashboard."""
ENV_INGEST_TOKEN = "TRACEBATON_INGEST_TOKEN"
"""Bearer token required on OTLP ingest (exporters send it via OTEL_EXPORTER_OTLP_HEADERS)."""
ENV_STORE = "TRACEBATON_STORE"
"""The store `serve` keeps spans in, as a URL: `duckdb:PATH`, `duckdb::memory:` (DESIGN §3a)."""
ENV_DB = "TRACEBATON_DB"
"""The short form of TRACEBATON_STORE for a DuckDB file: `FILE` means `duckdb:FILE`;
`:memory:` keeps spans in memory."""
ENV_HOST = "TRACEBATON_HOST"
"""The address every port binds to."""
ENV_GRPC_PORT = "TRACEBATON_GRPC_PORT"
ENV_HTTP_PORT = "TRACEBATON_HTTP_PORT"
ENV_API_PORT = "TRACEBATON_API_PORT"
ENV_RETENTION_MAX_SPANS = "TRACEBATON_RETENTION_MAX_SPANS"
ENV_RETENTION_MAX_AGE = "TRACEBATON_RETENTION_MAX_AGE"
ENV_MAX_BODY_BYTES = "TRACEBATON_MAX_BODY_BYTES"
"""Largest OTLP request accepted, measured after decompression."""
ENV_DECODE_WORKERS = "TRACEBATON_DECODE_WORKERS"
"""Processes that decode OTLP requests for `serve` (default: one per core beyond the first)."""
ENV_MAX_PENDING_SPANS = "TRACEBATON_MAX_PENDING_SPANS"
"""Spans decoded but not yet committed; past this, ingest answers 503 / UNAVAILABLE."""
ENV_CLICKHOUSE_PASSWORD = "TRACEBATON_CLICKHOUSE_PASSWORD"
"""The password of the user a `clickhouse://` store URL names (never in argv: a URL with a
password is refused)."""
ENV_LOG_LEVEL = "TRACEBATON_LOG_LEVEL"
"""How much `serve` logs to stderr: debug, info, warning (the default) or error."""
ENV_JAEGER_UI_DIR = "TRACEBATON_JAEGER_UI_DIR"
"""A built Jaeger UI bundle for `serve` to serve under /jaeger/ (`--jaeger-ui DIR`)."""
ENV_JAEGER_UI_URL = "TRACEBATON_JAEGER_UI_URL"
"""A Jaeger UI elsewhere (`--jaeger-ui-url URL`): the dashboard offers `URL/trace/<id>` beside
every trace it links."""

ALL_VARIABLES = (
    ENV_URL, ENV_TOKEN, ENV_INGEST_TOKEN, ENV_STORE, ENV_DB, ENV_HOST, ENV_GRPC_PORT,
    ENV_HTTP_PORT, ENV_API_PORT, ENV_RETENTION_MAX_SPANS, ENV_RETENTION_MAX_AGE,
    ENV_MAX_BODY_BYTES, ENV_MAX_PENDING_SPANS, ENV_DECODE_WORKERS, ENV_LOG_LEVEL,
    ENV_CLICKHOUSE_PASSWORD, ENV_JAEGER_UI_DIR, ENV_JAEGER_UI_URL,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_GRPC_PORT = 4317
DEFAULT_HTTP_PORT = 4318
DEFAULT_API_PORT = 7357
DEFAULT_DB = "./tracebaton.duckdb"
DEFAULT_STORE = "duckdb:" + DEFAULT_DB
LOG_LEVELS = ("debug", "info", "warning", "error")
DEFAULT_LOG_LEVEL = "warning"
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_API_PORT}"
"""Where `tracebaton check`, `spec` and `import` look for a server by default."""
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_PENDING_SPANS = 256 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class ServerSettings:
    """Everything `tracebaton serve` needs; build it with `server_settings()`."""

    store: str = DEFAULT_STORE
    """The store's URL (DESIGN §3a); `server_settings(db=FILE)` is the short form `duckdb:FILE`."""
    host: str = DEFAULT_HOST
    grpc_port: int = DEFAULT_GRPC_PORT
    http_port: int = DEFAULT_HTTP_PORT
    api_port: int = DEFAULT_API_PORT
    token: str | None = None
    ingest_token: str | None = None
    retention_max_spans: int | None = None
    retention_max_age_ns: int | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_pending_spans: int = DEFAULT_MAX_PENDING_SPANS
    decode_workers: int = 0
    """0 decodes on the receiving threads (embedded use); `serve` defaults to cores - 1."""
    ready_file: str | None = None
    log_level: str = DEFAULT_LOG_LEVEL
    create_schema: bool = False
    """ClickHouse store: create the Collector exporter's tables where they are missing."""
    clickhouse_password: str | None = dataclasses.field(default=None, repr=False)
    """From TRACEBATON_CLICKHOUSE_PASSWORD only."""
    jaeger_ui_dir: str | None = None
    """A built Jaeger UI bundle to serve under /jaeger/."""
    jaeger_ui_url: str | None = None
    """A Jaeger UI's base URL, for the dashboard's "open in Jaeger" links."""


def server_url(explicit: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The API URL the client commands use: --server, else TRACEBATON_URL, else the default."""
    env = os.environ if environ is None else environ
    url = explicit or env.get(ENV_URL) or DEFAULT_URL
    if not url.startswith(("http://", "https://")):
        where = "--server" if explicit else ENV_URL
        raise ConfigurationError(f"{where}: {url!r} is not an http(s) URL; give e.g. {DEFAULT_URL}")
    return url.rstrip("/")


def parse_port(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise ConfigurationError(f"{name}: {text!r} is not a port; give 0-65535 (0 picks a free one)")
    return value


def parse_positive_int(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigurationError(f"{name}: {text!r} is not a positive whole number; give e.g. 1000000")
    return value


MIN_BODY_BYTES = 1024
MAX_BODY_BYTES = 2**31 - 1
"""gRPC takes a message size limit as a C int."""


def parse_body_limit(name: str, text: str) -> int:
    """A request size limit: enough for an export of a few spans, at most what gRPC takes."""
    value = parse_positive_int(name, text)
    if value < MIN_BODY_BYTES:
        raise ConfigurationError(
            f"{name}: {text!r} bytes would refuse nearly every export request (one of a few spans "
            f"is hundreds of bytes); give at least {MIN_BODY_BYTES} (the default is "
            f"{DEFAULT_MAX_BODY_BYTES}, 32 MiB)")
    if value > MAX_BODY_BYTES:
        raise ConfigurationError(
            f"{name}: {text!r} is more than gRPC takes as a message size; give at most "
            f"{MAX_BODY_BYTES} (2 GiB - 1)")
    return value


def parse_log_level(name: str, text: str) -> str:
    level = text.strip().lower()
    if level not in LOG_LEVELS:
        raise ConfigurationError(f"{name}: {text!r} is not a log level; give one of {', '.join(LOG_LEVELS)}")
    return level


def parse_jaeger_ui_dir(name: str, text: str) -> str:
    """A directory holding a built Jaeger UI (its index.html); what is in that file is checked
    when the server prepares it."""
    if not os.path.isdir(text):
        raise ConfigurationError(
            f"{name}: {text!r} is not a directory; give the directory a Jaeger UI build wrote "
            "(jaeger-ui's packages/jaeger-ui/build)")
    if not os.path.isfile(os.path.join(text, "index.html")):
        raise ConfigurationError(
            f"{name}: {text!r} holds no index.html, so it is not a built Jaeger UI; build jaeger-ui "
            "and give its packages/jaeger-ui/build")
    return text


def parse_jaeger_ui_url(name: str, text: str) -> str:
    """An http(s) URL of a Jaeger UI, without query or fragment (the trace path goes after it);
    returned without its trailing slash."""
    parts = urllib.parse.urlsplit(text.strip())
    problem = None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        problem = "is not an http(s) URL with a host"
    elif parts.query or parts.fragment:
        problem = "has a query or fragment, and /trace/<id> is appended to it"
    elif parts.username or parts.password:
        problem = "carries credentials, which every dashboard page would show"
    if problem:
        raise ConfigurationError(
            f"{name}: {text[:200]!r} {problem}; give the address Jaeger UI answers at, "
            "e.g. http://jaeger:16686 or https://tracing.example.com/jaeger")
    return urllib.parse.urlunsplit(parts).rstrip("/")


def _db_store(name: str, text: str) -> str:
    if not text:
        raise ConfigurationError(f"{name}: the DuckDB file name is empty; give a path or :memory:")
    return "duckdb:" + text


def _count(name: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ConfigurationError(f"{name}: {text!r} is not a count; give 0 or more")
    return value


_ENV_FIELDS: dict[str, tuple[str, Any]] = {
    "host": (ENV_HOST, str),
    "grpc_port": (ENV_GRPC_PORT, lambda t: parse_port(ENV_GRPC_PORT, t)),
    "http_port": (ENV_HTTP_PORT, lambda t: parse_port(ENV_HTTP_PORT, t)),
    "api_port": (ENV_API_PORT, lambda t: parse_port(ENV_API_PORT, t)),
    "token": (ENV_TOKEN, str),
    "ingest_token": (ENV_INGEST_TOKEN, str),
    "retention_max_spans": (ENV_RETENTION_MAX_SPANS,
                            lambda t: parse_positive_int(ENV_RETENTION_MAX_SPANS, t)),
    "retention_max_age_ns": (ENV_RETENTION_MAX_AGE,
                             lambda t: parse_duration_ns(t, what=ENV_RETENTION_MAX_AGE)),
    "max_body_bytes": (ENV_MAX_BODY_BYTES, lambda t: parse_body_limit(ENV_MAX_BODY_BYTES, t)),
    "decode_workers": (ENV_DECODE_WORKERS, lambda t: _count(ENV_DECODE_WORKERS, t)),
    "max_pending_spans": (ENV_MAX_PENDING_SPANS,
                          lambda t: parse_positive_int(ENV_MAX_PENDING_SPANS, t)),
    "log_level": (ENV_LOG_LEVEL, lambda t: parse_log_level(ENV_LOG_LEVEL, t)),
    "clickhouse_password": (ENV_CLICKHOUSE_PASSWORD, str),
    "jaeger_ui_dir": (ENV_JAEGER_UI_DIR, lambda t: parse_jaeger_ui_dir(ENV_JAEGER_UI_DIR, t)),
    "jaeger_ui_url": (ENV_JAEGER_UI_URL, lambda t: parse_jaeger_ui_url(ENV_JAEGER_UI_URL, t)),
}


def _store_from(store: str | None, db: str | None, store_name: str, db_name: str) -> str | None:
    """One store from a URL and its DuckDB short form; both at once is a contradiction."""
    if store is not None and db is not None:
        raise ConfigurationError(
            f"{store_name} and {db_name} both name the store ({store!r}, {db!r}); give one: "
            f"{db_name} FILE is short for {store_name} duckdb:FILE")
    if db is not None:
        return _db_store(db_name, db)
    return store


def server_settings(environ: Mapping[str, str] | None = None, *,
                    defaults: Mapping[str, Any] | None = None, **overrides: Any) -> ServerSettings:
    """Settings: keyword overrides (None means "not given") over the environment over
    `defaults` over the built-in defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = dict(defaults or {})
    for field, (variable, convert) in _ENV_FIELDS.items():
        text = env.get(variable)
        if text:
            values[field] = convert(text)
    env_store = _store_from(env.get(ENV_STORE) or None, env.get(ENV_DB) or None, ENV_STORE, ENV_DB)
    if env_store is not None:
        values["store"] = env_store
    given = _store_from(overrides.pop("store", None), overrides.pop("db", None), "--store", "--db")
    if given is not None:
        values["store"] = given
    for field, value in overrides.items():
        if field not in {f.name for f in dataclasses.fields(ServerSettings)}:
            raise TypeError(f"server_settings() got an unknown setting {field!r}")
        if value is not None:
            values[field] = value
    return ServerSettings(**values)
