"""Decoding single OTLP/JSON values: integers, ids, doubles, bytes, AnyValue, attributes.

The rules each JSON value must follow, and the error messages for breaking them, kept
apart from the walk over the request's messages in `_otlp_json_decode` (which uses
these) so that each file can be read on its own. An error is raised as `_Bad` with the
JSON path of the value; the callers above add their part of the path on the way out.
"""

from __future__ import annotations

import binascii
import math
import re
from typing import Any, Final

from ._otlp_json_common import _MAX_DEPTH

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
_BASE64_ALPHABET: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_="
)
_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")
_URLSAFE_TO_STANDARD: Final = str.maketrans("-_", "+/")

_TIME_HINT: Final = "write nanoseconds since the epoch as a JSON number or a decimal string"
_COUNT_HINT: Final = "write a count from 0 to 4294967295 as a JSON number"
_INT_HINT: Final = "write a signed 64-bit integer as a JSON number or a decimal string"
_INDEX_HINT: Final = "write a signed 32-bit integer as a JSON number"

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
_ANY_KEYS: Final[dict[str, int]] = {
    key: code for code, names in enumerate(_ANY_MEMBERS) for key in names
}


class _Bad(Exception):
    """A value broke a rule; `path` collects the JSON path innermost first on the way out."""

    def __init__(self, message: str, path: list[str]) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def render(self) -> str:
        path = ".".join(reversed(self.path))
        return f"{path}: {self.message}" if path else self.message


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
        # Every OTLP integer fits in 20 digits; a longer string is out of range, and would
        # cost int() quadratic time (Python refuses past 4300 digits).
        if len(value.lstrip("-").lstrip("0")) > 20:
            raise _Bad(f"{_show(value)} is out of range: {name} takes {low} to {high}", [name])
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
    if type(value) is str and len(value) < 20 and value.isdecimal() and value.isascii():
        return int(value)  # below 10**19, so in range: the usual case, "1700000000000000000"
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


def _looks_like_base64(value: str) -> bool:
    """Base64 by its alphabet and its decoding, and shaped like an id (8 or 16 bytes) or
    spelled with a sign hex never has: plain words such as 'xyz' are not blamed on base64."""
    if not value or not all(c in _BASE64_ALPHABET for c in value):
        return False
    standard = value.translate(_URLSAFE_TO_STANDARD).rstrip("=")
    try:
        decoded = binascii.a2b_base64(standard + "=" * (-len(standard) % 4), strict_mode=True)
    except binascii.Error:
        return False
    return len(decoded) in (8, 16) or any(c in "+/=-_" for c in value)


def _id_problem(value: Any, name: str) -> str:
    if type(value) is not str:
        return f"{_show(value)} is not a string; write {name} as a string of hex digits"
    rule = f'{name} must be written in hex (OTLP/JSON), e.g. "5b8efff798038103"'
    if value and all(c in _HEX_DIGITS for c in value):
        return f"{_show(value)} has an odd number of hex digits ({len(value)}); {rule}"
    if _looks_like_base64(value):
        return (
            f"{_show(value)} is not hex: it looks like base64, as proto3 JSON "
            "(google.protobuf.json_format, protojson) writes bytes; "
            f"{rule}. Use an OTLP/JSON encoder (an OpenTelemetry SDK's OTLP/HTTP JSON "
            "exporter, the Collector's file exporter), or send protobuf to the OTLP receivers "
            "(Content-Type: application/x-protobuf)"
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
            f"{_show(value)} is not an object; an AnyValue is an object such as "
            + '{"stringValue": "text"}',
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
                    f"values nest deeper than {_MAX_DEPTH} levels of arrayValue/kvlistValue, "
                    "more than protobuf's limit of 100 nested messages leaves room for; "
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
    out: list[dict[str, Any]] = []
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
    index = kv.get("keyStrindex")
    if index is None:
        index = kv.get("key_strindex")
    if index is not None:
        item["key_strindex"] = _integer(index, "keyStrindex", _I32_MIN, _I32_MAX, _INDEX_HINT)
    return item
