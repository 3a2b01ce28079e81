"""OTLP values as Python values, and the byte patterns that find attributes in span bodies."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from ._model import AttributeValue

PRESENT = "*"
"""An attribute filter value meaning "the attribute is there, whatever its value"."""


def python_value(value: AnyValue) -> AttributeValue:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "bool_value":
        return value.bool_value
    if which == "double_value":
        return value.double_value
    if which == "array_value":
        return [python_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: python_value(kv.value) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return value.bytes_value
    return None


def attribute_dict(key_values: Iterable[KeyValue]) -> dict[str, AttributeValue]:
    return {kv.key: python_value(kv.value) for kv in key_values}


_DECODED: dict[bytes, tuple[str, AttributeValue]] = {}
_DECODED_MAX = 32_768


def attribute_dict_of_bytes(key_values: Iterable[bytes]) -> dict[str, AttributeValue]:
    """`attribute_dict` of serialized KeyValues, each distinct one decoded once.

    Reading a span's attributes through protobuf's objects costs about 2 µs an attribute,
    most of a trace read; the spans of a store repeat the same attributes (a method, a
    route, a service's peer), and a lookup by their bytes costs a tenth of that. Values that
    are lists or maps are decoded afresh every time, since a caller may change them. The
    memory is bounded: past its size it starts over.
    """
    out: dict[str, AttributeValue] = {}
    for raw in key_values:
        found = _DECODED.get(raw)
        if found is None:
            kv = KeyValue.FromString(raw)
            value = python_value(kv.value)
            if isinstance(value, list | dict):
                out[kv.key] = value
                continue
            if len(_DECODED) >= _DECODED_MAX:
                _DECODED.clear()
            found = _DECODED[raw] = (kv.key, value)
        out[found[0]] = found[1]
    return out


def _typed_candidates(wanted: str | int | float | bool) -> list[AnyValue | None]:
    """The AnyValues a filter value may stand for (REST filters arrive as text)."""
    if isinstance(wanted, bool):
        return [AnyValue(bool_value=wanted)]
    if isinstance(wanted, int):
        return [AnyValue(int_value=wanted)] if -(2**63) <= wanted < 2**63 else []
    if isinstance(wanted, float):
        return [None]  # doubles are found by key and compared exactly afterwards
    out: list[AnyValue | None] = [AnyValue(string_value=wanted)]
    try:
        number = int(wanted)
    except ValueError:
        pass
    else:
        if -(2**63) <= number < 2**63:
            out.append(AnyValue(int_value=number))
    if wanted in ("true", "false"):
        out.append(AnyValue(bool_value=wanted == "true"))
    try:
        float(wanted)
    except ValueError:
        pass
    else:
        out.append(None)
    return out


def attribute_patterns(key: str, wanted: str | int | float | bool) -> list[bytes]:
    """Byte strings, one of which occurs in the body of every span holding key=wanted.

    The stored body is the span as the exporter encoded it. Every OTLP exporter in use
    (the SDKs' protobuf encoders, the Collector's) writes fields in number order with
    minimal lengths, as upb does, so an attribute `key=value` appears in the body as the
    exact bytes of `KeyValue(key, value)`; OTLP/JSON is re-encoded by upb on the way in.
    A pattern may also match inside an event or a nested value: it is a prefilter, and
    `matches` decides.
    """
    key_only = KeyValue(key=key).SerializeToString()
    if wanted == PRESENT:
        return [key_only]
    patterns = []
    for candidate in _typed_candidates(wanted):
        if candidate is None:
            # A double's last byte may begin a UTF-8 sequence the following bytes complete,
            # so its encoding is not a safe text pattern; search by key.
            patterns.append(key_only)
        else:
            patterns.append(KeyValue(key=key, value=candidate).SerializeToString())
    return patterns or [key_only]


def value_matches(stored: AttributeValue, wanted: str | int | float | bool) -> bool:
    """Equality as a user means it: typed when typed, by text when the filter is text."""
    if wanted == PRESENT:
        return True
    if isinstance(wanted, str) and not isinstance(stored, str):
        if isinstance(stored, bool):
            return wanted == ("true" if stored else "false")
        if isinstance(stored, int | float):
            try:
                return float(wanted) == stored if isinstance(stored, float) else int(wanted) == stored
            except ValueError:
                return False
        return False
    if isinstance(wanted, bool) or isinstance(stored, bool):
        return type(wanted) is type(stored) and wanted == stored
    return bool(stored == wanted)


def attributes_match(attributes: Mapping[str, Any], wanted: Mapping[str, str | int | float | bool]) -> bool:
    for key, value in wanted.items():
        if key not in attributes or not value_matches(attributes[key], value):
            return False
    return True
