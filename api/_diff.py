"""Golden-flow routes (DESIGN §6 "Flow snapshots"): judge a flow against a snapshot where its
spans are (the pytest plugin's remote mode), and the hop diff of two stored flows or of a
recorded snapshot check, as JSON with the same text the failure message and `tracebaton
diff` print — what the dashboard's side-by-side view draws."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from tracebaton import FlowSpecError
from tracebaton.assertions import (
    FlowEngine,
    ShapeDiff,
    diff_shapes,
    judge_snapshot,
    read_snapshot,
    render_shape_diff,
    render_trace_diff,
    server_wait_problem,
    shape_to_json,
    stored_shape,
    with_budgets,
)
from tracebaton.collector import SpanStore, is_run_id

from ._common import ERRORS, NOT_FOUND, json_response, trace_id_or_400
from ._models import RUN_ID_PATTERN, TRACE_ID_PATTERN, FlowResultModel, Problem

# The route takes at most 1 MiB of body, and one character of JSON-escaped text can take 12
# bytes (a surrogate pair): a snapshot within this limit always fits, and a longer one is a 422
# naming the field, never a bare 413.
_MAX_SNAPSHOT_CHARS = 64 * 1024
_TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": Problem, "description": "the body is over the route's size limit"}}


class SnapshotCheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    trace_id: str = Field(pattern=TRACE_ID_PATTERN,
                          description="the flow's trace: its root span must be stored")
    name: str = Field(min_length=1, max_length=200,
                      description="the flow's name, for a snapshot recorded anew")
    snapshot: str | None = Field(
        None, max_length=_MAX_SNAPSHOT_CHARS,
        description="the snapshot file's text (YAML); null: there is none yet")
    origin: str = Field("snapshot", max_length=1000,
                        description="the file's name, as messages should show it")
    update: bool = Field(False, description="also return the text the file should hold now (pytest "
                                            "--tracebaton-update), unless the flow is incomplete")
    test_id: str | None = Field(None, max_length=4096)
    session_id: str | None = Field(None, max_length=256)
    record: bool = Field(True, description="record the verdict as a run (with the snapshot and the diff)")


class ChangeModel(BaseModel):
    property: str = Field(description="missing new kind propagation callee order times status headers "
                                      "baggage budget")
    text: str


class DiffRowModel(BaseModel):
    depth: int = Field(description="nesting: 0 for the flow's own hops, 1 for what their callees called, …")
    mark: str = Field(description="` ` the same, `!` changed, `-` in the snapshot (A) only, `+` now (B) only")
    hop: str
    kind: str
    caller: str
    callee: str
    before: bool = Field(description="the hop is in the snapshot (A): drawn on its side")
    after: bool = Field(description="the hop is in the flow now (B): drawn on its side")
    changes: list[ChangeModel]
    note: str
    said: str = Field(description="what the hop's line says after the hop: its changes, else its note")


class ShapeDiffModel(BaseModel):
    same: bool
    first_change: str | None = Field(
        description="the culprit hop's line: what the failure's second line says")
    culprit: int | None = Field(description="index of the culprit's row")
    changed_hops: int
    rows: list[DiffRowModel]


class SnapshotCheckResponse(BaseModel):
    result: FlowResultModel
    existed: bool = Field(description="whether a snapshot was given to compare with")
    diff: ShapeDiffModel | None
    written: str | None = Field(
        description="the file's new text, when asked to update and the flow is complete")
    refused: str | None = Field(description="why no snapshot could be written although asked")
    run_id: str | None


class TraceDiffResponse(BaseModel):
    a: str
    b: str
    same: bool
    diff: ShapeDiffModel
    text: str = Field(description="the diff as `tracebaton diff` prints it")
    before: dict[str, Any] = Field(description="A's shape, as a snapshot of it would hold it")
    after: dict[str, Any] = Field(description="B's shape")


class RunDiffResponse(BaseModel):
    run_id: str
    trace_id: str | None
    snapshot: dict[str, Any] = Field(description="the snapshot section the flow was compared with")
    diff: ShapeDiffModel
    text: str = Field(description="the hop diff as the failure message prints it")


def diff_router(store: SpanStore, engine: FlowEngine) -> APIRouter:
    router = APIRouter(tags=["snapshots"], responses=ERRORS)

    def stored_or_404(trace_id: str, what: str) -> str:
        trace_id = trace_id_or_400(trace_id, what)
        if not store.trace(trace_id):
            raise HTTPException(404, f"{what}: no span of trace {trace_id} is stored; check the id, and that "
                                     "retention has not pruned it")
        return trace_id

    @router.post("/api/snapshots/check", response_model=SnapshotCheckResponse,
                 responses={**NOT_FOUND, **_TOO_LARGE})
    def check_snapshot(body: SnapshotCheckRequest) -> Response:
        """Judge the flow against its snapshot: wait as `/api/check` does (for every hop the
        snapshot expects, then for the flow to settle), diff its hops against the snapshot's,
        and record the verdict as a run. `update`: also the file's new text."""
        trace_id = stored_or_404(body.trace_id, "trace_id")
        if body.snapshot is not None:
            try:
                wait = read_snapshot(body.snapshot.encode(), body.origin).spec.wait
            except FlowSpecError as error:
                raise HTTPException(400, str(error)) from None
            too_long = server_wait_problem(wait)
            if too_long is not None:
                raise HTTPException(400, f"{body.origin}: {too_long}")
        outcome = judge_snapshot(
            store, engine, trace_id=trace_id, name=body.name,
            snapshot=None if body.snapshot is None else body.snapshot.encode(), origin=body.origin,
            update=body.update, test_id=body.test_id, session_id=body.session_id, record=body.record)
        return json_response(outcome.to_json())

    @router.get("/api/diff", response_model=TraceDiffResponse, responses=NOT_FOUND)
    def diff_traces(
        a: str = Query(pattern=TRACE_ID_PATTERN, description="the flow read as the snapshot (`-`)"),
        b: str = Query(pattern=TRACE_ID_PATTERN, description="the flow compared with it (`+`)"),
    ) -> Response:
        """The hop diff of two stored flows, A in the snapshot's place (its budgets are the ones a
        snapshot of it would write), as JSON rows and as the text `tracebaton diff` prints."""
        if a.lower() == b.lower():
            raise HTTPException(400, f"a and b are both trace {a.lower()}: a flow compared with itself "
                                     "has no diff; give b another trace (its Trace page lists recent "
                                     "traces of the same operation under \"Compare with…\")")
        a, b = stored_or_404(a, "a"), stored_or_404(b, "b")
        before, _ = stored_shape(store, engine, a)
        after, _ = stored_shape(store, engine, b)
        snapshot = with_budgets(before)
        diff = diff_shapes(snapshot, after)
        return json_response({"a": a, "b": b, "same": diff.same, "diff": diff.to_json(),
                              "text": render_trace_diff(diff, a, b), "before": shape_to_json(snapshot),
                              "after": shape_to_json(after)})

    @router.get("/api/runs/{run_id}/snapshot-diff", response_model=RunDiffResponse, responses=NOT_FOUND)
    def run_diff(
        run_id: str = Path(pattern=RUN_ID_PATTERN, description="a run a snapshot check recorded"),
    ) -> Response:
        """The diff a snapshot check recorded: its flow against the snapshot it was compared with."""
        if not is_run_id(run_id):
            raise HTTPException(400, f"run id {run_id[:80]!r} is not a run id (`r` and 20 hex digits)")
        record = store.run(run_id)
        if record is None:
            raise HTTPException(404, f"no run {run_id} is recorded; list runs at /api/runs")
        snapshot, diff = record.result.get("snapshot"), record.result.get("snapshot_diff")
        if not isinstance(snapshot, dict) or not isinstance(diff, dict):
            raise HTTPException(404, f"run {run_id} is no comparison with a snapshot (flow.assert_snapshot() "
                                     "records those); GET /api/runs/{run_id} has its verdict")
        shape_diff = ShapeDiff.from_json(diff)
        return json_response({"run_id": run_id, "trace_id": record.summary.trace_id, "snapshot": snapshot,
                              "diff": shape_diff.to_json(), "text": "\n".join(render_shape_diff(shape_diff))})

    return router
