"""The ClickHouse store (DESIGN §3b): spans in the OpenTelemetry Collector's `otel_traces`,
read and written through clickhouse-connect — a ClickHouse server over HTTP
(`clickhouse://`, `clickhouses://`), or ClickHouse's engine in this process through
clickhouse-connect's chdb backend (`chdb:PATH`).

The Collector's `clickhouse` exporter (or tracebaton's own receivers, through the shared
`IngestQueue`) writes the rows. tracebaton adds only `tracebaton_*` tables: arrivals and
links fed by materialized views, pinned copies, recorded runs.

`wait` cannot be woken by another process's insert: it polls `tracebaton_arrivals`, from
25 ms backing off to 250 ms while nothing arrives; an insert by this process's own writer
wakes its waiters at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import shutil
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from tracebaton import ConfigurationError, StoreClosedError, StoreError

from ._addresses import parse_call_target
from ._clickhouse_reads import ClickHouseReads
from ._clickhouse_rows import RowBatch, arrow_rows, exporter_rows, row_batch
from ._clickhouse_runs import ClickHouseRuns
from ._clickhouse_schema import (
    DEFAULT_TRACES_TABLE,
    OPERATIONS_FILLED,
    Tables,
    check_traces_columns,
    describe,
    exporter_ddl,
    missing_table_error,
    operations_backfill,
    own_ddl,
)
from ._decode import protobuf_body
from ._decode_pool import DecodePool
from ._ids import trace_id_bytes
from ._ingest_queue import IngestQueue
from ._model import (
    IngestResult,
    Operation,
    RunQuery,
    RunRecord,
    RunSummary,
    StoreCapabilities,
    StoredSpan,
    TraceQuery,
    TraceSummary,
    WaitCursor,
)
from ._protocol import PROTOBUF

log = logging.getLogger("tracebaton.collector")

POLL_FIRST_S = 0.025
POLL_MAX_S = 0.250
_POLL_BACKOFF = 1.5
LATE_WINDOW_S = 30
_OLDEST_SPAN_FOR_S = 60.0
"""How long an insert may take between its materialized views' `now64()` and its rows
becoming visible: rows stamped up to this long before a cursor are watched for too."""
_INSTALL_CLICKHOUSE = "pip install 'tracebaton[clickhouse]'"
_INSTALL_CHDB = "pip install 'tracebaton[chdb]'"
_QUERY_OPTIONS = ("database", "traces_table")


@dataclasses.dataclass(frozen=True, slots=True)
class ClickHouseLocation:
    """A parsed `clickhouse://[user@]host:8123/database`, `clickhouses://…` or
    `chdb:PATH[?database=…]` URL; `?traces_table=` names the exporter's table
    (its `traces_table_name` option)."""

    url: str
    chdb_path: str | None
    host: str
    port: int
    secure: bool
    username: str
    tables: Tables

    @property
    def where(self) -> str:
        if self.chdb_path is not None:
            return f"chdb data directory {self.chdb_path}"
        return f"ClickHouse at {'https' if self.secure else 'http'}://{self.host}:{self.port}"


def parse_clickhouse_url(url: str) -> ClickHouseLocation:
    def refuse(problem: str) -> ConfigurationError:
        return ConfigurationError(
            f"store URL {url!r}: {problem}; give clickhouse://[user@]host:8123/database, "
            "clickhouses://[user@]host:8443/database or chdb:PATH (options: ?traces_table=otel_traces, "
            "and for chdb ?database=default)")

    chdb = url.startswith("chdb:")
    parts = urllib.parse.urlsplit(url.replace("chdb:", "chdb://", 1) if chdb and not url.startswith("chdb://")
                                  else url)
    options = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(options) - set(_QUERY_OPTIONS))
    if unknown:
        raise refuse(f"unknown option {unknown[0]!r}")
    traces_table = options.get("traces_table", [DEFAULT_TRACES_TABLE])[-1]
    if not traces_table:
        raise refuse("traces_table is empty")
    if chdb:
        path = parts.netloc + parts.path
        if not path:
            raise refuse("names no data directory")
        database = options.get("database", ["default"])[-1] or "default"
        return ClickHouseLocation(url, path, "", 0, False, "", Tables(database, traces_table))
    if "database" in options:
        raise refuse("the database is the URL's path (clickhouse://host:8123/database), not ?database=")
    if parts.password is not None:
        raise refuse("it holds a password, which would show in the process list; set the password in "
                     "the environment variable TRACEBATON_CLICKHOUSE_PASSWORD instead")
    try:
        port = parts.port
    except ValueError:
        raise refuse("its port is not a number") from None
    if not parts.hostname:
        raise refuse("names no host")
    secure = parts.scheme == "clickhouses"
    database = urllib.parse.unquote(parts.path.strip("/")) or "default"
    if "/" in database:
        raise refuse(f"{database!r} is not one database name")
    username = urllib.parse.unquote(parts.username or "default")
    return ClickHouseLocation(url, None, parts.hostname, port or (8443 if secure else 8123), secure,
                              username, Tables(database, traces_table))


def _brief(error: BaseException) -> str:
    return " ".join(str(error).split())[:300]


def _driver() -> Any:
    try:
        import clickhouse_connect
    except ImportError:
        raise ConfigurationError(
            f"the ClickHouse store needs clickhouse-connect, which is not installed: {_INSTALL_CLICKHOUSE}"
        ) from None
    return clickhouse_connect


def _held_elsewhere(path: str) -> bool:
    """Whether another process holds ClickHouse's lock on a data directory (its `status` file)."""
    import fcntl  # POSIX only, as chdb is

    try:
        fd = os.open(os.path.join(path, "status"), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


@contextlib.contextmanager
def _quiet_engine(chdb: bool) -> Iterator[None]:
    """ClickHouse's engine writes its own start-up errors to file descriptor 2 before it raises;
    while it opens, those go to a scratch file, so `serve` prints one line of its own."""
    if not chdb:
        yield
        return
    with tempfile.TemporaryFile() as scratch:
        saved = os.dup(2)
        os.dup2(scratch.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _connect_error(location: ClickHouseLocation, error: BaseException) -> ConfigurationError:
    text = " ".join(str(error).split())
    if location.chdb_path is not None:
        held = "Cannot lock file" in text or "already running" in text or _held_elsewhere(location.chdb_path)
        if held:
            return ConfigurationError(
                f"{location.where} is held by another process (ClickHouse's engine allows one process per "
                "data directory); stop that process, or give this one another chdb:PATH")
        if "different path" in text:
            return ConfigurationError(
                f"{location.where}: this process already runs ClickHouse's engine on another data directory, "
                "and chdb allows one per process; use that path (a database per store: ?database=…)")
        return ConfigurationError(f"{location.where} could not be opened ({text[:300]})")
    if "AUTHENTICATION_FAILED" in text or "Code: 516" in text or "Authentication failed" in text:
        return ConfigurationError(
            f"{location.where} refused user {location.username!r}: wrong user or password; set the password "
            "in the environment variable TRACEBATON_CLICKHOUSE_PASSWORD")
    reason = next((why for marker, why in _NETWORK_REASONS if marker in text), text[:200])
    return ConfigurationError(
        f"{location.where} does not answer ({reason}); start ClickHouse or correct the host and port "
        f"in the store URL {location.url}")


_NETWORK_REASONS = (
    ("Connection refused", "connection refused"),
    ("Name or service not known", "no such host"),
    ("nodename nor servname", "no such host"),
    ("timed out", "timed out"),
    ("SSLError", "TLS handshake failed: is the port the server's HTTPS port?"),
    ("Connection reset", "connection reset"),
)


@contextlib.contextmanager
def _quiet_driver() -> Iterator[None]:
    """The driver logs its retries as warnings before it raises; the one-line error says it all."""
    loggers = [logging.getLogger(name) for name in ("urllib3.connectionpool", "clickhouse_connect")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class ClickHouseSpanStore:
    """A `SpanStore` over the Collector's `otel_traces` schema. One clickhouse-connect client
    per thread (a client is not safe to share). Lifecycle as every store's."""

    capabilities = StoreCapabilities(
        typed_attributes=False, remote_parent_flags=False, retention_by_span_count=False, instant_wake=False)

    def __init__(self, location: ClickHouseLocation, *, password: str | None = None,
                 create_schema: bool = False, max_pending_spans: int = 256 * 1024,
                 max_runs: int = 100_000, decode_workers: int = 0) -> None:
        self.location = location
        self.tables = location.tables
        self._password = password or ""
        self._create_schema = create_schema
        self._decode_workers = decode_workers
        self._decode_pool: DecodePool[RowBatch] | None = None
        self._queue: IngestQueue[RowBatch] = IngestQueue(
            self._commit, on_committed=self._committed, max_pending_spans=max_pending_spans,
            name="tracebaton-clickhouse-writer")
        self._runs = ClickHouseRuns(self.tables, self._client, max_runs=max_runs)
        self._local = threading.local()
        self._clients: list[Any] = []
        self._clients_lock = threading.Lock()
        self._scope_columns = True
        self._pins: dict[str, int] = {}
        self._copied: set[str] = set()
        self._pins_lock = threading.Lock()
        self._traces_have_ttl = False
        self._oldest_span: tuple[float, int] | None = None  # (when asked, monotonic; its start, s)
        # this process's own inserts wake its waiters at once
        self._wake = threading.Condition()
        self._wake_sequence = 0
        self._started = False
        self._closed = False

    # clients -----------------------------------------------------------------------------

    def _new_client(self) -> Any:
        driver = _driver()
        location = self.location
        if location.chdb_path is not None:
            try:
                import chdb  # noqa: F401  (only to say what to install)
            except ImportError:
                raise ConfigurationError(
                    f"the chdb: store needs ClickHouse's engine (chdb-core), which is not installed: "
                    f"{_INSTALL_CHDB}") from None
            return driver.get_client(dsn=f"chdb://{location.chdb_path}")
        return driver.get_client(
            host=location.host, port=location.port, username=location.username, password=self._password,
            secure=location.secure, autogenerate_session_id=False, connect_timeout=5,
            send_receive_timeout=60)

    def _client(self) -> Any:
        if self._closed:
            raise StoreClosedError("the store is shut down")
        client = getattr(self._local, "client", None)
        if client is None:
            try:
                client = self._new_client()
            except ConfigurationError:
                raise
            except Exception as error:
                raise StoreError(str(_connect_error(self.location, error))) from None
            with self._clients_lock:
                self._clients.append(client)
            self._local.client = client
        return client

    def _reads(self) -> ClickHouseReads:
        return ClickHouseReads(self._client(), self.tables, scope_columns=self._scope_columns,
                               pinned=self._traces_have_ttl)

    def _read(self, what: Callable[[ClickHouseReads], Any]) -> Any:
        reads = self._reads()
        try:
            return what(reads)
        except (StoreError, ValueError):
            raise
        except Exception as error:  # a ClickHouse that failed or went away: the API says 503
            raise StoreError(f"{self.location.where} failed a read: {_brief(error)}") from None

    # lifecycle ---------------------------------------------------------------------------

    def start(self) -> ClickHouseSpanStore:
        if self._closed:
            raise StoreClosedError("the store is shut down; open a new one")
        if self._started:
            return self
        path = self.location.chdb_path
        # chdb makes its data directory when it opens it: a start refused for want of tables
        # must not leave a stray database behind where the user typed a path
        made = path is not None and not os.path.exists(path)
        try:
            self._connect_and_prepare()
        except BaseException:
            if made and path is not None:
                self._close_clients()
                shutil.rmtree(path, ignore_errors=True)
            raise
        if self._decode_workers:  # after _prepare: the rows' columns depend on the table's
            self._decode_pool = DecodePool(
                self._decode_workers, exporter_rows(with_scope_columns=self._scope_columns)).start()
        self._queue.start()
        self._started = True
        return self

    def _connect_and_prepare(self) -> None:
        try:
            with _quiet_driver(), _quiet_engine(self.location.chdb_path is not None):
                client = self._new_client()
        except ConfigurationError:
            raise
        except Exception as error:
            raise _connect_error(self.location, error) from None
        with self._clients_lock:
            self._clients.append(client)
        self._local.client = client
        try:
            self._prepare(client)
        except ConfigurationError:
            raise
        except Exception as error:
            raise ConfigurationError(
                f"{self.location.where}: preparing tracebaton's tables failed "
                f"({' '.join(str(error).split())[:300]})") from None

    def _prepare(self, client: Any) -> None:
        t = self.tables

        def existing() -> set[str]:
            return {str(r[0]) for r in client.query(
                "SELECT name FROM system.tables WHERE database = {db:String}",
                parameters={"db": t.database}).result_rows}

        def checked() -> frozenset[str]:
            return check_traces_columns(t, describe(client.query(f"DESCRIBE TABLE {t.traces}").result_rows))

        if self._create_schema:
            # a traces table of another shape is refused before any DDL runs against it
            if t.traces_table in existing():
                checked()
            for ddl in exporter_ddl(t):
                client.command(ddl)
        present = existing()
        for name in (t.traces_table, t.trace_id_ts_name):
            if name not in present:
                raise missing_table_error(t, name)
        self._scope_columns = checked() >= {"ScopeName", "ScopeVersion"}
        for ddl in own_ddl(t):
            client.command(ddl)
        tables = {str(name): (str(engine), str(comment)) for name, engine, comment in client.query(
            "SELECT name, engine_full, comment FROM system.tables WHERE database = {db:String} "
            "AND name IN {names:Array(String)}",
            parameters={"db": t.database, "names": [t.traces_table, t.own_name("operations")]}).result_rows}
        # pins copy a trace's rows only where TTL could drop them (the exporter's `ttl` option)
        self._traces_have_ttl = " TTL " in f" {tables.get(t.traces_table, ('', ''))[0]} "
        if tables.get(t.own_name("operations"), ("", ""))[1] != OPERATIONS_FILLED:
            for statement in operations_backfill(t):
                client.command(statement)

    def __enter__(self) -> ClickHouseSpanStore:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._queue.flush(timeout_millis / 1000)

    def shutdown(self) -> None:
        if self._closed:
            return
        if self._started:
            self._queue.shutdown()
        if self._decode_pool is not None:
            self._decode_pool.shutdown()
        self._runs.shutdown()
        self._closed = True
        with self._wake:
            self._wake.notify_all()
        self._close_clients()

    def _close_clients(self) -> None:
        with self._clients_lock:
            for client in self._clients:
                try:
                    client.close()
                except Exception:  # closing what failed already: nothing more to do
                    log.debug("closing a ClickHouse client failed", exc_info=True)
            self._clients.clear()

    # ingest ------------------------------------------------------------------------------

    def ingest(self, body: bytes, content_type: str = PROTOBUF) -> Future[IngestResult]:
        if self._closed:
            raise StoreClosedError("the store is shut down; nothing more is accepted")
        with self._queue.announce():
            if self._decode_pool is not None and self._decode_pool.warm:
                batch = self._decode_pool.decode(body, content_type)
            else:
                batch = row_batch(protobuf_body(body, content_type), with_scope_columns=self._scope_columns)
            return self._queue.submit(batch)

    @property
    def pending_spans(self) -> int:
        return self._queue.pending_spans

    def _commit(self, batches: Sequence[RowBatch]) -> None:
        rows = arrow_rows(batches, with_scope_columns=self._scope_columns)
        if rows.num_rows:
            # a synchronous insert: it returns once the part is written, and the views ran
            self._client().insert_arrow(
                self.tables.traces_table, rows, database=self.tables.database,
                settings={"async_insert": 0})

    def _committed(self, trace_ids: frozenset[bytes]) -> None:
        with self._wake:
            self._wake_sequence += 1
            self._wake.notify_all()

    # reads -------------------------------------------------------------------------------

    def trace(self, trace_id: str) -> list[StoredSpan]:
        key = trace_id_bytes(trace_id).hex()
        spans: list[StoredSpan] = self._read(lambda r: r.trace(key))
        return spans

    def traces(self, query: TraceQuery) -> list[TraceSummary]:
        summaries: list[TraceSummary] = self._read(lambda r: r.traces(query))
        return summaries

    def roots(self, target: str, start_unix_nano: int, end_unix_nano: int) -> list[StoredSpan]:
        address = parse_call_target(target)
        service = None if address is not None else target
        spans: list[StoredSpan] = self._read(
            lambda r: r.roots(service, address, start_unix_nano, end_unix_nano))
        return spans

    def linked(self, trace_id: str) -> list[str]:
        key = trace_id_bytes(trace_id).hex()
        linked: list[str] = self._read(lambda r: r.linked(key))
        return linked

    def _oldest_span_start(self, reads: ClickHouseReads) -> int:
        """Which operations are listed depends on it (`ClickHouseReads.services`); it changes
        only when TTL drops a part, so it is asked once a minute, not with every list."""
        asked = self._oldest_span
        now = time.monotonic()
        if asked is None or now - asked[0] > _OLDEST_SPAN_FOR_S:
            asked = (now, reads.oldest_span_start())
            self._oldest_span = asked
        return asked[1]

    def services(self) -> list[str]:
        services: list[str] = self._read(lambda r: r.services(self._oldest_span_start(r)))
        return services

    def operations(self, service: str) -> list[Operation]:
        operations: list[Operation] = self._read(
            lambda r: r.operations(service, self._oldest_span_start(r)))
        return operations

    def span_count(self) -> int:
        """Rows of the traces table, re-sent copies included."""
        count: int = self._read(lambda r: r.span_count())
        return count

    # waits -------------------------------------------------------------------------------

    def _arrival_sql(self, watched: bool) -> str:
        t = self.tables
        mine = "T IN {ids:Array(String)}" if watched else "1"
        since = f"fromUnixTimestamp64Micro({{w:Int64}}) - toIntervalSecond({LATE_WINDOW_S})"
        recent = f"now64(6) - toIntervalSecond({LATE_WINDOW_S})"
        return f"""
            SELECT toUnixTimestamp64Micro(now64(6)),
                   countIf(InsertTime > fromUnixTimestamp64Micro({{w:Int64}}) AND {mine}),
                   countIf(InsertTime > {since} AND InsertTime <= fromUnixTimestamp64Micro({{w:Int64}})),
                   countIf(InsertTime > {recent} AND InsertTime <= now64(6))
            FROM (SELECT TraceId AS T, InsertTime FROM {t.arrivals}
                  WHERE InsertTime > least(fromUnixTimestamp64Micro({{w:Int64}}), now64(6))
                                     - toIntervalSecond({LATE_WINDOW_S})
                  UNION ALL
                  SELECT LinkedTraceId AS T, InsertTime FROM {t.links}
                  WHERE InsertTime > least(fromUnixTimestamp64Micro({{w:Int64}}), now64(6))
                                     - toIntervalSecond({LATE_WINDOW_S}))"""

    def _poll(self, watched: Sequence[str] | None, position: tuple[int, int]) -> tuple[bool, tuple[int, int]]:
        """Did anything for `watched` arrive after `position`? And the position now.

        A position is the server's clock when it was taken (µs) and how many arrival rows
        were stamped in the late window before it: a row stamped before the position that
        becomes visible only after it (a long insert) raises that count, and wakes the
        waiter rather than being missed."""
        watermark, late = position
        params: dict[str, Any] = {"w": watermark}
        if watched is not None:
            params["ids"] = list(watched)
        rows = self._client().query(self._arrival_sql(watched is not None), parameters=params).result_rows
        now_us, fresh, late_then, late_now = (int(v) for v in rows[0])
        return fresh > 0 or late_then > late, (now_us, late_now)

    def cursor(self) -> WaitCursor:
        if self._closed:
            return WaitCursor(self, (0, 0))
        _, position = self._read_poll(None, (0, 0))
        return WaitCursor(self, position)

    def _read_poll(self, watched: Sequence[str] | None,
                   position: tuple[int, int]) -> tuple[bool, tuple[int, int]]:
        try:
            return self._poll(watched, position)
        except (StoreError, ValueError):
            raise
        except Exception as error:
            raise StoreError(
                f"{self.location.where} failed to answer a wait: {_brief(error)}") from None

    def wait(self, trace_ids: Iterable[str] | None, until: float,
             after: WaitCursor | None = None) -> WaitCursor | None:
        watched = None if trace_ids is None else sorted({trace_id_bytes(t).hex() for t in trace_ids})
        if self._closed:
            return None
        position = self.cursor().position_for(self) if after is None else after.position_for(self)
        assert isinstance(position, tuple)
        interval = POLL_FIRST_S
        while True:
            with self._wake:
                sequence = self._wake_sequence
            if self._woken(sequence):  # shut down meanwhile
                return None
            arrived, now = self._read_poll(watched, position)
            if arrived:
                return WaitCursor(self, now)
            remaining = until - time.monotonic()
            if remaining <= 0:
                return None
            with self._wake:
                woken = self._wake.wait_for(
                    functools.partial(self._woken, sequence), min(interval, remaining))
            # an insert of our own re-polls at once; otherwise back off while nothing arrives
            interval = POLL_FIRST_S if woken else min(interval * _POLL_BACKOFF, POLL_MAX_S)

    def _woken(self, sequence: int) -> bool:
        return self._closed or self._wake_sequence != sequence

    # pins --------------------------------------------------------------------------------

    def pin(self, trace_id: str) -> None:
        key = trace_id_bytes(trace_id).hex()
        with self._pins_lock:
            self._pins[key] = self._pins.get(key, 0) + 1
            copy = self._traces_have_ttl and key not in self._copied
            if copy:
                self._copied.add(key)
        if copy:
            t = self.tables
            self._read(lambda r: self._client().command(
                f"INSERT INTO {t.pinned} SELECT * FROM {t.traces} WHERE TraceId = {{tid:String}}",
                parameters={"tid": key}))

    def unpin(self, trace_id: str) -> None:
        key = trace_id_bytes(trace_id).hex()
        with self._pins_lock:
            count = self._pins.get(key, 0) - 1
            if count > 0:
                self._pins[key] = count
                return
            self._pins.pop(key, None)
            copied = key in self._copied
            self._copied.discard(key)
        if copied:
            t = self.tables
            self._read(lambda r: self._client().command(
                f"DELETE FROM {t.pinned} WHERE TraceId = {{tid:String}}", parameters={"tid": key}))

    # recorded flow results ---------------------------------------------------------------

    def record_run(self, result: Mapping[str, Any], *, test_id: str | None = None,
                   session_id: str | None = None) -> str:
        if self._closed:
            raise StoreClosedError("the store is shut down")
        return self._runs.record(result, test_id=test_id, session_id=session_id).run_id

    def runs(self, query: RunQuery) -> list[RunSummary]:
        runs: list[RunSummary] = self._read(lambda r: self._runs.runs(self._client(), query))
        return runs

    def run(self, run_id: str) -> RunRecord | None:
        record: RunRecord | None = self._read(lambda r: self._runs.run(self._client(), run_id))
        return record

    def on_run_recorded(self, listener: Callable[[RunSummary], None]) -> Callable[[], None]:
        return self._runs.subscribe(listener)
