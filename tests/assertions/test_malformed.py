"""Malformed traces (DESIGN §5 findings): skewed clocks, parent cycles, duplicate span ids,
absurd timestamps and huge traces become findings or plain verdicts — never a crash, a
hang or a recursion error."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from spans import (
    BASE_NS,
    MS,
    NOW_NS,
    T1,
    FlowBuilder,
    Relation,
    check,
    finding_kinds,
    flow_trace,
    hops_of,
    judge,
    relation,
)

from tracebaton.assertions import FlowResult
from tracebaton.collector import StatusCode, StoredSpan

RICH_SPEC: dict[str, Any] = {
    "expect": {
        "hops": ["frontend -> cart", ["cart -> inventory", "frontend -> payment"], "orders ~> email"],
        "times": {"frontend -> cart": 1, "* -> payment": 1},
        "chains": [["frontend", "cart", "inventory"]],
        "budgets": {"trace": "1s", "hops": {"* -> *": "500ms"}, "deadlines": True},
        "propagation": {"headers": {"traceparent": "valid", "x-request-id": "same"},
                        "baggage": {"tenant": "acme"}},
        "spans": [{"select": {"service": "*"}, "count": ">=1", "max_duration": "10s",
                   "attributes": {"http.status_code": "*"}}],
    }
}
"""Asks every check, so every check meets the malformed input."""


def _judge_every_way(spans: list[StoredSpan], **kw: Any) -> list[FlowResult]:
    """Judge with the default and the rich spec, in every state of waiting; each result must
    serialize and read back, as the API and the remote plugin do."""
    results = []
    for spec in ({}, RICH_SPEC, {**RICH_SPEC, "expect": {**RICH_SPEC["expect"], "order": "exact"}}):
        for settled, final in ((False, False), (True, False), (False, True), (True, True)):
            result = judge(spec, spans, settled=settled, final=final, **kw)
            assert FlowResult.from_json(result.to_json()) == result
            results.append(result)
    return results


# --- clock skew ------------------------------------------------------------------------------


@pytest.mark.parametrize(("ahead_ms", "skewed"), [(0, False), (4.9, False), (5.1, True), (3_600_000, True)])
def test_child_starting_before_its_parent_is_clock_skew(ahead_ms: float, skewed: bool) -> None:
    b = FlowBuilder()
    client = b.client("frontend", "POST /cart", start_ms=100, end_ms=200)
    server = b.server("cart", "POST /cart", parent=client, start_ms=100 - ahead_ms, end_ms=190 - ahead_ms)
    trace = flow_trace(b.spans)
    assert finding_kinds(trace) == (["clock_skew"] if skewed else [])
    if skewed:
        [finding] = trace.findings
        assert finding.span_ids == (server.span_id, client.span_id)
        assert finding.message.startswith(f"cart: span {server.span_id} ('POST /cart') starts ")
        assert "before its parent in frontend; their clocks disagree" in finding.message
    for result in _judge_every_way(b.spans):
        assert finding_kinds(result).count("clock_skew") == (1 if skewed else 0)
        assert [h.hop for h in result.hops][:1] == ["frontend -> cart"]


def test_skewed_child_still_comes_after_its_parent_in_order() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=500)
    client = b.client("frontend", "POST /cart", parent=frontend, start_ms=100, end_ms=200)
    cart = b.server("cart", "POST /cart", parent=client, start_ms=-10_000, end_ms=-9_900)  # clock 10 s behind
    inventory_call = b.client("cart", "POST /reserve", parent=cart, start_ms=-9_990, end_ms=-9_910)
    assert relation(flow_trace(b.spans), client, inventory_call) is Relation.BEFORE
    spec = {"expect": {"hops": ["frontend -> cart", "cart -> inventory"], "order": "exact"}}
    assert check(judge(spec, b.spans), "hops").state.value == "pending"  # no inventory span yet
    assert check(judge(spec, b.spans), "order").state.value == "pending"


# --- parent cycles ---------------------------------------------------------------------------


def _cycle(length: int, *, tail: bool = False) -> list[StoredSpan]:
    """`length` spans of three services naming each other as parents in a ring (1 = a span
    naming itself), all starting at once; with `tail`, a span hanging below the ring and a
    proper root beside it."""
    services = ("a", "b", "c")
    ids = [f"{0xC0 << 56 | i + 1:016x}" for i in range(length)]
    b = FlowBuilder()
    spans = [
        b.server(services[i % len(services)], f"op {i}", parent=ids[(i + 1) % length], span_id=ids[i],
                 start_ms=0, end_ms=100 - i)
        for i in range(length)
    ]
    if tail:
        b.client("a", "below the ring", parent=spans[0], start_ms=1, end_ms=2, attrs={"peer.service": "x"})
        b.server("frontend", "POST /checkout", start_ms=0, end_ms=100, remote=False)
    return b.spans


@pytest.mark.parametrize(("length", "tail"), [(1, False), (2, False), (3, False), (3, True), (50, True)])
def test_parent_cycle_is_cut_and_reported(length: int, tail: bool) -> None:
    spans = _cycle(length, tail=tail)
    trace = flow_trace(spans)
    assert finding_kinds(trace) == ["parent_cycle"]
    [finding] = trace.findings
    assert set(finding.span_ids) == {s.span_id for s in spans[:length]}
    assert "name each other as parents; the loop was cut" in finding.message
    # a forest again: every span reaches a top, no span is its own ancestor
    for span in trace.spans:
        chain = trace.ancestors(span)
        assert span not in chain
        assert len(chain) < len(spans)
    assert len(list(trace.descendants(trace.roots[0]))) < len(spans)
    hops_of(spans)
    for result in _judge_every_way(spans):
        assert "parent_cycle" in finding_kinds(result)


def test_cycle_through_stitches_is_cut_too() -> None:
    b = FlowBuilder()
    client = b.client("frontend", "POST /cart", start_ms=0, end_ms=100, attrs={"peer.service": "cart"})
    server = b.server("cart", "POST /cart", parent=client, start_ms=1, end_ms=99)
    # a wrong diagnosis that hangs the caller under its own callee closes a loop: cut like any other
    trace = flow_trace(b.spans, stitches={client.span_id: server.span_id})
    assert finding_kinds(trace) == ["parent_cycle"]
    _judge_every_way(b.spans, stitches={client.span_id: server.span_id})


# --- duplicate span ids ----------------------------------------------------------------------


def test_duplicate_span_id_with_different_content_is_a_finding() -> None:
    b = FlowBuilder()
    client = b.client("frontend", "POST /cart", start_ms=0, end_ms=100)
    server = b.server("cart", "POST /cart", parent=client, start_ms=1, end_ms=99)
    impostor = dataclasses.replace(server, service="inventory", name="POST /reserve",
                                   start_unix_nano=server.start_unix_nano + MS)
    trace = flow_trace([*b.spans, impostor])
    assert finding_kinds(trace) == ["duplicate_span"]
    [finding] = trace.findings
    assert finding.span_ids == (server.span_id,)
    assert "was sent twice with different content; the first (cart: 'POST /cart') is used" in finding.message
    assert trace.by_id[server.span_id] == server
    assert [h.text for h in hops_of([impostor, *b.spans])] == ["frontend -> cart"]
    for result in _judge_every_way([*b.spans, impostor]):
        assert result.span_count == 2
        assert "duplicate_span" in finding_kinds(result)


def test_resent_identical_span_is_silently_one_span() -> None:
    b = FlowBuilder()
    client = b.client("frontend", "POST /cart", start_ms=0, end_ms=100)
    server = b.server("cart", "POST /cart", parent=client, start_ms=1, end_ms=99)
    resent = dataclasses.replace(server, arrival_unix_nano=server.arrival_unix_nano + 1_000 * MS)
    trace = flow_trace([resent, *b.spans, server])
    assert trace.findings == ()
    assert len(trace.spans) == 2
    assert trace.by_id[server.span_id] == server  # the first to arrive


def test_span_id_shared_across_traces_keeps_the_flows_own() -> None:
    b = FlowBuilder()
    own = b.server("frontend", "POST /checkout", start_ms=10, end_ms=100)
    foreign = dataclasses.replace(own, trace_id="f" * 32, service="batch",
                                  start_unix_nano=own.start_unix_nano - MS)
    trace = flow_trace([foreign, own])
    assert trace.by_id[own.span_id] == own
    assert finding_kinds(trace) == ["duplicate_span"]


# --- absurd timestamps -----------------------------------------------------------------------

_FAR_FUTURE_NS = 2**63 - 1  # the largest OTLP-compatible signed value


@pytest.mark.parametrize(
    ("start_ns", "end_ns", "says"),
    [
        (0, 0, "starts at 1970-01-01 00:00:00 UTC"),
        (1_700_000_000, 1_700_000_100, "starts at 1970-01-01 00:00:01 UTC"),  # seconds sent as ns
        (1_700_000_000_000, 1_700_000_000_100, "starts at 1970-01-01 00:28:20 UTC"),  # ms sent as ns
        (NOW_NS + 25 * 3600 * 10**9, NOW_NS + 25 * 3600 * 10**9 + MS, "starts at 2025-11-22"),  # tomorrow
        (_FAR_FUTURE_NS - MS, _FAR_FUTURE_NS, "starts at 2262-"),
        (2**64 - 2, 2**64 - 1, "starts at 2554-07-21"),  # the largest OTLP fixed64
        (BASE_NS + 100 * MS, BASE_NS, "ends before it starts"),
    ],
)
def test_implausible_times_are_clock_skew(start_ns: int, end_ns: int, says: str) -> None:
    b = FlowBuilder()
    root = b.test_root()
    frontend = b.server("frontend", "POST /checkout", parent=root, start_ms=1, end_ms=500)
    odd = b.server("cart", "POST /cart", parent=frontend, start_ns=start_ns, end_ns=end_ns)
    kinds = finding_kinds(flow_trace(b.spans))
    assert set(kinds) == {"clock_skew"}
    [own] = [f for f in flow_trace(b.spans).findings if f.span_ids == (odd.span_id,)]
    assert says in own.message
    for result in _judge_every_way(b.spans):
        assert "clock_skew" in finding_kinds(result)
        assert "frontend -> cart" in [h.hop for h in result.hops]


def test_whole_flow_from_1970_is_judged() -> None:
    b = FlowBuilder()
    root = b.server("frontend", "POST /checkout", start_ns=1_000, end_ns=900 * MS)
    client = b.client("frontend", "POST /cart", parent=root, start_ns=10 * MS, end_ns=100 * MS)
    b.server("cart", "POST /cart", parent=client, start_ns=11 * MS, end_ns=99 * MS)
    results = _judge_every_way(b.spans)
    assert all(finding_kinds(r).count("clock_skew") == 3 for r in results)
    budget = check(judge({"expect": {"budgets": {"trace": "2s"}}}, b.spans), "budgets.trace")
    assert budget.state.value == "pass"


# --- orphans, empty and odd flows ------------------------------------------------------------


def test_empty_flow() -> None:
    for result in _judge_every_way([]):
        assert result.span_count == 0
        # unseen hops: pending while the engine would still wait, missing once it stops
        assert result.hops == () or all(h.status.value in ("missing", "pending") for h in result.hops)
    final = judge(RICH_SPEC, [], final=True)
    assert final.hops
    assert all(h.status.value == "missing" for h in final.hops)
    assert not final.passed
    assert final.first_divergence is not None


def test_only_orphans() -> None:
    b = FlowBuilder()
    orphans = [b.server(f"s{i}", "op", parent=f"{0xDEAD << 48 | i:016x}", start_ms=i, end_ms=i + 1)
               for i in range(5)]
    results = _judge_every_way(b.spans, missing_parents=orphans)
    assert all(finding_kinds(r).count("missing_parent") == 5 for r in results)
    assert flow_trace(b.spans).roots == tuple(orphans)


def test_link_to_itself_and_to_nowhere() -> None:
    b = FlowBuilder()
    consumer = b.consumer("email", "process", start_ms=0, end_ms=10, span_id="00000000000000ee",
                          links=[(T1, "00000000000000ee"), (T1, "0000000000000bad"), ("bad", "")])
    assert hops_of(b.spans) == []
    _judge_every_way([consumer])


def test_odd_attribute_values_do_not_crash_checks() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=500, status=StatusCode.ERROR,
                        attrs={"http.response.status_code": [500, 501], "tenant": {"nested": "map"}})
    b.call(frontend, "cart", "/cart", start_ms=10, end_ms=100,
           client_attrs={"server.address": 8080, "server.port": "eighty", "url.full": "::not a url::"},
           callee_attrs={"http.request.header.traceparent": [None, 7], "http.request.header.baggage": b"\xff",
                         "http.request.header.x_request_id": {"a": "b"}, "http.status_code": float("nan")})
    b.client("cart", "POST /x", parent=frontend, start_ms=200, end_ms=300,
             attrs={"url.full": "http://[::1", "peer.service": ""})
    _judge_every_way(b.spans)


# --- huge traces -----------------------------------------------------------------------------

_SERVICES = ("frontend", "cart", "inventory", "payment", "orders", "email", "audit")


def _deep_chain(n: int) -> list[StoredSpan]:
    """n spans, each service calling the next: SERVER, CLIENT, SERVER, CLIENT, … 5,000 hops deep.
    Every span is an ERROR, as when a failure at the bottom cascades to the top."""
    b = FlowBuilder()
    parent = b.test_root(end_ms=n)
    for i in range(1, n):
        service = _SERVICES[((i + 1) // 2) % len(_SERVICES)]  # a SERVER and the CLIENT below it
        make = b.server if i % 2 else b.client
        captured = {"http.request.header.x_request_id": [f"r-{i % 3}"]} if i % 2 else None
        parent = make(service, f"op {i}", parent=parent, start_ms=i * 0.01, end_ms=n - i * 0.01,
                      status=StatusCode.ERROR, attrs=captured)
    return b.spans


def _wide_fan_out(n: int) -> list[StoredSpan]:
    """One entry span making (n - 2) / 2 calls, to a handful of services, half of them failing."""
    b = FlowBuilder()
    root = b.test_root(end_ms=n)
    frontend = b.server("frontend", "POST /batch", parent=root, start_ms=0, end_ms=n)
    for i in range((n - 2) // 2):
        b.call(frontend, _SERVICES[1 + i % (len(_SERVICES) - 1)], f"/item/{i}",
               start_ms=i * 0.1, end_ms=i * 0.1 + 2,
               client_status=StatusCode.ERROR if i % 2 else StatusCode.UNSET,
               capture={"x-request-id": "r-1", "traceparent": None})
    return b.spans


_HUGE: dict[str, Callable[[int], list[StoredSpan]]] = {"deep": _deep_chain, "wide": _wide_fan_out}


@pytest.mark.parametrize("shape", sorted(_HUGE))
def test_ten_thousand_span_trace(shape: str) -> None:
    spans = _HUGE[shape](10_000)
    assert len(spans) == 10_000
    trace = flow_trace(spans)
    assert trace.findings == ()
    hops = hops_of(spans)
    assert len(hops) == 5_000
    spec = {"expect": {**RICH_SPEC["expect"], "chains": [list(_SERVICES)], "errors": "none"}}
    for settled, final in ((False, False), (True, True)):
        result = judge(spec, spans, settled=settled, final=final)
        assert not result.passed
        assert len(result.hops) >= len(hops)
        assert check(result, "errors").message.endswith("more)")
    if shape == "deep":  # the deepest failure is reported first: the bottom of the chain
        assert [h.text for h in hops[:3]] == ["test -> cart", "cart -> inventory", "inventory -> payment"]
        assert check(judge({}, spans), "errors").message == (
            "cart -> inventory: inventory failed in 'op 9999' (and 9998 more)"
        )


def test_a_port_of_digits_int_refuses_is_no_port() -> None:
    # "³".isdigit() is True, int("³") raises: the call's address is unknown, not a crash
    b = FlowBuilder()
    root = b.server("frontend", "POST /checkout", start_ms=0, end_ms=100)
    b.client("frontend", "POST /cart", parent=root, start_ms=10, end_ms=90,
             attrs={"server.address": "cart", "server.port": "³"})
    result = judge({"expect": {"hops": ["frontend -> cart"]}}, b.spans, final=True)
    assert check(result, "hops").state.value == "fail"
