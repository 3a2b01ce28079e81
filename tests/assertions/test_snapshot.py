"""A flow's normalised structure (the `snapshot:` section of a golden flow): what it records,
that it is stable however concurrent calls interleave, that order is recorded only where it
is proven, and its YAML form, read back and rejected with messages that say what to do."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from snapshot_flows import checkout, shape_of
from spans import MS, T3, FlowBuilder, Relation, flow_trace, hop_relation, hops_of

from tracebaton import FlowSpecError
from tracebaton.assertions import HopKind
from tracebaton.assertions._snapshot import (
    FlowShape,
    HopNode,
    budget_for,
    flow_shape,
    read_snapshot,
    shape_to_json,
    snapshot_yaml,
    with_budgets,
)


def written(shape: FlowShape) -> str:
    """The section as the file writes it, without the budgets a snapshot adds once."""
    return snapshot_yaml({"name": "checkout"}, shape)


def texts(steps: tuple[tuple[HopNode, ...], ...]) -> list[list[str]]:
    return [[node.text for node in step] for step in steps]


def test_the_shape_nests_hops_under_their_callers_with_concurrent_ones_as_a_group() -> None:
    shape = shape_of(checkout())
    (root,), = shape.hops
    assert root.text == "test -> frontend"
    assert texts(root.calls) == [
        ["frontend -> auth"],
        ["frontend -> cart", "frontend -> catalog"],
        ["frontend -> payment"],
        ["frontend -> orders"],
    ]
    cart = root.calls[1][0]
    assert texts(cart.calls) == [["cart -> inventory"]]
    payment = root.calls[2][0]
    assert [(n.text, n.kind) for n in payment.calls[0]] == [("payment -> payment-gateway", HopKind.PEER)]
    orders = root.calls[3][0]
    assert [(n.text, n.kind) for n in orders.calls[0]] == [("orders ~> email", HopKind.ASYNC)]
    inventory = cart.calls[0][0]
    assert inventory.headers == ("baggage", "traceparent", "x-request-id")
    assert inventory.baggage == ("tenant",)
    assert (inventory.times, inventory.status, inventory.broken, inventory.answered) == (1, (), False, True)


def test_what_a_snapshot_records_reads_as_yaml_and_reads_back() -> None:
    shape = with_budgets(shape_of(checkout()))
    text = written(shape)
    assert "span" not in text.replace("# ", "")  # no ids
    assert "    - any order:\n" in text
    assert "payment -> payment-gateway: {kind: peer, budget: 250ms}" in text
    assert "calls: [orders ~> email]" in text
    back = read_snapshot(text, "x.flow.yaml")
    assert back.shape == shape
    assert back.spec.name == "checkout"


@settings(max_examples=200, deadline=None)
@given(
    catalog_at=st.floats(min_value=-0.99, max_value=0.99),
    catalog_ms=st.floats(min_value=0.05, max_value=30),
    cart_ms=st.floats(min_value=3, max_value=30),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_the_same_flow_gives_one_shape_however_its_concurrent_calls_interleave(
    catalog_at: float, catalog_ms: float, cart_ms: float, seed: int
) -> None:
    """Cart and catalog are launched together: they overlap or not, finish in either order,
    and their spans arrive in any order — one shape, the same bytes."""
    expected = written(shape_of(checkout()))
    assert written(shape_of(checkout(catalog_at=catalog_at, catalog_ms=catalog_ms, cart_ms=cart_ms,
                                     seed=seed))) == expected


def test_calls_launched_together_that_failed_to_overlap_stay_a_group() -> None:
    """Catalog, launched 0.6 ms before cart, was done 0.4 ms before cart started: the engine's
    rule alone proves it came first, but on one run's luck; the launch window keeps them a group."""
    spans = checkout(catalog_at=-0.6, catalog_ms=0.2)
    hops = {h.text: h for h in hops_of(spans)}
    assert hop_relation(flow_trace(spans), hops["frontend -> catalog"], hops["frontend -> cart"]) is (
        Relation.BEFORE)
    assert written(shape_of(spans)) == written(shape_of(checkout()))


def test_calls_that_started_apart_and_did_not_overlap_are_in_sequence() -> None:
    """Catalog starting after cart ended, later than a launch together allows, is proven after it."""
    (root,), = shape_of(checkout(catalog_at=14, catalog_ms=3, cart_ms=12)).hops
    assert texts(root.calls)[1:3] == [["frontend -> cart"], ["frontend -> catalog"]]


def test_sequence_is_the_order_things_happened_not_the_alphabet() -> None:
    (root,), = shape_of(checkout(payment_first=True)).hops
    assert texts(root.calls) == [
        ["frontend -> auth"],
        ["frontend -> payment"],
        ["frontend -> cart", "frontend -> catalog"],
        ["frontend -> orders"],
    ]


def test_a_retried_hop_is_one_hop_that_happened_twice_and_answered_503_once() -> None:
    (root,), = shape_of(checkout(retry=True)).hops
    inventory = root.calls[1][0].calls[0][0]
    assert (inventory.text, inventory.times, inventory.status) == ("cart -> inventory", 2, ("503", "ok"))
    assert "status: [503, ok]" in written(shape_of(checkout(retry=True)))


def test_a_broken_hand_off_and_a_call_without_its_callee_are_recorded() -> None:
    b = FlowBuilder()
    root = b.test_root()
    _, server = b.call(root, "cart", "/cart", start_ms=1, end_ms=50)
    b.client("cart", "POST /reserve", parent=server, start_ms=5, end_ms=20,
             attrs={"server.address": "127.0.0.1", "server.port": 9101})
    broken = b.client("cart", "POST /price", parent=server, start_ms=25, end_ms=40)
    stranger = b.server("pricing", "POST /price", start_ms=26, end_ms=39, trace_id=T3, remote=None)
    trace = flow_trace(b.spans, stitches={stranger.span_id: broken.span_id})
    hops = hops_of(b.spans, stitches={stranger.span_id: broken.span_id})
    (top,), = flow_shape(trace, hops).hops
    nodes = {n.text: n for step in top.calls for n in step}
    assert nodes["cart -> pricing"].broken
    assert nodes["cart -> 127.0.0.1:9101"].kind is HopKind.PEER  # nobody answered there: a peer


def test_order_evidence_that_contradicts_itself_records_no_order() -> None:
    """Two instances of a hop on either side of another (a, b, a): neither is proven before
    the other, so they share one step — never an order that a run could invert."""
    b = FlowBuilder()
    root = b.test_root()
    _, svc = b.call(root, "svc", "/x", start_ms=1, end_ms=100)
    b.call(svc, "a", "/a", start_ms=5, end_ms=10)
    b.call(svc, "b", "/b", start_ms=15, end_ms=20)
    b.call(svc, "a", "/a", start_ms=25, end_ms=30)
    b.call(svc, "c", "/c", start_ms=35, end_ms=40)
    (top,), = shape_of(b.spans).hops
    assert texts(top.calls) == [["svc -> a", "svc -> b"], ["svc -> c"]]
    assert top.calls[0][0].times == 2


def test_budgets_have_headroom_and_round_numbers() -> None:
    assert budget_for(9 * MS) == 250 * MS
    assert budget_for(60 * MS) == 500 * MS
    assert budget_for(400 * MS) == 2000 * MS
    assert budget_for(30 * 60 * 1000 * MS) == 90 * 60 * 1000 * MS


def test_json_form_is_the_files_section() -> None:
    shape = with_budgets(shape_of(checkout()))
    data = shape_to_json(shape)
    assert data["format"] == 1
    assert read_snapshot({"name": "x", "snapshot": data}).shape == shape


# --- tolerances the user writes -------------------------------------------------------------


def test_optional_and_ranges_read_from_the_file() -> None:
    text = """
name: checkout
snapshot:
  hops:
    - test -> frontend:
        calls:
          - frontend -> auth: {optional: true}
          - frontend -> cart: {times: "1..3"}
"""
    (root,), = read_snapshot(text).shape.hops
    auth, cart = root.calls[0][0], root.calls[1][0]
    assert (auth.optional, auth.bounds) == (True, (0, 1))
    assert (cart.times_range, cart.bounds) == ((1, 3), (1, 3))


BAD = [
    ("name: [", "x.flow.yaml: line 1, column 8: while parsing a flow node"),
    ("name: checkout\n", "has no `snapshot:` section"),
    ("name: checkout\nexpect: {errors: sometimes}\nsnapshot: {hops: []}\n",
     "the flow spec above `snapshot:` is invalid: flow spec 'checkout': expect.errors"),
    ("name: checkout\nexpect: {hops: [a -> b]}\nsnapshot: {hops: []}\n",
     "expect.hops: a snapshot's hops and their order are its `snapshot:` section"),
    ("name: checkout\nsnapshot: {hops: [a -> b: {times: 0}]}\n", 'times: 0 is below 1'),
    ("name: checkout\nsnapshot: {hops: [a -> b: {times: \"3..1\"}]}\n", "is an empty range"),
    ("name: checkout\nsnapshot: {hops: [a -> b: {optinal: true}]}\n", "did you mean `optional`?"),
    ("name: checkout\nsnapshot: {hops: [a -> b, a -> b]}\n", "appears twice under the top of the flow"),
    ("name: checkout\nsnapshot: {hops: [\"* -> b\"]}\n", "names `*`, but a snapshot records services"),
    ("name: checkout\nsnapshot: {format: 2, hops: []}\n", "snapshot.format: 2 is not a format"),
    ("name: checkout\nsnapshot: {hops: [a -> b: {status: sometimes}]}\n",
     "is not a status a snapshot writes"),
    ("name: checkout\nsnapshot: {hops: [a -> b: {kind: weird}]}\n", "write `kind: peer`"),
]


@pytest.mark.parametrize(("text", "says"), BAD)
def test_a_bad_snapshot_file_says_where_and_what_to_do(text: str, says: str) -> None:
    with pytest.raises(FlowSpecError) as raised:
        read_snapshot(text, "x.flow.yaml")
    message = str(raised.value)
    assert message.startswith("x.flow.yaml: "), message
    assert says in message, message
    assert any(fix in message for fix in ("--tracebaton-update", "assert_spec", "remove expect.")), message


def test_a_node_compares_by_what_it_records_not_by_what_was_observed() -> None:
    node = HopNode("a", "b", HopKind.SYNC, took_ns=5, note="x")
    assert dataclasses.replace(node, took_ns=7, note="y") == node


def test_a_status_code_attribute_of_digits_int_refuses_is_no_status() -> None:
    # "³".isdigit() is True, int("³") raises: the shape must not trust the first
    spans = [
        dataclasses.replace(s, attributes={**s.attributes, "http.response.status_code": "³"})
        if s.service == "inventory" else s
        for s in checkout()
    ]
    inventory = next(n for n in _nodes(shape_of(spans).hops) if n.text == "cart -> inventory")
    assert inventory.status == ()


def _nodes(steps: tuple[tuple[HopNode, ...], ...]) -> list[HopNode]:
    return [m for step in steps for n in step for m in (n, *_nodes(n.calls))]
