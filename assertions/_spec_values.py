"""The leaves of a flow spec: durations, hop strings, counts, selectors, attribute maps.

Each parser takes the raw value and the key path it sits at, and either returns the typed
value or raises FlowSpecError naming the path, the value, the rule and the fix. The section
walker (`_spec_parse`) and the serializer (`_spec_dump`) share these so that what one writes
the other reads back.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import reprlib
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, TypeVar

from tracebaton import DURATION_UNITS, ConfigurationError, FlowSpecError, parse_duration_ns
from tracebaton.collector import AttributeValue, SpanKind, StatusCode

from ._spec import CountBound, HopPattern, Selector

_T = TypeVar("_T")

_UNITS_NS = (("m", 60_000_000_000), ("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000), ("ns", 1))
MAX_DURATION_NS = 30 * 24 * 3600 * 1_000_000_000
"""Far beyond any test's wait, and below 2**53 ns so that every duration reads back exactly."""

_SELECTOR_KINDS = {kind.label: kind for kind in SpanKind if kind is not SpanKind.UNSPECIFIED}
_STATUSES = {status.label: status for status in StatusCode}
_SELECTOR_KEYS = ("service", "name", "kind", "status", "attributes")
_ARROWS = ("->", "~>")
_SERVICE_RULE = "a service name: no spaces, and `*` only on its own (any service)"

# Bounded so that a huge or self-referencing YAML value (anchors and aliases) still makes a short message.
_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 4
_repr.maxlevel = 3


def show(value: object) -> str:
    """The value as the message quotes it: short, and never a crash."""
    if value is None:
        return "null"
    try:
        return _repr.repr(value)
    except Exception:  # a broken __repr__ must not hide the error being reported
        return f"<{type(value).__name__}>"


def fail(path: str, value: object, rule: str, fix: str) -> NoReturn:
    raise FlowSpecError(f"{path}: {show(value)} {rule}; {fix}")


def key_path(path: str, key: str) -> str:
    """A key of the spec's own schema: `expect.budgets`."""
    return f"{path}.{key}" if path else key


def item_path(path: str, item: object) -> str:
    """A list index or a user-chosen key: `expect.hops[2]`, `find.attributes["order.id"]`."""
    if isinstance(item, int) and not isinstance(item, bool):
        return f"{path}[{item}]"
    if isinstance(item, str):
        return f"{path}[{json.dumps(item, ensure_ascii=False)}]"
    return f"{path}[{show(item)}]"


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def as_mapping(value: object, path: str, fix: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        fail(path, value, f"is {type_name(value)}, not a mapping", fix)
    return value


def as_list(value: object, path: str, fix: str) -> Sequence[Any]:
    if not isinstance(value, list | tuple):
        fail(path, value, f"is {type_name(value)}, not a list", fix)
    return value


def as_str(value: object, path: str, fix: str) -> str:
    if not isinstance(value, str):
        fail(path, value, f"is {type_name(value)}, not a string", fix)
    if not value.strip():
        fail(path, value, "is empty", fix)
    return value


def as_bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        fail(path, value, f"is {type_name(value)}, not a boolean", "write true or false, without quotes")
    return value


def check_keys(mapping: Mapping[Any, Any], path: str, known: Sequence[str],
               elsewhere: Mapping[str, str] | None = None) -> None:
    """Reject keys the schema does not have, suggesting the closest known one."""
    where = path or "the top level"
    for key in mapping:
        if isinstance(key, str) and key in known:
            continue
        if isinstance(key, str) and elsewhere and key in elsewhere:
            hint = f"`{key}` belongs under `{elsewhere[key]}`; move it there"
        else:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6) if isinstance(key, str) else []
            hint = f"did you mean `{close[0]}`?" if close else "remove it or fix its spelling"
        raise FlowSpecError(f"{key_path(path, str(key))}: unknown key {show(key)} in {where} "
                            f"(known keys: {', '.join(known)}); {hint}")


def parse_duration(value: object, path: str, *, positive: bool) -> int:
    """A duration in ns; `positive` forbids 0 where 0 would make the check meaningless."""
    example = "'250ms' or '10s'"
    if isinstance(value, bool) or not isinstance(value, str):
        if isinstance(value, int | float):
            fail(path, value, "is a number without a unit",
                 f"durations need a unit, one of {DURATION_UNITS}: write e.g. '{value}ms' or '{value}s'")
        fail(path, value, f"is {type_name(value)}, not a duration",
             f"write a number and a unit, e.g. {example}")
    if value.strip().startswith("-"):
        fail(path, value, "is negative", f"durations are 0 or more, e.g. {example}")
    try:
        ns = parse_duration_ns(value, what=path)
    except ConfigurationError:
        fail(path, value, f"is not a duration (a number and a unit, one of {DURATION_UNITS})",
             f"write e.g. {example}")
    except (OverflowError, ValueError):
        ns = MAX_DURATION_NS + 1
    if ns > MAX_DURATION_NS:
        fail(path, value, "is longer than 30 days", "no test waits that long; use a shorter duration")
    if positive and ns == 0:
        fail(path, value, "is zero", f"give a duration above 0, e.g. {example}")
    return ns


def format_duration(ns: int) -> str:
    """The shortest exact spelling in the spec's units: 2s, 250ms, 1500ms, 90us."""
    if ns == 0:
        return "0s"
    for unit, size in _UNITS_NS:
        if ns % size == 0:
            return f"{ns // size}{unit}"
    raise AssertionError("unreachable: every int is a whole number of ns")


def parse_service(value: object, path: str) -> str:
    text = as_str(value, path, f"write {_SERVICE_RULE}").strip()
    if any(char.isspace() for char in text):
        fail(path, value, "contains a space", f"write {_SERVICE_RULE}; one hop per string, e.g. 'a -> b'")
    if "*" in text and text != "*":
        fail(path, value, "has `*` inside a name", "only a bare `*` is a wildcard (any service)")
    if any(arrow in text for arrow in _ARROWS):
        fail(path, value, "is a hop, not a service name", "write the service name alone")
    return text


def parse_hop_pattern(text: str, *, where: str) -> HopPattern:
    """`"cart -> inventory"` (sync) or `"orders ~> email"` (async); `*` is any service.

    `where` is the key path that the error message names.
    """
    return parse_hop(text, where)


def parse_hop(value: object, where: str) -> HopPattern:
    fix = "write one hop as 'caller -> callee' (synchronous) or 'caller ~> callee' (asynchronous)"
    if isinstance(value, Mapping) and len(value) == 1:
        fail(where, value, "is a mapping, not a hop string (YAML read `a: b` as a key and a value)",
             fix + "; quote it if it contains ': '")
    text = as_str(value, where, fix)
    found = [(match.start(), match.group()) for match in re.finditer(r"->|~>", text)]
    if not found:
        fail(where, text, "has no arrow", fix)
    if len(found) > 1:
        fail(where, text, "has more than one arrow",
             fix + "; for causal nesting use expect.chains: [a, b, c]")
    at, arrow = found[0]
    caller, callee = text[:at].strip(), text[at + 2:].strip()
    for side, name in (("caller", caller), ("callee", callee)):
        if not name:
            fail(where, text, f"has no {side}", fix + "; `*` stands for any service")
        if any(char.isspace() for char in name) or ("*" in name and name != "*"):
            fail(where, text, f"has a bad {side} {name!r}: {_SERVICE_RULE}", fix)
    return HopPattern(caller, callee, asynchronous=arrow == "~>")


def parse_count(value: object, path: str) -> CountBound:
    fix = "write 1 (exactly), \">=1\" (at least), \"<=2\" (at most) or 0 (never)"
    if isinstance(value, bool) or not isinstance(value, int | str):
        fail(path, value, f"is {type_name(value)}, not a count", fix)
    if isinstance(value, int):
        if value < 0:
            fail(path, value, "is negative", fix)
        return CountBound("==", value)
    match = re.fullmatch(r"\s*(>=|<=|==)?\s*(\d+)\s*", value)
    if match is None:
        rule = "is negative" if re.fullmatch(r"\s*(>=|<=|==)?\s*-\s*\d+\s*", value) else "is not a count"
        fail(path, value, rule, fix)
    return CountBound(match.group(1) or "==", int(match.group(2)))


def count_to_value(count: CountBound) -> int | str:
    return count.n if count.op == "==" else f"{count.op}{count.n}"


def parse_attribute_value(value: object, path: str) -> AttributeValue:
    fix = "write a string, number, boolean or a list of them; `\"*\"` means present with any value"
    if value is None:
        fail(path, value, "is null", fix)
    if isinstance(value, float) and math.isnan(value):
        fail(path, value, "is NaN, which equals nothing", fix)
    if isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, list | tuple):
        items = [parse_attribute_value(item, item_path(path, index)) for index, item in enumerate(value)]
        if any(isinstance(item, tuple) for item in items):
            fail(path, value, "nests a list in a list", fix)
        return tuple(items)
    fail(path, value, f"is {type_name(value)}", fix)


def parse_attributes(value: object, path: str) -> dict[str, AttributeValue]:
    fix = "write a mapping of attribute names to values, e.g. {http.response.status_code: 200}"
    result: dict[str, AttributeValue] = {}
    for key, item in as_mapping(value, path, fix).items():
        if not isinstance(key, str) or not key.strip():
            fail(item_path(path, key), key, "is not an attribute name", fix)
        result[key] = parse_attribute_value(item, item_path(path, key))
    return result


def attribute_to_value(value: AttributeValue) -> Any:
    """Lists for YAML, which has no tuples."""
    if isinstance(value, tuple | list):
        return [attribute_to_value(item) for item in value]
    return value


def parse_label(value: object, path: str, labels: Mapping[str, _T], what: str, fix: str = "") -> _T:
    fix = fix or f"write one of {', '.join(labels)}"
    text = as_str(value, path, fix).strip().lower()
    if text not in labels:
        close = difflib.get_close_matches(text, list(labels), n=1)
        fail(path, value, f"is not a valid {what}", fix + (f" (did you mean {close[0]}?)" if close else ""))
    return labels[text]


def parse_selector(value: object, path: str) -> Selector:
    """A mapping, or `"payment"` (a service) or `"payment:POST /charge"` (a service and a span name)."""
    fix = ("write a mapping of service, name, kind, status, attributes, or a string 'service' or "
           "'service:span name'")
    if isinstance(value, str):
        return _selector_shorthand(value, path, fix)
    mapping = as_mapping(value, path, fix)
    check_keys(mapping, path, _SELECTOR_KEYS)
    service: str | None = None
    name: str | None = None
    kind: SpanKind | None = None
    status: StatusCode | None = None
    attributes: dict[str, AttributeValue] = {}
    if "service" in mapping:
        service = as_str(mapping["service"], key_path(path, "service"), "write a service name, e.g. payment")
    if "name" in mapping:
        name = as_str(mapping["name"], key_path(path, "name"),
                      "write a span name or glob, e.g. 'POST /charge*'")
    if "kind" in mapping:
        kind = parse_label(mapping["kind"], key_path(path, "kind"), _SELECTOR_KINDS, "span kind")
    if "status" in mapping:
        status = parse_label(mapping["status"], key_path(path, "status"), _STATUSES, "span status")
    if "attributes" in mapping:
        attributes = parse_attributes(mapping["attributes"], key_path(path, "attributes"))
    return Selector(service=service, name=name, kind=kind, status=status, attributes=attributes)


def _selector_shorthand(text: str, path: str, fix: str) -> Selector:
    service, colon, name = text.partition(":")
    if not service.strip():
        fail(path, text, "has no service before the colon", fix)
    if colon and not name.strip():
        fail(path, text, "has no span name after the colon", fix)
    return Selector(service=service.strip(), name=name.strip() if colon else None)


def selector_to_value(selector: Selector) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if selector.service is not None:
        result["service"] = selector.service
    if selector.name is not None:
        result["name"] = selector.name
    if selector.kind is not None:
        result["kind"] = selector.kind.label
    if selector.status is not None:
        result["status"] = selector.status.label
    if selector.attributes:
        result["attributes"] = {key: attribute_to_value(value) for key, value in selector.attributes.items()}
    return result


def parse_peer_address(value: object, path: str) -> str:
    """`"127.0.0.1:9001"`, `"stripe.local:443"`, `"[::1]:9001"`."""
    fix = "write host:port, e.g. \"127.0.0.1:9001\" or \"[::1]:9001\" for IPv6"
    text = as_str(value, path, fix).strip()
    match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^\s:\[\]/]+):(\d{1,5})", text)
    if match is None:
        fail(path, value, "is not host:port", fix)
    if not 1 <= int(match.group(2)) <= 65535:
        fail(path, value, "has a port outside 1-65535", fix)
    return text
