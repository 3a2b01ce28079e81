"""What a snapshot is recorded from: only a complete flow whose services export promptly,
with a flow spec above its `snapshot:` section that the flow satisfies."""

from __future__ import annotations

import pytest
from snapshot_flows import checkout
from spans import FlowBuilder, flow_trace, hops_of, judge

from tracebaton.assertions import parse_flow_spec
from tracebaton.assertions._snapshot_judge import spec_part_for, unrecordable
from tracebaton.collector import StoredSpan


def why_not(spans: list[StoredSpan]) -> str | None:
    result = judge({"expect": {"errors": "any"}}, spans)
    return unrecordable(result, flow_trace(spans), hops_of(spans))


def test_a_complete_flow_may_be_recorded() -> None:
    assert why_not(checkout()) is None


def test_a_missing_parent_is_no_complete_flow() -> None:
    b = FlowBuilder()
    root = b.test_root()
    b.call(root, "cart", "/cart", start_ms=1, end_ms=50)
    b.server("inventory", "POST /reserve", parent="b0000000000000ff", start_ms=5, end_ms=9)
    assert why_not(b.spans) == (
        "inventory: span b000000000000004 ('POST /reserve') names parent b0000000000000ff, which never "
        "arrived (a missing parent)")


def test_a_call_without_its_callee_is_no_complete_flow() -> None:
    b = FlowBuilder()
    root = b.test_root()
    _, cart = b.call(root, "cart", "/cart", start_ms=1, end_ms=50,
                     callee_attrs={"server.address": "127.0.0.1", "server.port": 9003})
    b.client("cart", "POST /cart", parent=cart, start_ms=5, end_ms=9,
             attrs={"server.address": "127.0.0.1", "server.port": 9003})  # cart calls itself: known address
    assert why_not(b.spans) == (
        "cart -> cart: the call 'POST /cart' has no callee span (no span of cart answered this call)")


def test_a_message_without_its_consumer_is_no_complete_flow() -> None:
    reason = why_not(checkout(lost_message=True))
    assert reason is not None
    assert reason.startswith("orders: the message 'send order-confirmation' (span ")
    assert reason.endswith(") has no consumer span")


def test_a_service_lagging_past_settle_is_not_recorded() -> None:
    b = FlowBuilder()
    root = b.test_root()
    b.server("cart", "POST /cart", parent=root, start_ms=2, end_ms=49, arrival_ms=5000)
    assert why_not(b.spans) == ("cart exports 4.95 s after its spans end; settle 250 ms is too short — set "
                                "OTEL_BSP_SCHEDULE_DELAY=50 (tracebaton.sut_env())")


def test_a_flow_of_no_hop_between_services_is_not_recorded() -> None:
    b = FlowBuilder()
    b.test_root()
    assert why_not(b.spans) == (
        "the flow has no hop between services: did the request inside `with tracebaton.flow(...)` reach "
        "them, carrying flow.headers?")


@pytest.mark.parametrize(
    ("spans", "expect"),
    [
        (checkout(), {"budgets": {"deadlines": True},
                      "propagation": {"headers": {"baggage": "same", "traceparent": "valid",
                                                  "x-request-id": "same"}}}),
        # a 503 the flow recovered from: errors are part of it, and the snapshot records them
        (checkout(retry=True), {"budgets": {"deadlines": True}, "errors": "any",
                                "propagation": {"headers": {"baggage": "same", "traceparent": "valid",
                                                            "x-request-id": "same"}}}),
        # a header one hop lost: not a rule of the flow, but of the hops that have it
        (checkout(drop="x-request-id"), {"budgets": {"deadlines": True},
                                         "propagation": {"headers": {"baggage": "same",
                                                                     "traceparent": "valid"}}}),
    ],
)
def test_the_spec_above_a_snapshot_holds_what_the_flow_kept(spans: list[StoredSpan], expect: object) -> None:
    base = {"name": "checkout", "wait": {"timeout": "3s"}}
    written = spec_part_for(flow_trace(spans), hops_of(spans), base)
    assert written == {"name": "checkout", "wait": {"timeout": "3s"}, "expect": expect}
    parse_flow_spec(written)
