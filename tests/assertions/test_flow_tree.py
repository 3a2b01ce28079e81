"""What the failure message and the dashboard draw a flow on, decided once in the engine's
layer: the flow's tree (other traces hung below the calls that reached them), its critical
path, and which hops a verdict blames (the culprit, and the hops its checks name beside it)."""

from __future__ import annotations

from spans import T2, FlowBuilder, flow_trace, judge

from tracebaton.assertions import critical_path, hand_off_parents, hop_blame
from tracebaton.collector import StoredSpan


def test_the_critical_path_follows_the_child_that_ended_last_before_the_time_left() -> None:
    b = FlowBuilder()
    root = b.server("frontend", "POST /checkout", start_ms=0, end_ms=100)
    auth_call, auth = b.call(root, "auth", "/verify", start_ms=10, end_ms=40)
    b.internal("frontend", "log", parent=root, start_ms=20, end_ms=30)  # under auth's shadow
    cart_call, cart = b.call(root, "cart", "/cart", start_ms=50, end_ms=90)
    b.internal("frontend", "late", parent=root, start_ms=60, end_ms=110)  # ends after its parent
    trace = flow_trace(b.spans)
    assert critical_path(trace) == [s.span_id for s in (root, auth_call, auth, cart_call, cart)]


def broken_checkout() -> tuple[FlowBuilder, StoredSpan, StoredSpan]:
    """frontend -> cart whose callee started trace T2 (no traceparent), cart -> inventory in it."""
    b = FlowBuilder()
    root = b.server("frontend", "POST /checkout", start_ms=0, end_ms=100)
    b.call(root, "auth", "/verify", start_ms=2, end_ms=8)
    call = b.client("frontend", "POST /cart", parent=root, start_ms=10, end_ms=90,
                    attrs={"server.address": "cart", "server.port": 80})
    cart = b.server("cart", "POST /cart", trace_id=T2, start_ms=11, end_ms=89,
                    attrs={"server.address": "cart", "server.port": 80})
    b.call(cart, "inventory", "/reserve", start_ms=20, end_ms=80)
    return b, call, cart


def test_a_broken_hand_off_hangs_the_callee_s_trace_below_the_call_as_the_engine_stitched_it() -> None:
    b, call, cart = broken_checkout()
    stitches = {cart.span_id: call.span_id}
    spec = {"expect": {"hops": ["frontend -> cart", "cart -> inventory"]}}
    result = judge(spec, b.spans, stitches=stitches)
    assert [h.status.value for h in result.hops if h.hop == "frontend -> cart"] == ["broken"]
    unstitched = flow_trace(b.spans)  # as the API reads the stored spans back
    hung = hand_off_parents(unstitched, result.hops)
    assert hung == {cart.span_id: call.span_id}
    stitched = flow_trace(b.spans, stitches=stitches)  # the tree the engine judged
    assert hand_off_parents(stitched, result.hops) == {}, "already one tree: nothing to hang"
    assert critical_path(unstitched, hung) == critical_path(stitched)
    assert critical_path(stitched)[-4:] == [call.span_id, cart.span_id, *[s.span_id for s in b.spans[-2:]]]


def test_a_consumer_in_its_own_trace_hangs_below_the_producer_it_links_to() -> None:
    b = FlowBuilder()
    root = b.server("orders", "POST /orders", start_ms=0, end_ms=50)
    producer = b.producer("orders", "outbox publish", parent=root, start_ms=10, end_ms=12)
    consumer = b.consumer("email", "outbox process", trace_id=T2, links=[producer], start_ms=30, end_ms=40)
    result = judge({"expect": {"hops": ["orders ~> email"]}}, b.spans)
    assert hand_off_parents(flow_trace(b.spans), result.hops) == {consumer.span_id: producer.span_id}


def test_a_parent_loop_is_cut_so_its_spans_are_still_on_the_tree() -> None:
    b = FlowBuilder()
    root = b.server("frontend", "POST /checkout", start_ms=0, end_ms=100)
    first = b.internal("audit", "a", parent="b0000000000000ff", start_ms=10, end_ms=40)
    second = b.internal("audit", "b", parent=first, start_ms=11, end_ms=39, span_id="b0000000000000ff")
    path = critical_path(flow_trace(b.spans))
    assert path[0] == root.span_id
    assert set(path) == {root.span_id, first.span_id, second.span_id}


def wrong_order() -> list[StoredSpan]:
    """frontend pays (10-30 ms) before it checks the cart out (60-100 ms, inventory inside)."""
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=120)
    b.call(frontend, "auth", "/verify", start_ms=2, end_ms=8)
    b.call(frontend, "payment", "/charge", start_ms=10, end_ms=30)
    _, cart = b.call(frontend, "cart", "/cart", start_ms=60, end_ms=100)
    b.call(cart, "inventory", "/reserve", start_ms=70, end_ms=80)
    return b.spans


def test_the_culprit_of_a_wrong_order_is_the_hop_the_divergence_names_and_the_rest_are_implicated() -> None:
    hops = ["frontend -> auth", "frontend -> cart", "cart -> inventory", "frontend -> payment"]
    result = judge({"expect": {"hops": hops}}, wrong_order())
    assert result.first_divergence is not None
    assert result.first_divergence.startswith("frontend -> payment: happened before frontend -> cart")
    blame = hop_blame(result)
    assert [result.hops[i].hop for i in blame.culprits] == ["frontend -> payment"]
    assert sorted(result.hops[i].hop for i in blame.implicated) == ["cart -> inventory", "frontend -> cart"]


def test_when_the_divergence_names_no_hop_every_hop_a_failed_check_names_is_a_culprit() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", parent=b.test_root(), start_ms=1, end_ms=120)
    b.call(frontend, "auth", "/verify", start_ms=2, end_ms=8)
    result = judge({"expect": {"budgets": {"trace": "50ms"}}}, b.spans)
    assert result.first_divergence == "frontend: 'POST /checkout' took 119 ms, trace budget 50 ms"
    blame = hop_blame(result)
    assert [result.hops[i].hop for i in blame.culprits] == ["test -> frontend"], "the entry span's hop"
    assert blame.implicated == ()
    passed = judge({}, b.spans)
    assert hop_blame(passed).culprits == hop_blame(passed).implicated == ()


def test_a_missing_parent_s_grace_runs_from_the_flow_s_last_arrival() -> None:
    # frontend's server span is still working on a slow call: its first child (reading the
    # request body) arrived a second before the slow call's spans came in
    b = FlowBuilder()
    server_id = "00000000c0ffee00"
    body = b.internal("frontend", "POST /checkout http receive", parent=server_id,
                      start_ms=0, end_ms=1, arrival_ms=5)
    other = b.internal("cart", "lookup", parent="00000000beef0000", start_ms=3, end_ms=4, arrival_ms=8)
    slow = b.server("inventory", "POST /reserve", parent="00000000feed0000", start_ms=2, end_ms=1100,
                    arrival_ms=1105)
    trace = flow_trace(b.spans)
    assert {o.span_id for o in trace.orphans} == {body.span_id, other.span_id, slow.span_id}
    for orphan in (body, other, slow):
        assert trace.parent_awaited_since(orphan) == slow.arrival_unix_nano
