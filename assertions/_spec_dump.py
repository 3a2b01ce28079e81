"""Writing a `FlowSpec` back out as the dict / YAML a person would have written.

Only values that differ from the defaults are written, keys come in DESIGN §5 order, and
`parse_flow_spec(flow_spec_to_dict(spec)) == spec` holds for every spec the parser accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from tracebaton.collector import AttributeValue

from ._spec import (
    Budgets,
    ErrorsMode,
    ErrorsPolicy,
    Expectations,
    FindSpec,
    FlowSpec,
    HopPattern,
    Order,
    Propagation,
    SpanExpectation,
    WaitSpec,
)
from ._spec_values import attribute_to_value, count_to_value, format_duration, selector_to_value

__all__ = ["dump_yaml", "flow_spec_to_dict", "flow_spec_to_yaml"]


def flow_spec_to_dict(spec: FlowSpec) -> dict[str, Any]:
    """The spec as plain dicts, lists, strings, numbers and booleans; defaults left out."""
    result: dict[str, Any] = {"name": spec.name}
    if spec.find is not None:
        result["find"] = _find(spec.find)
    if spec.wait != WaitSpec():
        result["wait"] = _wait(spec.wait)
    if spec.peers:
        result["peers"] = dict(spec.peers)
    if spec.expect != Expectations():
        result["expect"] = _expect(spec.expect)
    return result


def flow_spec_to_yaml(spec: FlowSpec) -> str:
    return dump_yaml(flow_spec_to_dict(spec))


def dump_yaml(data: Mapping[str, Any]) -> str:
    """YAML as specs are written: keys in the order given, lists of scalars inline, Unicode
    kept (and the line separators a reader would fold escaped)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=None)


class _Dumper(yaml.SafeDumper):
    """PyYAML writes NEL and the Unicode line separators raw in plain and single-quoted
    scalars, where a reader folds them into spaces; double quotes escape them."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = '"' if any(char in text for char in "\x85\u2028\u2029") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


def _find(find: FindSpec) -> dict[str, Any]:
    # An all-default find is still written (as {}): "find the trace" differs from "no find".
    result: dict[str, Any] = {}
    if find.root_service is not None:
        result["root_service"] = find.root_service
    if find.root_name is not None:
        result["root_name"] = find.root_name
    if find.attributes:
        result["attributes"] = _attributes(find.attributes)
    if find.since_ns != FindSpec().since_ns:
        result["since"] = format_duration(find.since_ns)
    return result


def _wait(wait: WaitSpec) -> dict[str, Any]:
    default = WaitSpec()
    return _durations((("timeout", wait.timeout_ns, default.timeout_ns),
                       ("settle", wait.settle_ns, default.settle_ns),
                       ("parent_grace", wait.parent_grace_ns, default.parent_grace_ns)))


def _durations(entries: tuple[tuple[str, int | None, int | None], ...]) -> dict[str, Any]:
    return {key: format_duration(value) for key, value, default in entries
            if value is not None and value != default}


def _attributes(attributes: Mapping[str, AttributeValue]) -> dict[str, Any]:
    return {key: attribute_to_value(value) for key, value in attributes.items()}


def _hop(hop: HopPattern) -> str:
    return str(hop)


def _expect(expect: Expectations) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if expect.hops:
        result["hops"] = [_hop(group[0]) if len(group) == 1 else [_hop(hop) for hop in group]
                          for group in expect.hops]
    if expect.order is not Order.SUBSEQUENCE:
        result["order"] = expect.order.value
    if expect.times:
        result["times"] = {_hop(hop): times for hop, times in expect.times}
    if expect.chains:
        result["chains"] = [list(chain) for chain in expect.chains]
    if expect.budgets != Budgets():
        result["budgets"] = _budgets(expect.budgets)
    if expect.propagation != Propagation():
        result["propagation"] = _propagation(expect.propagation)
    if expect.errors != ErrorsPolicy():
        result["errors"] = _errors(expect.errors)
    if expect.spans:
        result["spans"] = [_span(span) for span in expect.spans]
    return result


def _budgets(budgets: Budgets) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if budgets.trace_ns is not None:
        result["trace"] = format_duration(budgets.trace_ns)
    if budgets.hops:
        result["hops"] = {_hop(hop): format_duration(ns) for hop, ns in budgets.hops}
    if budgets.deadlines:
        result["deadlines"] = True
    if budgets.deadline_slack_ns != Budgets().deadline_slack_ns:
        result["deadline_slack"] = format_duration(budgets.deadline_slack_ns)
    return result


def _propagation(propagation: Propagation) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if not propagation.connected:
        result["connected"] = False
    if propagation.headers:
        result["headers"] = {name: rule.value for name, rule in propagation.headers.items()}
    if propagation.baggage:
        result["baggage"] = dict(propagation.baggage)
    if propagation.check_async:
        result["async"] = True
    return result


def _errors(errors: ErrorsPolicy) -> Any:
    if errors.mode is not ErrorsMode.ALLOW:
        return errors.mode.value
    return {"allow": [_hop(entry) if isinstance(entry, HopPattern) else selector_to_value(entry)
                      for entry in errors.allow]}


def _span(span: SpanExpectation) -> dict[str, Any]:
    result: dict[str, Any] = {"select": selector_to_value(span.select)}
    if span.count is not None:
        result["count"] = count_to_value(span.count)
    if span.attributes:
        result["attributes"] = _attributes(span.attributes)
    if span.max_duration_ns is not None:
        result["max_duration"] = format_duration(span.max_duration_ns)
    return result


# str() of a spec is the YAML a person saves as flows/<name>.yaml (the dataclass repr stays for
# debugging). Attached here, beside the writer: the writer reads _spec, so _spec cannot import it.
FlowSpec.__str__ = flow_spec_to_yaml  # type: ignore[method-assign, assignment]
