"""Giving up early (DESIGN §5, `waited_reason: quiet`) on hand-built flows: when a flow is
complete, what makes it incomplete, where export delays come from, the quiet window, the
verdict it gives, and the hint at a service the store never saw.

The same rules against a real collector and real SDK processes are in tests/test_flows.py
and tests/test_held_exports.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from spans import MS, NOW_NS, FlowBuilder, check, extract_hops, flow_trace, spec_of

from tracebaton import sut_env
from tracebaton.assertions import FlowResult
from tracebaton.assertions._quiet import (
    EXPORT_DELAY_ATTRIBUTE,
    absent_services,
    awaited_services,
    declared_export_delay_ns,
    export_delays,
    incomplete,
    quiet_window_ns,
    unknown_delay,
)
from tracebaton.assertions._situation import Situation
from tracebaton.assertions._verdict import evaluate, result_of
from tracebaton.collector import StoredSpan

DELAY = EXPORT_DELAY_ATTRIBUTE
SERVICES = frozenset({"test", "frontend", "cart", "inventory", "payment", "auth"})
"""What the store has seen, in these tests."""


def declared(spans: Sequence[StoredSpan]) -> list[StoredSpan]:
    """The spans as services started with `tracebaton.sut_env()` export them."""
    return [
        s if s.service == "test" else dataclasses.replace(s, resource={**s.resource, DELAY: "50"})
        for s in spans
    ]


def checkout(*, stripe_attrs: Mapping[str, Any] | None = None) -> list[StoredSpan]:
    """test -> frontend -> cart -> inventory, frontend -> payment -> stripe (an uninstrumented
    peer, named by peer.service unless `stripe_attrs` says otherwise); every service declares
    its 50 ms delay."""
    b = FlowBuilder()
    root = b.test_root(start_ms=0, end_ms=1000)
    frontend = b.server("frontend", "POST /checkout", parent=root, start_ms=2, end_ms=900)
    _, cart = b.call(frontend, "cart", "/cart", start_ms=10, end_ms=200)
    b.call(cart, "inventory", "/reserve", start_ms=20, end_ms=150)
    _, payment = b.call(frontend, "payment", "/pay", start_ms=250, end_ms=400)
    b.client("payment", "POST /v1/charges", parent=payment, start_ms=260, end_ms=390,
             attrs=stripe_attrs if stripe_attrs is not None else {"peer.service": "stripe"})
    return declared(b.spans)


def why_not(spec: Mapping[str, Any], spans: Sequence[StoredSpan],
            services: frozenset[str] | None = SERVICES) -> str | None:
    flow_spec = spec_of(spec)
    trace = flow_trace(spans)
    return incomplete(flow_spec, trace, extract_hops(trace, peers=flow_spec.peers), store_services=services)


def judge_quietly(spec: Mapping[str, Any], spans: Sequence[StoredSpan], *, gave_up: bool = True,
                  services: frozenset[str] | None = SERVICES) -> FlowResult:
    """The verdict the engine gives in the round it gives up early (or the one before)."""
    flow_spec = spec_of(spec)
    trace = flow_trace(spans)
    situation = Situation(
        spec=flow_spec, trace=trace, hops=tuple(extract_hops(trace, peers=flow_spec.peers)),
        settled=True, final=False, now_unix_nano=NOW_NS, gave_up=gave_up, store_services=services,
    )
    return result_of(situation, evaluate(situation), waited_ms=1000)


# --- when a flow is complete ---------------------------------------------------------------------


def test_a_flow_whose_calls_all_have_their_callee_or_a_named_peer_is_complete() -> None:
    assert why_not({"expect": {"hops": ["cart -> payment"]}}, checkout()) is None


def test_a_call_with_no_callee_span_keeps_the_flow_incomplete_unless_it_names_a_peer() -> None:
    address = {"server.address": "127.0.0.1", "server.port": 9001}
    spans = checkout(stripe_attrs=address)
    assert why_not({}, spans) == (
        "payment: the call 'POST /v1/charges' (span b000000000000009) has no callee span yet"
    )
    assert why_not({"peers": {"stripe": "127.0.0.1:9001"}}, spans) is None, "named by the spec's peers:"
    # peer.service naming a service that exports spans is an instrumented callee still to come
    assert why_not({}, checkout(stripe_attrs={"peer.service": "inventory"})) is not None
    assert why_not({}, checkout(stripe_attrs={"peer.service": "stripe"}), services=SERVICES | {"stripe"})


def test_the_entry_span_must_have_arrived() -> None:
    b = FlowBuilder()
    b.test_root()
    assert why_not({}, b.spans) == "the entry span has not arrived"


def test_a_span_whose_parent_never_came_keeps_the_flow_incomplete() -> None:
    spans = checkout()
    late = FlowBuilder().server("cart", "late", parent="00000000000000aa", span_id="00000000000000cc")
    spans.extend(declared([late]))
    assert why_not({}, spans) == (
        "cart: span 00000000000000cc names parent 00000000000000aa, which has not arrived"
    )


def test_a_message_with_no_consumer_yet_keeps_the_flow_incomplete() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=100)
    producer = b.producer("frontend", "outbox publish", parent=frontend, start_ms=10, end_ms=12)
    assert why_not({}, declared(b.spans)) == (
        "frontend: the message 'outbox publish' (span b000000000000002) has no consumer span yet"
    )
    b.consumer("email", "outbox process", trace_id="0" * 31 + "1", start_ms=30, links=[producer])
    assert why_not({}, declared(b.spans)) is None, "a consumer linking to it answers it"


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"expect": {"hops": ["orders ~> email"]}}, "the spec expects an asynchronous hop"),
        ({"expect": {"times": {"orders ~> email": 1}}}, "the spec expects an asynchronous hop"),
        ({"expect": {"hops": ["cart -> *"]}}, "the spec expects cart -> *, a hop to any service"),
        ({"expect": {"spans": [{"select": {"name": "audit"}, "count": ">=1"}]}},
         "spans[0] waits for a span of any service"),
    ],
)
def test_a_spec_that_may_wait_for_anything_always_waits_to_the_timeout(
    spec: dict[str, Any], reason: str
) -> None:
    found = why_not(spec, checkout())
    assert found is not None
    assert found.startswith(reason)


def test_the_services_a_spec_waits_for_are_those_its_existential_checks_name() -> None:
    spec = spec_of({
        "peers": {"stripe": "127.0.0.1:9001"},
        "expect": {"hops": ["test -> frontend", "* -> payment", "payment -> stripe"],
                   "times": {"cart -> tax": 1, "cart -> fraud": 0}, "chains": [["cart", "inventory"]],
                   "spans": [{"select": "audit"}, {"select": "ledger", "count": "<=1"}]},
    })
    named = frozenset({"frontend", "payment", "cart", "tax", "inventory", "audit"})
    assert awaited_services(spec) == (named, None)
    trace = flow_trace(checkout())
    hops = extract_hops(trace, peers=spec.peers)
    assert absent_services(spec, trace, hops) == ["audit", "tax"]


# --- export delays ---------------------------------------------------------------------------------


def test_the_delay_sut_env_declares_is_what_the_engine_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", f"deployment.environment.name=ci,{DELAY}=9")
    env = sut_env("http://127.0.0.1:4318")
    attributes = dict(item.split("=", 1) for item in env["OTEL_RESOURCE_ATTRIBUTES"].split(","))
    assert attributes == {"deployment.environment.name": "ci", DELAY: env["OTEL_BSP_SCHEDULE_DELAY"]}
    span = FlowBuilder().server("cart", "POST /cart")
    read = declared_export_delay_ns(dataclasses.replace(span, resource=attributes))
    assert read == int(env["OTEL_BSP_SCHEDULE_DELAY"]) * MS == 50 * MS


@pytest.mark.parametrize(("value", "delay"), [("50", 50 * MS), (50, 50 * MS), (" 2.5 ", 2_500_000),
                                               ("fast", None), (-1, None), (True, None), (None, None)])
def test_a_declared_delay_is_a_number_of_milliseconds(value: object, delay: int | None) -> None:
    span = FlowBuilder().server("cart", "POST /cart")
    resource = {} if value is None else {DELAY: value}
    assert declared_export_delay_ns(dataclasses.replace(span, resource=resource)) == delay


def test_a_service_delay_is_its_declared_one_raised_to_the_lag_measured_on_its_spans() -> None:
    spans = checkout()
    # FlowBuilder spans arrive 5 ms after they end; one of cart's came 300 ms late
    cart = next(i for i, s in enumerate(spans) if s.service == "cart")
    spans[cart] = dataclasses.replace(spans[cart], arrival_unix_nano=spans[cart].end_unix_nano + 300 * MS)
    delays = export_delays(spans, now_unix_nano=NOW_NS)
    assert delays == {
        "test": 0, "frontend": 50 * MS, "cart": 300 * MS, "inventory": 50 * MS, "payment": 50 * MS,
    }
    assert quiet_window_ns(250 * MS, [d for d in delays.values() if d is not None]) == 1000 * MS, "4 × settle"
    assert quiet_window_ns(100 * MS, [d for d in delays.values() if d is not None]) == 600 * MS, "2 × 300 ms"


def test_one_span_that_declares_no_delay_makes_its_service_unknown() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=100)
    b.call(frontend, "cart", "/cart", start_ms=10, end_ms=90)
    spans = [*declared(b.spans[:2]), b.spans[2]]  # the cart SERVER span declares nothing
    delays = export_delays(spans, now_unix_nano=NOW_NS)
    assert delays == {"frontend": 50 * MS, "cart": None}
    assert unknown_delay(delays) == "cart does not declare its export delay (tracebaton.export_delay_ms)"
    assert unknown_delay({**delays, "cart": 50 * MS, "audit": None}, ["audit"]) == (
        "audit has no span in the flow, and its export delay is unknown"
    )
    assert unknown_delay({"frontend": 50 * MS}) is None


# --- the verdict when it gives up --------------------------------------------------------------------


def test_giving_up_fails_what_never_came_and_passes_what_settled() -> None:
    spec = {"expect": {"hops": ["frontend -> cart", "cart -> payment"], "times": {"cart -> inventory": 1},
                       "budgets": {"hops": {"cart -> inventory": "1s"}}}}
    waiting = judge_quietly(spec, checkout(), gave_up=False)
    assert check(waiting, "hops").state.value == "pending"
    result = judge_quietly(spec, checkout())
    assert not result.passed
    assert result.waited_reason.value == "quiet"
    assert {c.check: c.state.value for c in result.checks} == {
        "hops": "fail", "order": "pass", "times": "pass", "budgets.hops": "pass", "connected": "pass",
        "errors": "pass",
    }
    assert result.first_divergence == "cart -> payment: never seen; cart called inventory"


def test_a_flow_that_passes_when_it_could_have_given_up_says_settled() -> None:
    result = judge_quietly({"expect": {"hops": ["cart -> inventory"]}}, checkout())
    assert result.passed
    assert result.waited_reason.value == "settled"


# --- a service the store never saw -------------------------------------------------------------------


def test_a_hop_naming_a_service_the_store_never_saw_says_so_and_what_it_saw() -> None:
    result = judge_quietly({"expect": {"hops": ["cart -> invntory"]}}, checkout())
    assert result.first_divergence == (
        "cart -> invntory: never seen; cart called inventory; "
        "no span of 'invntory' ever arrived; seen: inventory, auth, cart, frontend, payment"
    )
    caller = judge_quietly({"expect": {"hops": ["crat -> inventory"]}}, checkout())
    assert caller.first_divergence == (
        "crat -> inventory: never seen; "
        "no span of 'crat' ever arrived; seen: cart, auth, frontend, inventory, payment"
    )


def test_the_hint_is_there_while_waiting_and_only_for_names_the_store_never_saw() -> None:
    waiting = judge_quietly({"expect": {"hops": ["cart -> invntory"]}}, checkout(), gave_up=False)
    assert "no span of 'invntory' ever arrived" in check(waiting, "hops").message
    seen_elsewhere = judge_quietly({"expect": {"hops": ["cart -> shipping"]}}, checkout(),
                                   services=SERVICES | {"shipping"})
    assert seen_elsewhere.first_divergence == "cart -> shipping: never seen; cart called inventory"
    peer = judge_quietly({"peers": {"tax": "127.0.0.1:9"}, "expect": {"hops": ["cart -> tax"]}}, checkout())
    assert peer.first_divergence == "cart -> tax: never seen; cart called inventory", "a peer never has spans"
    unasked = judge_quietly({"expect": {"hops": ["cart -> invntory"]}}, checkout(), services=None)
    assert unasked.first_divergence == "cart -> invntory: never seen; cart called inventory"


def test_the_hint_lists_at_most_six_services_and_the_close_ones_first() -> None:
    many = frozenset({f"svc-{i:02d}" for i in range(20)} | {"inventory"})
    result = judge_quietly({"expect": {"hops": ["cart -> inventroy"]}}, checkout(), services=many)
    assert result.first_divergence is not None
    assert result.first_divergence.endswith(
        "no span of 'inventroy' ever arrived; seen: inventory, svc-00, svc-01, svc-02, svc-03, svc-04, …"
    )
    empty = judge_quietly({"expect": {"hops": ["cart -> invntory"]}}, checkout(), services=frozenset())
    assert check(empty, "hops").message.endswith("no span of 'invntory' ever arrived, nor of any service")
    chain = judge_quietly({"expect": {"chains": [["frontend", "cart", "invntory"]]}}, checkout())
    assert check(chain, "chains").message == (
        "cart -> invntory: never happened inside frontend -> cart (chain frontend → cart → invntory); "
        "no span of 'invntory' ever arrived; seen: inventory, auth, cart, frontend, payment"
    )
