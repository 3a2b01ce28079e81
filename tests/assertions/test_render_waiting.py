"""Failure texts about waiting (DESIGN §5, §6): a flow that gave up early (`quiet`), and one
that failed before it settled (`violated`).
Goldens, as in test_render.py: a change to these words must show up here as a diff."""

from __future__ import annotations

from spans import NOW_NS, T1, FlowBuilder, extract_hops, flow_trace, spec_of

from tracebaton.assertions import render_verdict
from tracebaton.assertions._situation import Situation
from tracebaton.assertions._verdict import evaluate, result_of
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
