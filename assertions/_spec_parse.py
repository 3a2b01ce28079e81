"""Reading a flow spec (DESIGN §5): YAML text, a file, or a dict, into a `FlowSpec`.

Whatever the input, the result is a `FlowSpec` or a FlowSpecError whose message names the
key path (`expect.budgets.hops["cart -> inventory"]`), the value, the rule and the fix —
never another exception: a spec is user input, often hand-written in a hurry.
"""

from __future__ import annotations

import os
import string
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from tracebaton import FlowSpecError

from ._spec import (
    Budgets,
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
from ._spec_dump import flow_spec_to_dict, flow_spec_to_yaml
from ._spec_load import load_spec_source
from ._spec_values import (
    as_bool,
    as_list,
    as_mapping,
    as_str,
    check_keys,
    fail,
    item_path,
    key_path,
    parse_attributes,
    parse_count,
    parse_duration,
    parse_hop,
    parse_hop_pattern,
    parse_label,
    parse_peer_address,
    parse_selector,
    parse_service,
)

__all__ = ["flow_spec_to_dict", "flow_spec_to_yaml", "parse_flow_spec", "parse_hop_pattern"]

_T = TypeVar("_T")

_TOP_KEYS = ("name", "find", "wait", "peers", "expect")
_FIND_KEYS = ("root_service", "root_name", "attributes", "since")
_WAIT_KEYS = ("timeout", "settle", "parent_grace")
_EXPECT_KEYS = ("hops", "order", "times", "chains", "budgets", "propagation", "errors", "spans")
_BUDGET_KEYS = ("trace", "hops", "deadlines", "deadline_slack")
_PROPAGATION_KEYS = ("connected", "headers", "baggage", "async")
_SPAN_KEYS = ("select", "count", "attributes", "max_duration")

# A key put one level too high or too low is the commonest slip; say where it belongs.
_TOP_ELSEWHERE = {
    **dict.fromkeys(_FIND_KEYS, "find"), **dict.fromkeys(_WAIT_KEYS, "wait"),
    **dict.fromkeys(_EXPECT_KEYS, "expect"),
}
_EXPECT_ELSEWHERE = {
    **{key: "expect.budgets" for key in _BUDGET_KEYS if key != "hops"},
    **dict.fromkeys(_PROPAGATION_KEYS, "expect.propagation"), **dict.fromkeys(_WAIT_KEYS, "wait"),
}

_HEADER_NAME_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789" + string.ascii_letters)  # RFC 9110 token


def parse_flow_spec(source: str | bytes | os.PathLike[str] | Mapping[str, Any] | FlowSpec) -> FlowSpec:
    """A FlowSpec from YAML text, a .yaml/.yml/.json file (a path or a str naming one), a dict
    of the same structure, or a FlowSpec (returned as is). Raises FlowSpecError."""
    if isinstance(source, FlowSpec):
        return source
    raw, origin = load_spec_source(source)
    try:
        return _flow_spec(raw, origin)
    except RecursionError:
        raise FlowSpecError(f"{origin or 'flow spec'}: nested too deeply to be a flow spec; "
                            "check the indentation and any YAML aliases") from None


def _flow_spec(raw: object, origin: str) -> FlowSpec:
    if raw is None:
        raise FlowSpecError(f"{origin or 'flow spec'}: is empty; "
                            "a flow spec needs at least `name: <flow name>`")
    prefix = f"{origin}: " if origin else ""
    top = as_mapping(raw, prefix + "flow spec", "a flow spec is a mapping with at least `name: <flow name>`")
    try:
        check_keys(top, "", _TOP_KEYS, _TOP_ELSEWHERE)
        if "name" not in top:
            raise FlowSpecError("name: missing; every flow spec needs `name: <flow name>`, "
                                "e.g. `name: checkout`")
        name = as_str(top["name"], "name", "write the flow's name, e.g. `name: checkout`")
    except FlowSpecError as error:
        raise FlowSpecError(f"{prefix}{error}") from None
    try:
        return FlowSpec(
            name=name,
            find=_optional(top, "find", "", _find),
            wait=_optional(top, "wait", "", _wait) or WaitSpec(),
            peers=_optional(top, "peers", "", _peers) or {},
            expect=_optional(top, "expect", "", _expect) or Expectations(),
        )
    except FlowSpecError as error:
        raise FlowSpecError(f"{prefix}flow spec {name!r}: {error}") from None


def _optional(mapping: Mapping[Any, Any], key: str, path: str,
              parse: Callable[[object, str], _T]) -> _T | None:
    if key not in mapping:
        return None
    value = mapping[key]
    here = key_path(path, key)
    if value is None:
        fail(here, value, "has no value", "give it a value, or remove the key to take the default")
    return parse(value, here)


def _section(value: object, path: str, keys: tuple[str, ...],
             elsewhere: Mapping[str, str] | None = None) -> Mapping[Any, Any]:
    mapping = as_mapping(value, path, f"write a mapping of {', '.join(keys)}")
    check_keys(mapping, path, keys, elsewhere)
    return mapping


def _positive_duration(value: object, path: str) -> int:
    return parse_duration(value, path, positive=True)


def _duration(value: object, path: str) -> int:
    return parse_duration(value, path, positive=False)


def _service_name(value: object, path: str) -> str:
    return as_str(value, path, "write a service name, e.g. frontend")


def _glob(value: object, path: str) -> str:
    return as_str(value, path, "write a span name or glob, e.g. 'POST /checkout*'")


def _find(value: object, path: str) -> FindSpec:
    find = _section(value, path, _FIND_KEYS)
    default = FindSpec()
    return FindSpec(
        root_service=_optional(find, "root_service", path, _service_name),
        root_name=_optional(find, "root_name", path, _glob),
        attributes=_optional(find, "attributes", path, parse_attributes) or {},
        since_ns=_optional(find, "since", path, _positive_duration) or default.since_ns,
    )


def _wait(value: object, path: str) -> WaitSpec:
    wait = _section(value, path, _WAIT_KEYS, {"since": "find"})
    default = WaitSpec()
    settle = _optional(wait, "settle", path, _duration)
    grace = _optional(wait, "parent_grace", path, _duration)
    return WaitSpec(
        timeout_ns=_optional(wait, "timeout", path, _positive_duration) or default.timeout_ns,
        settle_ns=default.settle_ns if settle is None else settle,
        parent_grace_ns=default.parent_grace_ns if grace is None else grace,
    )


def _peers(value: object, path: str) -> dict[str, str]:
    peers = as_mapping(value, path,
                       'write a mapping of peer names to host:port, e.g. {stripe: "127.0.0.1:9001"}')
    return {parse_service(name, item_path(path, name)): parse_peer_address(address, item_path(path, name))
            for name, address in peers.items()}


def _expect(value: object, path: str) -> Expectations:
    expect = _section(value, path, _EXPECT_KEYS, _EXPECT_ELSEWHERE)
    return Expectations(
        hops=_optional(expect, "hops", path, _hops) or (),
        order=_optional(expect, "order", path, _order) or Order.SUBSEQUENCE,
        times=_optional(expect, "times", path, _times) or (),
        chains=_optional(expect, "chains", path, _chains) or (),
        budgets=_optional(expect, "budgets", path, _budgets) or Budgets(),
        propagation=_optional(expect, "propagation", path, _propagation) or Propagation(),
        errors=_optional(expect, "errors", path, _errors) or ErrorsPolicy(),
        spans=_optional(expect, "spans", path, _spans) or (),
    )


def _hops(value: object, path: str) -> tuple[tuple[HopPattern, ...], ...]:
    fix = "write a list of hops, each 'caller -> callee' or a group [a -> b, a -> c] (any order inside)"
    result: list[tuple[HopPattern, ...]] = []
    for index, item in enumerate(as_list(value, path, fix)):
        here = item_path(path, index)
        if isinstance(item, list | tuple):
            if not item:
                fail(here, item, "is an empty group", "a group lists one or more hops; remove it or fill it")
            group = tuple(parse_hop(hop, item_path(here, inner)) for inner, hop in enumerate(item))
        else:
            group = (parse_hop(item, here),)
        _refuse_repeat(group, result[-1] if result else (), here, item)
        result.append(group)
    return tuple(result)


def _refuse_repeat(group: tuple[HopPattern, ...], before: tuple[HopPattern, ...], here: str,
                   item: object) -> None:
    """A hop listed twice in a row (or twice in one group) asks nothing more than once: a
    listed hop passes once it is seen, and nothing comes between the two to order. A spec
    that means "twice" would pass on one call."""
    seen: set[HopPattern] = set(before)
    for hop in group:
        if hop in seen:
            fail(here, item, f"repeats the hop {hop} {'in its group' if hop not in before else 'before it'}",
                 f"a listed hop passes once it is seen, so a repeat asks nothing more: to require two "
                 f"calls write times: {{{hop}: 2}}; to require it again after another hop, list that "
                 "hop in between")
        seen.add(hop)


def _order(value: object, path: str) -> Order:
    return parse_label(value, path, {order.value: order for order in Order}, "hop order")


def _hop_map(value: object, path: str, parse: Callable[[object, str], _T],
             example: str) -> tuple[tuple[HopPattern, _T], ...]:
    mapping = as_mapping(value, path, f"write a mapping of hops to values, e.g. {example}")
    result: dict[HopPattern, _T] = {}
    for key, item in mapping.items():
        here = item_path(path, key)
        hop = parse_hop(key, here)
        if hop in result:
            fail(here, key, f"repeats the hop {hop}", "give each hop once")
        result[hop] = parse(item, here)
    return tuple(result.items())


def _times(value: object, path: str) -> tuple[tuple[HopPattern, int], ...]:
    def count(item: object, here: str) -> int:
        if isinstance(item, bool) or not isinstance(item, int) or item < 0:
            fail(here, item, "is not a number of times (0 or more)",
                 "write how often the hop happens, e.g. 1; 0 means it must never happen")
        return item
    return _hop_map(value, path, count, '{"cart -> inventory": 1}')


def _chains(value: object, path: str) -> tuple[tuple[str, ...], ...]:
    fix = "write a list of chains, each a list of two or more services, e.g. [[frontend, cart, inventory]]"
    chains: list[tuple[str, ...]] = []
    for index, item in enumerate(as_list(value, path, fix)):
        here = item_path(path, index)
        services = as_list(item, here, fix)
        if len(services) < 2:
            fail(here, item, "names fewer than two services", fix)
        chains.append(tuple(parse_service(name, item_path(here, at)) for at, name in enumerate(services)))
    return tuple(chains)


def _budgets(value: object, path: str) -> Budgets:
    budgets = _section(value, path, _BUDGET_KEYS)
    default = Budgets()
    slack = _optional(budgets, "deadline_slack", path, _duration)
    return Budgets(
        trace_ns=_optional(budgets, "trace", path, _positive_duration),
        hops=_optional(budgets, "hops", path, _hop_budgets) or (),
        deadlines=_optional(budgets, "deadlines", path, as_bool) or False,
        deadline_slack_ns=default.deadline_slack_ns if slack is None else slack,
    )


def _hop_budgets(value: object, path: str) -> tuple[tuple[HopPattern, int], ...]:
    return _hop_map(value, path, _positive_duration, '{"cart -> inventory": 200ms}')


def _propagation(value: object, path: str) -> Propagation:
    propagation = _section(value, path, _PROPAGATION_KEYS)
    connected = _optional(propagation, "connected", path, as_bool)
    return Propagation(
        connected=True if connected is None else connected,
        headers=_optional(propagation, "headers", path, _headers) or {},
        baggage=_optional(propagation, "baggage", path, _baggage) or {},
        check_async=_optional(propagation, "async", path, as_bool) or False,
    )


def _headers(value: object, path: str) -> dict[str, HeaderRule]:
    headers = as_mapping(value, path, "write a mapping of header names to valid, same or present, "
                                      "e.g. {traceparent: valid, x-request-id: same}")
    rules = {rule.value: rule for rule in HeaderRule}
    result: dict[str, HeaderRule] = {}
    for key, item in headers.items():
        here = item_path(path, key)
        if not isinstance(key, str) or not key or not set(key) <= _HEADER_NAME_CHARS:
            fail(here, key, "is not an HTTP header name", "write a header name such as x-request-id")
        name = key.lower()
        if name in result:
            fail(here, key, f"repeats the header {name} (header names ignore case)", "give each header once")
        rule = parse_label(item, here, rules, "header rule")
        if rule is HeaderRule.VALID and name != "traceparent":
            fail(here, item, "applies only to the traceparent header (it checks the W3C format)",
                 f"write `{key}: same` (one value across the flow) or `{key}: present`")
        if rule is HeaderRule.SAME and name == "traceparent":
            fail(here, item, "can never hold: traceparent names a different parent on every hop",
                 "write `traceparent: valid` or `traceparent: present`")
        result[name] = rule
    return result


def _baggage(value: object, path: str) -> dict[str, str]:
    baggage = as_mapping(value, path, "write a mapping of baggage keys to values, e.g. {tenant: acme}")
    result: dict[str, str] = {}
    for key, item in baggage.items():
        here = item_path(path, key)
        if not isinstance(key, str) or not key.strip():
            fail(here, key, "is not a baggage key", "write a key such as tenant")
        # Baggage values are strings on the wire; a bare number is what people mean by "42".
        if isinstance(item, int) and not isinstance(item, bool):
            item = str(item)
        result[key] = as_str(item, here, f'write the expected value as a string, e.g. {key}: "acme"')
    return result


def _errors(value: object, path: str) -> ErrorsPolicy:
    fix = "write none (no errors), any (errors are fine) or {allow: [hop or selector, ...]}"
    if isinstance(value, str) and value.strip().lower() == "allow":
        fail(path, value, "needs the list of what is allowed",
             "write errors: {allow: [hop or selector, ...]}")
    if isinstance(value, str):
        modes = {"none": ErrorsMode.NONE, "any": ErrorsMode.ANY}
        return ErrorsPolicy(mode=parse_label(value, path, modes, "errors policy", fix))
    if isinstance(value, Mapping):
        check_keys(value, path, ("allow",))
    policy = as_mapping(value, path, fix)
    if "allow" not in policy:
        fail(path, value, "has no `allow` list", fix)
    here = key_path(path, "allow")
    entries = as_list(policy["allow"], here, "write a list of hops ('booking -> flights') or selectors")
    allow: list[HopPattern | Selector] = []
    for index, entry in enumerate(entries):
        entry_path = item_path(here, index)
        if isinstance(entry, str) and ("->" in entry or "~>" in entry):
            allow.append(parse_hop(entry, entry_path))
        else:
            allow.append(parse_selector(entry, entry_path))
    return ErrorsPolicy(mode=ErrorsMode.ALLOW, allow=tuple(allow))


def _spans(value: object, path: str) -> tuple[SpanExpectation, ...]:
    fix = "write a list of span expectations, each a mapping with `select:` and count/attributes/max_duration"
    result: list[SpanExpectation] = []
    for index, item in enumerate(as_list(value, path, fix)):
        here = item_path(path, index)
        entry = _section(item, here, _SPAN_KEYS)
        if "select" not in entry:
            fail(here, item, "has no `select`", "add `select: {service: ..., name: ...}` to say which spans")
        result.append(SpanExpectation(
            select=parse_selector(entry["select"], key_path(here, "select")),
            count=_optional(entry, "count", here, parse_count),
            attributes=_optional(entry, "attributes", here, parse_attributes) or {},
            max_duration_ns=_optional(entry, "max_duration", here, _positive_duration),
        ))
    return tuple(result)
