"""Hops (DESIGN §4) found in hand-built span forests: which edges are hand-offs, which spans
stand for caller and callee, async hops, dangling calls, broken propagation, and order."""

from __future__ import annotations

import random

import pytest
from spans import (
    MS,
    T1,
    T2,
    DanglingCall,
    FlowBuilder,
    check,
    choose_stitch,
    dangling_calls,
    flow_trace,
    hop_matches,
    hop_rows,
    hops_of,
    judge,
    orphan_candidates,
)

from tracebaton.assertions import CheckState, HopKind, parse_flow_spec
from tracebaton.collector import SpanKind, StoredSpan

SKEW_NS = 5 * MS

# --- which edges are hops ---------------------------------------------------------------------

K = SpanKind


@pytest.mark.parametrize(
    ("parent", "child", "remote", "expected"),
    [
        # The exporter's is-remote flags decide whenever they are present...
        ((K.CLIENT, "frontend"), (K.SERVER, "cart"), True, ["frontend -> cart"]),
        ((K.INTERNAL, "frontend"), (K.SERVER, "cart"), True, ["frontend -> cart"]),
        ((K.SERVER, "frontend"), (K.SERVER, "cart"), True, ["frontend -> cart"]),
        ((K.SERVER, "cart"), (K.INTERNAL, "cart"), False, []),
        # ... even against the service names: one process may report under two names.
        ((K.SERVER, "frontend"), (K.INTERNAL, "frontend-worker"), False, []),
        # A service calling itself over the network is a hop.
        ((K.CLIENT, "cart"), (K.SERVER, "cart"), True, ["cart -> cart"]),
        ((K.INTERNAL, "cart"), (K.SERVER, "cart"), True, ["cart -> cart"]),
        # Flags unknown: a change of service is a hop...
        ((K.SERVER, "frontend"), (K.SERVER, "cart"), None, ["frontend -> cart"]),
        ((K.INTERNAL, "frontend"), (K.INTERNAL, "cart"), None, ["frontend -> cart"]),
        ((K.CLIENT, "frontend"), (K.SERVER, "cart"), None, ["frontend -> cart"]),
        # ... and so is CLIENT -> SERVER within one service (A -> A over the network).
        ((K.CLIENT, "cart"), (K.SERVER, "cart"), None, ["cart -> cart"]),
        ((K.PRODUCER, "cart"), (K.CONSUMER, "cart"), None, ["cart ~> cart"]),
        # Within one service and not caller -> callee: in-process.
        ((K.SERVER, "cart"), (K.INTERNAL, "cart"), None, []),
        ((K.SERVER, "cart"), (K.CLIENT, "cart"), None, []),
        ((K.INTERNAL, "cart"), (K.SERVER, "cart"), None, []),
        ((K.SERVER, "cart"), (K.SERVER, "cart"), None, []),
    ],
)
def test_edge_is_a_hop(
    parent: tuple[SpanKind, str], child: tuple[SpanKind, str], remote: bool | None, expected: list[str]
) -> None:
    b = FlowBuilder()
    top = b.span(parent[0], parent[1], "parent", start_ms=0, end_ms=100)
    b.span(child[0], child[1], "child", parent=top, start_ms=10, end_ms=90, remote=remote)
    assert [h.text for h in hops_of(b.spans)] == expected


def test_a_hop_reads_caller_and_callee_spans_and_kind() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=300)
    client, server = b.call(frontend, "cart", "/cart", start_ms=10, end_ms=100)
    [hop] = hops_of(b.spans)
    assert hop.text == "frontend -> cart"
    assert hop.kind is HopKind.SYNC
    assert (hop.anchor, hop.callee_span) == (client, server)
    assert not hop.broken


# --- callee span: skip wrappers and double instrumentation -----------------------------------


@pytest.mark.parametrize("remote", [True, None], ids=["flags", "no-flags"])
def test_internal_wrapper_in_the_callee_is_skipped(remote: bool | None) -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=300)
    client = b.client("frontend", "POST /cart", parent=frontend, start_ms=10, end_ms=100)
    middleware = b.internal("cart", "auth middleware", parent=client, start_ms=11, end_ms=99, remote=remote)
    server = b.server("cart", "POST /cart", parent=middleware, start_ms=12, end_ms=98,
                      remote=None if remote is None else False)
    [hop] = hops_of(b.spans)
    assert hop.text == "frontend -> cart"
    assert hop.callee_span == server


@pytest.mark.parametrize("remote", [True, None], ids=["flags", "no-flags"])
def test_double_instrumented_server_is_one_hop_with_the_outer_callee(remote: bool | None) -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=300)
    client = b.client("frontend", "POST /cart", parent=frontend, start_ms=10, end_ms=100)
    outer = b.server("cart", "POST /cart", parent=client, start_ms=11, end_ms=99, remote=remote)
    b.server("cart", "cart.views.add", parent=outer, start_ms=12, end_ms=98,
             remote=None if remote is None else False)
    [hop] = hops_of(b.spans)
    assert hop.callee_span == outer


def test_deepest_same_service_server_is_reached_through_internal_spans() -> None:
    b = FlowBuilder()
    client = b.client("frontend", "POST /cart", start_ms=10, end_ms=100)
    a = b.internal("cart", "proxy", parent=client, start_ms=11, end_ms=99, remote=True)
    c = b.internal("cart", "router", parent=a, start_ms=12, end_ms=98)
    server = b.server("cart", "POST /cart", parent=c, start_ms=13, end_ms=97, remote=False)
    [hop] = hops_of(b.spans)
    assert (hop.text, hop.callee_span) == ("frontend -> cart", server)


def test_callee_without_server_span_is_the_child_itself() -> None:
    b = FlowBuilder()
    client = b.client("frontend", "POST /cart", start_ms=10, end_ms=100)
    handler = b.internal("cart", "handle", parent=client, start_ms=11, end_ms=99, remote=True)
    [hop] = hops_of(b.spans)
    assert hop.callee_span == handler


@pytest.mark.parametrize("remote", [False, None], ids=["flags", "no-flags"])
def test_client_wrapping_a_client_the_inner_one_is_the_caller(remote: bool | None) -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=300)
    wrapper = b.client("frontend", "requests POST", parent=frontend, start_ms=10, end_ms=100, remote=remote)
    inner = b.client("frontend", "urllib3 POST", parent=wrapper, start_ms=11, end_ms=99, remote=remote)
    b.server("cart", "POST /cart", parent=inner, start_ms=12, end_ms=98)
    [hop] = hops_of(b.spans)
    assert hop.anchor == inner
    assert dangling_calls(flow_trace(b.spans)) == []  # the wrapper is not a call of its own


def test_unanswered_client_wrapping_a_client_makes_one_peer_hop_on_the_inner() -> None:
    b = FlowBuilder()
    payment = b.server("payment", "POST /pay", start_ms=0, end_ms=300)
    stripe = {"peer.service": "stripe"}
    wrapper = b.client("payment", "stripe.Charge.create", parent=payment, start_ms=10, end_ms=100,
                       attrs=stripe)
    inner = b.client("payment", "POST", parent=wrapper, start_ms=11, end_ms=99, attrs=stripe)
    assert [c.span for c in dangling_calls(flow_trace(b.spans))] == [inner]
    [hop] = hops_of(b.spans)
    assert (hop.text, hop.kind, hop.anchor) == ("payment -> stripe", HopKind.PEER, inner)


@pytest.mark.parametrize("remote", [False, None], ids=["flags", "no-flags"])
def test_fastapi_send_and_receive_spans_are_never_hops(remote: bool | None) -> None:
    b = FlowBuilder()
    client = b.client("frontend", "POST /cart", start_ms=0, end_ms=100)
    server = b.server("cart", "POST /cart", parent=client, start_ms=1, end_ms=99)
    b.internal("cart", "POST /cart http receive", parent=server, start_ms=2, end_ms=3, remote=remote)
    b.internal("cart", "POST /cart http send", parent=server, start_ms=90, end_ms=91, remote=remote,
               attrs={"http.response.status_code": 200, "asgi.event.type": "http.response.start"})
    b.internal("cart", "POST /cart http send", parent=server, start_ms=92, end_ms=93, remote=remote,
               attrs={"asgi.event.type": "http.response.body"})
    assert [(h.text, h.callee_span) for h in hops_of(b.spans)] == [("frontend -> cart", server)]


# --- asynchronous hops -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "callee", "text", "kind"),
    [
        (K.PRODUCER, K.CONSUMER, "orders ~> email", HopKind.ASYNC),
        (K.CLIENT, K.CONSUMER, "orders ~> email", HopKind.ASYNC),
        (K.PRODUCER, K.SERVER, "orders ~> email", HopKind.ASYNC),
        (K.CLIENT, K.SERVER, "orders -> email", HopKind.SYNC),
    ],
)
def test_async_when_the_callee_consumes_or_the_caller_produces(
    caller: SpanKind, callee: SpanKind, text: str, kind: HopKind
) -> None:
    b = FlowBuilder()
    orders = b.server("orders", "POST /orders", start_ms=0, end_ms=100)
    sent = b.span(caller, "orders", "orders publish", parent=orders, start_ms=10, end_ms=12)
    b.span(callee, "email", "orders process", parent=sent, start_ms=50, end_ms=70, remote=True)
    [hop] = hops_of(b.spans)
    assert (hop.text, hop.kind, hop.anchor) == (text, kind, sent)


def _outbox_flow(*, link_to_producer: bool = True) -> tuple[FlowBuilder, StoredSpan, StoredSpan]:
    """orders publishes in trace T1; an outbox worker in trace T2 consumes it, linking back."""
    b = FlowBuilder()
    root = b.test_root()
    orders = b.server("orders", "POST /orders", parent=root, start_ms=1, end_ms=100)
    producer = b.producer("orders", "orders publish", parent=orders, start_ms=10, end_ms=12)
    poll = b.internal("email", "poll outbox", trace_id=T2, start_ms=200, end_ms=400)
    links = [producer] if link_to_producer else [(T1, "00000000000000ff")]
    consumer = b.consumer("email", "orders process", parent=poll, start_ms=210, end_ms=390, links=links,
                          remote=False)
    b.client("email", "POST /send", parent=consumer, start_ms=220, end_ms=380, attrs={"peer.service": "smtp"})
    return b, producer, consumer


def test_consumer_in_another_trace_linking_to_the_producer_is_an_async_hop() -> None:
    b, producer, consumer = _outbox_flow()
    hops = hops_of(b.spans)
    assert [h.text for h in hops] == ["test -> orders", "orders ~> email", "email -> smtp"]
    link_hop = hops[1]
    assert (link_hop.kind, link_hop.anchor, link_hop.callee_span) == (HopKind.ASYNC, producer, consumer)
    result = judge({"expect": {"hops": ["orders ~> email", "email -> smtp"]}}, b.spans)
    assert result.passed, result.first_divergence
    assert result.trace_ids == (T1, T2)


def test_link_to_a_span_outside_the_flow_is_no_hop() -> None:
    b, _, _ = _outbox_flow(link_to_producer=False)
    assert "orders ~> email" not in [h.text for h in hops_of(b.spans)]


def test_consumer_that_is_both_child_and_link_of_the_producer_is_one_hop() -> None:
    b = FlowBuilder()
    producer = b.producer("orders", "orders publish", start_ms=10, end_ms=12)
    b.consumer("email", "orders process", parent=producer, links=[producer], start_ms=50, end_ms=70)
    assert [h.text for h in hops_of(b.spans)] == ["orders ~> email"]


# --- dangling calls: peers, known addresses, broken propagation ------------------------------


def _payment_calling(attrs: dict[str, str | int]) -> FlowBuilder:
    b = FlowBuilder()
    root = b.test_root()
    frontend = b.server("frontend", "POST /checkout", parent=root, start_ms=1, end_ms=500)
    _, payment = b.call(frontend, "payment", "/pay", start_ms=10, end_ms=400)
    b.client("payment", "POST /v1/charges", parent=payment, start_ms=20, end_ms=300, attrs=attrs)
    return b


@pytest.mark.parametrize(
    ("attrs", "peers", "hop"),
    [
        ({"peer.service": "stripe", "server.address": "api.stripe.com", "server.port": 443}, {},
         "payment -> stripe"),
        ({"server.address": "127.0.0.1", "server.port": 9001}, {"stripe": "127.0.0.1:9001"},
         "payment -> stripe"),
        ({"url.full": "http://127.0.0.1:9001/v1/charges"}, {"stripe": "127.0.0.1:9001"}, "payment -> stripe"),
        ({"net.peer.name": "127.0.0.1", "net.peer.port": 9001}, {"stripe": "127.0.0.1:9001"},
         "payment -> stripe"),
        ({"server.address": "127.0.0.1", "server.port": 9001}, {}, "payment -> 127.0.0.1:9001"),
        ({"http.url": "https://API.Stripe.com/v1/charges"}, {}, "payment -> api.stripe.com:443"),
        ({"server.address": "127.0.0.1", "server.port": 9001}, {"paypal": "127.0.0.1:9002"},
         "payment -> 127.0.0.1:9001"),
    ],
)
def test_unanswered_call_is_an_uninstrumented_peer(
    attrs: dict[str, str | int], peers: dict[str, str], hop: str
) -> None:
    b = _payment_calling(attrs)
    result = judge({"peers": peers} if peers else {}, b.spans)
    [row] = [h for h in result.hops if h.caller_service == "payment"]
    assert (row.hop, row.kind.value, row.callee_span_id) == (hop, "peer", None)
    assert row.detail == "uninstrumented peer"
    assert result.passed, result.first_divergence


def test_unanswered_call_saying_nothing_of_its_target_is_no_hop() -> None:
    b = _payment_calling({})
    assert [h.text for h in hops_of(b.spans)] == ["test -> frontend", "frontend -> payment"]


def _refused_retry(client_attrs: dict[str, str | int]) -> FlowBuilder:
    """frontend calls cart twice: the first attempt is refused (no cart span), the retry answered."""
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=500)
    b.client("frontend", "POST /cart", parent=frontend, start_ms=10, end_ms=15, attrs=client_attrs)
    b.call(frontend, "cart", "/cart", start_ms=20, end_ms=100, client_attrs=client_attrs,
           callee_attrs={"server.address": "cart", "server.port": 8080, "url.scheme": "http"})
    return b


@pytest.mark.parametrize(
    "client_attrs",
    [
        {"server.address": "cart", "server.port": 8080},
        {"url.full": "http://cart:8080/cart"},
        {"peer.service": "cart"},
    ],
    ids=["address", "url", "peer.service"],
)
def test_unanswered_call_to_a_known_service_is_its_hop_with_the_callee_missing(
    client_attrs: dict[str, str | int],
) -> None:
    b = _refused_retry(client_attrs)
    hops = hops_of(b.spans)
    assert [(h.text, h.kind) for h in hops] == [("frontend -> cart", HopKind.SYNC)] * 2
    assert hops[0].callee_span is None
    assert hops[0].detail == "no span of cart answered this call"
    assert hops[1].callee_span is not None
    result = judge({"expect": {"hops": ["frontend -> cart"], "times": {"frontend -> cart": 2}}}, b.spans)
    assert result.passed, result.first_divergence
    assert [(h.hop, h.status.value, h.callee_span_id is None) for h in result.hops] == [
        ("frontend -> cart", "matched", True),
        ("frontend -> cart", "matched", False),
    ]


def _broken_flow() -> tuple[FlowBuilder, StoredSpan, StoredSpan]:
    """frontend calls cart, but cart starts a trace of its own (T2) and calls inventory there."""
    b = FlowBuilder()
    root = b.test_root()
    frontend = b.server("frontend", "POST /checkout", parent=root, start_ms=1, end_ms=500)
    client = b.client("frontend", "POST /cart", parent=frontend, start_ms=10, end_ms=200,
                      attrs={"server.address": "cart", "server.port": 8080})
    # A root span says its parent is not remote (the SDK sets the has-is-remote bit only).
    cart = b.server("cart", "POST /cart", trace_id=T2, start_ms=12, end_ms=198, remote=False,
                    attrs={"server.address": "cart", "server.port": 8080})
    b.call(cart, "inventory", "/reserve", start_ms=20, end_ms=100)
    b.call(frontend, "payment", "/pay", start_ms=210, end_ms=400)
    return b, client, cart


def test_broken_propagation_is_a_broken_hop_and_later_hops_are_still_found() -> None:
    b, client, cart = _broken_flow()
    hops = hops_of(b.spans, stitches={cart.span_id: client.span_id})
    assert [(h.text, h.broken) for h in hops] == [
        ("test -> frontend", False),
        ("frontend -> cart", True),
        ("cart -> inventory", False),
        ("frontend -> payment", False),
    ]
    assert hops[1].callee_span == cart
    assert hops[1].detail == f"cart started a new trace {T2}"

    spec = {"expect": {"hops": ["frontend -> cart", "cart -> inventory", "frontend -> payment"],
                       "chains": [["frontend", "cart", "inventory"]]}}
    result = judge(spec, b.spans, stitches={cart.span_id: client.span_id})
    assert not result.passed
    assert hop_rows(result)[1] == ("frontend -> cart", "sync", "broken")
    assert [(f.kind.value, f.hop) for f in result.findings] == [("propagation_broken", "frontend -> cart")]
    assert result.first_divergence == f"frontend -> cart: propagation broken — cart started a new trace {T2}"
    assert {c.check: c.state.value for c in result.checks} == {
        "hops": "pass", "order": "pass", "chains": "pass", "connected": "fail", "errors": "pass"
    }
    assert result.trace_ids == (T1, T2)


def test_the_stitched_call_is_not_also_a_peer_or_missing_callee_hop() -> None:
    b, client, cart = _broken_flow()
    texts = [h.text for h in hops_of(b.spans, stitches={cart.span_id: client.span_id})]
    assert texts.count("frontend -> cart") == 1


def _orphan_flow(
    orphan_start_ms: float, service: str = "cart", port: int = 8080
) -> tuple[FlowBuilder, StoredSpan, StoredSpan]:
    """frontend calls cart:8080; cart's span names a parent id that never arrives (a proxy's)."""
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=500)
    client = b.client("frontend", "POST /cart", parent=frontend, start_ms=10, end_ms=200,
                      attrs={"server.address": "cart", "server.port": 8080})
    orphan = b.server(service, "POST /cart", parent="00000000deadbeef", start_ms=orphan_start_ms,
                      end_ms=orphan_start_ms + 50, attrs={"server.address": service, "server.port": port})
    return b, client, orphan


@pytest.mark.parametrize(
    ("start_ms", "service", "port", "matched"),
    [
        (12, "cart", 8080, True),
        (10 - 4.9, "cart", 8080, True),  # within the skew allowance before the call
        (200 + 4.9, "cart", 8080, True),  # ... and after it
        (10 - 5.1, "cart", 8080, False),
        (205.1, "cart", 8080, False),
        (12, "cart", 8081, False),  # another address
        (12, "carts", 8080, False),
    ],
)
def test_orphan_in_the_same_trace_is_a_candidate_within_the_call_window(
    start_ms: float, service: str, port: int, matched: bool
) -> None:
    b, client, orphan = _orphan_flow(start_ms, service, port)
    trace = flow_trace(b.spans)
    assert trace.orphans == (orphan,)
    [call] = dangling_calls(trace)
    assert call.span == client
    assert orphan_candidates(trace, call, SKEW_NS) == ([orphan] if matched else [])


def test_orphan_stitched_under_its_call_is_a_broken_hop_naming_the_lost_parent() -> None:
    b, client, orphan = _orphan_flow(12)
    [hop] = hops_of(b.spans, stitches={orphan.span_id: client.span_id})
    assert (hop.text, hop.broken, hop.callee_span) == ("frontend -> cart", True, orphan)
    assert hop.detail == "cart named parent 00000000deadbeef, which never arrived"


def test_orphan_matched_by_peer_service() -> None:
    b = FlowBuilder()
    b.client("frontend", "POST /cart", start_ms=10, end_ms=200, attrs={"peer.service": "cart"})
    orphan = b.server("cart", "POST /cart", parent="00000000deadbeef", start_ms=12, end_ms=100)
    b.server("auth", "POST /login", parent="00000000deadbeee", start_ms=12, end_ms=100)
    trace = flow_trace(b.spans)
    [call] = dangling_calls(trace)
    assert call.target == "cart"
    assert orphan_candidates(trace, call, SKEW_NS) == [orphan]


def _candidates(*request_ids: str | None) -> tuple[DanglingCall, list[StoredSpan]]:
    b = FlowBuilder()
    client = b.client("frontend", "POST /cart", start_ms=10, end_ms=200, attrs={"peer.service": "cart"})
    roots = [
        b.server("cart", "POST /cart", trace_id=f"{i + 1:032x}", start_ms=12 + i, end_ms=100, remote=False,
                 attrs={} if rid is None else {"http.request.header.x_request_id": [rid]})
        for i, rid in enumerate(request_ids)
    ]
    return DanglingCall(client, "cart", None), roots


@pytest.mark.parametrize(
    ("request_ids", "correlation", "chosen", "why"),
    [
        ((), {"x-request-id": "r-1"}, None, ""),
        ((None,), {}, 0, ""),
        (("r-2",), {"x-request-id": "r-1"}, 0, ""),  # one candidate needs no tie-break
        (("r-1", "r-2"), {"x-request-id": "r-2"}, 1, ""),
        ((None, "r-1"), {"x-request-id": "r-1"}, 1, ""),
        (("r-1", "r-2"), {}, None, "2 traces started in cart during the call"),
        (("r-1", "r-1"), {"x-request-id": "r-1"}, None, "2 traces started in cart during the call"),
        (("r-2", "r-3", None), {"x-request-id": "r-1"}, None, "3 traces started in cart during the call"),
    ],
)
def test_choose_stitch_breaks_ties_by_a_correlation_header_or_declines(
    request_ids: tuple[str | None, ...], correlation: dict[str, str], chosen: int | None, why: str
) -> None:
    call, candidates = _candidates(*request_ids)
    picked, reason = choose_stitch(call, candidates, correlation)
    assert picked == (None if chosen is None else candidates[chosen])
    assert reason == why


# --- order of the hop list -------------------------------------------------------------------


def _busy_flow() -> list[StoredSpan]:
    b = FlowBuilder()
    root = b.test_root()
    frontend = b.server("frontend", "POST /checkout", parent=root, start_ms=1, end_ms=900)
    b.call(frontend, "auth", "/login", start_ms=10, end_ms=50)
    _, cart = b.call(frontend, "cart", "/cart", start_ms=60, end_ms=200)
    b.call(frontend, "recommendations", "/recs", start_ms=60, end_ms=120)  # same start as the cart call
    b.call(cart, "inventory", "/reserve", start_ms=70, end_ms=150)
    producer = b.producer("frontend", "orders publish", parent=frontend, start_ms=300, end_ms=301)
    b.consumer("email", "orders process", parent=producer, start_ms=302, end_ms=400)
    b.client("frontend", "POST /charge", parent=frontend, start_ms=500, end_ms=600,
             attrs={"peer.service": "stripe"})
    return b.spans


def test_hops_sorted_by_anchor_start_then_span_id_whatever_the_input_order() -> None:
    spans = _busy_flow()
    expected = [h.text for h in hops_of(spans)]
    assert expected == [
        "test -> frontend",
        "frontend -> auth",
        "frontend -> cart",
        "frontend -> recommendations",
        "cart -> inventory",
        "frontend ~> email",
        "frontend -> stripe",
    ]
    keys = [(h.anchor.start_unix_nano, h.anchor.span_id) for h in hops_of(spans)]
    assert keys == sorted(keys)
    shuffler = random.Random(7)
    for _ in range(20):
        shuffled = spans[:]
        shuffler.shuffle(shuffled)
        assert [(h.text, h.anchor.span_id) for h in hops_of(shuffled)] == [
            (h.text, h.anchor.span_id) for h in hops_of(spans)
        ]


def test_results_are_identical_whatever_the_input_order() -> None:
    spans = _busy_flow()
    spec = {"expect": {"hops": ["frontend -> cart", "cart -> inventory"], "order": "exact"}}
    first = judge(spec, spans).to_json()
    shuffler = random.Random(11)
    for _ in range(20):
        shuffled = spans[:]
        shuffler.shuffle(shuffled)
        assert judge(spec, shuffled).to_json() == first


def test_a_start_cut_to_the_millisecond_is_not_an_overlap() -> None:
    # the JavaScript SDK: start at Date.now() (whole ms), end on a finer clock
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=100)
    b.call(frontend, "auth", "/verify", start_ms=10, end_ms=20.4)
    b.call(frontend, "cart", "/cart", start_ms=20, end_ms=30)
    spec = {"expect": {"hops": ["frontend -> auth", "frontend -> cart"], "order": "exact"}}
    assert check(judge(spec, b.spans), "order").state is CheckState.PASS
    b2 = FlowBuilder()
    frontend = b2.server("frontend", "POST /checkout", start_ms=0, end_ms=100)
    b2.call(frontend, "auth", "/verify", start_ms=10, end_ms=21.4)
    b2.call(frontend, "cart", "/cart", start_ms=20, end_ms=30)
    assert check(judge(spec, b2.spans), "order").state is CheckState.FAIL, "more than 1 ms is an overlap"


# --- one rule for what a hop pattern names ------------------------------------------------------


@pytest.mark.parametrize(
    "pattern",
    ["* -> frontend", "test -> frontend", "test -> *", "* -> *", "* ~> email", "orders ~> *",
     "frontend -> *", "gateway -> frontend", "orders -> email"],
)
def test_a_verdict_s_hops_match_a_pattern_as_the_engine_s_hops_do(pattern: str) -> None:
    """The failure diff and the API ask `hop_matches` of a verdict's HopResults; the engine
    of its Hops. `*` never names the test's own root, whichever is asked."""
    b = FlowBuilder()
    root = b.test_root()
    b.call(root, "frontend", "/health", start_ms=1, end_ms=5)
    _, gateway = b.call(root, "gateway", "/checkout", start_ms=10, end_ms=100)
    _, frontend = b.call(gateway, "frontend", "/checkout", start_ms=20, end_ms=90)
    _, orders = b.call(frontend, "orders", "/orders", start_ms=30, end_ms=60)
    producer = b.producer("orders", "publish", parent=orders, start_ms=40, end_ms=41)
    b.consumer("email", "send", parent=producer, start_ms=45, end_ms=50)
    hops = hops_of(b.spans)
    verdict = judge({}, b.spans).hops
    assert [h.hop for h in verdict] == [h.text for h in hops]
    parsed = parse_flow_spec({"name": "p", "expect": {"hops": [pattern]}}).expect.hops[0][0]
    assert [hop_matches(parsed, h) for h in verdict] == [hop_matches(parsed, h) for h in hops]
    if pattern.startswith("*"):
        assert not any(hop_matches(parsed, h) for h in verdict if h.caller_service == "test")
