"""Every check of a flow spec (DESIGN §5) on hand-built flows: what passes, what stays
pending while the flow may still change, and what fails with a message naming the hop."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest
from spans import (
    MS,
    T1,
    T2,
    CheckState,
    FlowBuilder,
    check,
    finding_kinds,
    hop_rows,
    judge,
    states,
    traceparent,
)

from tracebaton.assertions import CHECK_IDS
from tracebaton.collector import StatusCode, StoredSpan

PASS, FAIL, PENDING = CheckState.PASS, CheckState.FAIL, CheckState.PENDING

CAPTURED = {"traceparent": None, "x-request-id": "r-1", "baggage": "tenant=acme"}
"""What every callee of the shop captures by default: the W3C headers and a request id."""


@dataclasses.dataclass
class Shop:
    """test -> frontend; frontend -> auth; frontend -> cart -> inventory; frontend -> payment -> stripe."""

    b: FlowBuilder
    root: StoredSpan
    frontend: StoredSpan
    auth: tuple[StoredSpan, StoredSpan]
    cart: tuple[StoredSpan, StoredSpan]
    inventory: tuple[StoredSpan, StoredSpan]
    payment: tuple[StoredSpan, StoredSpan]
    stripe: StoredSpan

    @property
    def spans(self) -> list[StoredSpan]:
        return self.b.spans


def shop(capture: Mapping[str, Mapping[str, str | None]] | None = None) -> Shop:
    """The checkout flow; `capture[service]` replaces what that callee captured."""
    captured = {service: dict(CAPTURED) for service in ("auth", "cart", "inventory", "payment")}
    captured.update({k: dict(v) for k, v in (capture or {}).items()})
    b = FlowBuilder()
    root = b.test_root(start_ms=0, end_ms=1000)
    frontend = b.server(
        "frontend", "POST /checkout", parent=root, start_ms=2, end_ms=900,
        attrs={"http.request.header.traceparent": [traceparent(root)]},
    )
    auth = b.call(frontend, "auth", "/login", start_ms=10, end_ms=50, capture=captured["auth"])
    cart = b.call(frontend, "cart", "/cart", start_ms=60, end_ms=200, capture=captured["cart"])
    inventory = b.call(cart[1], "inventory", "/reserve", start_ms=80, end_ms=150,
                       capture=captured["inventory"])
    payment = b.call(frontend, "payment", "/pay", start_ms=250, end_ms=400, capture=captured["payment"])
    stripe = b.client("payment", "POST /v1/charges", parent=payment[1], start_ms=260, end_ms=390,
                      attrs={"peer.service": "stripe"})
    return Shop(b, root, frontend, auth, cart, inventory, payment, stripe)


SHOP_HOPS = [
    "test -> frontend",
    "frontend -> auth",
    "frontend -> cart",
    "cart -> inventory",
    "frontend -> payment",
    "payment -> stripe",
]


def test_the_shop_flow_passes_a_full_spec() -> None:
    spec = {
        "expect": {
            "hops": ["frontend -> auth", ["frontend -> cart", "frontend -> payment"], "payment -> stripe"],
            "times": {"cart -> inventory": 1, "* -> payment": 1},
            "chains": [["frontend", "cart", "inventory"]],
            "budgets": {"trace": "2s", "hops": {"cart -> inventory": "200ms"}, "deadlines": True},
            "propagation": {"headers": {"traceparent": "valid", "x-request-id": "same", "baggage": "present"},
                            "baggage": {"tenant": "acme"}},
            "spans": [{"select": {"service": "payment", "kind": "server"}, "count": 1}],
        }
    }
    result = judge(spec, shop().spans)
    assert result.passed, result.first_divergence
    assert [c.check for c in result.checks] == [*CHECK_IDS, "spans[0]"]
    assert hop_rows(result) == [
        ("test -> frontend", "sync", "matched"),
        ("frontend -> auth", "sync", "matched"),
        ("frontend -> cart", "sync", "matched"),
        ("cart -> inventory", "sync", "unexpected"),  # in times and budgets, not in hops
        ("frontend -> payment", "sync", "matched"),
        ("payment -> stripe", "peer", "matched"),
    ]
    assert result.waited_reason.value == "settled"
    assert result.findings == ()
    assert result.first_divergence is None


# --- hops --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settled", "final", "state"),
    [(False, False, PENDING), (True, False, PENDING), (False, True, FAIL), (True, True, FAIL)],
)
def test_missing_hop_is_pending_until_the_timeout(settled: bool, final: bool, state: CheckState) -> None:
    result = judge({"expect": {"hops": ["frontend -> cart", "frontend -> shipping"]}}, shop().spans,
                   settled=settled, final=final)
    hops = check(result, "hops")
    assert hops.state is state
    assert hops.hop == "frontend -> shipping"
    assert hops.message == "frontend -> shipping: never seen; frontend called auth, cart, payment"
    if final:
        assert result.first_divergence == hops.message
        assert ("frontend -> shipping", "sync", "missing") in hop_rows(result)
        assert result.waited_reason.value == "timeout"


def test_seen_hops_pass_at_once() -> None:
    result = judge({"expect": {"hops": ["frontend -> cart", "* -> stripe"]}}, shop().spans, settled=False)
    assert check(result, "hops").state is PASS


@pytest.mark.parametrize(
    ("expected", "message"),
    [
        ("shipping -> cart", "shipping -> cart: never seen; no span of shipping arrived"),
        ("frontend ~> cart", "frontend ~> cart: never seen; seen as frontend -> cart (synchronous) — "
                             "write it as frontend -> cart"),
        ("* -> shipping", "* -> shipping: never seen"),
    ],
)
def test_missing_hop_message_points_at_the_fix(expected: str, message: str) -> None:
    result = judge({"expect": {"hops": [expected]}}, shop().spans, final=True)
    assert check(result, "hops").message == message


def test_missing_async_hop_names_the_unconsumed_message() -> None:
    b = FlowBuilder()
    orders = b.server("orders", "POST /orders", start_ms=0, end_ms=100)
    producer = b.producer("orders", "orders publish", parent=orders, start_ms=10, end_ms=12)
    result = judge({"expect": {"hops": ["orders ~> email"]}}, b.spans, final=True)
    assert check(result, "hops").message == (
        f"orders ~> email: never seen; orders produced 'orders publish' (span {producer.span_id}) "
        "but no consumer span arrived with a link to it"
    )


def test_star_does_not_match_the_test_root_unless_named() -> None:
    spans = shop().spans
    assert check(judge({"expect": {"hops": ["* -> frontend"]}}, spans, final=True), "hops").state is FAIL
    assert check(judge({"expect": {"hops": ["test -> frontend"]}}, spans), "hops").state is PASS


def test_unexpected_hops_are_listed_as_such() -> None:
    result = judge({"expect": {"hops": ["frontend -> cart"]}}, shop().spans)
    assert hop_rows(result) == [
        ("test -> frontend", "sync", "matched"),
        ("frontend -> auth", "sync", "unexpected"),
        ("frontend -> cart", "sync", "matched"),
        ("cart -> inventory", "sync", "unexpected"),
        ("frontend -> payment", "sync", "unexpected"),
        ("payment -> stripe", "peer", "unexpected"),
    ]


# --- times -------------------------------------------------------------------------------------


def _retried_cart() -> list[StoredSpan]:
    s = shop()
    s.b.call(s.frontend, "cart", "/cart", start_ms=210, end_ms=240, capture=CAPTURED)
    return s.spans


@pytest.mark.parametrize(
    ("times", "settled", "final", "state", "message"),
    [
        (1, False, False, FAIL, "frontend -> cart: happened 2 times, expected 1 (a retry?)"),
        (2, False, False, PENDING, ""),
        (2, True, False, PASS, ""),
        (3, True, False, PENDING, "frontend -> cart: happened 2 times, expected 3"),
        (3, True, True, FAIL, "frontend -> cart: happened 2 times, expected 3"),
        (0, False, False, FAIL, "frontend -> cart: happened 2 times, expected 0"),
    ],
)
def test_a_retry_counts_twice(
    times: int, settled: bool, final: bool, state: CheckState, message: str
) -> None:
    result = judge({"expect": {"times": {"frontend -> cart": times}}}, _retried_cart(),
                   settled=settled, final=final)
    result_times = check(result, "times")
    assert (result_times.state, result_times.message) == (state, message)
    if state is FAIL:
        assert result_times.hop == "frontend -> cart"
        assert len(result_times.span_ids) == 2 or times == 3


def test_times_ignores_hops_out_of_the_test_unless_named() -> None:
    spans = shop().spans
    assert check(judge({"expect": {"times": {"* -> frontend": 0}}}, spans), "times").state is PASS
    assert check(judge({"expect": {"times": {"test -> frontend": 1}}}, spans), "times").state is PASS
    assert check(judge({"expect": {"times": {"test -> frontend": 0}}}, spans), "times").state is FAIL


def test_times_over_a_star_pattern_names_the_pattern() -> None:
    result = judge({"expect": {"times": {"frontend -> *": 2}}}, shop().spans)
    assert check(result, "times").message == "frontend -> *: happened 3 times, expected 2"


# --- order -------------------------------------------------------------------------------------


def _fan_out(cart_ms: tuple[float, float], payment_ms: tuple[float, float]) -> FlowBuilder:
    b = FlowBuilder()
    root = b.test_root()
    frontend = b.server("frontend", "POST /checkout", parent=root, start_ms=1, end_ms=900)
    _, cart = b.call(frontend, "cart", "/cart", start_ms=cart_ms[0], end_ms=cart_ms[1])
    b.call(cart, "inventory", "/reserve", start_ms=cart_ms[0] + 5, end_ms=cart_ms[1] - 5)
    b.call(frontend, "payment", "/pay", start_ms=payment_ms[0], end_ms=payment_ms[1])
    return b


@pytest.mark.parametrize(
    ("cart_ms", "payment_ms", "order", "state"),
    [
        ((10, 100), (110, 200), "subsequence", PASS),
        ((10, 100), (50, 200), "subsequence", PASS),  # overlapping: concurrent, never out of order
        ((60, 200), (10, 100), "subsequence", PASS),  # overlapping the other way round
        ((110, 200), (10, 100), "subsequence", FAIL),  # payment ended before cart began: proven
        ((110, 200), (10, 100), "any", None),
        ((10, 100), (110, 200), "exact", PASS),
        ((10, 100), (50, 200), "exact", FAIL),
        ((110, 200), (10, 100), "exact", FAIL),
    ],
)
def test_order_fails_only_on_a_proven_inversion(
    cart_ms: tuple[float, float], payment_ms: tuple[float, float], order: str, state: CheckState | None
) -> None:
    spec = {"expect": {"hops": ["frontend -> cart", "cart -> inventory", "frontend -> payment"],
                       "order": order}}
    result = judge(spec, _fan_out(cart_ms, payment_ms).spans)
    if state is None:
        assert "order" not in states(result)
        return
    assert check(result, "order").state is state
    if state is FAIL:
        assert check(result, "order").hop == "frontend -> payment"


def test_inversion_message_names_both_hops_and_fails_only_when_settled() -> None:
    spans = _fan_out((110, 200), (10, 100)).spans
    spec = {"expect": {"hops": ["frontend -> cart", "frontend -> payment"]}}
    message = "frontend -> payment: happened before frontend -> cart, expected after it"
    unsettled = check(judge(spec, spans, settled=False), "order")
    assert (unsettled.state, unsettled.message) == (PENDING, message)  # an earlier cart call may still come
    settled = judge(spec, spans)
    assert (check(settled, "order").state, check(settled, "order").message) == (FAIL, message)
    assert settled.first_divergence == message
    assert check(judge(spec, spans, settled=False, final=True), "order").state is FAIL


@pytest.mark.parametrize(
    ("payments_ms", "state"),
    [
        ([(5, 8), (200, 300)], PASS),  # payment, cart, payment: [cart, payment] is a subsequence
        ([(200, 300), (5, 8)], PASS),
        ([(1, 3), (5, 8)], FAIL),  # every payment before the cart call
    ],
)
def test_subsequence_needs_only_one_instance_in_order(
    payments_ms: list[tuple[float, float]], state: CheckState
) -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=900)
    b.call(frontend, "cart", "/cart", start_ms=10, end_ms=100)
    for start, end in payments_ms:
        b.call(frontend, "payment", "/pay", start_ms=start, end_ms=end)
    spec = {"expect": {"hops": ["frontend -> cart", "frontend -> payment"]}}
    assert check(judge(spec, b.spans), "order").state is state


def test_overlap_message_under_exact() -> None:
    spec = {"expect": {"hops": ["frontend -> cart", "cart -> inventory", "frontend -> payment"],
                       "order": "exact"}}
    result = judge(spec, _fan_out((10, 100), (50, 200)).spans)
    # neighbouring groups are compared: payment overlapped cart's call to inventory
    assert check(result, "order").message == (
        "frontend -> payment: overlapped cart -> inventory, expected after it (order: exact)"
    )


def test_nested_hop_comes_after_whatever_the_callee_clock_says() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=900)
    client = b.client("frontend", "POST /cart", parent=frontend, start_ms=100, end_ms=200)
    # cart's clock runs 500 ms behind: on it, its call to inventory "ends" before frontend called.
    cart = b.server("cart", "POST /cart", parent=client, start_ms=-400, end_ms=-300)
    b.call(cart, "inventory", "/reserve", start_ms=-390, end_ms=-310)
    nested_last = {"expect": {"hops": ["frontend -> cart", "cart -> inventory"], "order": "exact"}}
    assert check(judge(nested_last, b.spans), "order").state is PASS
    nested_first = {"expect": {"hops": ["cart -> inventory", "frontend -> cart"]}}
    order = check(judge(nested_first, b.spans), "order")
    assert (order.state, order.message) == (
        FAIL, "frontend -> cart: happened before cart -> inventory, expected after it"
    )
    assert "clock_skew" in finding_kinds(judge({}, b.spans))


def test_order_across_services_is_judged_on_the_common_ancestors_clock() -> None:
    # inventory's clock is far ahead; on frontend's clock the cart call (which holds the
    # inventory call) ended before payment was called, so inventory came before payment.
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=900)
    _, cart = b.call(frontend, "cart", "/cart", start_ms=10, end_ms=100)
    inventory_client = b.client("cart", "POST /reserve", parent=cart, start_ms=20, end_ms=90)
    b.server("inventory", "POST /reserve", parent=inventory_client, start_ms=5000, end_ms=5050)
    b.call(frontend, "payment", "/pay", start_ms=110, end_ms=200)
    ok = {"expect": {"hops": ["cart -> inventory", "frontend -> payment"]}}
    assert check(judge(ok, b.spans), "order").state is PASS
    inverted = {"expect": {"hops": ["frontend -> payment", "cart -> inventory"]}}
    assert check(judge(inverted, b.spans), "order").state is FAIL


def test_groups_allow_any_order_inside_but_not_across() -> None:
    spans = shop().spans  # auth 10-50, cart 60-200, payment 250-400
    inside = {"expect": {"hops": [["frontend -> payment", "frontend -> auth"], "payment -> stripe"],
                         "order": "exact"}}
    assert check(judge(inside, spans), "order").state is FAIL  # exact: cart and inventory are extra
    inside["expect"]["order"] = "subsequence"
    assert check(judge(inside, spans), "order").state is PASS
    across = {"expect": {"hops": ["frontend -> payment", ["frontend -> auth", "frontend -> cart"]]}}
    assert check(judge(across, spans), "order").state is FAIL


def test_groups_under_exact() -> None:
    spans = _fan_out((10, 100), (50, 200)).spans  # payment overlaps cart and its call to inventory
    concurrent = {"expect": {"hops": [["frontend -> payment", "frontend -> cart", "cart -> inventory"]],
                             "order": "exact"}}
    assert check(judge(concurrent, spans), "order").state is PASS
    split = {"expect": {"hops": [["frontend -> payment", "frontend -> cart"], "cart -> inventory"],
                        "order": "exact"}}
    order = check(judge(split, spans), "order")
    assert (order.state, order.message) == (
        FAIL, "cart -> inventory: overlapped frontend -> payment, expected after it (order: exact)"
    )
    assert check(judge({"expect": {"hops": split["expect"]["hops"]}}, spans), "order").state is PASS


def test_exact_rejects_extra_hops_but_ignores_the_test_root() -> None:
    spans = shop().spans
    all_hops = {"expect": {"hops": SHOP_HOPS[1:], "order": "exact"}}
    assert check(judge(all_hops, spans), "order").state is PASS
    missing_one = {"expect": {"hops": ["frontend -> auth", "frontend -> cart", "cart -> inventory",
                                       "frontend -> payment"], "order": "exact"}}
    order = check(judge(missing_one, spans), "order")
    assert (order.state, order.message, order.hop) == (
        FAIL, "payment -> stripe: not in the expected hops (order: exact)", "payment -> stripe"
    )


def test_exact_counts_the_test_root_once_the_spec_names_test() -> None:
    s = shop()
    s.b.server("admin", "GET /orders", parent=s.root, start_ms=950, end_ms=990)  # a second request
    named = {"expect": {"hops": ["test -> frontend", *SHOP_HOPS[1:]], "order": "exact"}}
    order = check(judge(named, s.spans), "order")
    assert (order.state, order.message) == (FAIL, "test -> admin: not in the expected hops (order: exact)")
    unnamed = {"expect": {"hops": SHOP_HOPS[1:], "order": "exact"}}
    assert check(judge(unnamed, s.spans), "order").state is PASS


@pytest.mark.parametrize(("settled", "final", "state"), [(False, False, PENDING), (True, False, PASS)])
def test_exact_is_universal(settled: bool, final: bool, state: CheckState) -> None:
    spec = {"expect": {"hops": SHOP_HOPS[1:], "order": "exact"}}
    assert check(judge(spec, shop().spans, settled=settled, final=final), "order").state is state


def test_exact_with_a_hop_missing_waits_for_it() -> None:
    spec = {"expect": {"hops": [*SHOP_HOPS[1:], "frontend -> shipping"], "order": "exact"}}
    assert check(judge(spec, shop().spans), "order").state is PENDING
    assert check(judge(spec, shop().spans, final=True), "order").state is FAIL


def test_one_message_fanned_out_to_two_consumers_has_no_order_under_exact() -> None:
    b = FlowBuilder()
    orders = b.server("orders", "POST /orders", start_ms=0, end_ms=100)
    producer = b.producer("orders", "orders publish", parent=orders, start_ms=10, end_ms=12)
    b.consumer("email", "orders process", parent=producer, start_ms=20, end_ms=30)
    b.consumer("sms", "orders process", parent=producer, start_ms=21, end_ms=31)
    for first, second in (("email", "sms"), ("sms", "email")):
        spec = {"expect": {"hops": [f"orders ~> {first}", f"orders ~> {second}"]}}
        assert check(judge(spec, b.spans), "order").state is PASS
        spec["expect"]["order"] = "exact"
        order = check(judge(spec, b.spans), "order")
        assert (order.state, order.message) == (
            FAIL, f"orders ~> {second}: overlapped orders ~> {first}, expected after it (order: exact)"
        )
    grouped = {"expect": {"hops": [["orders ~> email", "orders ~> sms"]], "order": "exact"}}
    assert check(judge(grouped, b.spans), "order").state is PASS


# --- chains ------------------------------------------------------------------------------------


def test_chain_of_nested_hops_passes_at_once() -> None:
    chains = [["test", "frontend", "cart", "inventory"], ["frontend", "payment", "stripe"]]
    spec = {"expect": {"chains": chains}}
    assert check(judge(spec, shop().spans, settled=False), "chains").state is PASS


def test_chain_whose_last_hop_happened_elsewhere() -> None:
    s = shop()
    # inventory is called by cart, but from a request the test made, not from frontend's
    _, cart = s.b.call(s.root, "cart", "/cart/sync", start_ms=950, end_ms=990)
    s.b.call(cart, "inventory", "/count", start_ms=955, end_ms=985)
    spec = {"expect": {"chains": [["test", "cart", "inventory"], ["frontend", "auth", "inventory"]]}}
    result = judge(spec, s.spans)
    assert check(result, "chains").state is PENDING
    chains = check(judge(spec, s.spans, final=True), "chains")
    assert chains.state is FAIL
    assert chains.message == (
        "auth -> inventory: never happened inside frontend -> auth (chain frontend → auth → inventory)"
    )
    assert chains.hop == "auth -> inventory"


def test_chain_that_never_started() -> None:
    chains = check(judge({"expect": {"chains": [["frontend", "shipping", "carrier"]]}}, shop().spans,
                         final=True), "chains")
    assert chains.message == "frontend -> shipping: chain frontend → shipping → carrier never started"


def test_chain_needs_nesting_not_just_both_hops() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=900)
    b.call(frontend, "cart", "/cart", start_ms=10, end_ms=100)
    _, other = b.call(frontend, "cart", "/cart", start_ms=110, end_ms=200)
    b.call(other, "inventory", "/reserve", start_ms=120, end_ms=190)
    assert check(judge({"expect": {"chains": [["frontend", "cart", "inventory"]]}}, b.spans),
                 "chains").state is PASS
    b2 = FlowBuilder()
    frontend = b2.server("frontend", "POST /checkout", start_ms=0, end_ms=900)
    b2.call(frontend, "cart", "/cart", start_ms=10, end_ms=100)
    cart_root = b2.server("cart", "cron", start_ms=120, end_ms=190, remote=False)
    b2.call(cart_root, "inventory", "/reserve", start_ms=120, end_ms=190)
    assert check(judge({"expect": {"chains": [["frontend", "cart", "inventory"]]}}, b2.spans, final=True),
                 "chains").state is FAIL


# --- budgets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "settled", "state"),
    [("1s", True, PASS), ("1s", False, PENDING), ("800ms", False, FAIL), ("800ms", True, FAIL)],
)
def test_trace_budget_measures_the_entry_span_not_the_test_root(
    budget: str, settled: bool, state: CheckState
) -> None:
    s = shop()  # the test root lasts 1000 ms, frontend's entry span 898 ms
    result = check(judge({"expect": {"budgets": {"trace": budget}}}, s.spans, settled=settled),
                   "budgets.trace")
    assert result.state is state
    if state is FAIL:
        assert result.message == f"frontend: 'POST /checkout' took 898 ms, trace budget {budget[:3]} ms"
        assert result.span_ids == (s.frontend.span_id,)


def test_trace_budget_entry_span_without_a_test_root_is_the_root() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=300)
    b.call(frontend, "cart", "/cart", start_ms=10, end_ms=100)
    result = check(judge({"expect": {"budgets": {"trace": "200ms"}}}, b.spans), "budgets.trace")
    assert result.message == "frontend: 'POST /checkout' took 300 ms, trace budget 200 ms"


def test_trace_budget_entry_span_is_the_earliest_request_of_the_test() -> None:
    b = FlowBuilder()
    root = b.test_root(end_ms=5000)
    b.server("admin", "GET /health", parent=root, start_ms=400, end_ms=401)
    b.server("frontend", "POST /checkout", parent=root, start_ms=10, end_ms=310)
    result = check(judge({"expect": {"budgets": {"trace": "200ms"}}}, b.spans), "budgets.trace")
    assert result.message == "frontend: 'POST /checkout' took 300 ms, trace budget 200 ms"


def test_trace_budget_ignores_linked_traces() -> None:
    b = FlowBuilder()
    producer = b.producer("orders", "orders publish", start_ms=-5000, end_ms=-4990, trace_id=T2)
    b.server("frontend", "POST /checkout", start_ms=0, end_ms=100, links=[producer])
    result = check(judge({"expect": {"budgets": {"trace": "200ms"}}}, b.spans), "budgets.trace")
    assert result.state is PASS


def test_trace_budget_with_no_entry_span_waits_then_fails() -> None:
    b = FlowBuilder()
    b.test_root()
    spec = {"expect": {"budgets": {"trace": "200ms"}}}
    assert check(judge(spec, b.spans), "budgets.trace").state is PENDING
    result = check(judge(spec, b.spans, final=True), "budgets.trace")
    assert (result.state, result.message) == (FAIL, "no entry span arrived: nothing to measure")


def test_hop_budgets_apply_per_attempt() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=900)
    b.call(frontend, "cart", "/cart", start_ms=10, end_ms=160)
    b.call(frontend, "cart", "/cart", start_ms=170, end_ms=320)  # a retry: 300 ms in all
    b.call(frontend, "payment", "/pay", start_ms=330, end_ms=580)
    spec: dict[str, Any] = {"expect": {"budgets": {"hops": {"frontend -> cart": "200ms"}}}}
    assert check(judge(spec, b.spans), "budgets.hops").state is PASS
    assert check(judge(spec, b.spans, settled=False), "budgets.hops").state is PENDING
    spec["expect"]["budgets"]["hops"]["* -> payment"] = "200ms"
    result = check(judge(spec, b.spans, settled=False), "budgets.hops")
    assert (result.state, result.message, result.hop) == (
        FAIL, "frontend -> payment: took 250 ms, budget 200 ms", "frontend -> payment"
    )


def test_hop_budget_applies_to_the_slow_attempt() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=900)
    b.call(frontend, "cart", "/cart", start_ms=10, end_ms=260)
    b.call(frontend, "cart", "/cart", start_ms=270, end_ms=300)
    result = check(judge({"expect": {"budgets": {"hops": {"frontend -> cart": "200ms"}}}}, b.spans),
                   "budgets.hops")
    assert result.message == "frontend -> cart: took 250 ms, budget 200 ms"


def _deadline_flow(overrun_ms: float, *, asynchronous: bool = False, answered: bool = False) -> FlowBuilder:
    b = FlowBuilder()
    root = b.test_root(end_ms=100)
    # frontend outlives the test's root span: a test has no timeout, so that is no deadline missed
    frontend = b.server("frontend", "POST /checkout", parent=root, start_ms=1, end_ms=900)
    if asynchronous:
        producer = b.producer("frontend", "orders publish", parent=frontend, start_ms=10, end_ms=12)
        b.consumer("email", "orders process", parent=producer, start_ms=13, end_ms=12 + overrun_ms)
    else:
        # the caller gave up: a timeout leaves its span ERROR with no response status
        client = b.client("frontend", "POST /cart", parent=frontend, start_ms=10, end_ms=110,
                          status=StatusCode.ERROR,
                          attrs={"http.response.status_code": 200} if answered else None)
        b.server("cart", "POST /cart", parent=client, start_ms=11, end_ms=110 + overrun_ms)
    return b


@pytest.mark.parametrize(
    ("overrun_ms", "slack", "asynchronous", "state"),
    [
        (0, "10ms", False, PASS),
        (10, "10ms", False, PASS),
        (50, "10ms", False, FAIL),
        (50, "60ms", False, PASS),
        (500, "10ms", True, PASS),  # a message's consumer may outlive its producer
    ],
)
def test_deadlines(overrun_ms: float, slack: str, asynchronous: bool, state: CheckState) -> None:
    spec = {"expect": {"budgets": {"deadlines": True, "deadline_slack": slack}}}
    result = check(judge(spec, _deadline_flow(overrun_ms, asynchronous=asynchronous).spans), "deadlines")
    assert result.state is state
    if state is FAIL:
        assert result.message == (
            "frontend -> cart: cart worked on 50 ms after frontend gave up (caller span ended after 100 ms; "
            "slack 10 ms) — cart should honour the caller's timeout"
        )
        assert result.hop == "frontend -> cart"


def test_a_callee_that_answered_missed_no_deadline() -> None:
    # its span may end after the caller's (housekeeping after the response, a busy host)
    spec = {"expect": {"budgets": {"deadlines": True}}}
    assert check(judge(spec, _deadline_flow(500, answered=True).spans), "deadlines").state is PASS


def test_deadlines_fail_at_once_and_pass_only_settled() -> None:
    spec = {"expect": {"budgets": {"deadlines": True}}}
    assert check(judge(spec, _deadline_flow(50).spans, settled=False), "deadlines").state is FAIL
    assert check(judge(spec, _deadline_flow(0).spans, settled=False), "deadlines").state is PENDING


# --- connected ---------------------------------------------------------------------------------


def test_connected_fails_on_a_broken_hop() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=500)
    client = b.client("frontend", "POST /cart", parent=frontend, start_ms=10, end_ms=200,
                      attrs={"peer.service": "cart"})
    cart = b.server("cart", "POST /cart", trace_id=T2, start_ms=12, end_ms=190, remote=False)
    result = judge({}, b.spans, stitches={cart.span_id: client.span_id}, settled=False)
    connected = check(result, "connected")
    assert (connected.state, connected.hop) == (FAIL, "frontend -> cart")
    assert connected.message == f"frontend -> cart: propagation broken — cart started a new trace {T2}"
    assert connected.span_ids == (client.span_id, cart.span_id)


def test_connected_fails_on_a_missing_parent_after_the_grace() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=500)
    b.call(frontend, "cart", "/cart", start_ms=10, end_ms=100)
    orphan = b.server("inventory", "POST /reserve", parent="00000000deadbeef", start_ms=20, end_ms=90)
    waiting = judge({}, b.spans, settled=False)
    assert check(waiting, "connected").state is PENDING
    result = judge({"wait": {"parent_grace": "2s"}}, b.spans, missing_parents=[orphan])
    connected = check(result, "connected")
    assert connected.state is FAIL
    assert connected.message == (
        f"inventory: span {orphan.span_id} ('POST /reserve') names parent 00000000deadbeef, "
        "which did not arrive within parent_grace 2 s"
    )
    assert finding_kinds(result) == ["missing_parent"]


def test_connected_false_switches_the_check_off() -> None:
    b = FlowBuilder()
    orphan = b.server("inventory", "POST /reserve", parent="00000000deadbeef", start_ms=20, end_ms=90)
    result = judge({"expect": {"propagation": {"connected": False}, "errors": "any"}}, b.spans,
                   missing_parents=[orphan], settled=False)
    assert result.checks == ()
    assert result.passed


# --- headers -----------------------------------------------------------------------------------


def _headers(rules: Mapping[str, str], capture: Mapping[str, Mapping[str, str | None]] | None = None,
             **kw: Any) -> Any:
    return check(judge({"expect": {"propagation": {"headers": dict(rules)}}}, shop(capture).spans, **kw),
                 "headers")


def test_headers_pass_when_every_callee_got_them() -> None:
    rules = {"traceparent": "valid", "x-request-id": "same", "baggage": "present"}
    assert _headers(rules).state is PASS
    assert _headers(rules, settled=False).state is PENDING


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("garbage", "is not W3C-valid (version-traceid-parentid-flags, lower-case hex)"),
        ("00-4BF92F3577B34DA6A3CE929D0E0E4736-b000000000000005-01", "is not W3C-valid"),
        ("ff-4bf92f3577b34da6a3ce929d0e0e4736-b000000000000005-01", "is not W3C-valid"),
        ("00-00000000000000000000000000000000-b000000000000005-01", "is not W3C-valid"),
        (f"00-{T2}-b000000000000005-01", f"carries trace id {T2}, but the callee span is in trace {T1}"),
        (f"00-{T1}-00000000c0ffee00-01",
         "names parent 00000000c0ffee00, not the caller span b000000000000005 of frontend — "
         "a proxy or wrapper in between did not propagate"),
    ],
)
def test_traceparent_must_be_valid_and_name_the_caller(value: str, problem: str) -> None:
    s = shop()
    assert s.cart[0].span_id == "b000000000000005"  # the ids above are the cart call's
    result = _headers({"traceparent": "valid"}, {"cart": {"traceparent": value}}, settled=False)
    assert result.state is FAIL
    assert result.hop == "frontend -> cart"
    assert result.message.startswith(f"frontend -> cart: traceparent {value!r} {problem}")


def test_traceparent_mismatch_is_a_finding_even_unasked() -> None:
    result = judge({}, shop({"cart": {"traceparent": f"00-{T1}-00000000c0ffee00-01"}}).spans)
    assert [(f.kind.value, f.hop) for f in result.findings] == [("traceparent_mismatch", "frontend -> cart")]


def test_traceparent_is_checked_on_the_test_root_hop_too() -> None:
    s = shop()
    bad = dataclasses.replace(s.frontend, attributes={"http.request.header.traceparent": ["00-xyz"]})
    spans = [bad if span is s.frontend else span for span in s.spans]
    spec = {"expect": {"propagation": {"headers": {"traceparent": "valid"}}}}
    result = check(judge(spec, spans), "headers")
    assert (result.state, result.hop) == (FAIL, "test -> frontend")


def test_same_header_with_a_changed_value() -> None:
    result = _headers({"x-request-id": "same"}, {"inventory": {**CAPTURED, "x-request-id": "r-2"}})
    assert (result.state, result.hop) == (FAIL, "cart -> inventory")
    assert result.message == (
        "cart -> inventory: x-request-id is 'r-2', but 'r-1' on frontend -> auth: one value must travel "
        "the whole flow"
    )


@pytest.mark.parametrize("rule", ["same", "present"])
def test_header_missing_on_one_hop(rule: str) -> None:
    capture = {"payment": {"traceparent": None}}
    result = _headers({"x-request-id": rule}, capture)
    assert (result.state, result.message) == (
        FAIL, "frontend -> payment: x-request-id missing on payment's request"
    )


def test_header_rules_are_not_asked_of_what_the_test_itself_sent() -> None:
    capture = {s: {**CAPTURED, "authorization": "Bearer x"} for s in ("auth", "cart", "inventory", "payment")}
    # frontend, called by the test, captured only traceparent
    assert _headers({"x-request-id": "same", "authorization": "present"}, capture).state is PASS


def test_callee_that_captures_no_headers_is_told_how_to() -> None:
    result = _headers({"traceparent": "valid", "x-request-id": "same"}, {"inventory": {}})
    assert (result.state, result.hop) == (FAIL, "cart -> inventory")
    assert result.message == (
        "cart -> inventory: inventory captures no request headers; set "
        "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST=traceparent,x-request-id "
        "in its environment (tracebaton.sut_env() does)"
    )
    assert "missing" not in result.message


def test_uninstrumented_peer_and_missing_callee_are_exempt() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=500)
    b.client("frontend", "POST /cart", parent=frontend, start_ms=10, end_ms=15,
             attrs={"server.address": "cart", "server.port": 8080})  # refused
    b.call(frontend, "cart", "/cart", start_ms=20, end_ms=100, capture=CAPTURED,
           callee_attrs={"server.address": "cart", "server.port": 8080})
    b.client("frontend", "POST /v1/charges", parent=frontend, start_ms=110, end_ms=200,
             attrs={"peer.service": "stripe"})
    result = judge({"expect": {"propagation": {"headers": {"traceparent": "valid", "x-request-id": "same"}}}},
                   b.spans)
    assert check(result, "headers").state is PASS


@pytest.mark.parametrize(("check_async", "state"), [(False, PASS), (True, FAIL)])
def test_async_hops_are_exempt_unless_asked(check_async: bool, state: CheckState) -> None:
    b = FlowBuilder()
    orders = b.server("orders", "POST /orders", start_ms=0, end_ms=100)
    producer = b.producer("orders", "orders publish", parent=orders, start_ms=10, end_ms=12)
    b.consumer("email", "orders process", parent=producer, start_ms=20, end_ms=30)
    spec = {"expect": {"propagation": {"headers": {"x-request-id": "present"}, "baggage": {"tenant": "acme"},
                                       "async": check_async}}}
    result = judge(spec, b.spans)
    assert check(result, "headers").state is state
    assert check(result, "baggage").state is state
    if state is FAIL:
        assert check(result, "headers").hop == "orders ~> email"


@pytest.mark.parametrize(
    "attribute",
    [
        "http.request.header.x_request_id",
        "http.request.header.x-request-id",
        "http.request.header.X-Request-Id",
        "rpc.grpc.request.metadata.x-request-id",
    ],
)
def test_header_spellings(attribute: str) -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=500)
    b.call(frontend, "cart", "/cart", start_ms=10, end_ms=100, callee_attrs={attribute: ["r-1"]})
    b.call(frontend, "payment", "/pay", start_ms=110, end_ms=200, callee_attrs={attribute: "r-1"})
    result = judge({"expect": {"propagation": {"headers": {"X-Request-Id": "same"}}}}, b.spans)
    assert check(result, "headers").state is PASS


# --- baggage -----------------------------------------------------------------------------------


def _baggage_flow(cart_attrs: Mapping[str, Any]) -> list[StoredSpan]:
    b = FlowBuilder()
    root = b.test_root()
    frontend = b.server("frontend", "POST /checkout", parent=root, start_ms=1, end_ms=500)  # sees nothing
    b.call(frontend, "cart", "/cart", start_ms=10, end_ms=100, callee_attrs=cart_attrs)
    return b.spans


@pytest.mark.parametrize(
    ("cart_attrs", "state", "message"),
    [
        ({"tenant": "acme"}, PASS, ""),  # copied by a baggage span processor
        ({"http.request.header.baggage": ["tenant=acme,user=7"]}, PASS, ""),
        ({"http.request.header.baggage": ["user=7", "tenant=acme;prop=1"]}, PASS, ""),
        ({"http.request.header.baggage": ["tenant=ac%20me"]}, FAIL,
         "frontend -> cart: baggage tenant is 'ac me', expected 'acme'"),
        ({"tenant": "globex"}, FAIL, "frontend -> cart: baggage tenant is 'globex', expected 'acme'"),
        ({"http.request.header.baggage": ["user=7"]}, FAIL,
         "frontend -> cart: baggage tenant lost (not on cart's request)"),
        ({"http.request.header.x_request_id": ["r-1"]}, FAIL,
         "frontend -> cart: cart cannot see baggage: set "
         "OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST=baggage "
         "or add a baggage span processor (tracebaton.sut_env() does the first)"),
        ({}, FAIL, "frontend -> cart: cart cannot see baggage"),
    ],
)
def test_baggage(cart_attrs: Mapping[str, Any], state: CheckState, message: str) -> None:
    spec = {"expect": {"propagation": {"baggage": {"tenant": "acme"}}}}
    result = check(judge(spec, _baggage_flow(cart_attrs)), "baggage")
    assert result.state is state
    assert result.message.startswith(message)
    if state is FAIL:
        assert result.hop == "frontend -> cart"  # never test -> frontend: frontend sees no baggage


# --- errors ------------------------------------------------------------------------------------


def _booking(*, flights_status: int = 422, seats_error: bool = False) -> FlowBuilder:
    """booking -> flights answered 4xx: the CLIENT span is ERROR, the SERVER span UNSET."""
    b = FlowBuilder()
    root = b.test_root()
    booking = b.server("booking", "POST /book", parent=root, start_ms=1, end_ms=500,
                       attrs={"http.response.status_code": 500}, status=StatusCode.ERROR)
    client = b.client("booking", "POST /flights", parent=booking, start_ms=10, end_ms=200,
                      attrs={"http.response.status_code": flights_status}, status=StatusCode.ERROR)
    flights = b.server("flights", "POST /flights", parent=client, start_ms=11, end_ms=199,
                       attrs={"http.response.status_code": flights_status},
                       status=StatusCode.ERROR if flights_status >= 500 else StatusCode.UNSET)
    if seats_error:
        b.call(flights, "seats", "/seats", start_ms=20, end_ms=100, client_status=StatusCode.ERROR,
               server_status=StatusCode.ERROR,
               client_attrs={"http.status_code": 503}, callee_attrs={"http.status_code": 503})
    return b


def test_a_4xx_error_lands_on_its_hop() -> None:
    b = FlowBuilder()
    booking = b.server("booking", "POST /book", start_ms=1, end_ms=500)
    b.call(booking, "flights", "/flights", start_ms=10, end_ms=200, client_status=StatusCode.ERROR,
           client_attrs={"http.response.status_code": 422}, callee_attrs={"http.response.status_code": 422})
    errors = check(judge({}, b.spans, settled=False), "errors")
    assert (errors.state, errors.message, errors.hop) == (
        FAIL, "booking -> flights answered 422", "booking -> flights"
    )


def test_errors_deepest_first() -> None:
    result = judge({}, _booking(flights_status=502, seats_error=True).spans)
    errors = check(result, "errors")
    assert errors.message == "flights -> seats: seats answered 503 in 'POST /seats' (and 4 more)"
    # the four the message counts, listed in the same order: deepest first, each hop's answer
    # after its callee's own failure
    assert errors.more == (
        "flights -> seats answered 503",
        "booking -> flights: flights answered 502 in 'POST /flights'",
        "booking -> flights answered 502",
        "test -> booking: booking answered 500 in 'POST /book'",
    )
    assert errors.hop == "flights -> seats"
    assert result.first_divergence == errors.message


@pytest.mark.parametrize(
    ("server_status", "internal", "message"),
    [
        # deepest first: the failed query inside flights, then the callee span it failed
        (StatusCode.ERROR, True, "flights: 'SELECT seats' failed: timeout (and 1 more)"),
        (StatusCode.UNSET, True, "flights: 'SELECT seats' failed: timeout"),
        (StatusCode.ERROR, False, "booking -> flights: flights failed in 'POST /flights'"),
    ],
)
def test_errors_on_callee_and_on_spans_of_no_hop(
    server_status: StatusCode, internal: bool, message: str
) -> None:
    b = FlowBuilder()
    booking = b.server("booking", "POST /book", start_ms=1, end_ms=500)
    _, flights = b.call(booking, "flights", "/flights", start_ms=10, end_ms=200, server_status=server_status)
    if internal:
        b.internal("flights", "SELECT seats", parent=flights, start_ms=20, end_ms=30, status=StatusCode.ERROR,
                   message="timeout")
    errors = check(judge({}, b.spans), "errors")
    assert errors.message == message


@pytest.mark.parametrize(
    ("allow", "state"),
    [
        (["booking -> flights"], FAIL),  # the booking SERVER span is an error of its own
        (["booking -> flights", "test -> booking"], PASS),
        (["booking -> *", {"service": "booking", "kind": "server"}], PASS),
        ([{"service": "booking", "status": "error"}], PASS),
        (["booking:POST /*"], PASS),
        ([{"attributes": {"http.status_code": 422}}], FAIL),  # the server span said 500
        ([{"attributes": {"http.response.status_code": 422}}, "test -> booking"], PASS),
        (["flights"], FAIL),  # a 4xx is booking's CLIENT span's error, not flights'
    ],
)
def test_errors_allow(allow: list[Any], state: CheckState) -> None:
    result = judge({"expect": {"errors": {"allow": allow}}}, _booking().spans)
    assert check(result, "errors").state is state


def test_errors_lists_the_remaining_hop_after_allow() -> None:
    result = judge({"expect": {"errors": {"allow": ["test -> booking"]}}}, _booking().spans)
    assert check(result, "errors").message == "booking -> flights answered 422"


def test_errors_any_switches_the_check_off() -> None:
    result = judge({"expect": {"errors": "any"}}, _booking(seats_error=True).spans)
    assert "errors" not in states(result)
    assert result.passed


# --- spans[i] ----------------------------------------------------------------------------------


def _charges(n: int) -> list[StoredSpan]:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=900)
    for i in range(n):
        b.call(frontend, "payment", "/charge", start_ms=10 + 100 * i, end_ms=90 + 100 * i,
               callee_attrs={"http.response.status_code": 200})
    return b.spans


@pytest.mark.parametrize(
    ("count", "n", "settled", "final", "state"),
    [
        (1, 0, False, False, PENDING),
        (1, 0, True, False, PENDING),
        (1, 0, True, True, FAIL),
        (1, 1, False, False, PENDING),  # exactly one: a second may still come
        (1, 1, True, False, PASS),
        (1, 2, False, False, FAIL),
        (">=1", 0, True, False, PENDING),
        (">=1", 0, False, True, FAIL),
        (">=1", 1, False, False, PASS),
        (">=1", 3, False, False, PASS),
        ("<=2", 0, False, False, PENDING),
        ("<=2", 0, True, False, PASS),
        ("<=2", 2, True, False, PASS),
        ("<=2", 3, False, False, FAIL),
        ("0", 0, False, False, PENDING),
        ("0", 0, True, False, PASS),
        (0, 1, False, False, FAIL),
        (None, 1, False, False, PASS),  # no count: at least one
        (None, 0, False, True, FAIL),
    ],
)
def test_span_count_forms(
    count: int | str | None, n: int, settled: bool, final: bool, state: CheckState
) -> None:
    entry: dict[str, Any] = {"select": {"service": "payment", "kind": "server", "name": "POST /charge*"}}
    if count is not None:
        entry["count"] = count
    result = check(judge({"expect": {"spans": [entry]}}, _charges(n), settled=settled, final=final),
                   "spans[0]")
    assert result.state is state
    if state is FAIL:
        shown = ">=1" if count is None else count
        assert result.message == (
            f"spans {{service=payment, name=POST /charge*, kind=server}}: {n} matched, expected {shown}"
        )


@pytest.mark.parametrize(
    ("span_attrs", "expected", "ok"),
    [
        ({"http.response.status_code": 200}, {"http.status_code": 200}, True),
        ({"http.status_code": 200}, {"http.response.status_code": 200}, True),
        ({"http.status_code": "200"}, {"http.response.status_code": 200}, True),
        ({"http.url": "http://payment/charge"}, {"url.full": "http://payment/charge"}, True),
        ({"server.address": "payment"}, {"net.host.name": "payment"}, True),
        ({"http.response.status_code": 500}, {"http.status_code": 200}, False),
        ({}, {"http.response.status_code": "*"}, False),
        ({"http.response.status_code": 201}, {"http.response.status_code": "*"}, True),
    ],
)
def test_span_attributes_accept_old_and_new_semconv_names(
    span_attrs: dict[str, Any], expected: dict[str, Any], ok: bool
) -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=900)
    b.call(frontend, "payment", "/charge", start_ms=10, end_ms=90, callee_attrs=span_attrs)
    spec = {"expect": {"spans": [{"select": "payment:POST /charge", "attributes": expected}]}}
    result = check(judge(spec, b.spans), "spans[0]")
    assert result.state is (PASS if ok else FAIL)
    if not ok:
        assert result.message.startswith("frontend -> payment: payment 'POST /charge': ")
        assert result.hop == "frontend -> payment"


def test_span_attribute_mismatch_message() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=900)
    b.call(frontend, "payment", "/charge", start_ms=10, end_ms=90, callee_attrs={"http.status_code": 500})
    spec = {"expect": {"spans": [{"select": "payment:POST /charge", "attributes": {
        "http.response.status_code": 200, "payment.provider": "stripe"}}]}}
    result = check(judge(spec, b.spans, settled=False), "spans[0]")
    assert result.state is FAIL  # a span's attributes never change: no need to wait
    assert result.message == (
        "frontend -> payment: payment 'POST /charge': http.response.status_code is 500, expected 200 "
        "(and 1 more)"
    )


def test_span_max_duration() -> None:
    spans = _charges(1)  # the payment SERVER span lasts 78 ms
    select = {"service": "payment", "kind": "server"}
    fast = {"expect": {"spans": [{"select": select, "max_duration": "100ms"}]}}
    assert check(judge(fast, spans), "spans[0]").state is PASS
    assert check(judge(fast, spans, settled=False), "spans[0]").state is PENDING
    slow = {"expect": {"spans": [{"select": select, "max_duration": "50ms"}]}}
    result = check(judge(slow, spans, settled=False), "spans[0]")
    assert (result.state, result.message) == (
        FAIL, "frontend -> payment: payment 'POST /charge' took 78 ms, max_duration 50 ms"
    )


def test_span_selectors_see_internal_spans() -> None:
    b = FlowBuilder()
    server = b.server("cart", "POST /cart", start_ms=0, end_ms=100)
    b.internal("cart", "POST /cart http send", parent=server, start_ms=90, end_ms=91)
    spec = {"expect": {"spans": [{"select": {"service": "cart", "kind": "internal", "name": "* http send"},
                                  "count": 1}]}}
    assert check(judge(spec, b.spans), "spans[0]").state is PASS


def test_span_checks_are_numbered_in_spec_order() -> None:
    spec = {"expect": {"spans": [{"select": "payment"}, {"select": "shipping", "count": 0}]}}
    result = judge(spec, _charges(1))
    assert [c.check for c in result.checks][-2:] == ["spans[0]", "spans[1]"]


# --- verdicts: universal, existential, settle and timeout --------------------------------------


def test_universal_checks_are_pending_until_settled() -> None:
    result = judge({"expect": {"budgets": {"trace": "2s"}}}, shop().spans, settled=False)
    assert states(result) == {"budgets.trace": PENDING, "connected": PENDING, "errors": PENDING}
    assert not result.passed
    settled = judge({"expect": {"budgets": {"trace": "2s"}}}, shop().spans)
    assert settled.passed
    assert settled.waited_reason.value == "settled"


def test_a_spec_of_only_existential_checks_passes_before_settle() -> None:
    spec = {"expect": {"hops": ["frontend -> cart", "cart -> inventory"], "chains": [["frontend", "cart"]],
                       "spans": [{"select": "payment", "count": ">=1"}],
                       "errors": "any", "propagation": {"connected": False}}}
    result = judge(spec, shop().spans, settled=False)
    assert result.passed, result.checks
    assert result.waited_reason.value == "satisfied"
    assert states(result) == {"hops": PASS, "order": PASS, "chains": PASS, "spans[0]": PASS}


def test_a_failure_seen_before_the_flow_settled_says_violated_never_satisfied() -> None:
    flow = shop()
    failing = dataclasses.replace(flow.inventory[1], status_code=StatusCode.ERROR, status_message="no stock")
    spans = [failing if s is flow.inventory[1] else s for s in flow.spans]
    result = judge({"expect": {"hops": ["cart -> inventory"]}}, spans, settled=False)
    assert not result.passed
    assert check(result, "errors").state is FAIL
    assert result.waited_reason.value == "violated"
    assert judge({"expect": {"hops": ["cart -> inventory"]}}, spans).waited_reason.value == "settled"


def test_the_default_spec_waits_for_settle() -> None:
    result = judge({}, shop().spans, settled=False)
    assert states(result) == {"connected": PENDING, "errors": PENDING}
    assert judge({}, shop().spans).passed


def test_final_turns_pending_into_fail_with_what_is_missing() -> None:
    spec = {"expect": {"hops": ["frontend -> shipping"], "spans": [{"select": "shipping", "count": 1}]}}
    result = judge(spec, shop().spans, settled=False, final=True)
    assert not result.passed
    assert result.waited_reason.value == "timeout"
    assert {c.check: c.state for c in result.checks} == {
        "hops": FAIL, "order": PASS, "connected": FAIL, "errors": FAIL, "spans[0]": FAIL,
    }
    assert check(result, "connected").message == (
        "no violation seen, but the flow never settled before the timeout; the last span came 59 s ago: "
        "raise wait.timeout or lower wait.settle"
    )
    assert check(result, "spans[0]").message == "spans {service=shipping}: 0 matched, expected 1"
    assert result.first_divergence == "frontend -> shipping: never seen; frontend called auth, cart, payment"


def test_export_lag_is_a_finding_when_it_exceeds_settle() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=100, arrival_ms=150)
    b.call(frontend, "cart", "/cart", start_ms=10, end_ms=90)
    b.spans[-1] = dataclasses.replace(b.spans[-1], arrival_unix_nano=b.spans[-1].end_unix_nano + 4_800 * MS)
    result = judge({"wait": {"settle": "250ms"}}, b.spans)
    assert [(f.kind.value, f.message) for f in result.findings] == [
        ("export_lag", "cart exports 4.8 s after its spans end; settle 250 ms is too short — "
                       "set OTEL_BSP_SCHEDULE_DELAY=50 (tracebaton.sut_env())"),
    ]
    assert finding_kinds(judge({"wait": {"settle": "5s"}}, b.spans)) == []


@pytest.mark.parametrize(("declared_ms", "advice"), [
    (50, "cart exports 4.8 s after its spans end, though it holds them only 50 ms before export: "
         "the rest is spent between its exporter and the store (a Collector's batch processor, a "
         "loaded store); settle 250 ms is too short — raise wait.settle past 4.8 s, or lower the "
         "batch processor's timeout"),
    (5000, "cart exports 4.8 s after its spans end (it holds them 5 s before export); settle 250 ms "
           "is too short — lower OTEL_BSP_SCHEDULE_DELAY (tracebaton.sut_env() sets 50) or raise "
           "wait.settle"),
])
def test_export_lag_advice_follows_the_delay_the_service_declares(declared_ms: int, advice: str) -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=100, arrival_ms=150)
    b.call(frontend, "cart", "/cart", start_ms=10, end_ms=90)
    b.spans[-1] = dataclasses.replace(
        b.spans[-1], arrival_unix_nano=b.spans[-1].end_unix_nano + 4_800 * MS,
        resource={"service.name": "cart", "tracebaton.export_delay_ms": str(declared_ms)})
    result = judge({"wait": {"settle": "250ms"}}, b.spans)
    assert [(f.kind.value, f.message) for f in result.findings] == [("export_lag", advice)]


def test_a_span_from_1970_is_clock_skew_not_export_lag() -> None:
    b = FlowBuilder()
    b.server("frontend", "POST /checkout", start_ns=1_000, end_ns=2_000, arrival_ms=10)
    assert finding_kinds(judge({}, b.spans)) == ["clock_skew"]


def test_first_divergence_prefers_the_failure_that_explains_the_others() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=5000)
    client = b.client("frontend", "POST /cart", parent=frontend, start_ms=10, end_ms=4000,
                      attrs={"peer.service": "cart"}, status=StatusCode.ERROR)
    cart = b.server("cart", "POST /cart", trace_id=T2, start_ms=12, end_ms=3990, remote=False)
    spec = {"expect": {"hops": ["frontend -> cart", "cart -> inventory"], "budgets": {"trace": "1s"}}}
    result = judge(spec, b.spans, stitches={cart.span_id: client.span_id}, final=True)
    failed = {c.check for c in result.checks if c.state is FAIL}
    assert failed == {"hops", "connected", "errors", "budgets.trace"}
    assert result.first_divergence == f"frontend -> cart: propagation broken — cart started a new trace {T2}"


def test_every_message_about_a_hop_writes_it_caller_arrow_callee() -> None:
    b = FlowBuilder()
    root = b.test_root()
    frontend = b.server("frontend", "POST /checkout", parent=root, start_ms=1, end_ms=900)
    b.call(frontend, "cart", "/cart", start_ms=10, end_ms=400, client_status=StatusCode.ERROR,
           client_attrs={"http.response.status_code": 409}, capture={"x-request-id": "r-1"})
    b.call(frontend, "payment", "/pay", start_ms=410, end_ms=800, capture={"x-request-id": "r-2"})
    spec = {"expect": {"hops": ["frontend -> payment", "frontend -> cart"], "times": {"frontend -> cart": 0},
                       "budgets": {"hops": {"* -> *": "100ms"}, "deadlines": True},
                       "propagation": {"headers": {"x-request-id": "same"}, "baggage": {"tenant": "acme"}}}}
    result = judge(spec, b.spans)
    hop_checks = [c for c in result.checks if c.check not in ("hops", "connected", "deadlines")]
    assert {c.check for c in hop_checks} == {"order", "times", "budgets.hops", "headers", "baggage", "errors"}
    for c in hop_checks:
        assert c.state is FAIL
        assert c.hop is not None, c
        assert c.message.startswith(c.hop), c
        assert c.hop in ("frontend -> cart", "frontend -> payment")


def _rejected_at_the_entry(attrs: dict[str, Any]) -> list[StoredSpan]:
    b = FlowBuilder()
    b.server("frontend", "POST /checkout", parent=b.test_root(), start_ms=1, end_ms=2, attrs=attrs)
    return b.spans


@pytest.mark.parametrize(("attrs", "answer"), [
    ({"http.response.status_code": 400}, "answered 400"),
    ({"http.response.status_code": "503"}, "answered 503"),  # ClickHouse keeps every value a string
    ({"rpc.grpc.status_code": 3}, "answered 3"),
])
def test_the_systems_error_answer_to_the_tests_own_request_fails_its_hop_at_once(
        attrs: dict[str, Any], answer: str) -> None:
    # the server span of a 4xx stays UNSET (HTTP conventions) and the test's client exports no
    # span to mark: without this the flow waited out its timeout for hops that never came
    result = judge({"expect": {"hops": ["frontend -> auth"]}}, _rejected_at_the_entry(attrs), settled=False)
    assert not result.passed
    assert result.waited_reason.value == "violated"
    assert check(result, "errors").message == f"test -> frontend {answer}"
    assert result.first_divergence == f"test -> frontend {answer}"


def test_an_error_answer_the_spec_allows_or_a_success_is_no_error_of_the_entry() -> None:
    spans = _rejected_at_the_entry({"http.response.status_code": 401})
    allowed = judge({"expect": {"hops": ["test -> frontend"], "errors": {"allow": ["test -> frontend"]}}},
                    spans)
    assert allowed.passed, allowed.checks
    for fine in ({"http.response.status_code": 201}, {"rpc.grpc.status_code": 0}, {}):
        result = judge({"expect": {"hops": ["test -> frontend"]}}, _rejected_at_the_entry(fine))
        assert result.passed, (fine, result.checks)


def test_an_error_answer_at_the_entry_explained_by_a_deeper_error_is_not_said_twice() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", parent=b.test_root(), start_ms=1, end_ms=50,
                        attrs={"http.response.status_code": 401})
    b.call(frontend, "auth", "/verify", start_ms=5, end_ms=20, client_status=StatusCode.ERROR,
           client_attrs={"http.response.status_code": 401})
    result = judge({"expect": {"hops": ["frontend -> auth"]}}, b.spans)
    assert check(result, "errors").message == "frontend -> auth answered 401"
