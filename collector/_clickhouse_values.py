"""Attribute values, kinds and status codes as text, exactly as the OpenTelemetry Collector's
`clickhouse` exporter writes them into `otel_traces` (`exporter_traces.go`, `pushTraceData`):

- `SpanKind` is `ptrace.SpanKind.String()` (`Server`, …), `StatusCode` is
  `ptrace.StatusCode.String()` (`Unset`, `Ok`, `Error`);
- every attribute value is `pcommon.Value.AsString()`: strings as they are, bools
  `true`/`false`, ints in decimal, doubles as ES6 number text (`2.0` -> `2`), bytes in base64,
  arrays and maps as Go's `encoding/json` writes them (sorted keys, HTML characters escaped).

The writer stringifies with these, and the reads match an expected value by the same text.
"""

from __future__ import annotations

import base64
import decimal
import math
from collections.abc import Iterable

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
"""`ptrace.SpanKind.String()` by OTLP enum value."""
STATUS_CODES = ("Unset", "Ok", "Error")
"""`ptrace.StatusCode.String()` by OTLP enum value."""


def kind_string(kind: int) -> str:
    # pdata prints an unknown enum value as its number
    return SPAN_KINDS[kind] if 0 <= kind < len(SPAN_KINDS) else str(kind)


def status_string(code: int) -> str:
    return STATUS_CODES[code] if 0 <= code < len(STATUS_CODES) else str(code)


def float_string(value: float) -> str:
    """pcommon's `float64AsString`: Go's encoding/json number text (ES6 number to string)."""
    if math.isinf(value) or math.isnan(value):
        return "json: unsupported value: " + ("NaN" if math.isnan(value) else "+Inf" if value > 0 else "-Inf")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = repr(value)  # shortest digits, e-notation in this range, as Go's 'e' with -1
        mantissa, _, exponent = text.partition("e")
        sign, digits = exponent[0], exponent[1:].lstrip("0") or "0"
        return f"{mantissa}e{sign}{digits.zfill(2) if sign == '+' else digits}"
    # shortest digits that round-trip, written without an exponent (Go's 'f' with -1)
    return format(decimal.Decimal(repr(value)).normalize(), "f")


# Go's encoding/json escapes these inside strings (HTMLEscape, and the JS line separators)
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029",
               '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _json_string(text: str) -> str:
    out = ['"']
    for char in text:
        escaped = _GO_ESCAPES.get(char)
        if escaped is not None:
            out.append(escaped)
        elif char < " ":
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def _json(value: AnyValue) -> str:
    """`json.Marshal(value.AsRaw())` as Go writes it."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return _json_string(value.string_value)
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "int_value":
        return str(value.int_value)
    if which == "double_value":
        return float_string(value.double_value)
    if which == "bytes_value":
        return '"' + base64.b64encode(value.bytes_value).decode() + '"'
    if which == "array_value":
        return "[" + ",".join(_json(v) for v in value.array_value.values) + "]"
    if which == "kvlist_value":
        # a Go map: one entry per key (the last wins), keys sorted by their bytes
        entries = {kv.key: kv.value for kv in value.kvlist_value.values}
        return "{" + ",".join(f"{_json_string(k)}:{_json(entries[k])}"
                              for k in sorted(entries, key=lambda k: k.encode())) + "}"
    return "null"


def as_string(value: AnyValue) -> str:
    """`pcommon.Value.AsString()`."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return str(value.int_value)
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "double_value":
        return float_string(value.double_value)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if which in ("array_value", "kvlist_value"):
        return _json(value)
    return ""


def attribute_items(key_values: Iterable[KeyValue]) -> list[tuple[str, str]]:
    """`internal.AttributesToMap`: each key once (the last value wins, as a map keeps it)."""
    items: dict[str, str] = {}
    for kv in key_values:
        value = kv.value
        which = value.WhichOneof("value")
        items[kv.key] = value.string_value if which == "string_value" else as_string(value)
    return list(items.items())
