"""The hop diff of a flow against its snapshot (`-` snapshot, `+` now, `!` changed): the
changed property on the hop's line, the first changed hop named as the culprit (a cause
before its consequences), the user's tolerances, the update that keeps them, and the text
pinned as people read it."""

from __future__ import annotations

import pytest
from snapshot_flows import checkout, shape_of

from tracebaton.assertions import HopKind
from tracebaton.assertions._snapshot import FlowShape, HopNode, read_snapshot, with_budgets
from tracebaton.assertions._snapshot_diff import ShapeDiff, diff_shapes, render_shape_diff, render_trace_diff
from tracebaton.assertions._snapshot_judge import merge_shapes

MS = 1_000_000


@pytest.fixture(scope="module")
def golden() -> FlowShape:
    return with_budgets(shape_of(checkout()))


def first(before: FlowShape, **fault: object) -> str | None:
    return diff_shapes(before, shape_of(checkout(**fault))).first_change  # type: ignore[arg-type]


def test_the_healthy_flow_has_no_changes_and_reads_as_its_hops(golden: FlowShape) -> None:
    diff = diff_shapes(golden, shape_of(checkout(catalog_at=-0.5, seed=7)))
    assert diff.same
    assert diff.first_change is None
    assert render_shape_diff(diff) == [
        "hops (- snapshot, + now, ! changed):",
        "  test -> frontend",
        "    frontend -> auth",
        "    … 5 matching hops",
        "    frontend -> orders",
        "      orders ~> email",
    ]


@pytest.mark.parametrize(
    ("fault", "culprit"),
    [
        ({"payment_first": True},
         "frontend -> payment  order: was after frontend -> cart, frontend -> catalog, now before them"),
        ({"retry": True}, "cart -> inventory  times: was 1, now 2; status: was ok, now 503 and ok"),
        ({"drop": "x-request-id"}, "cart -> inventory  headers: x-request-id was present, now missing"),
        ({"drop": "baggage"},
         "cart -> inventory  headers: baggage was present, now missing; baggage: tenant was present, "
         "now missing"),
        ({"inventory_ms": 400}, "cart -> inventory  budget: took 400 ms, budget 250 ms"),
        ({"lost_message": True}, "orders ~> email  missing: in the snapshot, not seen now"),
        ({"expired_token": True}, "frontend -> auth  status: was ok, now 401"),
    ],
)
def test_each_fault_is_named_by_its_hop_and_what_changed_on_it(
    golden: FlowShape, fault: dict[str, object], culprit: str
) -> None:
    assert first(golden, **fault) == culprit


def test_a_changed_answer_names_the_hop_below_that_answered_first(golden: FlowShape) -> None:
    """Auth's 401 travels up: the entry hop answers 401 too, and the rest never happens. The
    culprit is auth; the consequences are listed, after it."""
    diff = diff_shapes(golden, shape_of(checkout(expired_token=True)))
    assert render_shape_diff(diff) == [
        "hops (- snapshot, + now, ! changed):",
        "! test -> frontend  status: was ok, now 401",
        "!   frontend -> auth  status: was ok, now 401",
        "-   frontend -> cart  missing: in the snapshot, not seen now",
        "-     cart -> inventory",
        "-   frontend -> catalog  missing: in the snapshot, not seen now",
        "-   frontend -> payment  missing: in the snapshot, not seen now",
        "-     payment -> payment-gateway",
        "-   frontend -> orders  missing: in the snapshot, not seen now",
        "-     orders ~> email",
    ]


def test_a_budget_is_told_on_the_deepest_hop_that_exceeded_one(golden: FlowShape) -> None:
    """Cart and the entry hop took 400 ms more too, because inventory did: only inventory says so."""
    diff = diff_shapes(golden, shape_of(checkout(inventory_ms=600)))
    changed = [row.line for row in diff.rows if row.changes]
    assert changed == ["cart -> inventory  budget: took 600 ms, budget 250 ms"]


def test_a_hop_moved_later_is_the_one_named(golden: FlowShape) -> None:
    """When one hop crossed several, it is the one with the inversions; the others just kept their place."""
    diff = diff_shapes(golden, shape_of(checkout(payment_first=True)))
    assert [row.hop for row in diff.rows if row.changes] == ["frontend -> payment"]


def snapshot_of(hops: str) -> FlowShape:
    return read_snapshot(f"name: x\nsnapshot:\n  hops:\n{hops}").shape


def now(*nodes: HopNode) -> FlowShape:
    return FlowShape(tuple((node,) for node in nodes))


def test_a_new_hop_a_kind_change_a_broken_hand_off_and_a_missing_callee() -> None:
    before = snapshot_of("    - a -> b\n    - a ~> c\n    - a -> d\n    - a -> e\n")
    after = now(HopNode("a", "b", HopKind.SYNC, broken=True, note="b started a new trace t2"),
                HopNode("a", "c", HopKind.SYNC), HopNode("a", "d", HopKind.SYNC, answered=False),
                HopNode("a", "e", HopKind.SYNC), HopNode("a", "f", HopKind.SYNC))
    assert [row.line for row in diff_shapes(before, after).rows] == [
        "a -> b  propagation: was connected, now broken — b started a new trace t2",
        "a -> c  kind: was asynchronous (~>), now synchronous (->)",
        "a -> d  callee: was answered, now no span of d answered",
        "a -> e",
        "a -> f  new: not in the snapshot",
    ]


def test_headers_that_appear_are_a_change_too() -> None:
    before = snapshot_of("    - a -> b: {headers: [traceparent]}\n")
    after = now(HopNode("a", "b", HopKind.SYNC, headers=("authorization", "traceparent")))
    assert diff_shapes(before, after).first_change == "a -> b  headers: authorization is new"


# --- tolerances -------------------------------------------------------------------------------


def test_an_optional_hop_may_be_absent_and_a_range_allows_its_counts() -> None:
    before = snapshot_of("    - a -> b: {optional: true}\n    - a -> c: {times: \"1..3\"}\n")
    diff = diff_shapes(before, now(HopNode("a", "c", HopKind.SYNC, times=3)))
    assert diff.same
    assert [row.line for row in diff.rows] == ["a -> b  optional, not seen", "a -> c"]
    assert diff_shapes(before, now(HopNode("a", "c", HopKind.SYNC, times=4))).first_change == (
        "a -> c  times: was 1..3, now 4")


def test_an_update_keeps_the_users_tolerances_unless_the_flow_contradicts_them() -> None:
    before = snapshot_of("    - a -> b: {optional: true}\n"
                         "    - a -> c: {times: \"1..3\", budget: 250ms}\n"
                         "    - a -> d: {times: \"1..2\", budget: 250ms}\n")
    after = now(HopNode("a", "c", HopKind.SYNC, times=2, took_ns=10 * MS),
                HopNode("a", "d", HopKind.SYNC, times=5, took_ns=300 * MS))
    merged = {node.text: node for node in merge_shapes(before, after).walk()}
    assert merged["a -> b"].optional  # absent, still optional: not contradicted
    assert (merged["a -> c"].times_range, merged["a -> c"].budget_ns) == ((1, 3), 250 * MS)
    assert (merged["a -> d"].times_range, merged["a -> d"].times) == (None, 5)  # contradicted
    assert merged["a -> d"].budget_ns == 1000 * MS  # exceeded: written anew with headroom
    again = merge_shapes(merge_shapes(before, after), after)
    assert again == merge_shapes(before, after)


def test_an_update_keeps_an_absent_optional_hop_where_it_was() -> None:
    before = snapshot_of("    - a -> b\n    - any order: [a -> c, a -> x: {optional: true}]\n    - a -> d\n")
    merged = merge_shapes(before, snapshot_of("    - a -> b\n    - a -> c\n    - a -> d\n"))
    assert [[n.text for n in step] for step in merged.hops] == [["a -> b"], ["a -> c", "a -> x"], ["a -> d"]]


# --- the text ---------------------------------------------------------------------------------


def test_the_diff_of_two_traces_reads_the_same_way(golden: FlowShape) -> None:
    diff = diff_shapes(golden, shape_of(checkout(drop="x-request-id")))
    text = render_trace_diff(diff, "a" * 32, "b" * 32)
    assert text.splitlines()[:3] == [
        f"flows differ · trace {'a' * 32} (-) · trace {'b' * 32} (+) · 1 hop changed",
        "cart -> inventory  headers: x-request-id was present, now missing",
        "hops (- A, + B, ! changed):",
    ]
    same = render_trace_diff(diff_shapes(golden, shape_of(checkout())), "a" * 32, "b" * 32)
    a, b = "a" * 32, "b" * 32
    assert same.splitlines()[0] == f"flows match · trace {a} (-) · trace {b} (+) · the same hops"


def test_the_diff_travels_as_json_and_back(golden: FlowShape) -> None:
    diff = diff_shapes(golden, shape_of(checkout(retry=True)))
    data = diff.to_json()
    assert data["first_change"] == diff.first_change
    assert next(row for row in data["rows"] if row["mark"] == "!") == {
        "depth": 2, "mark": "!", "hop": "cart -> inventory", "kind": "sync", "note": "",
        "caller": "cart", "callee": "inventory", "before": True, "after": True,
        "changes": [{"property": "times", "text": "was 1, now 2"},
                    {"property": "status", "text": "was ok, now 503 and ok"}],
        "said": "times: was 1, now 2; status: was ok, now 503 and ok",
    }
    assert ShapeDiff.from_json(data) == diff


def test_each_row_says_which_side_of_a_side_by_side_view_it_is_drawn_on() -> None:
    before = snapshot_of("    - a -> b: {optional: true}\n    - a -> c\n    - a -> d\n")
    diff = diff_shapes(before, now(HopNode("a", "d", HopKind.SYNC), HopNode("a", "e", HopKind.SYNC)))
    sides = [(row.mark, row.caller, row.callee, row.before, row.after) for row in diff.rows]
    assert sides == [
        (" ", "a", "b", True, False),  # optional and not seen: the snapshot's side only
        ("-", "a", "c", True, False),
        (" ", "a", "d", True, True),
        ("+", "a", "e", False, True),
    ]
    assert ShapeDiff.from_json(diff.to_json()) == diff


def test_long_unchanged_runs_shrink_unless_asked_for_everything(golden: FlowShape) -> None:
    diff = diff_shapes(golden, shape_of(checkout()))
    assert len(render_shape_diff(diff, full=True)) == 1 + 9
    assert "    … 5 matching hops" in render_shape_diff(diff)
