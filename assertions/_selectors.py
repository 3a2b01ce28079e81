"""Matching spans against selectors and attribute expectations, and reading captured headers.

Pure functions over `StoredSpan`. Instrumentations emit either the old (≤ v1.20) or the
stable OpenTelemetry semantic-convention attribute names — or both, under
`OTEL_SEMCONV_STABILITY_OPT_IN=http/dup` — so a spec written with one spelling must match
spans written with the other.
"""

from __future__ import annotations

import contextvars
import enum
import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

from tracebaton.collector import AttributeValue, SpanKind, StoredSpan

from ._spec import PRESENT, Selector

__all__ = ["attribute_lookup", "attribute_matches", "attribute_names", "captures_any_headers",
           "header_values", "selector_matches", "span_attribute_matches"]


class _Side(enum.Enum):
    """On which spans an old name meant the stable one: `net.peer.name` named the server
    on a client span; on a server span the server was `net.host.name`."""

    ANY = "any"
    SERVER = "server"
    NOT_SERVER = "not_server"


# (stable name, old name, where the old name meant it). From the semantic-conventions
# migration guides (HTTP v1.20 -> v1.23 stable, messaging, database). For one stable name
# the server-side spelling comes first: with the span kind unknown, a span carrying
# net.host.* is a server span, whose net.peer.* names its client, not its server.
_RENAMES: tuple[tuple[str, str, _Side], ...] = (
    ("http.request.method", "http.method", _Side.ANY),
    ("http.response.status_code", "http.status_code", _Side.ANY),
    ("url.full", "http.url", _Side.ANY),
    ("url.scheme", "http.scheme", _Side.ANY),
    ("server.address", "net.host.name", _Side.SERVER),
    ("server.address", "net.peer.name", _Side.NOT_SERVER),
    ("server.port", "net.host.port", _Side.SERVER),
    ("server.port", "net.peer.port", _Side.NOT_SERVER),
    ("client.address", "http.client_ip", _Side.SERVER),
    ("client.address", "net.sock.peer.addr", _Side.SERVER),  # when no X-Forwarded-For was seen
    ("network.peer.address", "net.sock.peer.addr", _Side.ANY),
    ("network.peer.address", "net.peer.ip", _Side.ANY),  # before v1.17
    ("network.peer.port", "net.sock.peer.port", _Side.ANY),
    ("network.local.address", "net.sock.host.addr", _Side.ANY),
    ("network.local.address", "net.host.ip", _Side.ANY),  # before v1.17
    ("network.local.port", "net.sock.host.port", _Side.ANY),
    ("network.protocol.name", "net.protocol.name", _Side.ANY),
    ("network.protocol.version", "net.protocol.version", _Side.ANY),
    ("network.protocol.version", "http.flavor", _Side.ANY),
    ("user_agent.original", "http.user_agent", _Side.ANY),
    ("http.request.body.size", "http.request_content_length", _Side.ANY),
    ("http.response.body.size", "http.response_content_length", _Side.ANY),
    ("http.request.resend_count", "http.resend_count", _Side.ANY),
    ("messaging.destination.name", "messaging.destination", _Side.ANY),
    ("messaging.message.id", "messaging.message_id", _Side.ANY),
    ("messaging.message.conversation_id", "messaging.conversation_id", _Side.ANY),
    ("messaging.destination.partition.id", "messaging.kafka.destination.partition", _Side.ANY),
    ("messaging.destination.partition.id", "messaging.kafka.partition", _Side.ANY),
    ("messaging.consumer.group.name", "messaging.kafka.consumer.group", _Side.ANY),
    ("messaging.client.id", "messaging.client_id", _Side.ANY),
    ("messaging.kafka.offset", "messaging.kafka.message.offset", _Side.ANY),
    ("db.query.text", "db.statement", _Side.ANY),
    ("db.operation.name", "db.operation", _Side.ANY),
    ("db.namespace", "db.name", _Side.ANY),
    ("db.collection.name", "db.sql.table", _Side.ANY),
    ("db.collection.name", "db.mongodb.collection", _Side.ANY),
    ("db.collection.name", "db.cassandra.table", _Side.ANY),
)
_OLD_BY_STABLE: dict[str, list[tuple[str, _Side]]] = {}
_STABLE_BY_OLD: dict[str, list[tuple[str, _Side]]] = {}
for _stable, _old, _side in _RENAMES:
    _OLD_BY_STABLE.setdefault(_stable, []).append((_old, _side))
    _STABLE_BY_OLD.setdefault(_old, []).append((_stable, _side))

_HEADER_PREFIXES = ("http.request.header.", "rpc.grpc.request.metadata.")
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|infinity)", re.IGNORECASE)


def _applies(side: _Side, kind: SpanKind | None) -> bool:
    if side is _Side.ANY or kind is None:
        return True
    return (kind is SpanKind.SERVER) == (side is _Side.SERVER)


@functools.lru_cache(maxsize=1024)
def attribute_names(key: str, kind: SpanKind | None = None) -> tuple[str, ...]:
    """`key` and its other spellings, in the order they are tried."""
    names = [key]
    stables = [(key, _Side.ANY)] if key in _OLD_BY_STABLE else []
    stables += [(stable, side) for stable, side in _STABLE_BY_OLD.get(key, []) if _applies(side, kind)]
    for stable, via in stables:
        if stable not in names:
            names.append(stable)
        for old, side in _OLD_BY_STABLE[stable]:
            # From an old name, a sibling for the other side of the call is a different attribute.
            compatible = via is _Side.ANY or side in (_Side.ANY, via)
            if compatible and _applies(side, kind) and old not in names:
                names.append(old)
    return tuple(names)


def attribute_lookup(attributes: Mapping[str, AttributeValue], key: str, *,
                     kind: SpanKind | None = None) -> tuple[bool, AttributeValue]:
    """(found, value) for `key` or, failing that, one of its old/stable spellings.

    `kind` (the span's kind) resolves names whose meaning depended on the side of the call:
    `server.address` is `net.host.name` on a SERVER span and `net.peer.name` on others.
    `http.target` (path and query) stands in for `url.path` and `url.query`, and the reverse.
    """
    for name in attribute_names(key, kind):
        if name in attributes:
            return True, attributes[name]
    target = attributes.get("http.target")
    if key in ("url.path", "url.query") and isinstance(target, str):
        path, question, query = target.partition("?")
        if key == "url.path":
            return True, path
        if question:
            return True, query
    path_value = attributes.get("url.path")
    if key == "http.target" and isinstance(path_value, str):
        query_value = attributes.get("url.query")
        return True, path_value + (f"?{query_value}" if isinstance(query_value, str) else "")
    return False, None


def _number(value: AttributeValue) -> int | float | None:
    """The number a value stands for: an int/float, or a string spelling one exactly."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        if _INT.fullmatch(text):
            return int(text)
        if _FLOAT.fullmatch(text):
            return float(text)
    return None


STRING_ATTRIBUTES: contextvars.ContextVar[bool] = contextvars.ContextVar("string_attributes", default=False)
"""Set while judging on a store without typed attributes (ClickHouse keeps `AsString()`
text): a stored string then also matches the expected value it spells — `true` matches
"true", a list matches its JSON text (DESIGN §3b)."""


def _string_form_matches(expected: AttributeValue, actual: str) -> bool:
    if isinstance(expected, bool):
        return actual == ("true" if expected else "false")
    if _is_list(expected) or isinstance(expected, Mapping):
        try:
            parsed = json.loads(actual)
        except ValueError:
            return False
        if isinstance(expected, Mapping):
            return isinstance(parsed, dict) and parsed.keys() == expected.keys() and all(
                attribute_matches(expected[k], parsed[k]) for k in expected)
        return isinstance(parsed, list) and attribute_matches(expected, parsed)
    return False


def attribute_matches(expected: AttributeValue, actual: AttributeValue) -> bool:
    """Does a found attribute value meet the spec's expectation?

    - `"*"` matches any value (the caller has already established presence).
    - Numbers compare by value, and a number matches the string that spells it, either way
      round: status 200 vs "200" is a quoting accident in a YAML spec, never the point of a test.
    - A boolean matches only a boolean: `true` is not 1 and not "true".
    - A list matches a list of the same length, item by item; a scalar never matches a list.
    - Everything else is plain equality (strings are case-sensitive).
    """
    if isinstance(expected, str) and expected == PRESENT:
        return True
    if isinstance(actual, str) and not isinstance(expected, str) and STRING_ATTRIBUTES.get() \
            and _string_form_matches(expected, actual):
        return True
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    if isinstance(expected, str) and isinstance(actual, str):
        return expected == actual
    expected_number, actual_number = _number(expected), _number(actual)
    if expected_number is not None and actual_number is not None:
        if isinstance(expected_number, float) and math.isnan(expected_number):
            return False
        return expected_number == actual_number
    if _is_list(expected) or _is_list(actual):
        if not (_is_list(expected) and _is_list(actual)):
            return False
        assert isinstance(expected, Sequence)
        assert isinstance(actual, Sequence)
        return len(expected) == len(actual) and all(
            attribute_matches(want, have) for want, have in zip(expected, actual, strict=True))
    return expected == actual


def _is_list(value: AttributeValue) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def selector_matches(selector: Selector, span: StoredSpan) -> bool:
    """Every given field of the selector holds for the span.

    `service` is exact (`*` = any); `name` is a case-sensitive glob; attributes are looked
    up on the span, then on its resource (for `service.version`, `deployment.environment`…),
    under either semantic-convention spelling.
    """
    if selector.service is not None and selector.service not in (PRESENT, span.service):
        return False
    if selector.name is not None and not fnmatchcase(span.name, selector.name):
        return False
    if selector.kind is not None and span.kind != selector.kind:
        return False
    if selector.status is not None and span.status_code != selector.status:
        return False
    return all(span_attribute_matches(span, key, expected) for key, expected in selector.attributes.items())


def span_attribute_matches(span: StoredSpan, key: str, expected: AttributeValue) -> bool:
    """The span (or its resource) has `key` under some spelling, with a value meeting `expected`."""
    found, actual = attribute_lookup(span.attributes, key, kind=span.kind)
    if not found:
        found, actual = attribute_lookup(span.resource, key, kind=span.kind)
    return found and attribute_matches(expected, actual)


def _header_key(name: str) -> str:
    # Python instrumentations wrote dashes as underscores; header names ignore case.
    return name.strip().lower().replace("_", "-")


def header_values(attributes: Mapping[str, AttributeValue], header_name: str) -> list[str] | None:
    """Values of a request header the callee span captured, or None if it did not capture it.

    Read from `http.request.header.<name>` (HTTP) and `rpc.grpc.request.metadata.<name>`
    (gRPC), each a string array or a plain string, with `<name>` in any case and with dashes
    or underscores. An empty list means the attribute is there but holds no value.
    """
    wanted = _header_key(header_name)
    values: list[str] | None = None
    for key, value in attributes.items():
        prefix = next((prefix for prefix in _HEADER_PREFIXES if key.startswith(prefix)), None)
        if prefix is None or _header_key(key[len(prefix):]) != wanted:
            continue
        values = values if values is not None else []
        if isinstance(value, str):
            values.append(value)
        elif isinstance(value, bytes):
            values.append(value.decode("utf-8", "replace"))
        elif isinstance(value, Sequence):
            values.extend(item if isinstance(item, str) else str(item) for item in value if item is not None)
        elif value is not None and not isinstance(value, Mapping):
            values.append(str(value))
    return values


def captures_any_headers(attributes: Mapping[str, AttributeValue]) -> bool:
    """Did this span capture request headers at all (so a missing one is really missing)?"""
    return any(key.startswith(_HEADER_PREFIXES) for key in attributes)
