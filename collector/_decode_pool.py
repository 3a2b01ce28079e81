"""Decoding in worker processes, so that it never holds the GIL the writer needs.

DuckDB's Python client takes the GIL back after every execution task to check for Ctrl-C.
While another thread of the same process decodes OTLP in Python, each of those checks
waits for a GIL switch, and a commit takes several times as long. A worker process
decodes into Arrow IPC instead; the server process only moves buffers and writes.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import pyarrow as pa

from tracebaton import StoreSaturatedError

from ._columns import SpanBatch, span_batch

# spans, links, resources, scopes, trace ids, rejected count, rejection message
_Encoded = tuple[bytes, bytes | None, dict[int, tuple[str, bytes]], dict[int, bytes],
                 frozenset[bytes], int, str]


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def _table(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


def decode_in_worker(body: bytes, content_type: str) -> _Encoded:
    """Runs in a worker process; OtlpDecodeError travels back to the caller as is."""
    from ._ingest import protobuf_body

    batch = span_batch(protobuf_body(body, content_type))
    return (_ipc(batch.spans), _ipc(batch.links) if batch.links is not None else None,
            batch.resources, batch.scopes, batch.trace_ids, batch.rejected_spans,
            batch.rejection_message)


def _watch_parent(parent: int) -> None:
    """Runs in each worker: leave when the server is gone, even after kill -9.

    Nothing else would tell a worker its server died; it would wait on its queue forever
    and hold the server's stdout open.
    """
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="tracebaton-parent-watch", daemon=True).start()


def _warm_up() -> None:
    from . import _ingest  # noqa: F401 - import protobuf and pyarrow before the first request


class DecodePool:
    """A pool of decoding processes; `decode` blocks the calling thread, not the GIL."""

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> DecodePool:
        # spawn: workers start from a clean interpreter (not a fork of a threaded server) and
        # are the server's own children, so they can tell when it is gone.
        context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(self._workers, mp_context=context,
                                         initializer=_watch_parent, initargs=(os.getpid(),))
        for future in [self._pool.submit(_warm_up) for _ in range(self._workers)]:
            future.result()
        return self

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def decode(self, body: bytes, content_type: str) -> SpanBatch:
        pool = self._pool
        if pool is None:
            raise RuntimeError("DecodePool.start() was not called")
        future: Future[_Encoded] = pool.submit(decode_in_worker, body, content_type)
        try:
            spans, links, resources, scopes, trace_ids, rejected, message = future.result()
        except BrokenProcessPool:
            # A worker died (out of memory, killed): replace the pool and have the exporter
            # retry; the request was not acknowledged, so nothing is lost.
            self.shutdown()
            self.start()
            raise StoreSaturatedError(
                "a decoding worker stopped unexpectedly and was replaced; retry in 1 s",
                retry_after_s=1.0) from None
        return SpanBatch(_table(spans), _table(links) if links is not None else None,
                         resources, scopes, trace_ids, rejected, message)
