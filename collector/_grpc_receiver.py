"""OTLP/gRPC: TraceService/Export on grpcio's server.

The handler takes the raw request bytes (no deserializer), so a body that does not parse
gets INVALID_ARGUMENT with a message instead of grpcio's generic failure. grpcio itself
inflates `grpc-encoding: gzip` and enforces the size limit on the inflated message.
"""

from __future__ import annotations

import collections
import logging
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from tracebaton import OtlpDecodeError, StoreError, StoreSaturatedError

from ._auth import UNAUTHORIZED, bearer_matches
from ._ingest import export_response
from ._listen import check_listenable
from ._protocol import PROTOBUF, SpanStore

log = logging.getLogger("tracebaton.collector")

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


# As grpc_status builds its own; grpc has no type information, hence the ignore.
class _Status(collections.namedtuple("_Status", ("code", "details", "trailing_metadata")),
              grpc.Status):  # type: ignore[misc]
    pass


def _unavailable(message: str, retry_after_s: float) -> Any:
    retry = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=int(retry_after_s),
                                          nanos=int(retry_after_s % 1 * 1e9)))
    detail = status_pb2.Status().details.add()
    detail.Pack(retry)
    status = rpc_status.to_status(
        status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message, details=[detail]))
    # The RetryInfo also on its own in the trailer named for its type: the OpenTelemetry
    # Python SDK reads the delay only there, and otherwise backs off 1, 2, 4, 8 s and gives
    # up (dropping the batch) once the next wait passes its export timeout.
    return _Status(status.code, status.details,
                   (*status.trailing_metadata, ("google.rpc.retryinfo-bin", retry.SerializeToString())))


class GrpcReceiver:
    def __init__(self, store: SpanStore, *, host: str, port: int, max_body_bytes: int,
                 max_workers: int = 32, ingest_token: str | None = None) -> None:
        self._store = store
        self._token = ingest_token
        self._address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._host = host
        self._port = port
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tracebaton-grpc"),
            options=[
                ("grpc.max_receive_message_length", max_body_bytes),
                ("grpc.so_reuseport", 0),
            ],
        )
        handler = grpc.unary_unary_rpc_method_handler(self._export)
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))
        self.port = 0

    def start(self, port_setting: str = "port") -> int:
        """Bind and serve; returns the bound port (useful with port 0). A `ConfigurationError`
        says why the address cannot be bound (`port_setting` names what chose the port)."""
        check_listenable(self._host, self._port, "OTLP/gRPC", port_setting)
        try:
            self.port = self._server.add_insecure_port(self._address)
        except RuntimeError as error:
            self.port = 0
            reason = str(error)
        else:
            reason = "the port is in use or the address is not local"
        if not self.port:
            raise OSError(f"OTLP/gRPC cannot listen on {self._address}: {reason}")
        self._server.start()
        return self.port

    def shutdown(self, grace_s: float = 5.0) -> None:
        self._server.stop(grace_s).wait()

    def _export(self, raw: bytes, context: grpc.ServicerContext) -> bytes:
        if self._token is not None:
            header = next((str(value) for key, value in context.invocation_metadata() or ()
                           if key == "authorization"), None)
            if not bearer_matches(header, self._token):
                context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHORIZED)
        try:
            result = self._store.ingest(raw, PROTOBUF).result()
        except OtlpDecodeError as error:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        except StoreSaturatedError as error:
            context.abort_with_status(_unavailable(str(error), error.retry_after_s))
        except StoreError as error:
            log.warning("OTLP/gRPC export not stored: %s", error)
            context.abort_with_status(_unavailable(str(error), 1.0))
        return bytes(export_response(result).SerializeToString())
