"""OTLP/JSON codec for trace export requests.

Why this exists rather than `google.protobuf.json_format`:

* OTLP/JSON is not proto3 JSON. Trace and span ids are hex, not base64, so
  `json_format` silently turns a valid 16-byte trace id into 24 bytes of garbage and a
  span that can never be matched to its trace; enums travel as integers.
* `json_format` is pure Python over descriptors and about ten times too slow for a
  receiver: here orjson parses the body and the messages are built by upb's C
  constructors from plain dicts, after one pass of Python that checks every value.
* A receiver answers a bad body with 400 and a message, and the message is the only
  help the sender gets. Every rejection here names the JSON path of the offending value
  (lowerCamelCase names, as OTLP/JSON writes them), the rule it broke and how to fix it.

Leniency is deliberate where it costs nothing and loses nothing: enum names and the
original snake_case field names, both refused by the OTLP specification, are accepted
because SDKs and hand-written payloads use them. Ids of the wrong length are decoded as
they are, so that validation downstream can reject just those spans (partial success)
instead of the whole request.
"""

from __future__ import annotations

import binascii
import gc
import math
import re
from typing import Any, Final

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    EntityRef,
    InstrumentationScope,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tracebaton import OtlpDecodeError

__all__ = ["decode_export_request_json", "encode_export_request_json"]

#: AnyValue nesting (arrayValue / kvlistValue inside one another) accepted by both
#: directions. A protobuf body cannot carry much more: upb stops parsing at 100 nested
#: messages, and each AnyValue level is two.
_MAX_DEPTH: Final = 64

_U32_MAX: Final = 2**32 - 1
_I32_MIN: Final = -(2**31)
_I32_MAX: Final = 2**31 - 1
_U64_MAX: Final = 2**64 - 1
_I64_MIN: Final = -(2**63)
_I64_MAX: Final = 2**63 - 1
#: Integral floats below this magnitude are exact; above it a JSON number written with a
#: fraction or an exponent (or an integer literal too big for 64 bits, which orjson
#: reads as a float) may have been rounded, so it is refused rather than guessed at.
_F64_EXACT: Final = 2**53

_DECIMAL = re.compile(r"-?[0-9]+")
_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_BASE64_ALPHABET: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_=")
_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")
_URLSAFE_TO_STANDARD: Final = str.maketrans("-_", "+/")

_SPAN_KINDS: Final[dict[str, int]] = dict(Span.SpanKind.items())
_STATUS_CODES: Final[dict[str, int]] = dict(Status.StatusCode.items())

_TIME_HINT: Final = "write nanoseconds since the epoch as a JSON number or a decimal string"
_COUNT_HINT: Final = "write a count from 0 to 4294967295 as a JSON number"
_FLAGS_HINT: Final = "write the 32 flag bits as a JSON number from 0 to 4294967295"
_INT_HINT: Final = "write a signed 64-bit integer as a JSON number or a decimal string"
_INDEX_HINT: Final = "write a signed 32-bit integer as a JSON number"

# Per-field (JSON name, snake_case name) pairs, in proto field order.
_CAMEL_SNAKE: Final[dict[str, str]] = {
    "resourceSpans": "resource_spans",
    "scopeSpans": "scope_spans",
    "schemaUrl": "schema_url",
    "droppedAttributesCount": "dropped_attributes_count",
    "entityRefs": "entity_refs",
    "idKeys": "id_keys",
    "descriptionKeys": "description_keys",
    "keyStrindex": "key_strindex",
    "traceId": "trace_id",
    "spanId": "span_id",
    "traceState": "trace_state",
    "parentSpanId": "parent_span_id",
    "startTimeUnixNano": "start_time_unix_nano",
    "endTimeUnixNano": "end_time_unix_nano",
    "droppedEventsCount": "dropped_events_count",
    "droppedLinksCount": "dropped_links_count",
    "timeUnixNano": "time_unix_nano",
}

# AnyValue members, by every accepted key, to a small code (the branch order of _any).
_ANY_STRING: Final = 0
_ANY_INT: Final = 1
_ANY_BOOL: Final = 2
_ANY_DOUBLE: Final = 3
_ANY_ARRAY: Final = 4
_ANY_KVLIST: Final = 5
_ANY_BYTES: Final = 6
_ANY_MEMBERS: Final[tuple[tuple[str, str], ...]] = (
    ("stringValue", "string_value"),
    ("intValue", "int_value"),
    ("boolValue", "bool_value"),
    ("doubleValue", "double_value"),
    ("arrayValue", "array_value"),
    ("kvlistValue", "kvlist_value"),
    ("bytesValue", "bytes_value"),
    ("stringValueStrindex", "string_value_strindex"),
)
_ANY_KEYS: Final[dict[str, int]] = {key: code for code, names in enumerate(_ANY_MEMBERS) for key in names}


# --------------------------------------------------------------------------- decoding


class _Bad(Exception):
    """A value broke a rule; `path` collects the JSON path innermost first on the way out."""

    def __init__(self, message: str, path: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def render(self) -> str:
        out = ""
        for segment in reversed(self.path):
            out += segment if segment.startswith("[") or not out else "." + segment
        return f"{out}: {self.message}" if out else self.message


def _show(value: Any) -> str:
    """A short rendering of a JSON value for an error message."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if value is True:
        return "true"
    if value is False:
        return "false"
    text = repr(value)
    return text if len(text) <= 80 else text[:60] + "…" + text[-10:]


def _get(d: dict[str, Any], camel: str) -> Any:
    """`d[camel]`, else `d[snake_case of camel]`, else None (also for an explicit null)."""
    value = d.get(camel)
    if value is None:
        snake = _CAMEL_SNAKE.get(camel)
        if snake is not None:
            value = d.get(snake)
    return value


def _object(value: Any, what: str, path: list[str]) -> dict[str, Any]:
    if type(value) is dict:
        return value
    raise _Bad(f"{_show(value)} is not an object; {what} is a JSON object", path)


def _list(value: Any, name: str) -> list[Any]:
    if type(value) is list:
        return value
    raise _Bad(f"{_show(value)} is not a list; write {name} as a JSON array", [name])


def _string(value: Any, name: str) -> str:
    if type(value) is str:
        return value
    raise _Bad(f"{_show(value)} is not a string; write {name} as a JSON string", [name])


def _string_list(value: Any, name: str) -> list[str]:
    items = _list(value, name)
    for i, item in enumerate(items):
        if type(item) is not str:
            raise _Bad(f"{_show(item)} is not a string", [f"{name}[{i}]"])
    return items


def _integer(value: Any, name: str, low: int, high: int, hint: str) -> int:
    """An integer field: a JSON number or a decimal string, within [low, high]."""
    if type(value) is int:
        number = value
    elif type(value) is str and _DECIMAL.fullmatch(value):
        number = int(value)
    elif type(value) is float and value.is_integer():
        if abs(value) >= _F64_EXACT:
            if low <= value <= high:
                raise _Bad(
                    f"{value!r} is a floating-point number that may have been rounded; "
                    "write the integer's digits, or a decimal string",
                    [name],
                )
            raise _Bad(f"{value!r} is out of range: {name} takes {low} to {high}", [name])
        number = int(value)
    else:
        raise _Bad(f"{_show(value)} is not an integer; {hint}", [name])
    if low <= number <= high:
        return number
    raise _Bad(f"{number} is out of range: {name} takes {low} to {high}", [name])


def _u32(value: Any, name: str, hint: str = _COUNT_HINT) -> int:
    if type(value) is int and 0 <= value <= _U32_MAX:
        return value
    return _integer(value, name, 0, _U32_MAX, hint)


def _time(value: Any, name: str) -> int:
    if type(value) is int and 0 <= value <= _U64_MAX:
        return value
    return _integer(value, name, 0, _U64_MAX, _TIME_HINT)


def _enum(value: Any, name: str, names: dict[str, int]) -> int:
    if type(value) is int and _I32_MIN <= value <= _I32_MAX:
        return value
    if type(value) is str:
        number = names.get(value)
        if number is not None:
            return number
        known = ", ".join(f"{n} ({v})" for n, v in names.items())
        raise _Bad(
            f"{value!r} is not a known {name}; OTLP/JSON writes enums as integers: {known}",
            [name],
        )
    return _integer(value, name, _I32_MIN, _I32_MAX, f"write {name} as an integer")


def _id(value: Any, name: str) -> bytes:
    """A trace or span id: hex digits, any case; "" is the empty (absent) id."""
    if type(value) is str:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            pass
        else:
            if len(raw) * 2 == len(value):  # bytes.fromhex skips whitespace
                return raw
    raise _Bad(_id_problem(value, name), [name])


def _id_problem(value: Any, name: str) -> str:
    if type(value) is not str:
        return f"{_show(value)} is not a string; write {name} as a string of hex digits"
    rule = f'{name} must be written in hex (OTLP/JSON), e.g. "5b8efff798038103"'
    if value and all(c in _HEX_DIGITS for c in value):
        return f"{_show(value)} has an odd number of hex digits ({len(value)}); {rule}"
    if value and all(c in _BASE64_ALPHABET for c in value):
        return (
            f"{_show(value)} is not hex: it looks like base64, as proto3 JSON "
            "(google.protobuf.json_format, protojson) writes bytes; "
            f"{rule}. Use an OTLP/JSON encoder (an OpenTelemetry SDK's OTLP/HTTP JSON "
            "exporter), or send protobuf with Content-Type: application/x-protobuf"
        )
    return f"{_show(value)} is not hex; {rule}"


def _double(value: Any, name: str) -> float:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    if type(value) is str:
        if value == "NaN":
            return math.nan
        if value == "Infinity":
            return math.inf
        if value == "-Infinity":
            return -math.inf
        if _JSON_NUMBER.fullmatch(value):
            number = float(value)
            if math.isfinite(number):
                return number
            raise _Bad(f"{_show(value)} is out of range for a 64-bit float", [name])
    raise _Bad(
        f"{_show(value)} is not a number; write a JSON number, or one of the strings "
        '"NaN", "Infinity", "-Infinity"',
        [name],
    )


def _bytes(value: Any, name: str) -> bytes:
    """Base64, standard or URL-safe, padded or not (the proto3 JSON rule for bytes)."""
    if type(value) is str:
        text = value.translate(_URLSAFE_TO_STANDARD)
        text += "=" * (-len(text) % 4)
        try:
            return binascii.a2b_base64(text, strict_mode=True)
        except (binascii.Error, ValueError):
            pass
    raise _Bad(
        f"{_show(value)} is not base64; write bytes as a base64 string (standard or URL-safe)",
        [name],
    )


def _any(value: Any, depth: int) -> dict[str, Any]:
    """An AnyValue as constructor keywords; {} when no member is set."""
    if type(value) is not dict:
        raise _Bad(
            f'{_show(value)} is not an object; an AnyValue is an object such as {{"stringValue": "text"}}',
            [],
        )
    out: dict[str, Any] | None = None
    for key, member in value.items():
        code = _ANY_KEYS.get(key)
        if code is None or member is None:
            continue  # unknown keys are ignored; null is "not set"
        if out is not None:
            raise _Bad(
                f"sets more than one value ({', '.join(k for k in value if k in _ANY_KEYS)}); "
                "an AnyValue holds exactly one",
                [],
            )
        if code == _ANY_STRING:
            if type(member) is not str:
                raise _Bad(f"{_show(member)} is not a string", [key])
            out = {"string_value": member}
        elif code == _ANY_INT:
            if type(member) is int and _I64_MIN <= member <= _I64_MAX:
                out = {"int_value": member}
            else:
                out = {"int_value": _integer(member, key, _I64_MIN, _I64_MAX, _INT_HINT)}
        elif code == _ANY_BOOL:
            if type(member) is not bool:
                raise _Bad(f"{_show(member)} is not a boolean; write true or false", [key])
            out = {"bool_value": member}
        elif code == _ANY_DOUBLE:
            out = {"double_value": _double(member, key)}
        elif code in (_ANY_ARRAY, _ANY_KVLIST):
            if depth >= _MAX_DEPTH:
                raise _Bad(
                    f"values nest deeper than {_MAX_DEPTH} levels of arrayValue/kvlistValue; "
                    "flatten the attribute",
                    [key],
                )
            holder = _object(member, key, [key])
            items = holder.get("values")
            if items is None:
                items = []
            try:
                if code == _ANY_ARRAY:
                    out = {"array_value": {"values": _any_list(items, depth + 1)}}
                else:
                    out = {"kvlist_value": {"values": _key_values(items, "values", depth + 1)}}
            except _Bad as bad:
                bad.path.append(key)
                raise
        elif code == _ANY_BYTES:
            out = {"bytes_value": _bytes(member, key)}
        else:
            out = {"string_value_strindex": _integer(member, key, _I32_MIN, _I32_MAX, _INDEX_HINT)}
    return {} if out is None else out


def _any_list(items: Any, depth: int) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_list(items, "values")):
        try:
            out.append(_any(item, depth))
        except _Bad as bad:
            bad.path.append(f"values[{i}]")
            raise
    return out


def _key_values(items: Any, name: str, depth: int = 1) -> list[dict[str, Any]]:
    """A list of KeyValue (attributes, or a kvlistValue's values) as constructor dicts."""
    if type(items) is not list:
        raise _Bad(f"{_show(items)} is not a list; write {name} as a JSON array", [name])
    out = []
    append = out.append
    for kv in items:
        # The common cases, inlined: {"key": "k", "value": {"stringValue": "v"}} and
        # {"key": "k", "value": {"intValue": "123"}}. The parsed dict is reused.
        if type(kv) is dict and len(kv) == 2:
            key = kv.get("key")
            value = kv.get("value")
            if type(key) is str and type(value) is dict and len(value) == 1:
                member = value.get("stringValue")
                if type(member) is str:
                    kv["value"] = {"string_value": member}
                    append(kv)
                    continue
                member = value.get("intValue")
                if type(member) is str and len(member) < 19 and member.isdecimal():
                    if member.isascii():
                        kv["value"] = {"int_value": int(member)}
                        append(kv)
                        continue
                elif type(member) is int and _I64_MIN <= member <= _I64_MAX:
                    kv["value"] = {"int_value": member}
                    append(kv)
                    continue
        try:
            append(_key_value(kv, depth))
        except _Bad as bad:
            bad.path.append(f"{name}[{_index_of(items, kv)}]")
            raise
    return out


def _index_of(items: list[Any], item: Any) -> int:
    """The position of `item` (by identity) in a list: error paths only, not worth tracking."""
    return next(i for i, candidate in enumerate(items) if candidate is item)


def _key_value(kv: Any, depth: int) -> dict[str, Any]:
    if type(kv) is not dict:
        raise _Bad(
            f"{_show(kv)} is not an object; an attribute is an object like "
            '{"key": "k", "value": {"stringValue": "v"}}',
            [],
        )
    item: dict[str, Any] = {}
    key = kv.get("key")
    if key is not None:
        if type(key) is not str:
            raise _Bad(f"{_show(key)} is not a string", ["key"])
        item["key"] = key
    value = kv.get("value")
    if value is not None:
        try:
            item["value"] = _any(value, depth)
        except _Bad as bad:
            bad.path.append("value")
            raise
    index = _get(kv, "keyStrindex")
    if index is not None:
        item["key_strindex"] = _integer(index, "keyStrindex", _I32_MIN, _I32_MAX, _INDEX_HINT)
    return item


def _resource(value: Any) -> dict[str, Any]:
    d = _object(value, "a resource", ["resource"])
    out: dict[str, Any] = {}
    try:
        v = d.get("attributes")
        if v is not None:
            out["attributes"] = _key_values(v, "attributes")
        v = _get(d, "droppedAttributesCount")
        if v is not None:
            out["dropped_attributes_count"] = _u32(v, "droppedAttributesCount")
        v = _get(d, "entityRefs")
        if v is not None:
            out["entity_refs"] = _entity_refs(v)
    except _Bad as bad:
        bad.path.append("resource")
        raise
    return out


def _entity_refs(value: Any) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_list(value, "entityRefs")):
        try:
            d = _object(item, "an entity reference", [])
            ref: dict[str, Any] = {}
            for camel, snake, convert in (
                ("schemaUrl", "schema_url", _string),
                ("type", "type", _string),
                ("idKeys", "id_keys", _string_list),
                ("descriptionKeys", "description_keys", _string_list),
            ):
                v = _get(d, camel)
                if v is not None:
                    ref[snake] = convert(v, camel)
            out.append(ref)
        except _Bad as bad:
            bad.path.append(f"entityRefs[{i}]")
            raise
    return out


def _scope(value: Any) -> dict[str, Any]:
    d = _object(value, "an instrumentation scope", ["scope"])
    out: dict[str, Any] = {}
    try:
        v = d.get("name")
        if v is not None:
            out["name"] = _string(v, "name")
        v = d.get("version")
        if v is not None:
            out["version"] = _string(v, "version")
        v = d.get("attributes")
        if v is not None:
            out["attributes"] = _key_values(v, "attributes")
        v = _get(d, "droppedAttributesCount")
        if v is not None:
            out["dropped_attributes_count"] = _u32(v, "droppedAttributesCount")
    except _Bad as bad:
        bad.path.append("scope")
        raise
    return out


def _span(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    v = d.get("traceId")
    if v is None:
        v = d.get("trace_id")
    if v is not None:
        out["trace_id"] = _id(v, "traceId")
    v = d.get("spanId")
    if v is None:
        v = d.get("span_id")
    if v is not None:
        out["span_id"] = _id(v, "spanId")
    v = d.get("traceState")
    if v is None:
        v = d.get("trace_state")
    if v is not None:
        out["trace_state"] = _string(v, "traceState")
    v = d.get("parentSpanId")
    if v is None:
        v = d.get("parent_span_id")
    if v is not None:
        out["parent_span_id"] = _id(v, "parentSpanId")
    v = d.get("flags")
    if v is not None:
        out["flags"] = _u32(v, "flags", _FLAGS_HINT)
    v = d.get("name")
    if v is not None:
        if type(v) is not str:
            raise _Bad(f"{_show(v)} is not a string; write name as a JSON string", ["name"])
        out["name"] = v
    v = d.get("kind")
    if v is not None:
        out["kind"] = v if type(v) is int and 0 <= v <= 5 else _enum(v, "kind", _SPAN_KINDS)
    v = d.get("startTimeUnixNano")
    if v is None:
        v = d.get("start_time_unix_nano")
    if v is not None:
        if type(v) is not int or not 0 <= v <= _U64_MAX:
            if type(v) is str and len(v) < 20 and v.isdecimal() and v.isascii():
                v = int(v)  # below 10**19, so in range
            else:
                v = _time(v, "startTimeUnixNano")
        out["start_time_unix_nano"] = v
    v = d.get("endTimeUnixNano")
    if v is None:
        v = d.get("end_time_unix_nano")
    if v is not None:
        if type(v) is not int or not 0 <= v <= _U64_MAX:
            if type(v) is str and len(v) < 20 and v.isdecimal() and v.isascii():
                v = int(v)  # below 10**19, so in range
            else:
                v = _time(v, "endTimeUnixNano")
        out["end_time_unix_nano"] = v
    v = d.get("attributes")
    if v is not None:
        out["attributes"] = _key_values(v, "attributes")
    v = d.get("droppedAttributesCount")
    if v is None:
        v = d.get("dropped_attributes_count")
    if v is not None:
        out["dropped_attributes_count"] = _u32(v, "droppedAttributesCount")
    v = d.get("events")
    if v is not None:
        out["events"] = _events(v)
    v = d.get("droppedEventsCount")
    if v is None:
        v = d.get("dropped_events_count")
    if v is not None:
        out["dropped_events_count"] = _u32(v, "droppedEventsCount")
    v = d.get("links")
    if v is not None:
        out["links"] = _links(v)
    v = d.get("droppedLinksCount")
    if v is None:
        v = d.get("dropped_links_count")
    if v is not None:
        out["dropped_links_count"] = _u32(v, "droppedLinksCount")
    v = d.get("status")
    if v is not None:
        out["status"] = _status(v)
    return out


def _status(value: Any) -> dict[str, Any]:
    d = _object(value, "a status", ["status"])
    out: dict[str, Any] = {}
    try:
        v = d.get("message")
        if v is not None:
            out["message"] = _string(v, "message")
        v = d.get("code")
        if v is not None:
            out["code"] = v if type(v) is int and 0 <= v <= 2 else _enum(v, "code", _STATUS_CODES)
    except _Bad as bad:
        bad.path.append("status")
        raise
    return out


def _events(value: Any) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_list(value, "events")):
        try:
            d = _object(item, "an event", [])
            event: dict[str, Any] = {}
            v = _get(d, "timeUnixNano")
            if v is not None:
                event["time_unix_nano"] = _time(v, "timeUnixNano")
            v = d.get("name")
            if v is not None:
                event["name"] = _string(v, "name")
            v = d.get("attributes")
            if v is not None:
                event["attributes"] = _key_values(v, "attributes")
            v = _get(d, "droppedAttributesCount")
            if v is not None:
                event["dropped_attributes_count"] = _u32(v, "droppedAttributesCount")
            out.append(event)
        except _Bad as bad:
            bad.path.append(f"events[{i}]")
            raise
    return out


def _links(value: Any) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_list(value, "links")):
        try:
            d = _object(item, "a link", [])
            link: dict[str, Any] = {}
            v = _get(d, "traceId")
            if v is not None:
                link["trace_id"] = _id(v, "traceId")
            v = _get(d, "spanId")
            if v is not None:
                link["span_id"] = _id(v, "spanId")
            v = _get(d, "traceState")
            if v is not None:
                link["trace_state"] = _string(v, "traceState")
            v = d.get("attributes")
            if v is not None:
                link["attributes"] = _key_values(v, "attributes")
            v = _get(d, "droppedAttributesCount")
            if v is not None:
                link["dropped_attributes_count"] = _u32(v, "droppedAttributesCount")
            v = d.get("flags")
            if v is not None:
                link["flags"] = _u32(v, "flags", _FLAGS_HINT)
            out.append(link)
        except _Bad as bad:
            bad.path.append(f"links[{i}]")
            raise
    return out


def _scope_spans(value: Any) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_list(value, "scopeSpans")):
        try:
            d = _object(item, "a scopeSpans entry", [])
            entry: dict[str, Any] = {}
            v = d.get("scope")
            if v is not None:
                entry["scope"] = _scope(v)
            v = d.get("spans")
            if v is not None:
                spans = []
                for j, span in enumerate(_list(v, "spans")):
                    try:
                        spans.append(_span(_object(span, "a span", [])))
                    except _Bad as bad:
                        bad.path.append(f"spans[{j}]")
                        raise
                entry["spans"] = spans
            v = _get(d, "schemaUrl")
            if v is not None:
                entry["schema_url"] = _string(v, "schemaUrl")
            out.append(entry)
        except _Bad as bad:
            bad.path.append(f"scopeSpans[{i}]")
            raise
    return out


def _resource_spans(value: Any) -> list[dict[str, Any]]:
    out = []
    for i, item in enumerate(_list(value, "resourceSpans")):
        try:
            d = _object(item, "a resourceSpans entry", [])
            entry: dict[str, Any] = {}
            v = d.get("resource")
            if v is not None:
                entry["resource"] = _resource(v)
            v = _get(d, "scopeSpans")
            if v is not None:
                entry["scope_spans"] = _scope_spans(v)
            v = _get(d, "schemaUrl")
            if v is not None:
                entry["schema_url"] = _string(v, "schemaUrl")
            out.append(entry)
        except _Bad as bad:
            bad.path.append(f"resourceSpans[{i}]")
            raise
    return out


def decode_export_request_json(body: bytes) -> ExportTraceServiceRequest:
    """Decode an OTLP/JSON trace export request body (Content-Type: application/json).

    Raises OtlpDecodeError, whose message names the JSON path of the first bad value,
    when the body is not JSON, not an object, or holds a value of the wrong type or
    out of range. Ids of the wrong length are not an error here.
    """
    # Decoding allocates tens of thousands of acyclic containers per request, each of
    # which counts towards the cyclic collector's thresholds; the collections this sets
    # off find nothing to free and cost a third of the decode time. Reference counting
    # frees everything here, so the collector is paused for the duration.
    collecting = gc.isenabled()
    if collecting:
        gc.disable()
    try:
        return _decode(body)
    finally:
        if collecting:
            gc.enable()


def _decode(body: bytes) -> ExportTraceServiceRequest:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in exc.msg:
            raise OtlpDecodeError(
                f"the request body nests JSON deeper than orjson's limit ({exc}); "
                f"attribute values may nest at most {_MAX_DEPTH} levels of "
                "arrayValue/kvlistValue"
            ) from None
        raise OtlpDecodeError(
            f"the request body is not valid JSON ({exc}); if it is protobuf, send it with "
            "Content-Type: application/x-protobuf"
        ) from None
    if type(document) is not dict:
        raise OtlpDecodeError(
            f"the request body is {_show(document)}, not a JSON object; an OTLP/JSON trace "
            'export request is an object like {"resourceSpans": [...]}'
        )
    try:
        v = _get(document, "resourceSpans")
        fields: dict[str, Any] = {} if v is None else {"resource_spans": _resource_spans(v)}
    except _Bad as bad:
        raise OtlpDecodeError(bad.render()) from None
    try:
        return ExportTraceServiceRequest(**fields)
    except (TypeError, ValueError) as exc:  # every value was checked above: a bug if reached
        raise OtlpDecodeError(f"the request cannot be built: {exc}") from None


# --------------------------------------------------------------------------- encoding


def _encode_double(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _encode_any(value: AnyValue, depth: int) -> dict[str, Any]:
    which = value.WhichOneof("value")
    if which == "string_value":
        return {"stringValue": value.string_value}
    if which == "int_value":
        return {"intValue": str(value.int_value)}
    if which == "bool_value":
        return {"boolValue": value.bool_value}
    if which == "double_value":
        return {"doubleValue": _encode_double(value.double_value)}
    if which in ("array_value", "kvlist_value"):
        if depth >= _MAX_DEPTH:
            raise ValueError(
                f"an attribute value nests deeper than {_MAX_DEPTH} levels of "
                "arrayValue/kvlistValue, which the decoder refuses"
            )
        if which == "array_value":
            values = [_encode_any(v, depth + 1) for v in value.array_value.values]
            return {"arrayValue": {"values": values} if values else {}}
        kvs = _encode_key_values(value.kvlist_value.values, depth + 1)
        return {"kvlistValue": {"values": kvs} if kvs else {}}
    if which == "bytes_value":
        return {"bytesValue": binascii.b2a_base64(value.bytes_value, newline=False).decode()}
    if which == "string_value_strindex":
        return {"stringValueStrindex": value.string_value_strindex}
    return {}


def _encode_key_values(items: Any, depth: int = 1) -> list[dict[str, Any]]:
    out = []
    for kv in items:
        item: dict[str, Any] = {}
        if kv.key:
            item["key"] = kv.key
        if kv.HasField("value"):
            item["value"] = _encode_any(kv.value, depth)
        if kv.key_strindex:
            item["keyStrindex"] = kv.key_strindex
        out.append(item)
    return out


def _encode_resource(resource: Resource) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if resource.attributes:
        out["attributes"] = _encode_key_values(resource.attributes)
    if resource.dropped_attributes_count:
        out["droppedAttributesCount"] = resource.dropped_attributes_count
    if resource.entity_refs:
        out["entityRefs"] = [_encode_entity_ref(ref) for ref in resource.entity_refs]
    return out


def _encode_entity_ref(ref: EntityRef) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ref.schema_url:
        out["schemaUrl"] = ref.schema_url
    if ref.type:
        out["type"] = ref.type
    if ref.id_keys:
        out["idKeys"] = list(ref.id_keys)
    if ref.description_keys:
        out["descriptionKeys"] = list(ref.description_keys)
    return out


def _encode_scope(scope: InstrumentationScope) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if scope.name:
        out["name"] = scope.name
    if scope.version:
        out["version"] = scope.version
    if scope.attributes:
        out["attributes"] = _encode_key_values(scope.attributes)
    if scope.dropped_attributes_count:
        out["droppedAttributesCount"] = scope.dropped_attributes_count
    return out


def _encode_span(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if span.trace_id:
        out["traceId"] = span.trace_id.hex()
    if span.span_id:
        out["spanId"] = span.span_id.hex()
    if span.trace_state:
        out["traceState"] = span.trace_state
    if span.parent_span_id:
        out["parentSpanId"] = span.parent_span_id.hex()
    if span.flags:
        out["flags"] = span.flags
    if span.name:
        out["name"] = span.name
    if span.kind:
        out["kind"] = span.kind
    if span.start_time_unix_nano:
        out["startTimeUnixNano"] = str(span.start_time_unix_nano)
    if span.end_time_unix_nano:
        out["endTimeUnixNano"] = str(span.end_time_unix_nano)
    if span.attributes:
        out["attributes"] = _encode_key_values(span.attributes)
    if span.dropped_attributes_count:
        out["droppedAttributesCount"] = span.dropped_attributes_count
    if span.events:
        out["events"] = [_encode_event(event) for event in span.events]
    if span.dropped_events_count:
        out["droppedEventsCount"] = span.dropped_events_count
    if span.links:
        out["links"] = [_encode_link(link) for link in span.links]
    if span.dropped_links_count:
        out["droppedLinksCount"] = span.dropped_links_count
    if span.HasField("status"):
        status = span.status
        encoded: dict[str, Any] = {}
        if status.message:
            encoded["message"] = status.message
        if status.code:
            encoded["code"] = status.code
        out["status"] = encoded
    return out


def _encode_event(event: Span.Event) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if event.time_unix_nano:
        out["timeUnixNano"] = str(event.time_unix_nano)
    if event.name:
        out["name"] = event.name
    if event.attributes:
        out["attributes"] = _encode_key_values(event.attributes)
    if event.dropped_attributes_count:
        out["droppedAttributesCount"] = event.dropped_attributes_count
    return out


def _encode_link(link: Span.Link) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if link.trace_id:
        out["traceId"] = link.trace_id.hex()
    if link.span_id:
        out["spanId"] = link.span_id.hex()
    if link.trace_state:
        out["traceState"] = link.trace_state
    if link.attributes:
        out["attributes"] = _encode_key_values(link.attributes)
    if link.dropped_attributes_count:
        out["droppedAttributesCount"] = link.dropped_attributes_count
    if link.flags:
        out["flags"] = link.flags
    return out


def encode_export_request_json(request: ExportTraceServiceRequest) -> bytes:
    """Encode a trace export request as OTLP/JSON (UTF-8 bytes).

    Hex ids, integer enums, 64-bit integers as decimal strings, lowerCamelCase keys, and
    fields at their default left out (a message field that is set is written, if empty
    as {}). Raises ValueError for attribute values nested deeper than the decoder takes.
    """
    resource_spans = []
    for rs in request.resource_spans:
        entry: dict[str, Any] = {}
        if rs.HasField("resource"):
            entry["resource"] = _encode_resource(rs.resource)
        scope_spans = []
        for ss in rs.scope_spans:
            scope_entry: dict[str, Any] = {}
            if ss.HasField("scope"):
                scope_entry["scope"] = _encode_scope(ss.scope)
            if ss.spans:
                scope_entry["spans"] = [_encode_span(span) for span in ss.spans]
            if ss.schema_url:
                scope_entry["schemaUrl"] = ss.schema_url
            scope_spans.append(scope_entry)
        if scope_spans:
            entry["scopeSpans"] = scope_spans
        if rs.schema_url:
            entry["schemaUrl"] = rs.schema_url
        resource_spans.append(entry)
    document = {"resourceSpans": resource_spans} if resource_spans else {}
    return orjson.dumps(document)
