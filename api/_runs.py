"""Flow routes: judge a spec (and record the verdict), list and read recorded runs, and the
live stream of runs the dashboard's Flows page listens to."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import Response, StreamingResponse

from tracebaton import DURATION_PATTERN, FlowSpecError
from tracebaton.assertions import (
    FlowEngine,
    FlowSpec,
    flow_spec_to_dict,
    parse_flow_spec,
    server_wait_problem,
)
from tracebaton.collector import RunQuery, RunSummary, SpanStore, is_run_id

from ._common import ERRORS, run_summary_json, since_ns, trace_id_or_400
from ._models import (
    RUN_ID_PATTERN,
    TRACE_ID_PATTERN,
    CheckRequest,
    CheckResponse,
    Problem,
    RunDetail,
    RunList,
)

MAX_RUN_LIMIT = 1000
KEEPALIVE_S = 15.0
"""An SSE comment this often keeps proxies from closing an idle stream; it carries no data."""


def _parse_spec(spec: dict[str, Any] | str) -> FlowSpec:
    # Text goes in as bytes: the parser would read a string that names a .yaml file from this
    # server's disk, and a remote client must never make it do that.
    source: dict[str, Any] | bytes = spec.encode() if isinstance(spec, str) else spec
    try:
        return parse_flow_spec(source)
    except FlowSpecError as error:
        raise HTTPException(400, f"spec: {error}") from None


class RunStreams:
    """Open `/api/events` streams, fed by the store's run notifications (no polling), and
    ended all at once when the server stops (an open stream must not hold up shutdown)."""

    def __init__(self) -> None:
        self._queues: set[asyncio.Queue[RunSummary | None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[RunSummary | None]) -> None:
        self._loop = loop
        self._queues.add(queue)

    def detach(self, queue: asyncio.Queue[RunSummary | None]) -> None:
        self._queues.discard(queue)

    def publish(self, summary: RunSummary | None) -> None:
        """From any thread (the one that recorded the run)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in between: nobody listens
            loop.call_soon_threadsafe(self._deliver, summary)

    def _deliver(self, summary: RunSummary | None) -> None:
        for queue in list(self._queues):
            if summary is None or queue.qsize() < 1000:  # a stalled reader drops runs, never memory
                queue.put_nowait(summary)

    def close(self) -> None:
        self.publish(None)


def runs_router(store: SpanStore, engine: FlowEngine, streams: RunStreams) -> APIRouter:
    router = APIRouter(tags=["flows"], responses=ERRORS)
    store.on_run_recorded(streams.publish)

    @router.post("/api/check", response_model=CheckResponse)
    def check(body: CheckRequest) -> Response:
        """Judge a flow spec, waiting server-side on span arrivals up to the spec's `wait.timeout`,
        and record the verdict (with `test_id` and `session_id`) as a run."""
        spec = _parse_spec(body.spec)
        too_long = server_wait_problem(spec.wait)
        if too_long is not None:
            raise HTTPException(400, f"spec: {too_long}")
        trace_id = body.trace_id
        if trace_id is not None:
            trace_id = trace_id_or_400(trace_id, "trace_id")
        if trace_id is None and spec.find is None:
            raise HTTPException(400, "give trace_id, or a `find:` section in the spec to locate the trace")
        result = engine.check(spec, trace_id).to_json()
        run_id = None
        if body.record:
            run_id = store.record_run(
                {**result, "spec": flow_spec_to_dict(spec)}, test_id=body.test_id, session_id=body.session_id
            )
        return Response(orjson.dumps({**result, "run_id": run_id}), media_type="application/json")

    @router.get("/api/runs", response_model=RunList)
    def list_runs(
        passed: bool | None = Query(None, description="true: passed runs only; false: failed only"),
        name: str | None = Query(None, max_length=512, description="flow name glob, e.g. `checkout*`"),
        test_id: str | None = Query(
            None, max_length=4096, description="test id glob, e.g. `tests/test_shop.py::*`"
        ),
        session_id: str | None = Query(None, max_length=256),
        trace_id: str | None = Query(
            None, pattern=TRACE_ID_PATTERN, description="runs that covered this trace"
        ),
        since: str | None = Query(None, pattern=DURATION_PATTERN, description="recorded within, e.g. `1h`"),
        since_unix_nano: int | None = Query(None, ge=0, le=2**63 - 1),
        limit: int = Query(100, ge=1, le=MAX_RUN_LIMIT, description=f"at most {MAX_RUN_LIMIT}"),
    ) -> Response:
        """Recorded flow results: failed first, then newest first."""
        runs = store.runs(
            RunQuery(
                passed=passed,
                name=name,
                test_id=test_id,
                session_id=session_id,
                trace_id=None if trace_id is None else trace_id_or_400(trace_id),
                since_unix_nano=since_ns(since, since_unix_nano),
                limit=limit,
            )
        )
        return Response(
            orjson.dumps({"runs": [run_summary_json(r) for r in runs]}), media_type="application/json"
        )

    @router.get(
        "/api/runs/{run_id}",
        response_model=RunDetail,
        responses={404: {"model": Problem, "description": "no run by that id"}},
    )
    def get_run(
        run_id: str = Path(
            pattern=RUN_ID_PATTERN, description="`r` and 20 hex digits, as POST /api/check returned it"
        ),
    ) -> Response:
        """One recorded run: its summary, the whole result, and the spec it was judged by."""
        if not is_run_id(run_id):
            raise HTTPException(
                400,
                f"run id {run_id[:80]!r} is not a run id (`r` and 20 hex digits, "
                "as POST /api/check and GET /api/runs return it)",
            )
        record = store.run(run_id)
        if record is None:
            raise HTTPException(404, f"no run {run_id} is recorded; list runs at /api/runs")
        result = dict(record.result)
        spec = result.pop("spec", None)
        return Response(
            orjson.dumps(
                {
                    "run": run_summary_json(record.summary),
                    "result": result,
                    "spec": spec if isinstance(spec, dict) else None,
                }
            ),
            media_type="application/json",
        )

    @router.get(
        "/api/events",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "server-sent events: `event: run` with a run summary as data, "
                "for each run recorded from now on",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        },
    )
    async def events(request: Request) -> StreamingResponse:
        """Runs as they are recorded (server-sent events), for live lists."""
        queue: asyncio.Queue[RunSummary | None] = asyncio.Queue()
        streams.attach(asyncio.get_running_loop(), queue)

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 2000\n: listening for runs\n\n"
                while True:
                    try:
                        summary = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    if summary is None:
                        return
                    data = orjson.dumps(run_summary_json(summary))
                    yield b"event: run\nid: " + summary.run_id.encode() + b"\ndata: " + data + b"\n\n"
            finally:
                streams.detach(queue)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )

    return router
