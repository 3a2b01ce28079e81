"""Flow spec v1 parsing (DESIGN §5): the example, every malformed-input class with its message,
sources, hop strings, durations and round trips of hand-written specs (generated specs and
junk input are in test_spec_generated)."""

from __future__ import annotations

import json
import operator
from pathlib import Path
from typing import Any

import pytest
import yaml
from spec_examples import DESIGN_EXAMPLE

from tracebaton import ConfigurationError, FlowSpecError
from tracebaton.assertions._spec import (
    Budgets,
    CountBound,
    ErrorsMode,
    ErrorsPolicy,
    FindSpec,
    FlowSpec,
    HeaderRule,
    HopPattern,
    Order,
    Propagation,
    Selector,
    SpanExpectation,
    WaitSpec,
)
from tracebaton.assertions._spec_parse import (
    flow_spec_to_dict,
    flow_spec_to_yaml,
    parse_flow_spec,
    parse_hop_pattern,
)
from tracebaton.assertions._spec_values import format_duration
from tracebaton.collector import SpanKind, StatusCode

MS = 1_000_000
S = 1_000_000_000


def hop(caller: str, callee: str, asynchronous: bool = False) -> HopPattern:
    return HopPattern(caller, callee, asynchronous)


def test_design_example_parses_into_the_expected_objects() -> None:
    spec = parse_flow_spec(DESIGN_EXAMPLE)
    assert spec.name == "checkout"
    assert spec.find == FindSpec(root_service="frontend", root_name="POST /checkout",
                                 attributes={"order.id": "A-17"}, since_ns=60 * S)
    assert spec.wait == WaitSpec(timeout_ns=10 * S, settle_ns=250 * MS, parent_grace_ns=1 * S)
    assert spec.peers == {"stripe": "127.0.0.1:9001"}
    expect = spec.expect
    assert expect.hops == (
        (hop("frontend", "auth"),),
        (hop("frontend", "cart"), hop("frontend", "recommendations")),
        (hop("cart", "inventory"),),
        (hop("frontend", "payment"),),
        (hop("payment", "stripe"),),
        (hop("orders", "email", asynchronous=True),),
    )
    assert expect.order is Order.SUBSEQUENCE
    assert expect.times == ((hop("cart", "inventory"), 1), (hop("*", "payment"), 1))
    assert expect.chains == (("frontend", "cart", "inventory"),)
    assert expect.budgets == Budgets(trace_ns=2 * S, hops=((hop("cart", "inventory"), 200 * MS),
                                                          (hop("*", "payment"), 1 * S)),
                                     deadlines=True, deadline_slack_ns=10 * MS)
    assert expect.propagation == Propagation(
        connected=True,
        headers={"traceparent": HeaderRule.VALID, "x-request-id": HeaderRule.SAME,
                 "authorization": HeaderRule.PRESENT},
        baggage={"tenant": "acme"}, check_async=False)
    assert expect.errors == ErrorsPolicy(ErrorsMode.NONE)
    assert expect.spans == (SpanExpectation(
        select=Selector(service="payment", name="POST /charge*", kind=SpanKind.SERVER),
        count=CountBound("==", 1), attributes={"http.response.status_code": 200},
        max_duration_ns=500 * MS),)


def test_only_name_is_required_and_the_rest_defaults() -> None:
    assert parse_flow_spec("name: minimal") == FlowSpec(name="minimal")
    assert parse_flow_spec({"name": "minimal", "find": {}}).find == FindSpec()


@pytest.mark.parametrize(("text", "field", "expected"), [
    ("errors: any", "errors", ErrorsPolicy(ErrorsMode.ANY)),
    ("errors: {allow: [booking -> flights, payment, 'payment:POST /charge', {kind: client, status: error}]}",
     "errors",
     ErrorsPolicy(ErrorsMode.ALLOW, (hop("booking", "flights"), Selector(service="payment"),
                                     Selector(service="payment", name="POST /charge"),
                                     Selector(kind=SpanKind.CLIENT, status=StatusCode.ERROR)))),
    ("order: exact", "order", Order.EXACT),
    ("order: ANY", "order", Order.ANY),
    ("times: {'a -> b': 0}", "times", ((hop("a", "b"), 0),)),
    ("propagation: {headers: {X-Request-ID: same, TraceParent: valid}}", "propagation.headers",
     {"x-request-id": HeaderRule.SAME, "traceparent": HeaderRule.VALID}),
    ("propagation: {baggage: {tenant: acme, shard: 42}}", "propagation.baggage",
     {"tenant": "acme", "shard": "42"}),
    ("propagation: {connected: false, async: true}", "propagation",
     Propagation(connected=False, check_async=True)),
    ("spans: [{select: payment, count: '>=1'}]", "spans",
     (SpanExpectation(select=Selector(service="payment"), count=CountBound(">=", 1)),)),
    ("spans: [{select: 'payment:GET /a:b', count: '<= 2'}]", "spans",
     (SpanExpectation(select=Selector(service="payment", name="GET /a:b"), count=CountBound("<=", 2)),)),
    ("spans: [{select: {attributes: {http.method: GET, retry: true, tags: [a, b]}}, count: '0'}]", "spans",
     (SpanExpectation(select=Selector(attributes={"http.method": "GET", "retry": True, "tags": ("a", "b")}),
                      count=CountBound("==", 0)),)),
    ("hops: [frontend->auth, 'a.b_c-d ~> *', [x -> y]]", "hops",
     ((hop("frontend", "auth"),), (hop("a.b_c-d", "*", asynchronous=True),), (hop("x", "y"),))),
    ("budgets: {deadline_slack: 0s}", "budgets", Budgets(deadline_slack_ns=0)),
    ("chains: [[a, '*', c]]", "chains", (("a", "*", "c"),)),
])
def test_expect_values(text: str, field: str, expected: object) -> None:
    spec = parse_flow_spec(f"name: n\nexpect:\n  {text}\n")
    assert operator.attrgetter(field)(spec.expect) == expected


# (spec text, substrings the message must contain: the key path, the value and the fix)
MALFORMED: list[tuple[str, list[str]]] = [
    # structure
    ("", ["is empty", "name:"]),
    ("- a\n- b", ["flow spec", "is a list, not a mapping"]),
    ("expect: {}", ["name: missing", "name: checkout"]),
    ("name: [1]", ["name: [1] is a list, not a string", "name: checkout"]),
    ("name: ''", ["name: '' is empty"]),
    ("name: x\nexpect: [1, 2]",
     ["flow spec 'x': expect: [1, 2] is a list, not a mapping", "write a mapping of hops"]),
    ("name: x\nfind: null", ["find: null has no value", "remove the key"]),
    ("name: x\nwait: 10s", ["wait: '10s' is a string, not a mapping", "timeout, settle, parent_grace"]),
    # unknown keys, with the closest suggestion or the right level
    ("name: x\nexpect: {budgets: {hop: {a -> b: 1s}}}",
     ["expect.budgets.hop: unknown key 'hop'", "did you mean `hops`?"]),
    ("name: x\nexpct: {}", ["expct: unknown key", "did you mean `expect`?"]),
    ("name: x\nhops: [a -> b]", ["`hops` belongs under `expect`"]),
    ("name: x\nexpect: {deadlines: true}", ["`deadlines` belongs under `expect.budgets`"]),
    ("name: x\nexpect: {spans: [{select: payment, max_durration: 1s}]}",
     ["expect.spans[0].max_durration: unknown key", "did you mean `max_duration`?"]),
    ("name: x\nexpect: {spans: [{select: {service: p, stat: error}}]}",
     ["expect.spans[0].select.stat", "did you mean `status`?"]),
    ("name: x\nfind: {1: a}", ["find.1: unknown key 1"]),
    # YAML syntax and duplicate keys
    ("name: x\n  foo: : bar", ["line 2, column", "mapping values are not allowed", "quote values"]),
    ("name: x\nexpect:\n  hops:\n    - * -> payment", ["line 4, column", '"* -> payment"']),
    ("name: x\nwait:\n  timeout: 1s\n  timeout: 2s", ["line 4, column 3", "'timeout' appears twice"]),
    # durations
    ("name: x\nexpect: {budgets: {hops: {cart -> inventory: 200}}}",
     ['expect.budgets.hops["cart -> inventory"]: 200 is a number without a unit', "'200ms'"]),
    ("name: x\nexpect: {budgets: {hops: {cart -> inventory: '-5ms'}}}",
     ['expect.budgets.hops["cart -> inventory"]: \'-5ms\' is negative']),
    ("name: x\nwait: {timeout: 10 seconds}",
     ["wait.timeout: '10 seconds' is not a duration", "ns us ms s m"]),
    ("name: x\nwait: {timeout: 0ms}", ["wait.timeout: '0ms' is zero", "above 0"]),
    ("name: x\nwait: {settle: [1]}", ["wait.settle: [1] is a list, not a duration"]),
    ("name: x\nwait: {parent_grace: 1e99999s}", ["wait.parent_grace", "not a duration"]),
    ("name: x\nfind: {since: 99999999h}", ["find.since", "longer than 30 days"]),
    ("name: x\nexpect: {spans: [{select: p, max_duration: 1.5}]}",
     ["expect.spans[0].max_duration: 1.5 is a number without a unit", "'1.5ms'"]),
    # hop strings
    ("name: x\nexpect: {hops: [a => b]}", ["expect.hops[0]: 'a => b' has no arrow", "'caller -> callee'"]),
    ("name: x\nexpect: {hops: [a -> b -> c]}", ["more than one arrow", "expect.chains"]),
    ("name: x\nexpect: {hops: [' -> b']}", ["expect.hops[0]", "has no caller", "`*` stands for any"]),
    ("name: x\nexpect: {hops: ['a ->']}", ["has no callee"]),
    ("name: x\nexpect: {hops: [my svc -> b]}", ["bad caller 'my svc'", "no spaces"]),
    ("name: x\nexpect: {hops: ['pay* -> b']}", ["bad caller 'pay*'", "`*` only on its own"]),
    ("name: x\nexpect:\n  hops:\n    - frontend: auth", ["expect.hops[0]", "is a mapping, not a hop string"]),
    ("name: x\nexpect: {hops: [[a -> b, 7]]}", ["expect.hops[0][1]: 7 is a number, not a string"]),
    ("name: x\nexpect: {hops: [[]]}", ["expect.hops[0]: [] is an empty group"]),
    ("name: x\nexpect: {hops: [a -> b, a -> b]}",
     ["expect.hops[1]: 'a -> b' repeats the hop a -> b before it", "times: {a -> b: 2}"]),
    ("name: x\nexpect: {hops: [[a -> b, a -> c], a -> c]}", ["expect.hops[1]: 'a -> c' repeats the hop"]),
    ("name: x\nexpect: {hops: [[a -> b, a -> b]]}", ["repeats the hop a -> b in its group"]),
    ("name: x\nexpect: {hops: a -> b}", ["expect.hops: 'a -> b' is a string, not a list"]),
    ("name: x\nexpect: {times: {a -> b: 1, 'a->b': 2}}", ['expect.times["a->b"]', "repeats the hop a -> b"]),
    # order, times, chains
    ("name: x\nexpect: {order: strict}", ["expect.order: 'strict' is not a valid hop order",
                                          "subsequence, exact, any"]),
    ("name: x\nexpect: {times: {a -> b: -1}}",
     ['expect.times["a -> b"]: -1', "0 means it must never happen"]),
    ("name: x\nexpect: {times: {a -> b: true}}", ['expect.times["a -> b"]: True']),
    ("name: x\nexpect: {times: {a -> b: '2'}}", ['expect.times["a -> b"]: \'2\'']),
    ("name: x\nexpect: {chains: [[a]]}", ["expect.chains[0]: ['a'] names fewer than two services"]),
    ("name: x\nexpect: {chains: [a, b]}", ["expect.chains[0]: 'a' is a string, not a list"]),
    ("name: x\nexpect: {chains: [[a, b c]]}", ["expect.chains[0][1]: 'b c' contains a space"]),
    # headers and baggage
    ("name: x\nexpect: {propagation: {headers: {x-request-id: valid}}}",
     ['expect.propagation.headers["x-request-id"]: \'valid\' applies only to the traceparent header',
      "`x-request-id: same`"]),
    ("name: x\nexpect: {propagation: {headers: {traceparent: same}}}",
     ["traceparent names a different parent on every hop", "`traceparent: valid`"]),
    ("name: x\nexpect: {propagation: {headers: {x-id: exists}}}",
     ['headers["x-id"]: \'exists\' is not a valid header rule', "valid, same, present"]),
    ("name: x\nexpect: {propagation: {headers: {'x id': same}}}",
     ['headers["x id"]', "not an HTTP header name"]),
    ("name: x\nexpect: {propagation: {headers: {X-Id: same, x-id: present}}}", ["repeats the header x-id"]),
    ("name: x\nexpect: {propagation: {baggage: {tenant: [a]}}}", ['baggage["tenant"]', 'tenant: "acme"']),
    ("name: x\nexpect: {propagation: {connected: 'yes'}}",
     ["expect.propagation.connected: 'yes' is a string, not a boolean", "true or false"]),
    # errors
    ("name: x\nexpect: {errors: some}", ["expect.errors: 'some' is not a valid errors policy", "{allow:"]),
    ("name: x\nexpect: {errors: allow}", ["expect.errors: 'allow' needs the list", "{allow: ["]),
    ("name: x\nexpect: {errors: {alow: []}}", ["expect.errors.alow: unknown key", "did you mean `allow`?"]),
    ("name: x\nexpect: {errors: {permit: []}}", ["expect.errors.permit: unknown key", "(known keys: allow)"]),
    ("name: x\nexpect: {errors: {allow: payment}}",
     ["expect.errors.allow: 'payment' is a string, not a list"]),
    ("name: x\nexpect: {errors: {allow: [a -> ]}}", ["expect.errors.allow[0]", "has no callee"]),
    ("name: x\nexpect: {errors: {allow: [':x']}}",
     ["expect.errors.allow[0]", "has no service before the colon"]),
    # spans, counts and selectors
    ("name: x\nexpect: {spans: [{count: 1}]}", ["expect.spans[0]", "has no `select`", "add `select:"]),
    ("name: x\nexpect: {spans: [payment]}", ["expect.spans[0]: 'payment' is a string, not a mapping"]),
    ("name: x\nexpect: {spans: [{select: p, count: -1}]}",
     ["expect.spans[0].count: -1 is negative", '">=1"']),
    ("name: x\nexpect: {spans: [{select: p, count: '>=-1'}]}", ["expect.spans[0].count", "is negative"]),
    ("name: x\nexpect: {spans: [{select: p, count: 'many'}]}", ["'many' is not a count"]),
    ("name: x\nexpect: {spans: [{select: p, count: 1.5}]}", ["1.5 is a number, not a count"]),
    ("name: x\nexpect: {spans: [{select: p, count: true}]}", ["True is a boolean, not a count"]),
    ("name: x\nexpect: {spans: [{select: {kind: srv}}]}",
     ["expect.spans[0].select.kind: 'srv' is not a valid span kind", "did you mean server?"]),
    ("name: x\nexpect: {spans: [{select: {status: failed}}]}",
     ["select.status: 'failed' is not a valid span status", "ok, error"]),
    ("name: x\nexpect: {spans: [{select: 'payment:'}]}", ["has no span name after the colon"]),
    ("name: x\nexpect: {spans: [{select: 7}]}", ["expect.spans[0].select: 7 is a number, not a mapping"]),
    ("name: x\nexpect: {spans: [{select: p, attributes: {a: null}}]}",
     ['expect.spans[0].attributes["a"]: null is null', '`"*"` means present']),
    ("name: x\nexpect: {spans: [{select: p, attributes: {a: {b: 1}}}]}", ["is a mapping"]),
    ("name: x\nexpect: {spans: [{select: p, attributes: {a: .nan}}]}", ["is NaN"]),
    ("name: x\nexpect: {spans: [{select: p, attributes: {a: [[1]]}}]}", ["nests a list in a list"]),
    ("name: x\nfind: {attributes: [order.id]}", ["find.attributes: ['order.id'] is a list, not a mapping"]),
    # peers
    ("name: x\npeers: {stripe: 'localhost:99999'}", ['peers["stripe"]', "port outside 1-65535", "host:port"]),
    ("name: x\npeers: {stripe: localhost}", ['peers["stripe"]: \'localhost\' is not host:port']),
    ("name: x\npeers: {stripe: 9001}", ['peers["stripe"]: 9001 is a number, not a string']),
    ("name: x\npeers: {'my peer': 'h:1'}", ['peers["my peer"]', "contains a space"]),
]


@pytest.mark.parametrize(("text", "substrings"), MALFORMED, ids=[text[:60] for text, _ in MALFORMED])
def test_malformed_spec_names_key_value_and_fix(text: str, substrings: list[str]) -> None:
    with pytest.raises(FlowSpecError) as raised:
        parse_flow_spec(text)
    message = str(raised.value)
    for substring in substrings:
        assert substring in message, message
    assert "Traceback" not in message


def test_flow_spec_error_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        parse_flow_spec("name: x\nwait: {timeout: 10}")


@pytest.mark.parametrize("bad", [42, None, ["name", "x"], b"\xff\xfename: x", "name: x\nexpect: &a [*a]"])
def test_any_source_gives_a_flow_spec_error(bad: Any) -> None:
    with pytest.raises(FlowSpecError):
        parse_flow_spec(bad)


def test_sources_files_text_bytes_mappings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = parse_flow_spec(DESIGN_EXAMPLE)
    yaml_file = tmp_path / "checkout.yaml"
    yaml_file.write_text(DESIGN_EXAMPLE)
    json_file = tmp_path / "checkout.json"
    json_file.write_text(json.dumps(flow_spec_to_dict(expected)))
    assert parse_flow_spec(yaml_file) == expected
    assert parse_flow_spec(str(yaml_file)) == expected
    assert parse_flow_spec(json_file) == expected
    assert parse_flow_spec(DESIGN_EXAMPLE.encode()) == expected
    assert parse_flow_spec(yaml.safe_load(DESIGN_EXAMPLE)) == expected
    assert parse_flow_spec(expected) is expected
    monkeypatch.chdir(tmp_path)
    assert parse_flow_spec("checkout.yaml") == expected
    assert parse_flow_spec("name: orders.yaml").name == "orders.yaml"


@pytest.mark.parametrize(("name", "content", "substrings"), [
    ("missing.yaml", None, ["missing.yaml: no such flow spec file"]),
    ("bad.json", '{"name": "x",\n "expect": [}', ["bad.json: line 2, column", "fix the JSON"]),
    ("dup.json", '{"name": "x", "name": "y"}', ["dup.json", "appears twice"]),
    ("bad.yaml", "name: x\nwait: {timeout: 10}", ["bad.yaml: flow spec 'x': wait.timeout: 10"]),
    ("list.yml", "[]", ["list.yml: flow spec: [] is a list, not a mapping"]),
])
def test_file_errors_name_the_file(tmp_path: Path, name: str, content: str | None,
                                   substrings: list[str]) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(FlowSpecError) as raised:
        parse_flow_spec(str(path))
    for substring in substrings:
        assert substring in str(raised.value)


@pytest.mark.parametrize(("text", "expected"), [
    ("cart -> inventory", hop("cart", "inventory")),
    ("cart->inventory", hop("cart", "inventory")),
    ("  orders  ~>  email ", hop("orders", "email", asynchronous=True)),
    ("* -> payment", hop("*", "payment")),
    ("svc.v2_a-b -> *", hop("svc.v2_a-b", "*")),
    ("a -> a", hop("a", "a")),
])
def test_parse_hop_pattern(text: str, expected: HopPattern) -> None:
    assert parse_hop_pattern(text, where="here") == expected
    assert parse_hop_pattern(str(expected), where="here") == expected


@pytest.mark.parametrize(("text", "problem"), [
    ("", "is empty"), ("a - > b", "has no arrow"), ("a -> b ~> c", "more than one arrow"),
    ("a b -> c", "bad caller"), ("a -> **", "bad callee"), ("-> b", "has no caller"),
])
def test_parse_hop_pattern_rejects(text: str, problem: str) -> None:
    with pytest.raises(FlowSpecError, match=r"^expect\.times") as raised:
        parse_hop_pattern(text, where="expect.times")
    assert problem in str(raised.value)


@pytest.mark.parametrize(("ns", "text"), [
    (0, "0s"), (1, "1ns"), (1_500, "1500ns"), (2_000, "2us"), (250 * MS, "250ms"), (2 * S, "2s"),
    (1_500 * MS, "1500ms"), (60 * S, "1m"), (90 * S, "90s"), (120 * S, "2m"),
    (10 * 60 * S + 1, "600000000001ns"),
])
def test_format_duration(ns: int, text: str) -> None:
    assert format_duration(ns) == text
    assert parse_flow_spec({"name": "d", "wait": {"settle": text}}).wait.settle_ns == ns


def test_a_budget_in_days_reads_as_whole_days_and_the_unit_list_names_it() -> None:
    spec = parse_flow_spec({"name": "d", "expect": {"budgets": {"trace": "1.5d"}}})
    assert spec.expect.budgets.trace_ns == 36 * 3600 * S
    with pytest.raises(FlowSpecError, match=r"one of ns us ms s m h d\)"):
        parse_flow_spec({"name": "d", "expect": {"budgets": {"trace": "2 days"}}})


def test_to_dict_writes_only_non_defaults_in_design_order() -> None:
    assert flow_spec_to_dict(FlowSpec("x")) == {"name": "x"}
    spec = parse_flow_spec(DESIGN_EXAMPLE)
    written = flow_spec_to_dict(spec)
    assert list(written) == ["name", "find", "peers", "expect"]  # wait is all defaults
    assert list(written["expect"]) == ["hops", "times", "chains", "budgets", "propagation", "spans"]
    assert written["expect"]["budgets"] == {"trace": "2s", "hops": {"cart -> inventory": "200ms",
                                                                    "* -> payment": "1s"}, "deadlines": True}
    assert written["expect"]["hops"][1] == ["frontend -> cart", "frontend -> recommendations"]
    text = flow_spec_to_yaml(spec)
    assert text.index("name:") < text.index("find:") < text.index("peers:") < text.index("expect:")
    assert parse_flow_spec(text) == spec


ROUND_TRIP = [
    DESIGN_EXAMPLE,
    "name: a\nfind: {}",
    "name: a\nwait: {timeout: 1500ms, settle: 0s, parent_grace: 0ns}",
    "name: a\nexpect: {errors: {allow: []}}",
    "name: a\nexpect: {errors: any, order: any}",
    "name: a\nexpect: {errors: {allow: ['a ~> b', p, 'p:GET /*', {attributes: {x: '*'}}]}}",
    "name: a\nexpect: {spans: [{select: {}, count: 0},\n"
    "                          {select: {service: '*', status: unset}, count: '<=3'}]}",
    "name: a\nexpect: {propagation: {connected: false, async: true, baggage: {n: 7}}}",
    "name: a\nexpect: {budgets: {deadline_slack: 1s}, times: {'* -> *': 0}}",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip_table(text: str) -> None:
    spec = parse_flow_spec(text)
    assert parse_flow_spec(flow_spec_to_dict(spec)) == spec
    assert parse_flow_spec(flow_spec_to_yaml(spec)) == spec
    assert flow_spec_to_dict(parse_flow_spec(flow_spec_to_dict(spec))) == flow_spec_to_dict(spec)


def test_a_hop_listed_again_after_another_hop_is_an_order_not_a_repeat() -> None:
    spec = parse_flow_spec("name: x\nexpect: {hops: [frontend -> auth, frontend -> cart, frontend -> auth]}")
    assert [str(group[0]) for group in spec.expect.hops] == [
        "frontend -> auth", "frontend -> cart", "frontend -> auth"]
