"""Failure texts about waiting (DESIGN §5, §6): a flow that gave up early (`quiet`), one
that failed before it settled (`violated`), and a trace id of which no span ever arrived.
Goldens, as in test_render.py: a change to these words must show up here as a diff."""

from __future__ import annotations

import dataclasses

from spans import NOW_NS, T1, FlowBuilder, extract_hops, flow_trace, spec_of

from tracebaton.assertions import render_verdict
from tracebaton.assertions._situation import Situation
from tracebaton.assertions._verdict import evaluate, nothing_arrived, result_of
from tracebaton.collector import StatusCode

MS = 1_000_000


def test_a_flow_that_gave_up_early_says_quiet_and_names_the_hop_that_never_came() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", parent=b.test_root(), start_ms=1, end_ms=200)
    b.call(frontend, "cart", "/cart/checkout", start_ms=10, end_ms=100)
    spec = spec_of({"name": "checkout", "expect": {"hops": ["frontend -> cart", "cart -> inventory"]}})
    trace = flow_trace(b.spans)
    situation = Situation(spec=spec, trace=trace, hops=tuple(extract_hops(trace)), settled=True, final=False,
                          now_unix_nano=NOW_NS, gave_up=True,
                          store_services=frozenset({"frontend", "cart", "inventory"}))
    result = result_of(situation, evaluate(situation), waited_ms=1_130)
    assert render_verdict(result) == f"""\
flow 'checkout' FAILED · trace {T1} · waited 1.13 s (quiet)
cart -> inventory: never seen
  FAIL    hops: cart -> inventory: never seen
hops (- expected, + actual, · extra but allowed):
· test -> frontend
  frontend -> cart
- cart -> inventory   [missing]
see it: tracebaton serve --db .tracebaton/last.duckdb, then open /flows/{T1}"""


def test_a_flow_that_failed_before_it_settled_says_violated_not_satisfied() -> None:
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", start_ms=0, end_ms=200)
    b.call(frontend, "cart", "/cart/checkout", start_ms=10, end_ms=100, client_status=StatusCode.ERROR,
           client_attrs={"http.response.status_code": 409})
    spec = spec_of({"name": "checkout", "expect": {"hops": ["frontend -> cart"]}})
    trace = flow_trace(b.spans)
    situation = Situation(spec=spec, trace=trace, hops=tuple(extract_hops(trace)), settled=False,
                          final=False, now_unix_nano=NOW_NS)
    result = result_of(situation, evaluate(situation), waited_ms=42)
    assert render_verdict(result).splitlines()[:3] == [
        f"flow 'checkout' FAILED · trace {T1} · waited 42 ms (violated)",
        "frontend -> cart answered 409",
        "  FAIL    errors: frontend -> cart answered 409",
    ]


def test_hops_not_seen_yet_when_a_check_failed_early_are_not_judged_missing() -> None:
    # the verdict came before the flow was whole: the later hops may well be on their way
    b = FlowBuilder()
    frontend = b.server("frontend", "POST /checkout", parent=b.test_root(), start_ms=1, end_ms=200)
    b.call(frontend, "cart", "/cart/checkout", start_ms=10, end_ms=100, client_status=StatusCode.ERROR,
           client_attrs={"http.response.status_code": 409})
    spec = spec_of({"name": "checkout", "expect": {"hops": ["frontend -> cart", "frontend -> payment"]}})
    trace = flow_trace(b.spans)
    situation = Situation(spec=spec, trace=trace, hops=tuple(extract_hops(trace)), settled=False,
                          final=False, now_unix_nano=NOW_NS)
    result = result_of(situation, evaluate(situation), waited_ms=3)
    assert [(h.hop, h.status.value) for h in result.hops][-1] == ("frontend -> payment", "pending")
    assert render_verdict(result) == f"""\
flow 'checkout' FAILED · trace {T1} · waited 3 ms (violated)
frontend -> cart answered 409
  FAIL    errors: frontend -> cart answered 409
hops (- expected, + actual, · extra but allowed):
· test -> frontend
  frontend -> cart
- frontend -> payment   [not seen yet: another check failed first]
see it: tracebaton serve --db .tracebaton/last.duckdb, then open /flows/{T1}"""
    # judged to the end, the same hop is missing
    final = dataclasses.replace(situation, final=True)
    assert [h.status.value for h in result_of(final, evaluate(final), waited_ms=3_000).hops][-1] == "missing"


def unknown_trace(recent: list[str], stored: list[str]) -> str:
    spec = spec_of({"name": "checkout", "expect": {"hops": ["frontend -> cart"],
                                                   "budgets": {"hops": {"frontend -> cart": "1s"}}}})
    trace = flow_trace([])
    situation = Situation(spec=spec, trace=trace, hops=(), settled=False, final=True, now_unix_nano=NOW_NS,
                          store_services=frozenset(stored))
    result = nothing_arrived(situation, evaluate(situation), waited_ms=10_004, timeout_ns=10_000 * MS,
                             recent_ns=60_000 * MS, recent_services=recent, stored_services=stored)
    assert not result.passed
    assert result.waited_reason.value == "timeout"
    assert [(c.check, c.state.value) for c in result.checks] == [
        ("hops", "fail"), ("order", "pending"), ("budgets.hops", "pending"), ("connected", "pending"),
        ("errors", "pending"),
    ], "one failure; what no span could decide stays undecided"
    return render_verdict(result, dashboard_url="http://127.0.0.1:7357")


def test_a_trace_of_which_no_span_arrived_is_one_failure_saying_what_did_arrive() -> None:
    assert unknown_trace(["cart", "frontend", "test"], ["cart", "frontend", "inventory", "test"]) == f"""\
flow 'checkout' FAILED · trace {T1} · waited 10 s (timeout)
no span of trace {T1} arrived in 10 s
  FAIL    hops: no span of trace {T1} arrived in 10 s
          in the last 60 s, spans of other traces came from cart, frontend: is the trace id right, and does the service that starts the trace export here?
          a service exports here with OTEL_EXPORTER_OTLP_ENDPOINT=http://HOST:PORT (the http= address `tracebaton serve` prints) and OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf; tracebaton.sut_env() returns both
hops (- expected, + actual):
- frontend -> cart   [missing]
see it: http://127.0.0.1:7357/flows/{T1}"""  # noqa: E501


def test_the_no_span_message_says_when_nothing_arrived_lately_or_at_all() -> None:
    lately = unknown_trace([], ["cart", "frontend", "test"]).splitlines()
    assert lately[3].strip() == (
        "no span at all arrived in the last 60 s; earlier ones came from cart, frontend: is the trace "
        "id right (the dashboard's Traces page lists the stored ones), and does the service that "
        "starts the trace export here now?"
    )
    never = unknown_trace([], []).splitlines()
    assert never[3].strip() == "this tracebaton has received no span at all"
