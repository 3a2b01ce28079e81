"""Decoding in worker processes, so that it never holds the GIL the writer needs.

DuckDB's Python client takes the GIL back after every execution task to check for Ctrl-C.
While another thread of the same process decodes OTLP in Python, each of those checks
waits for a GIL switch, and a commit takes several times as long. A worker process
decodes into Arrow IPC instead; the server process only moves buffers and writes.

Each worker has a socket pair of its own. Requests are pipelined: receiving threads write
bodies into a worker's socket as they come, so the worker never waits for the server to
hand it the next one, and one reading thread per worker takes the columns back in order.
Buffers go out and in with scatter/gather socket calls and land in Arrow's allocator, so
a request's bytes are copied once each way and nothing is pickled but a few small values.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import multiprocessing
import pickle
import socket
import struct
import threading
from concurrent.futures import Future
from typing import Any

import pyarrow as pa

from tracebaton import OtlpDecodeError, StoreError, StoreSaturatedError

from ._columns import SpanBatch, span_batch
from ._decode import protobuf_body
from ._protocol import JSON, PROTOBUF

log = logging.getLogger("tracebaton.collector")

_PROTOBUF, _JSON = b"p", b"j"
_OK, _DECODE_ERROR, _FAILED = b"o", b"d", b"f"
_REQUEST = struct.Struct("<cI")  # content type, body length
_REPLY = struct.Struct("<cIII")  # outcome, small values' length, spans' IPC length, links' IPC length
# Room for a few requests in flight each way, so that neither side waits on the other.
_SOCKET_BUFFER = 4 << 20
_WARM_UP = b""  # an empty ExportTraceServiceRequest


def _ipc(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _receive_into(sock: socket.socket, buffer: Any) -> None:
    view = memoryview(buffer)
    while view:
        received = sock.recv_into(view)
        if not received:
            raise EOFError("the other end closed the connection")
        view = view[received:]


def _receive(sock: socket.socket, size: int) -> bytearray:
    buffer = bytearray(size)
    _receive_into(sock, buffer)
    return buffer


def _send(sock: socket.socket, parts: list[Any]) -> None:
    views = [memoryview(part).cast("B") for part in parts if len(part)]
    while views:
        sent = sock.sendmsg(views)
        while views and sent >= len(views[0]):
            sent -= len(views[0])
            views.pop(0)
        if views and sent:
            views[0] = views[0][sent:]


def _decode_reply(body: bytearray, content_type: bytes) -> list[Any]:
    try:
        batch = span_batch(protobuf_body(body, JSON if content_type == _JSON else PROTOBUF))
    except OtlpDecodeError as error:
        text = str(error).encode()
        return [_REPLY.pack(_DECODE_ERROR, len(text), 0, 0), text]
    except Exception as error:  # the server must hear of it; the worker stays up
        text = f"{type(error).__name__}: {error}".encode()
        return [_REPLY.pack(_FAILED, len(text), 0, 0), text]
    spans = _ipc(batch.spans)
    links = _ipc(batch.links) if batch.links is not None else b""
    small = pickle.dumps((batch.resources, batch.scopes, batch.trace_ids, batch.rejected_spans,
                          batch.rejection_message), protocol=pickle.HIGHEST_PROTOCOL)
    return [_REPLY.pack(_OK, len(small), spans.size, len(links)), small, spans, links]


def _serve_decoding(sock: socket.socket) -> None:
    """A worker's life: decode what arrives, in order, until the server closes its end."""
    with sock:
        while True:
            try:
                content_type, size = _REQUEST.unpack(_receive(sock, _REQUEST.size))
                reply = _decode_reply(_receive(sock, size), content_type)
                _send(sock, reply)
            except (EOFError, OSError):
                return


class _Worker:
    """One decoding process: requests go in order, replies come back in the same order."""

    def __init__(self, context: Any, on_exit: Any) -> None:
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for end in (self.sock, theirs):
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
        self.process = context.Process(target=_serve_decoding, args=(theirs,),
                                       name="tracebaton-decode", daemon=True)
        self.process.start()
        theirs.close()  # so that the worker sees EOF when this end closes, and not before
        self._send_lock = threading.Lock()
        self._waiting: collections.deque[Future[SpanBatch]] = collections.deque()
        self._on_exit = on_exit
        self.broken = False
        self._reader = threading.Thread(target=self._read_replies, name="tracebaton-decode-replies",
                                        daemon=True)
        self._reader.start()
        # A first request, so that the worker's imports are done before an exporter waits on
        # it; what is sent meanwhile queues behind it, in order.
        self._warm_up = self.submit(_WARM_UP, PROTOBUF)

    @property
    def warm(self) -> bool:
        return self._warm_up.done() and self._warm_up.exception() is None and not self.broken

    @property
    def outstanding(self) -> int:
        return len(self._waiting)

    def submit(self, body: bytes, content_type: str) -> Future[SpanBatch]:
        future: Future[SpanBatch] = Future()
        kind = _JSON if content_type == JSON else _PROTOBUF
        with self._send_lock:
            if self.broken:
                raise EOFError("the worker is gone")
            self._waiting.append(future)
            try:
                _send(self.sock, [_REQUEST.pack(kind, len(body)), body])
            except OSError:
                self.broken = True
                raise
        return future

    def _read_replies(self) -> None:
        try:
            while True:
                outcome, small_size, spans_size, links_size = _REPLY.unpack(
                    _receive(self.sock, _REPLY.size))
                future = self._waiting.popleft()
                if outcome != _OK:
                    future.set_exception(self._error(outcome, bytes(_receive(self.sock, small_size))))
                    continue
                small = pickle.loads(_receive(self.sock, small_size))
                # Arrow's allocator keeps freed memory for the next request: no page faults
                # for fresh buffers on every reply.
                spans = pa.allocate_buffer(spans_size)
                _receive_into(self.sock, spans)
                links = None
                if links_size:
                    links = pa.allocate_buffer(links_size)
                    _receive_into(self.sock, links)
                resources, scopes, trace_ids, rejected, message = small
                future.set_result(SpanBatch(
                    pa.ipc.open_stream(spans).read_all(),
                    pa.ipc.open_stream(links).read_all() if links is not None else None,
                    resources, scopes, trace_ids, rejected, message))
        except (EOFError, OSError):
            pass
        with self._send_lock:
            self.broken = True
            waiting, self._waiting = list(self._waiting), collections.deque()
        self._on_exit(self)  # replaced first, so that the exporters' retries find a worker
        for future in waiting:
            future.set_exception(StoreSaturatedError(
                "a decoding worker stopped unexpectedly and was replaced; retry in 1 s",
                retry_after_s=1.0))

    @staticmethod
    def _error(outcome: bytes, text: bytes) -> Exception:
        if outcome == _DECODE_ERROR:
            return OtlpDecodeError(text.decode())
        return StoreError(f"decoding failed in a worker: {text.decode()}")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self._reader.join(5)
        self.sock.close()


class DecodePool:
    """Decoding processes; `decode` blocks the calling thread, not the GIL."""

    def __init__(self, workers: int) -> None:
        self._size = workers
        # spawn: workers start from a clean interpreter, not a fork of a threaded server.
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> DecodePool:
        """Spawns the workers and returns at once; each is warm once its imports are done
        (about a second), and `warm` says whether one is."""
        with self._lock:
            self._workers = [_Worker(self._context, self._worker_exited) for _ in range(self._size)]
        return self

    @property
    def warm(self) -> bool:
        """Whether a worker has its imports done: until then a caller that can decode in its
        own process does, instead of waiting a second behind a worker's start."""
        with self._lock:
            return any(worker.warm for worker in self._workers)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.close()

    def decode(self, body: bytes, content_type: str) -> SpanBatch:
        """Columns for a request body; raises OtlpDecodeError for a body that does not decode."""
        with self._lock:
            candidates = [worker for worker in self._workers if not worker.broken]
        if not candidates:
            raise StoreSaturatedError("no decoding worker is running (the server is stopping or "
                                      "replacing one); retry in 1 s", retry_after_s=1.0)
        warm = [worker for worker in candidates if worker.warm]
        worker = min(warm or candidates, key=lambda w: w.outstanding)
        try:
            future = worker.submit(body, content_type)
        except (EOFError, OSError):
            raise StoreSaturatedError(
                "a decoding worker stopped unexpectedly and is being replaced; retry in 1 s",
                retry_after_s=1.0) from None
        return future.result()

    def _worker_exited(self, worker: _Worker) -> None:
        """Called on a worker's reading thread once its socket closed."""
        with self._lock:
            if self._closed or worker not in self._workers:
                return
            log.warning("a decoding worker (pid %s) stopped with exit code %s; starting another",
                        worker.process.pid, worker.process.exitcode)
            self._workers.remove(worker)
            self._workers.append(_Worker(self._context, self._worker_exited))
        threading.Thread(target=worker.close, daemon=True).start()
