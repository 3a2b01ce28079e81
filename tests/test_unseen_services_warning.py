"""The warning a check gives about services of its spec that the store never saw: said while
the check waits, never about a peer the flow's hops name or a service still exporting."""

from __future__ import annotations

import json
import logging

import pytest
from scripted_traces import ScriptedSpan, scripted_checkout

from tracebaton.assertions import FlowEngine, parse_flow_spec
from tracebaton.collector import JSON, SpanStore


def _checkout_calling_a_peer(store: SpanStore) -> str:
    trace = scripted_checkout(inventory_fails=False)
    cart = trace.span("cart", "POST /cart/checkout")
    trace.spans.append(ScriptedSpan("cart", "POST /v1/charges", 3, cart.start_ms + 1, cart.start_ms + 2,
                                    parent=cart, attributes={"peer.service": "stripe"}))
    assert store.ingest(json.dumps(trace.request()).encode(), JSON).result(30).accepted_spans
    return trace.trace_id


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tracebaton.assertions"]


def test_an_uninstrumented_peer_named_by_its_hop_is_not_warned_of(
        store: SpanStore, caplog: pytest.LogCaptureFixture) -> None:
    trace_id = _checkout_calling_a_peer(store)
    spec = parse_flow_spec({"name": "peer", "wait": {"timeout": "5s", "settle": "100ms"},
                            "expect": {"hops": ["frontend -> cart", "cart -> stripe"], "errors": "any"}})
    with caplog.at_level(logging.WARNING, logger="tracebaton.assertions"):
        result = FlowEngine(store).check(spec, trace_id)
    assert result.passed, result.checks
    assert _warnings(caplog) == []


def test_a_typo_is_warned_of_while_the_check_waits_and_the_peer_is_not(
        store: SpanStore, caplog: pytest.LogCaptureFixture) -> None:
    trace_id = _checkout_calling_a_peer(store)
    spec = parse_flow_spec({"name": "typo", "wait": {"timeout": "2s", "settle": "100ms"},
                            "expect": {"hops": ["cart -> stripe", "cart -> invntory"], "errors": "any"}})
    with caplog.at_level(logging.WARNING, logger="tracebaton.assertions"):
        result = FlowEngine(store).check(spec, trace_id)
    assert not result.passed
    (warning,) = _warnings(caplog)
    assert warning.startswith("flow 'typo': no span of 'invntory' ever arrived; seen: inventory, ")
    assert "stripe" not in warning
