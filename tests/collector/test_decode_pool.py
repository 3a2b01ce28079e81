"""The decoding workers: real processes, pipelined requests, a worker that dies."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
from otlp_requests import new_trace_id, valid_request

from tracebaton import OtlpDecodeError, StoreSaturatedError
from tracebaton.collector import DecodePool, encode_export_request_json

PROTOBUF = "application/x-protobuf"


@pytest.fixture(scope="module")
def pool() -> Iterator[DecodePool]:
    started = DecodePool(2).start()
    yield started
    started.shutdown()


def _worker_pids() -> set[int]:
    import multiprocessing

    return {child.pid for child in multiprocessing.active_children() if child.pid is not None}


def test_concurrent_requests_each_get_their_own_columns(pool: DecodePool) -> None:
    trace_ids = [new_trace_id() for _ in range(64)]
    results: dict[bytes, set[bytes]] = {}
    start = threading.Barrier(16)

    def decode(share: list[bytes]) -> None:
        start.wait()
        for trace_id in share:
            batch = pool.decode(valid_request(trace_id, count=5).SerializeToString(), PROTOBUF)
            results[trace_id] = set(batch.spans.column("trace_id").to_pylist())

    threads = [threading.Thread(target=decode, args=(trace_ids[i::16],)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert results == {trace_id: {trace_id} for trace_id in trace_ids}


def test_a_body_that_does_not_decode_is_named_and_the_worker_goes_on(pool: DecodePool) -> None:
    with pytest.raises(OtlpDecodeError, match="body is not an OTLP ExportTraceServiceRequest in protobuf"):
        pool.decode(b"\xff\xff\xff garbage", PROTOBUF)
    trace_id = new_trace_id()
    batch = pool.decode(valid_request(trace_id).SerializeToString(), PROTOBUF)
    assert batch.span_count == 3


def test_otlp_json_is_decoded_in_the_worker_too(pool: DecodePool) -> None:
    trace_id = new_trace_id()
    batch = pool.decode(encode_export_request_json(valid_request(trace_id)), "application/json")
    assert batch.spans.column("trace_id").to_pylist() == [trace_id] * 3


def test_a_killed_worker_is_replaced_and_its_requests_are_retried_not_lost() -> None:
    others = _worker_pids()  # the module's pool
    pool = DecodePool(1).start()
    try:
        (victim,) = _worker_pids() - others
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        refusals = 0
        refused: StoreSaturatedError | None = None
        # As an exporter would: retry what was refused after the delay the refusal asks for.
        # Retrying at once would count every spin of this loop while the worker's reading
        # thread is still to be scheduled to notice the death (hundreds on a loaded machine).
        while True:
            try:
                batch = pool.decode(valid_request(new_trace_id()).SerializeToString(), PROTOBUF)
                break
            except StoreSaturatedError as error:
                refused = error
                refusals += 1
                assert time.monotonic() < deadline, "the worker was never replaced"
                time.sleep(error.retry_after_s)
        assert batch.span_count == 3
        assert refusals <= 2
        if refusals:
            assert "retry" in str(refused)
            assert refused.retry_after_s > 0
        assert victim not in _worker_pids()
        assert len(_worker_pids() - others) == 1
    finally:
        pool.shutdown()
    assert _worker_pids() == others
