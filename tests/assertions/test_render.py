"""Failure rendering (DESIGN §6): golden texts of representative verdicts, and the
structural promises the first two lines make.

The goldens are the contract a person reads in a failed test; a change to rendering must
show up here as a diff to review.
"""

from __future__ import annotations

import dataclasses
import random

import pytest
from spans import FlowBuilder, judge

from tracebaton.assertions._render import render_hop_table, render_verdict
from tracebaton.assertions._result import (
    CheckResult,
    CheckState,
    Finding,
    FindingKind,
    FlowResult,
    HopKind,
    HopResult,
    HopStatus,
    WaitedReason,
)
from tracebaton.assertions._trace import FlowTrace, build_trace
from tracebaton.collector import SpanKind, StatusCode, StoredSpan

T1 = "4bf92f3577b34da6a3ce929d0e0e4736"
T2 = "9a3c5e1f0b2d4c6e8f1a3b5c7d9e0f21"
BASE_NS = 1_700_000_000 * 10**9
MS = 1_000_000


def sid(n: int) -> str:
    return f"{0xa1b2_0000_0000_0000 + n:016x}"


def span(n: int, service: str, kind: SpanKind, name: str, start_ms: float, duration_ms: float,
         parent: int | None = None, *, trace: str = T1, status: StatusCode = StatusCode.UNSET,
         message: str = "") -> StoredSpan:
    start = BASE_NS + round(start_ms * MS)
    end = start + round(duration_ms * MS)
    return StoredSpan(
        trace_id=trace, span_id=sid(n), parent_span_id=None if parent is None else sid(parent),
        name=name, kind=kind, start_unix_nano=start, end_unix_nano=end, status_code=status,
        status_message=message, service=service, trace_state="", flags=0x301, attributes={},
        events=(), links=(), resource={"service.name": service}, scope_name="test", scope_version="",
        arrival_unix_nano=end + 5 * MS)


def hop(text: str, status: HopStatus = HopStatus.MATCHED, caller: int | None = None,
        callee: int | None = None, *, duration_ms: float | None = None, detail: str = "") -> HopResult:
    arrow = "~>" if "~>" in text else "->"
    caller_service, callee_service = (part.strip() for part in text.split(arrow))
    kind = HopKind.ASYNC if arrow == "~>" else HopKind.SYNC
    return HopResult(
        hop=text, kind=kind, status=status,
        caller_span_id=None if caller is None else sid(caller),
        callee_span_id=None if callee is None else sid(callee),
        caller_service=caller_service, callee_service=callee_service, start_unix_nano=None,
        duration_ns=None if duration_ms is None else round(duration_ms * MS), detail=detail)


def check(check_id: str, state: CheckState = CheckState.PASS, message: str = "", *spans: int,
          hop_text: str | None = None) -> CheckResult:
    return CheckResult(check=check_id, state=state, message=message, span_ids=tuple(sid(n) for n in spans),
                       hop=hop_text)


def trace_of(spans: list[StoredSpan], trace_id: str = T1) -> FlowTrace:
    return build_trace(trace_id, spans, now_unix_nano=BASE_NS + 60 * 10**9)


FAIL, PASS, PENDING = CheckState.FAIL, CheckState.PASS, CheckState.PENDING
SERVER, CLIENT, INTERNAL = SpanKind.SERVER, SpanKind.CLIENT, SpanKind.INTERNAL


# --------------------------------------------------------------------------- scenarios


LONG_FLOW = ("frontend -> auth", "frontend -> catalog", "frontend -> cart", "cart -> inventory",
             "cart -> pricing", "frontend -> payment", "payment -> fraud", "payment -> stripe",
             "frontend -> orders", "orders -> ledger", "orders ~> email", "email -> smtp")


def missing_hop_in_a_long_flow() -> FlowResult:
    seen = [hop("test -> frontend", HopStatus.UNEXPECTED, 1, 2, duration_ms=230)]
    seen += [hop(text, HopStatus.MATCHED, 10 + 2 * i, 11 + 2 * i, duration_ms=10 + i)
             for i, text in enumerate(LONG_FLOW) if text != "payment -> fraud"]
    seen.insert(7, hop("payment -> fraud", HopStatus.MISSING, detail="never seen"))
    return FlowResult(
        passed=False, name="checkout", trace_id=T1, waited_ms=10_000, waited_reason=WaitedReason.TIMEOUT,
        first_divergence="payment -> fraud: expected hop never seen in 10 s",
        checks=(check("hops", FAIL, "payment -> fraud: expected hop never seen (11 of 12 seen)"),
                check("order"), check("budgets.trace")),
        hops=tuple(seen), expected_hops=LONG_FLOW, trace_ids=(T1,), span_count=25)


def broken_propagation() -> tuple[FlowResult, FlowTrace]:
    spans = [
        span(1, "frontend", SERVER, "POST /checkout", 0, 120),
        span(2, "frontend", INTERNAL, "POST /checkout http receive", 0.2, 0.3, 1),
        span(3, "frontend", CLIENT, "POST", 2, 10, 1),
        span(4, "auth", SERVER, "POST /verify", 3, 8, 3),
        span(5, "frontend", CLIENT, "POST", 15, 95, 1),
        span(6, "frontend", INTERNAL, "POST /checkout http send", 115, 0.4, 1),
        span(20, "cart", SERVER, "POST /cart/checkout", 16, 92, trace=T2),
        span(21, "cart", CLIENT, "GET", 20, 40, 20, trace=T2),
        span(22, "inventory", SERVER, "GET /stock/{sku}", 22, 36, 21, trace=T2),
        span(23, "cart", INTERNAL, "POST /cart/checkout http send", 100, 0.5, 20, trace=T2),
    ]
    divergence = "frontend -> cart: cart started a new trace 9a3c… (no traceparent arrived)"
    result = FlowResult(
        passed=False, name="checkout", trace_id=T1, waited_ms=312, waited_reason=WaitedReason.SETTLED,
        first_divergence=divergence,
        checks=(check("hops"), check("order"),
                check("connected", FAIL, divergence, 5, 20, hop_text="frontend -> cart"),
                check("headers", PENDING, "waiting for the flow to settle")),
        hops=(hop("frontend -> auth", HopStatus.MATCHED, 3, 4, duration_ms=10),
              hop("frontend -> cart", HopStatus.BROKEN, 5, 20, duration_ms=95,
                  detail="callee started trace 9a3c…"),
              hop("cart -> inventory", HopStatus.MATCHED, 21, 22, duration_ms=40)),
        expected_hops=("frontend -> auth", "frontend -> cart", "cart -> inventory"),
        findings=(Finding(FindingKind.PROPAGATION_BROKEN,
                          "cart got no traceparent from frontend; trace 9a3c… stitched in by address",
                          hop="frontend -> cart",
                          span_ids=(sid(5), sid(20))),),
        trace_ids=(T1, T2), span_count=len(spans))
    return result, trace_of(spans)


def budget_overrun() -> tuple[FlowResult, FlowTrace]:
    spans = [
        span(1, "frontend", SERVER, "POST /checkout", 0, 420),
        span(2, "frontend", CLIENT, "POST", 5, 400, 1),
        span(3, "cart", SERVER, "POST /cart/checkout", 6, 397, 2),
        span(4, "cart", CLIENT, "GET", 10, 340, 3),
        span(5, "inventory", SERVER, "GET /stock/{sku}", 12, 335, 4),
        span(6, "inventory", INTERNAL, "SELECT stock", 14, 330, 5),
        span(7, "cart", CLIENT, "GET", 352, 30, 3),
        span(8, "pricing", SERVER, "GET /price/{sku}", 353, 28, 7),
    ]
    message = "cart -> inventory: took 340 ms, budget 200 ms"
    result = FlowResult(
        passed=False, name="checkout", trace_id=T1, waited_ms=268, waited_reason=WaitedReason.SETTLED,
        first_divergence=message,
        checks=(check("hops"), check("budgets.trace"),
                check("budgets.hops", FAIL, message, 4, hop_text="cart -> inventory")),
        hops=(hop("frontend -> cart", HopStatus.MATCHED, 2, 3, duration_ms=400),
              hop("cart -> inventory", HopStatus.MATCHED, 4, 5, duration_ms=340),
              hop("cart -> pricing", HopStatus.MATCHED, 7, 8, duration_ms=30)),
        expected_hops=("frontend -> cart", "cart -> inventory", "cart -> pricing"),
        trace_ids=(T1,), span_count=len(spans))
    return result, trace_of(spans)


def timeout_without_a_trace() -> FlowResult:
    return FlowResult(
        passed=False, name="checkout", trace_id=None, waited_ms=10_000, waited_reason=WaitedReason.TIMEOUT,
        first_divergence="frontend -> auth: expected hop never seen: no trace found",
        checks=(check("hops", FAIL, "no trace found in 10 s: no root span of frontend named\n"
                      "'POST /checkout' since 60 s; 0 spans arrived"),),
        hops=(hop("frontend -> auth", HopStatus.MISSING), hop("frontend -> cart", HopStatus.MISSING)),
        expected_hops=("frontend -> auth", "frontend -> cart"))


def passed_flow() -> tuple[FlowResult, FlowTrace]:
    spans = [
        span(1, "frontend", SERVER, "POST /checkout", 0, 80),
        span(2, "frontend", CLIENT, "POST", 2, 10, 1),
        span(3, "auth", SERVER, "POST /verify", 3, 8, 2),
        span(4, "frontend", CLIENT, "POST", 20, 50, 1),
        span(5, "payment", SERVER, "POST /charge", 21, 48, 4),
    ]
    result = FlowResult(
        passed=True, name="checkout", trace_id=T1, waited_ms=251, waited_reason=WaitedReason.SETTLED,
        first_divergence=None,
        checks=(check("hops"), check("order"), check("budgets.hops")),
        hops=(hop("frontend -> auth", HopStatus.MATCHED, 2, 3, duration_ms=10),
              hop("frontend -> payment", HopStatus.MATCHED, 4, 5, duration_ms=50)),
        expected_hops=("frontend -> auth", "* -> payment"), trace_ids=(T1,), span_count=len(spans))
    return result, trace_of(spans)


def deep_tree() -> tuple[FlowResult, FlowTrace]:
    spans = [span(1, "frontend", SERVER, "POST /checkout", 0, 900),
             span(2, "frontend", CLIENT, "POST", 1, 9, 1, status=StatusCode.ERROR,
                  message="401 Unauthorized"),
             span(3, "auth", SERVER, "POST /verify", 2, 7, 2)]
    spans += [span(10 + i, "frontend", INTERNAL, f"render item {i}", 10 + i, 1, 1) for i in range(20)]
    spans += [span(40, "frontend", CLIENT, "POST", 40, 800, 1),
              span(41, "cart", SERVER, "POST /cart/checkout", 41, 790, 40)]
    parent = 41
    for depth in range(8):
        spans.append(span(50 + depth, "cart", INTERNAL, f"step {depth}", 42 + depth, 700 - depth, parent))
        parent = 50 + depth
    spans += [span(60, "cart", CLIENT, "SELECT cart", 60, 5, parent, status=StatusCode.ERROR,
                   message="connection refused"),
              span(61, "cart", INTERNAL, "retry backoff", 70, 100, parent)]
    result = FlowResult(
        passed=False, name="checkout", trace_id=T1, waited_ms=255, waited_reason=WaitedReason.SETTLED,
        first_divergence="frontend -> auth answered 401 Unauthorized",
        checks=(check("hops"),
                check("errors", FAIL, "frontend -> auth answered 401 Unauthorized", 2,
                      hop_text="frontend -> auth"),
                check("spans[0]", FAIL, "cart: 'SELECT cart' failed: connection refused", 60)),
        hops=(hop("frontend -> auth", HopStatus.MATCHED, 2, 3, duration_ms=9),
              hop("frontend -> cart", HopStatus.MATCHED, 40, 41, duration_ms=800)),
        expected_hops=("frontend -> auth", "frontend -> cart"), trace_ids=(T1,), span_count=len(spans))
    return result, trace_of(spans)


# --------------------------------------------------------------------------- goldens


def test_a_missing_hop_in_the_middle_of_a_long_flow_elides_the_matching_runs() -> None:
    assert render_verdict(missing_hop_in_a_long_flow()) == """\
flow 'checkout' FAILED · trace 4bf92f3577b34da6a3ce929d0e0e4736 · waited 10 s (timeout)
payment -> fraud: expected hop never seen in 10 s
  FAIL    hops: payment -> fraud: expected hop never seen (11 of 12 seen)
hops (- expected, + actual):
  … 4 matching hops, 1 extra but allowed
  cart -> pricing
  frontend -> payment
- payment -> fraud      [missing: never seen]
  payment -> stripe
  frontend -> orders
  … 3 matching hops
see it: tracebaton serve --db .tracebaton/last.duckdb, then open /flows/4bf92f3577b34da6a3ce929d0e0e4736"""


def test_broken_propagation_hangs_the_stitched_trace_below_its_caller() -> None:
    assert render_verdict(*broken_propagation()) == """\
flow 'checkout' FAILED · trace 4bf92f3577b34da6a3ce929d0e0e4736 · waited 312 ms (settled)
frontend -> cart: cart started a new trace 9a3c… (no traceparent arrived)
  FAIL    connected: frontend -> cart: cart started a new trace 9a3c… (no traceparent arrived)
hops (- expected, + actual):
  frontend -> auth
- frontend -> cart
+ frontend -> cart    [broken: callee started trace 9a3c…]
  cart -> inventory
spans near the divergence (7 of 10):
  frontend  server  POST /checkout             120 ms  unset
    frontend  client  POST                      10 ms  unset
      auth  server  POST /verify                 8 ms  unset
    frontend  client  POST                      95 ms  unset  ◀
      cart  server  POST /cart/checkout         92 ms  unset  [trace 9a3c5e1f]  ◀
        cart  client  GET                       40 ms  unset  [trace 9a3c5e1f]
          inventory  server  GET /stock/{sku}   36 ms  unset  [trace 9a3c5e1f]
findings:
  propagation_broken: cart got no traceparent from frontend; trace 9a3c… stitched in by address
see it: tracebaton serve --db .tracebaton/last.duckdb, then open /flows/4bf92f3577b34da6a3ce929d0e0e4736"""


def test_a_budget_overrun_marks_the_slow_caller_span() -> None:
    assert render_verdict(*budget_overrun(), dashboard_url="http://127.0.0.1:7357/") == """\
flow 'checkout' FAILED · trace 4bf92f3577b34da6a3ce929d0e0e4736 · waited 268 ms (settled)
cart -> inventory: took 340 ms, budget 200 ms
  FAIL    budgets.hops: cart -> inventory: took 340 ms, budget 200 ms
hops (- expected, + actual):
  frontend -> cart
  cart -> inventory
  cart -> pricing
spans near the divergence (8 of 8):
  frontend  server  POST /checkout             420 ms  unset
    frontend  client  POST                     400 ms  unset
      cart  server  POST /cart/checkout        397 ms  unset
        cart  client  GET                      340 ms  unset  ◀
          inventory  server  GET /stock/{sku}  335 ms  unset
            inventory  internal  SELECT stock  330 ms  unset
        cart  client  GET                       30 ms  unset
          pricing  server  GET /price/{sku}     28 ms  unset
see it: http://127.0.0.1:7357/flows/4bf92f3577b34da6a3ce929d0e0e4736"""


def test_a_timeout_without_a_trace_lists_every_expected_hop_as_missing() -> None:
    assert render_verdict(timeout_without_a_trace()) == """\
flow 'checkout' FAILED · no trace found · waited 10 s (timeout)
frontend -> auth: expected hop never seen: no trace found
  FAIL    hops: no trace found in 10 s: no root span of frontend named
          'POST /checkout' since 60 s; 0 spans arrived
hops (- expected, + actual):
- frontend -> auth   [missing]
- frontend -> cart   [missing]
see it: tracebaton serve --db .tracebaton/last.duckdb, then open /flows"""


def test_a_passed_flow_renders_its_hops_and_no_tree() -> None:
    assert render_verdict(*passed_flow()) == """\
flow 'checkout' passed · trace 4bf92f3577b34da6a3ce929d0e0e4736 · waited 251 ms (settled)
3 checks passed, 2 hops seen
hops (- expected, + actual):
  frontend -> auth
  frontend -> payment   [as * -> payment]
see it: tracebaton serve --db .tracebaton/last.duckdb, then open /flows/4bf92f3577b34da6a3ce929d0e0e4736"""


def test_a_deep_tree_is_cut_at_25_span_lines_around_the_culprits() -> None:
    assert render_verdict(*deep_tree()) == """\
flow 'checkout' FAILED · trace 4bf92f3577b34da6a3ce929d0e0e4736 · waited 255 ms (settled)
frontend -> auth answered 401 Unauthorized
  FAIL    errors: frontend -> auth answered 401 Unauthorized
  FAIL    spans[0]: cart: 'SELECT cart' failed: connection refused
hops (- expected, + actual):
  frontend -> auth
  frontend -> cart
spans near the divergence (25 of 35):
  frontend  server  POST /checkout                 900 ms  unset
    frontend  client  POST                           9 ms  error: 401 Unauthorized    ◀
      auth  server  POST /verify                     7 ms  unset
    frontend  internal  render item 0                1 ms  unset
    frontend  internal  render item 1                1 ms  unset
    frontend  internal  render item 2                1 ms  unset
    frontend  internal  render item 3                1 ms  unset
    frontend  internal  render item 4                1 ms  unset
    frontend  internal  render item 5                1 ms  unset
    frontend  internal  render item 6                1 ms  unset
    frontend  internal  render item 7                1 ms  unset
    frontend  internal  render item 8                1 ms  unset
    frontend  internal  render item 9                1 ms  unset
    frontend  internal  render item 10               1 ms  unset
    … 9 more spans
    frontend  client  POST                         800 ms  unset
      cart  server  POST /cart/checkout            790 ms  unset
        cart  internal  step 0                     700 ms  unset
          cart  internal  step 1                   699 ms  unset
            cart  internal  step 2                 698 ms  unset
              cart  internal  step 3               697 ms  unset
                cart  internal  step 4             696 ms  unset
                  cart  internal  step 5           695 ms  unset
                    cart  internal  step 6         694 ms  unset
                      cart  internal  step 7       693 ms  unset
                        cart  client  SELECT cart    5 ms  error: connection refused  ◀
                        … 1 more span
see it: tracebaton serve --db .tracebaton/last.duckdb, then open /flows/4bf92f3577b34da6a3ce929d0e0e4736"""


def test_very_verbose_shows_every_check_the_hop_table_and_the_unfolded_tree() -> None:
    assert render_verdict(*broken_propagation(), verbosity=2) == """\
flow 'checkout' FAILED · trace 4bf92f3577b34da6a3ce929d0e0e4736 · waited 312 ms (settled)
frontend -> cart: cart started a new trace 9a3c… (no traceparent arrived)
  pass    hops
  pass    order
  FAIL    connected: frontend -> cart: cart started a new trace 9a3c… (no traceparent arrived)
  pending headers: waiting for the flow to settle
hops (- expected, + actual):
  frontend -> auth
- frontend -> cart
+ frontend -> cart    [broken: callee started trace 9a3c…]
  cart -> inventory
hop table:
  hop                kind  status   caller span       callee span       duration  detail
  frontend -> auth   sync  matched  a1b2000000000003  a1b2000000000004     10 ms
  frontend -> cart   sync  broken   a1b2000000000005  a1b2000000000014     95 ms  callee started trace 9a3c…
  cart -> inventory  sync  matched  a1b2000000000015  a1b2000000000016     40 ms
spans (10):
  frontend  server  POST /checkout                     120 ms  unset
    frontend  internal  POST /checkout http receive    300 us  unset
    frontend  client  POST                              10 ms  unset
      auth  server  POST /verify                         8 ms  unset
    frontend  client  POST                              95 ms  unset  ◀
      cart  server  POST /cart/checkout                 92 ms  unset  [trace 9a3c5e1f]  ◀
        cart  client  GET                               40 ms  unset  [trace 9a3c5e1f]
          inventory  server  GET /stock/{sku}           36 ms  unset  [trace 9a3c5e1f]
        cart  internal  POST /cart/checkout http send  500 us  unset  [trace 9a3c5e1f]
    frontend  internal  POST /checkout http send       400 us  unset
findings:
  propagation_broken: cart got no traceparent from frontend; trace 9a3c… stitched in by address
see it: tracebaton serve --db .tracebaton/last.duckdb, then open /flows/4bf92f3577b34da6a3ce929d0e0e4736"""


def test_very_verbose_shows_every_hop() -> None:
    assert render_verdict(missing_hop_in_a_long_flow(), verbosity=2) == """\
flow 'checkout' FAILED · trace 4bf92f3577b34da6a3ce929d0e0e4736 · waited 10 s (timeout)
payment -> fraud: expected hop never seen in 10 s
  FAIL    hops: payment -> fraud: expected hop never seen (11 of 12 seen)
  pass    order
  pass    budgets.trace
hops (- expected, + actual, · extra but allowed):
· test -> frontend
  frontend -> auth
  frontend -> catalog
  frontend -> cart
  cart -> inventory
  cart -> pricing
  frontend -> payment
- payment -> fraud      [missing: never seen]
  payment -> stripe
  frontend -> orders
  orders -> ledger
  orders ~> email
  email -> smtp
hop table:
  hop                  kind   status      caller span       callee span       duration  detail
  test -> frontend     sync   unexpected  a1b2000000000001  a1b2000000000002    230 ms
  frontend -> auth     sync   matched     a1b200000000000a  a1b200000000000b     10 ms
  frontend -> catalog  sync   matched     a1b200000000000c  a1b200000000000d     11 ms
  frontend -> cart     sync   matched     a1b200000000000e  a1b200000000000f     12 ms
  cart -> inventory    sync   matched     a1b2000000000010  a1b2000000000011     13 ms
  cart -> pricing      sync   matched     a1b2000000000012  a1b2000000000013     14 ms
  frontend -> payment  sync   matched     a1b2000000000014  a1b2000000000015     15 ms
  payment -> fraud     sync   missing     -                 -                        -  never seen
  payment -> stripe    sync   matched     a1b2000000000018  a1b2000000000019     17 ms
  frontend -> orders   sync   matched     a1b200000000001a  a1b200000000001b     18 ms
  orders -> ledger     sync   matched     a1b200000000001c  a1b200000000001d     19 ms
  orders ~> email      async  matched     a1b200000000001e  a1b200000000001f     20 ms
  email -> smtp        sync   matched     a1b2000000000020  a1b2000000000021     21 ms
see it: tracebaton serve --db .tracebaton/last.duckdb, then open /flows/4bf92f3577b34da6a3ce929d0e0e4736"""


def retried_checkout() -> list[StoredSpan]:
    """From the test's root: frontend -> cart, cart -> inventory twice, then frontend -> auth."""
    flow = FlowBuilder()
    frontend = flow.server("frontend", "POST /checkout", parent=flow.test_root(), start_ms=1, end_ms=900)
    _, cart = flow.call(frontend, "cart", "/cart/checkout", start_ms=10, end_ms=100)
    flow.call(cart, "inventory", "/reserve", start_ms=20, end_ms=30)
    flow.call(cart, "inventory", "/reserve", start_ms=40, end_ms=50)
    flow.call(frontend, "auth", "/verify", start_ms=110, end_ms=120)
    return flow.spans


def test_a_subsequence_spec_marks_hops_it_does_not_name_as_allowed_and_a_retry_past_times_as_unexpected(
) -> None:
    spec = {"expect": {"hops": ["frontend -> cart", "cart -> inventory"], "times": {"cart -> inventory": 1}}}
    assert render_verdict(judge(spec, retried_checkout())) == f"""\
flow 'flow' FAILED · trace {T1} · waited 0 ns (settled)
cart -> inventory: happened 2 times, expected 1 (a retry?)
  FAIL    times: cart -> inventory: happened 2 times, expected 1 (a retry?)
hops (- expected, + actual, · extra but allowed):
· test -> frontend
  frontend -> cart
  cart -> inventory
+ cart -> inventory
· frontend -> auth
see it: tracebaton serve --db .tracebaton/last.duckdb, then open /flows/{T1}"""


def test_under_exact_order_a_hop_the_spec_does_not_name_is_unexpected() -> None:
    spec = {"expect": {"hops": ["frontend -> cart", "cart -> inventory"], "order": "exact"}}
    # The test's own hop is still ignored, and exact order sets no bound on repeats.
    assert render_verdict(judge(spec, retried_checkout())) == f"""\
flow 'flow' FAILED · trace {T1} · waited 0 ns (settled)
frontend -> auth: not in the expected hops (order: exact)
  FAIL    order: frontend -> auth: not in the expected hops (order: exact)
hops (- expected, + actual, · extra but allowed):
  … 1 matching hop, 1 extra but allowed
  cart -> inventory
· cart -> inventory
+ frontend -> auth
see it: tracebaton serve --db .tracebaton/last.duckdb, then open /flows/{T1}"""


def test_a_wildcard_in_the_diff_never_stands_for_the_test_s_own_hop() -> None:
    flow = FlowBuilder()
    root = flow.test_root()
    flow.call(root, "frontend", "/health", start_ms=1, end_ms=5)
    _, gateway = flow.call(root, "gateway", "/checkout", start_ms=10, end_ms=100)
    flow.call(gateway, "frontend", "/checkout", start_ms=20, end_ms=90)
    result = judge({"expect": {"hops": ["* -> frontend"]}}, flow.spans)
    assert result.passed, "as the engine judges it, the gateway's call is the one `*` names"
    assert render_verdict(result) == f"""\
flow 'flow' passed · trace {T1} · waited 0 ns (settled)
4 checks passed, 3 hops seen
hops (- expected, + actual, · extra but allowed):
· test -> frontend
· test -> gateway
  gateway -> frontend   [as * -> frontend]
see it: tracebaton serve --db .tracebaton/last.duckdb, then open /flows/{T1}"""


# --------------------------------------------------------------------------- structure


Case = tuple[FlowResult, FlowTrace | None, str]
"""A failed verdict, its trace, and the hop its first divergence is about."""


def failures() -> dict[str, Case]:
    return {
        "missing hop": (missing_hop_in_a_long_flow(), None, "payment -> fraud"),
        "broken": (*broken_propagation(), "frontend -> cart"),
        "budget": (*budget_overrun(), "cart -> inventory"),
        "no trace": (timeout_without_a_trace(), None, "frontend -> auth"),
        "deep": (*deep_tree(), "frontend -> auth"),
    }


@pytest.mark.parametrize("verbosity", [0, 1, 2])
@pytest.mark.parametrize("case", sorted(failures()))
def test_the_first_two_lines_carry_the_trace_id_and_the_divergent_hop(case: str, verbosity: int) -> None:
    result, trace, divergent_hop = failures()[case]
    first, second, *_ = render_verdict(result, trace, verbosity=verbosity).splitlines()
    assert first.startswith("flow 'checkout' FAILED · ")
    if result.trace_id is None:
        assert "no trace found" in first
    else:
        assert f"trace {result.trace_id} " in first
        assert len(result.trace_id) == 32
    assert divergent_hop in second
    assert second.startswith(divergent_hop)


def test_rendering_does_not_depend_on_the_order_spans_arrived_in() -> None:
    result, trace = broken_propagation()
    shuffled = list(trace.spans)
    random.Random(7).shuffle(shuffled)
    assert render_verdict(result, trace_of(shuffled)) == render_verdict(result, trace)


def test_without_expected_hops_only_the_actual_hops_are_listed() -> None:
    result, trace = budget_overrun()
    text = render_verdict(dataclasses.replace(result, expected_hops=()), trace)
    assert "hops:\n  frontend -> cart\n  cart -> inventory\n  cart -> pricing\nspans" in text


def test_a_times_shortfall_is_shown_after_the_hop_it_lacks() -> None:
    result, trace = budget_overrun()
    hops = (*result.hops, hop("cart -> inventory", HopStatus.MISSING, detail="seen 1 of 2 times"))
    text = render_verdict(dataclasses.replace(result, hops=hops), trace)
    assert ("  frontend -> cart\n"
            "  cart -> inventory\n"
            "- cart -> inventory   [missing: seen 1 of 2 times]\n"
            "  cart -> pricing\n") in text


def test_a_failure_that_names_no_span_shows_the_top_of_the_trace() -> None:
    result, trace = deep_tree()
    checks = (check("hops", FAIL, "frontend -> payment: expected hop never seen"),)
    text = render_verdict(dataclasses.replace(result, checks=checks, first_divergence=None), trace)
    lines = text.splitlines()
    assert lines[1] == "hops: frontend -> payment: expected hop never seen"
    tree = lines[lines.index("spans (25 of 35):") + 1:-1]
    assert tree[0].startswith("  frontend  server  POST /checkout")
    assert "◀" not in text
    assert tree[-1] == "        … 10 more spans"


def test_an_unexpected_hop_is_an_addition_even_when_the_spec_names_it() -> None:
    result, trace = budget_overrun()
    hops = (*result.hops, hop("cart -> pricing", HopStatus.UNEXPECTED, 7, 8, duration_ms=30))
    checks = (*result.checks, check("order", FAIL, "cart -> pricing: not in the expected hops (order: exact)",
                                    7, hop_text="cart -> pricing"))
    text = render_verdict(dataclasses.replace(result, hops=hops, checks=checks), trace)
    assert "  cart -> pricing\n+ cart -> pricing\nspans" in text


def test_the_hop_table_has_one_line_per_hop_under_a_header() -> None:
    result, _ = budget_overrun()
    assert render_hop_table(result) == [
        "hop                kind  status   caller span       callee span       duration",
        "frontend -> cart   sync  matched  a1b2000000000002  a1b2000000000003    400 ms",
        "cart -> inventory  sync  matched  a1b2000000000004  a1b2000000000005    340 ms",
        "cart -> pricing    sync  matched  a1b2000000000007  a1b2000000000008     30 ms",
    ]
    assert render_hop_table(timeout_without_a_trace())[1:] == [
        "frontend -> auth  sync  missing  -            -                   -",
        "frontend -> cart  sync  missing  -            -                   -",
    ]
    assert render_hop_table(dataclasses.replace(result, hops=())) == []


def test_the_dashboard_link_never_carries_more_than_the_flow() -> None:
    result, trace = budget_overrun()
    last = render_verdict(result, trace, dashboard_url="https://tb.example:7357/base").splitlines()[-1]
    assert last == f"see it: https://tb.example:7357/base/flows/{T1}"
    last = render_verdict(result, trace, db_path="/tmp/x.duckdb").splitlines()[-1]
    assert last == f"see it: tracebaton serve --db /tmp/x.duckdb, then open /flows/{T1}"


def test_expected_hops_match_however_their_arrows_are_spaced() -> None:
    result, trace = budget_overrun()
    written = ("frontend->cart", "cart  ->  inventory", "cart -> pricing")
    text = render_verdict(dataclasses.replace(result, expected_hops=written), trace)
    assert "\n  frontend -> cart\n  cart -> inventory\n  cart -> pricing\nspans" in text


def fan_out_of_failing_hops(n: int) -> FlowResult:
    """One check with `n` violations: the fan-out of a search to shards that all failed."""
    messages = [f"search -> shard-{i}: shard-{i} answered 503" for i in range(n)]
    return FlowResult(
        passed=False, name="search", trace_id=T1, waited_ms=40, waited_reason=WaitedReason.VIOLATED,
        first_divergence=messages[0] + f" (and {n - 1} more)",
        checks=(CheckResult("errors", FAIL, messages[0] + f" (and {n - 1} more)", hop="search -> shard-0",
                            more=tuple(messages[1:])),),
        hops=(), trace_ids=(T1,), span_count=2 * n)


def test_a_check_lists_its_other_violations_under_its_message_and_folds_past_five() -> None:
    assert render_verdict(fan_out_of_failing_hops(8)).splitlines()[2:10] == [
        "  FAIL    errors: search -> shard-0: shard-0 answered 503 (and 7 more)",
        "          also: search -> shard-1: shard-1 answered 503",
        "          also: search -> shard-2: shard-2 answered 503",
        "          also: search -> shard-3: shard-3 answered 503",
        "          also: search -> shard-4: shard-4 answered 503",
        "          also: search -> shard-5: shard-5 answered 503",
        "          … and 2 more (-vv lists them all)",
        "see it: tracebaton serve --db .tracebaton/last.duckdb, then open /flows/" + T1,
    ]


def test_very_verbose_lists_every_other_violation() -> None:
    lines = render_verdict(fan_out_of_failing_hops(8), verbosity=2).splitlines()
    also = [line.strip() for line in lines if line.strip().startswith(("also:", "…"))]
    assert also == [f"also: search -> shard-{i}: shard-{i} answered 503" for i in range(1, 8)]


def test_other_violations_survive_the_json_a_remote_server_sends() -> None:
    result = fan_out_of_failing_hops(3)
    assert FlowResult.from_json(result.to_json()).checks[0].more == (
        "search -> shard-1: shard-1 answered 503", "search -> shard-2: shard-2 answered 503")
