"""The decoding workers: real processes, pipelined requests, a worker that dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from otlp_requests import new_trace_id, valid_request

from tracebaton import OtlpDecodeError, StoreSaturatedError
from tracebaton.collector import DecodePool, encode_export_request_json
from tracebaton.collector._decode_pool import Decoding

PROTOBUF = "application/x-protobuf"


@pytest.fixture(scope="module")
def pool() -> Iterator[DecodePool]:
    started = DecodePool(2).start()
    yield started
    started.shutdown()


def _worker_pids() -> set[int]:
    """This process's live decoding workers, as the system lists processes."""
    pids: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            state, parent = (proc / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            command = (proc / "cmdline").read_bytes()
        except OSError:  # gone meanwhile
            continue
        if int(parent) == os.getpid() and state != "Z" and b"_decode_pool" in command:
            pids.add(int(proc.name))
    return pids


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


def test_a_script_without_a_main_guard_is_not_run_again_by_its_workers(tmp_path: Path) -> None:
    # multiprocessing's spawn would import the script again in every worker, and the script
    # would open a pool of its own there, and so on
    runs = tmp_path / "runs"
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        import pathlib
        from otlp_requests import new_trace_id, valid_request
        from tracebaton.collector import DecodePool

        with pathlib.Path({str(runs)!r}).open("a") as runs:
            runs.write("run\\n")
        pool = DecodePool(1).start()
        batch = pool.decode(valid_request(new_trace_id()).SerializeToString(), "application/x-protobuf")
        pool.shutdown()
        print(batch.span_count)
        """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path])}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert (done.returncode, done.stdout.strip()) == (0, "3"), done.stderr
    assert runs.read_text() == "run\n"


def test_workers_that_cannot_start_are_not_started_forever(caplog: pytest.LogCaptureFixture) -> None:
    # a module the workers cannot import: each stops at its start, before it is warm
    module = types.ModuleType("tracebaton_test_only_here")
    exec("def decode(*args):\n    raise AssertionError('a worker never gets this far')\nassemble = decode",
         module.__dict__)
    sys.modules[module.__name__] = module
    others = _worker_pids()
    pool: DecodePool[Any] = DecodePool(1, Decoding(module.decode, module.assemble)).start()
    try:
        deadline = time.monotonic() + 120
        while "no more are started" not in caplog.text:
            assert time.monotonic() < deadline, caplog.text
            time.sleep(0.05)
        assert "3 decoding workers in a row stopped before they were ready" in caplog.text
        assert not pool.warm
        with pytest.raises(StoreSaturatedError, match="no decoding worker is running"):
            pool.decode(b"", PROTOBUF)
        assert _worker_pids() == others
    finally:
        pool.shutdown()
        del sys.modules[module.__name__]
