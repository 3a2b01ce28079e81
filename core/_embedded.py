"""`Collector`: a tracebaton server in this process, with the flow API over its store.

App layer: it wires the server (collector, API, dashboard) to the flow engine, which is
why it lives here and not in `tracebaton.assertions` (that would make the engine import
the server, which imports the API, which imports the engine).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tracebaton.assertions import EmbeddedBackend, FlowBackend, FlowHost

from ._config import ServerSettings
from ._errors import CollectorStateError
from ._server import ServerAddresses, TracebatonServer

if TYPE_CHECKING:
    from tracebaton.collector import SpanStore

NOT_STARTED = "not started"
RUNNING = "running"
SHUT_DOWN = "shut down"


class Collector(FlowHost):
    """A tracebaton collector in this process: OTLP receivers, store and API on free ports.

    `db` is a DuckDB file (":memory:" by default); `store` a store URL (`duckdb:PATH`, …)
    instead. Use it as `with Collector() as tb:`, or call `tb.start()` and later `tb.shutdown()`.
    `state` says where it is: "not started", "running" or "shut down". A shut-down
    collector may be started again; it gets new free ports, and a new store when `db` is
    ":memory:" (a file keeps what it held).
    """

    def __init__(
        self,
        db: str = ":memory:",
        *,
        store: str | None = None,
        host: str = "127.0.0.1",
        grpc_port: int = 0,
        http_port: int = 0,
        api_port: int = 0,
        token: str | None = None,
        ingest_token: str | None = None,
    ) -> None:
        super().__init__(ingest_token=ingest_token)
        self.settings = ServerSettings(
            store=store or f"duckdb:{db}",
            host=host,
            grpc_port=grpc_port,
            http_port=http_port,
            api_port=api_port,
            token=token,
            ingest_token=ingest_token,
        )
        self.state = NOT_STARTED
        self._server: TracebatonServer | None = None
        self._addresses: ServerAddresses | None = None
        self._embedded: EmbeddedBackend | None = None

    def start(self) -> Collector:
        """Bind the ports and open the store; returns self, running."""
        if self._server is not None:
            raise CollectorStateError(
                f"this Collector is already running (API at {self.addresses.api_url}); start it once, "
                "or call `tb.shutdown()` before starting it again",
                self.state,
            )
        server = TracebatonServer(self.settings)
        addresses = server.start()  # on failure (a port taken) the state stays what it was
        assert server.store is not None, "a started server has its store open"
        self._server, self._addresses = server, addresses
        self._embedded = EmbeddedBackend(
            server.store, otlp_http_endpoint=addresses.otlp_http_url, dashboard_url=addresses.api_url
        )
        self.state = RUNNING
        return self

    def shutdown(self) -> None:
        """Stop accepting, commit what was accepted, close the store. Safe to call twice."""
        if self._server is None:
            return
        server, self._server, self._addresses, self._embedded = self._server, None, None, None
        self.state = SHUT_DOWN
        server.shutdown()

    def _not_running(self, what: str) -> CollectorStateError:
        if self.state == SHUT_DOWN:
            where, fix = "was shut down (its `with` block ended, or `tb.shutdown()`)", "`tb.start()` again"
        else:
            where, fix = "is not started", "`tb.start()` first"
        return CollectorStateError(
            f"this Collector {where}, and {what} exist only while it runs; "
            f"use `with Collector() as tb:` or call {fix}",
            self.state,
        )

    @property
    def _backend(self) -> FlowBackend:
        if self._embedded is None:
            raise self._not_running("flows, checks, traces and sut_env()")
        return self._embedded

    @property
    def addresses(self) -> ServerAddresses:
        """Where it listens: `grpc`, `http`, `api_url`, `otlp_http_url`."""
        if self._addresses is None:
            raise self._not_running("its addresses")
        return self._addresses

    @property
    def store(self) -> SpanStore:
        if self._embedded is None:
            raise self._not_running("its store")
        return self._embedded.store

    def __enter__(self) -> Collector:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()


# Users meet it as tracebaton.Collector (the facade loads this module lazily).
Collector.__module__ = "tracebaton"
