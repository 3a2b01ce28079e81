"""Decoding in worker processes, so that it never holds the GIL the writer needs.

What a worker makes of a body is a `Decoding`: the DuckDB store's columns (`SPAN_COLUMNS`)
or the ClickHouse store's exporter rows; either comes back as up to two Arrow tables and a
few small values.

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
import dataclasses
import logging
import os
import pickle
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar, overload

import pyarrow as pa

from tracebaton import OtlpDecodeError, StoreError, StoreSaturatedError

from ._columns import SpanBatch, span_batch
from ._decode import protobuf_body
from ._protocol import JSON, PROTOBUF

log = logging.getLogger("tracebaton.collector")

_PROTOBUF, _JSON = b"p", b"j"
_OK, _DECODE_ERROR, _FAILED = b"o", b"d", b"f"
_REQUEST = struct.Struct("<cI")  # content type, body length
_REPLY = struct.Struct("<cIII")  # outcome, small values' length, the two tables' IPC lengths
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


B = TypeVar("B")


@dataclasses.dataclass(frozen=True, slots=True)
class Decoding(Generic[B]):
    """What workers make of a request body. Both functions are module-level (or partials of
    them), since the decoding is handed to each worker process at its start."""

    decode: Callable[[bytes | bytearray, str], tuple[pa.Table, pa.Table | None, Any]]
    """In the worker: a body and its content type to the batch's tables and small values;
    raises OtlpDecodeError for a body that does not decode."""
    assemble: Callable[[pa.Table, pa.Table | None, Any], B]
    """In the server: the batch again from what `decode` returned."""


def _span_parts(body: bytes | bytearray, content_type: str) -> tuple[pa.Table, pa.Table | None, Any]:
    batch = span_batch(protobuf_body(body, content_type))
    return batch.spans, batch.links, (batch.resources, batch.scopes, batch.trace_ids, batch.rejected_spans,
                                      batch.rejection_message)


def _span_batch(spans: pa.Table, links: pa.Table | None, small: Any) -> SpanBatch:
    return SpanBatch(spans, links, *small)


SPAN_COLUMNS: Decoding[SpanBatch] = Decoding(_span_parts, _span_batch)
"""The DuckDB store's columns (`span_batch`)."""


def _decode_reply(decoding: Decoding[Any], body: bytearray, content_type: bytes) -> list[Any]:
    try:
        first, second, small_values = decoding.decode(body, JSON if content_type == _JSON else PROTOBUF)
    except OtlpDecodeError as error:
        text = str(error).encode()
        return [_REPLY.pack(_DECODE_ERROR, len(text), 0, 0), text]
    except Exception as error:  # the server must hear of it; the worker stays up
        text = f"{type(error).__name__}: {error}".encode()
        return [_REPLY.pack(_FAILED, len(text), 0, 0), text]
    tables = _ipc(first)
    more = _ipc(second) if second is not None else b""
    small = pickle.dumps(small_values, protocol=pickle.HIGHEST_PROTOCOL)
    return [_REPLY.pack(_OK, len(small), tables.size, len(more)), small, tables, more]


# A worker is a fresh interpreter that imports only tracebaton: not a fork of a threaded
# server, and not multiprocessing's spawn, which imports the parent's __main__ again (a
# user's script without a __main__ guard would start itself in every worker).
# A stop signal to every process of the server's (systemd's control group, `kill 0`) is the
# server's to handle: it closes the socket once it has stopped, and the worker ends then,
# quietly. Ignored before the imports, which take a second.
_BOOTSTRAP = ("import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
              "signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "from tracebaton.collector._decode_pool import worker_main; worker_main(int(sys.argv[1]))")
_LENGTH = struct.Struct("<I")
_START_FAILURES = 3
"""Workers in a row that stop before they are warm, after which no more are started."""


def worker_main(fd: int) -> None:
    """A worker process's entry: its decoding comes first on the socket, then the bodies."""
    sock = socket.socket(fileno=fd)
    (size,) = _LENGTH.unpack(_receive(sock, _LENGTH.size))
    _serve_decoding(sock, pickle.loads(_receive(sock, size)))


def _serve_decoding(sock: socket.socket, decoding: Decoding[Any]) -> None:
    """A worker's life: decode what arrives, in order, until the server closes its end."""
    with sock:
        while True:
            try:
                content_type, size = _REQUEST.unpack(_receive(sock, _REQUEST.size))
                reply = _decode_reply(decoding, _receive(sock, size), content_type)
                _send(sock, reply)
            except (EOFError, OSError):
                return


class _Worker(Generic[B]):
    """One decoding process: requests go in order, replies come back in the same order."""

    def __init__(self, decoding: Decoding[B], on_exit: Any) -> None:
        spec = pickle.dumps(decoding, protocol=pickle.HIGHEST_PROTOCOL)
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for end in (self.sock, theirs):
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SOCKET_BUFFER)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SOCKET_BUFFER)
        # the parent's import path, so that the worker finds the same tracebaton
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", _BOOTSTRAP, str(theirs.fileno())], pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL, env=env,
            process_group=0)  # a terminal's Ctrl-C goes to the server's group only
        theirs.close()  # so that the worker sees EOF when this end closes, and not before
        _send(self.sock, [_LENGTH.pack(len(spec)), spec])
        self._assemble = decoding.assemble
        self._send_lock = threading.Lock()
        self._waiting: collections.deque[Future[B]] = collections.deque()
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
        return self.started and not self.broken

    @property
    def started(self) -> bool:
        """Whether the worker answered its first request (it may have stopped since)."""
        return self._warm_up.done() and self._warm_up.exception() is None

    @property
    def outstanding(self) -> int:
        return len(self._waiting)

    def submit(self, body: bytes, content_type: str) -> Future[B]:
        future: Future[B] = Future()
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
                outcome, small_size, first_size, second_size = _REPLY.unpack(
                    _receive(self.sock, _REPLY.size))
                future = self._waiting.popleft()
                if outcome != _OK:
                    future.set_exception(self._error(outcome, bytes(_receive(self.sock, small_size))))
                    continue
                small = pickle.loads(_receive(self.sock, small_size))
                # Arrow's allocator keeps freed memory for the next request: no page faults
                # for fresh buffers on every reply.
                first = pa.allocate_buffer(first_size)
                _receive_into(self.sock, first)
                second = None
                if second_size:
                    second = pa.allocate_buffer(second_size)
                    _receive_into(self.sock, second)
                future.set_result(self._assemble(
                    pa.ipc.open_stream(first).read_all(),
                    pa.ipc.open_stream(second).read_all() if second is not None else None,
                    small))
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
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._reader.join(5)
        self.sock.close()


class DecodePool(Generic[B]):
    """Decoding processes; `decode` blocks the calling thread, not the GIL. `decoding` says
    what a worker makes of a body (the DuckDB store's columns unless told)."""

    @overload
    def __init__(self: DecodePool[SpanBatch], workers: int) -> None: ...
    @overload
    def __init__(self, workers: int, decoding: Decoding[B]) -> None: ...

    def __init__(self, workers: int, decoding: Decoding[Any] = SPAN_COLUMNS) -> None:
        self._size = workers
        self._decoding = decoding
        self._workers: list[_Worker[B]] = []
        self._start_failures = 0
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> DecodePool[B]:
        """Spawns the workers and returns at once; each is warm once its imports are done
        (about a second), and `warm` says whether one is."""
        with self._lock:
            self._workers = [self._new_worker() for _ in range(self._size)]
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

    def decode(self, body: bytes, content_type: str) -> B:
        """The batch for a request body; raises OtlpDecodeError for a body that does not decode."""
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

    def _new_worker(self) -> _Worker[B]:
        return _Worker(self._decoding, self._worker_exited)

    def _worker_exited(self, worker: _Worker[B]) -> None:
        """Called on a worker's reading thread once its socket closed."""
        with contextlib.suppress(subprocess.TimeoutExpired):  # for its exit code: it is on its way out
            worker.process.wait(1)
        with self._lock:
            if self._closed or worker not in self._workers:
                return
            self._workers.remove(worker)
            code = worker.process.poll()
            self._start_failures = 0 if worker.started else self._start_failures + 1
            if self._start_failures >= _START_FAILURES:
                # a worker that cannot start would be restarted forever, a process a second
                log.error("%d decoding workers in a row stopped before they were ready (the last with "
                          "exit code %s; its error is above); no more are started, and requests are "
                          "decoded in the server process", self._start_failures, code)
            else:
                log.warning("a decoding worker (pid %s) stopped with exit code %s; starting another",
                            worker.process.pid, code)
                self._workers.append(self._new_worker())
        threading.Thread(target=worker.close, daemon=True).start()
