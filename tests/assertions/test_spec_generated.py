"""Generated flow specs: every spec the parser accepts survives dict, YAML and JSON round
trips, and junk anywhere in a spec gets a FlowSpecError back, never another exception."""

from __future__ import annotations

import copy
import json
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from spec_examples import DESIGN_EXAMPLE

from tracebaton import FlowSpecError
from tracebaton.assertions._spec import (
    Budgets,
    CountBound,
    ErrorsMode,
    ErrorsPolicy,
    Expectations,
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
from tracebaton.assertions._spec_parse import flow_spec_to_dict, flow_spec_to_yaml, parse_flow_spec
from tracebaton.collector import SpanKind, StatusCode

S = 1_000_000_000

# ---- generated specs: every spec the parser accepts survives dict and YAML round trips ----

_names = st.from_regex(r"[a-z][a-z0-9._-]{0,8}", fullmatch=True)
_services = _names | st.just("*")
_hops = st.builds(HopPattern, _services, _services, st.booleans())
_durations = st.integers(0, 30 * 24 * 3600 * S)
_positive = st.integers(1, 30 * 24 * 3600 * S)
_text = st.text(min_size=1, max_size=12).filter(lambda text: text.strip() != "")
_scalars = (_text | st.integers(-(2**63), 2**63) | st.booleans()
            | st.floats(allow_nan=False, allow_infinity=False))
_attributes = st.dictionaries(_text, _scalars | st.lists(_scalars, max_size=3).map(tuple), max_size=3)
_selectors = st.builds(Selector, st.none() | _text, st.none() | _text,
                       st.none() | st.sampled_from([k for k in SpanKind if k is not SpanKind.UNSPECIFIED]),
                       st.none() | st.sampled_from(list(StatusCode)), _attributes)
_counts = st.builds(CountBound, st.sampled_from(["==", ">=", "<="]), st.integers(0, 1000))
_headers = st.dictionaries(st.from_regex(r"x-[a-z0-9-]{1,8}", fullmatch=True),
                           st.sampled_from([HeaderRule.SAME, HeaderRule.PRESENT]), max_size=3)


def _without_repeats(groups: list[list[HopPattern]]) -> tuple[tuple[HopPattern, ...], ...]:
    """Hop lists as the parser takes them: no hop twice in a group, nor in the group before."""
    kept: list[tuple[HopPattern, ...]] = []
    for group in groups:
        before = set(kept[-1]) if kept else set()
        unique = tuple(hop for hop in dict.fromkeys(group) if hop not in before)
        if unique:
            kept.append(unique)
    return tuple(kept)


@st.composite
def _specs(draw: st.DrawFn) -> FlowSpec:
    def hop_map(values: st.SearchStrategy[int]) -> tuple[tuple[HopPattern, int], ...]:
        return tuple(draw(st.dictionaries(_hops, values, max_size=3)).items())
    headers = draw(_headers)
    if draw(st.booleans()):
        headers["traceparent"] = draw(st.sampled_from([HeaderRule.VALID, HeaderRule.PRESENT]))
    mode = draw(st.sampled_from(list(ErrorsMode)))
    allow = tuple(draw(st.lists(_hops | _selectors, max_size=3))) if mode is ErrorsMode.ALLOW else ()
    return FlowSpec(
        name=draw(_text),
        find=draw(st.none() | st.builds(FindSpec, st.none() | _text, st.none() | _text, _attributes,
                                        _positive)),
        wait=draw(st.builds(WaitSpec, _positive, _durations, _durations)),
        peers=draw(st.dictionaries(_names.filter(lambda n: n != "*"),
                                   st.from_regex(r"[a-z0-9.]{1,10}:[1-9][0-9]{0,3}", fullmatch=True),
                                   max_size=2)),
        expect=Expectations(
            hops=_without_repeats(draw(st.lists(st.lists(_hops, min_size=1, max_size=3), max_size=4))),
            order=draw(st.sampled_from(list(Order))),
            times=hop_map(st.integers(0, 10)),
            chains=tuple(draw(st.lists(st.lists(_services, min_size=2, max_size=4).map(tuple), max_size=2))),
            budgets=Budgets(draw(st.none() | _positive), hop_map(_positive), draw(st.booleans()),
                            draw(_durations)),
            propagation=Propagation(draw(st.booleans()), headers,
                                    draw(st.dictionaries(_text, _text, max_size=2)), draw(st.booleans())),
            errors=ErrorsPolicy(mode, allow),
            spans=tuple(draw(st.lists(st.builds(SpanExpectation, _selectors, st.none() | _counts, _attributes,
                                                st.none() | _positive), max_size=3))),
        ),
    )


@settings(max_examples=300, deadline=None)
@given(_specs())
def test_round_trip_generated(spec: FlowSpec) -> None:
    as_dict = flow_spec_to_dict(spec)
    assert parse_flow_spec(copy.deepcopy(as_dict)) == spec
    assert parse_flow_spec(flow_spec_to_yaml(spec)) == spec
    assert parse_flow_spec(json.loads(json.dumps(as_dict))) == spec
    assert str(spec) == flow_spec_to_yaml(spec), "str() of a spec is its YAML"


def test_str_of_a_spec_is_the_yaml_to_save() -> None:
    spec = parse_flow_spec({
        "name": "checkout",
        "wait": {"timeout": "2s"},
        "expect": {
            "hops": ["frontend -> cart", "cart -> inventory"],
            "budgets": {"hops": {"cart -> inventory": "50ms"}},
        },
    })
    assert str(spec) == (
        "name: checkout\n"
        "wait: {timeout: 2s}\n"
        "expect:\n"
        "  hops: [frontend -> cart, cart -> inventory]\n"
        "  budgets:\n"
        "    hops: {cart -> inventory: 50ms}\n"
    )
    assert f"{spec}" == str(spec)
    assert repr(spec).startswith("FlowSpec(name='checkout'"), "the repr stays the dataclass's"


# ---- junk anywhere: FlowSpecError, or a spec, and nothing else ----

_junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    | st.sampled_from(["1s", "-1s", "a -> b", "*", ">=1", "valid", "none", "allow", "server", "h:1"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10) | st.integers() | st.none() | st.booleans(), children, max_size=4),
    max_leaves=12,
)
_JUNK_PATHS = [
    (), ("name",), ("find",), ("find", "attributes"), ("find", "since"), ("find", "root_name"), ("wait",),
    ("wait", "timeout"), ("peers",), ("peers", "stripe"), ("expect",), ("expect", "hops"),
    ("expect", "hops", 1),
    ("expect", "order"), ("expect", "times"), ("expect", "chains"), ("expect", "chains", 0),
    ("expect", "budgets"), ("expect", "budgets", "hops"), ("expect", "budgets", "deadlines"),
    ("expect", "propagation"), ("expect", "propagation", "headers"), ("expect", "propagation", "baggage"),
    ("expect", "errors"), ("expect", "spans"), ("expect", "spans", 0), ("expect", "spans", 0, "select"),
    ("expect", "spans", 0, "count"), ("expect", "spans", 0, "attributes"),
]


def _put(spec: dict[str, Any], path: tuple[str | int, ...], value: object) -> Any:
    if not path:
        return value
    node: Any = spec
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return spec


def _outcome(source: Any) -> str:
    """"parsed", or the FlowSpecError's message; any other exception fails the test."""
    try:
        parse_flow_spec(source)
    except FlowSpecError as error:
        return str(error)
    return "parsed"


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(_JUNK_PATHS), _junk)
def test_junk_under_any_key_gives_only_flow_spec_error(path: tuple[str | int, ...], junk: object) -> None:
    assert _outcome(_put(yaml.safe_load(DESIGN_EXAMPLE), path, junk))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.text(alphabet="name:x\n -[]{}>~*&!'\"#,.0123456789smu", max_size=80))
def test_junk_text_gives_only_flow_spec_error(text: str) -> None:
    assert _outcome("name: x\n" + text if text.startswith(" ") else text)
