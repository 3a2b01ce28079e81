"""One tracebaton server: the store, both OTLP receivers and the API, in this process.

`tracebaton serve` runs it until a signal; the pytest plugin embeds the same object.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._config import ServerSettings
from ._errors import ConfigurationError

if TYPE_CHECKING:
    from tracebaton.collector import SpanStore

log = logging.getLogger("tracebaton")


@dataclasses.dataclass(frozen=True, slots=True)
class ServerAddresses:
    host: str
    grpc_port: int
    http_port: int
    api_port: int

    def _hostport(self, port: int) -> str:
        return f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"

    @property
    def grpc(self) -> str:
        return self._hostport(self.grpc_port)

    @property
    def http(self) -> str:
        return self._hostport(self.http_port)

    @property
    def api_url(self) -> str:
        return f"http://{self._hostport(self.api_port)}"

    @property
    def otlp_http_url(self) -> str:
        return f"http://{self._hostport(self.http_port)}"

    def ready_line(self) -> str:
        return f"tracebaton: ready grpc={self.grpc} http={self.http} api={self.api_url}"


def _signalling_server(uvicorn: Any, config: Any, on_started: Any) -> Any:
    """A uvicorn server that says when it listens (uvicorn itself offers no event)."""

    class SignallingServer(uvicorn.Server):  # type: ignore[misc]
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            self.started = True
            on_started()

    return SignallingServer(config)


class TracebatonServer:
    """Lifecycle: `start()` binds everything and returns the addresses; `shutdown()`."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.store: SpanStore | None = None
        self.addresses: ServerAddresses | None = None
        self._grpc: Any = None
        self._uvicorn: list[Any] = []
        self._api_app: Any = None
        self._loop_thread: threading.Thread | None = None
        self._started = threading.Event()
        self._startup_error: BaseException | None = None

    def start(self) -> ServerAddresses:
        import uvicorn

        from tracebaton.api import create_app
        from tracebaton.collector import GrpcReceiver, StoreOptions, listen_socket, open_store, otlp_http_app

        s = self.settings
        store = open_store(s.store, StoreOptions(
            max_pending_spans=s.max_pending_spans,
            retention_max_spans=s.retention_max_spans,
            retention_max_age_ns=s.retention_max_age_ns,
            decode_workers=s.decode_workers,
            create_schema=s.create_schema,
            password=s.clickhouse_password,
        ))
        self.store = store.start()
        log.info("store %s started; it declares %s", s.store, store.capabilities)
        sockets = []
        try:
            sockets = [listen_socket(s.host, s.http_port, "OTLP/HTTP", "--http-port"),
                       listen_socket(s.host, s.api_port, "the API", "--api-port")]
            self._grpc = GrpcReceiver(
                store, host=s.host, port=s.grpc_port, max_body_bytes=s.max_body_bytes,
                ingest_token=s.ingest_token)
            grpc_port = self._grpc.start(port_setting="--grpc-port")
            apps = [
                otlp_http_app(store, max_body_bytes=s.max_body_bytes, ingest_token=s.ingest_token),
                create_app(store, otlp_grpc=f"{s.host}:{grpc_port}",
                           otlp_http_url=ServerAddresses(s.host, grpc_port, sockets[0].getsockname()[1], 0)
                           .otlp_http_url, token=s.token, max_import_bytes=s.max_body_bytes,
                           jaeger_ui=Path(s.jaeger_ui_dir) if s.jaeger_ui_dir else None,
                           jaeger_ui_url=s.jaeger_ui_url),
            ]
            self._api_app = apps[1]
            for app in apps:
                config = uvicorn.Config(app, log_level="warning", access_log=False,
                                        lifespan="off", timeout_graceful_shutdown=5)
                self._uvicorn.append(_signalling_server(uvicorn, config, self._one_started))
            self._loop_thread = threading.Thread(
                target=self._serve_http, args=(sockets,), name="tracebaton-http", daemon=True)
            self._loop_thread.start()
            self._started.wait()
            if self._startup_error is not None:
                raise self._startup_error
        except BaseException:
            for sock in sockets:
                sock.close()
            self.shutdown()
            raise
        self.addresses = ServerAddresses(
            s.host, grpc_port, sockets[0].getsockname()[1], sockets[1].getsockname()[1])
        return self.addresses

    def _serve_http(self, sockets: list[socket.socket]) -> None:
        async def main() -> None:
            await asyncio.gather(*(server.serve(sockets=[sock])
                                   for server, sock in zip(self._uvicorn, sockets, strict=True)))

        try:
            asyncio.run(main())
        except BaseException as error:  # surface to start(); never die silently
            self._startup_error = error
        finally:
            if not all(server.started for server in self._uvicorn) and self._startup_error is None:
                self._startup_error = ConfigurationError("the HTTP servers did not start; see the log")
            self._started.set()

    def _one_started(self) -> None:
        if all(server.started for server in self._uvicorn):
            self._started.set()

    def shutdown(self) -> None:
        """Stop accepting, finish what was accepted, commit, checkpoint, close."""
        if self._api_app is not None:
            self._api_app.state.close_streams()  # open live streams would hold up the graceful stop
        for server in self._uvicorn:
            server.should_exit = True
        if self._grpc is not None:
            self._grpc.shutdown()
            self._grpc = None
        if self._loop_thread is not None:
            self._loop_thread.join(10)
            self._loop_thread = None
        if self.store is not None:
            self.store.shutdown()
            self.store = None
