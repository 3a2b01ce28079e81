"""OTLP/JSON encoding of trace export requests (the decoder is `_otlp_json_decode`).

Why this exists rather than `google.protobuf.json_format`: that writes proto3 JSON, with
ids in base64 where OTLP/JSON writes hex, so its output is not OTLP/JSON; and it is pure
Python over descriptors. Here plain dicts are built from the messages and orjson writes
them. Whatever this writes, the decoder reads back to an equal request; attribute values
nested deeper than the decoder accepts are refused rather than written.
"""

from __future__ import annotations

import binascii
import math
from collections.abc import Callable
from typing import Any, Final

import orjson
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from ._otlp_json_common import _MAX_DEPTH, _REQUEST, _Message, _Repeated, _Scalar

__all__ = ["encode_export_request_json"]


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
                "arrayValue/kvlistValue, which the decoder refuses (protobuf parses at most "
                "100 nested messages)"
            )
        encoded: dict[str, Any]
        if which == "array_value":
            values = [_encode_any(v, depth + 1) for v in value.array_value.values]
            encoded = {"arrayValue": {"values": values} if values else {}}
        else:
            kvs = _encode_key_values(value.kvlist_value.values, depth + 1)
            encoded = {"kvlistValue": {"values": kvs} if kvs else {}}
        return encoded
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


#: A field as `_encode_fields` writes it: JSON name, proto name, how its value is written
#: (None: as it is), and whether it is a message field, written when set (if empty as {})
#: where any other field is written when not at its default (zero, "", empty).
_EncodeField = tuple[str, str, Callable[[Any], Any] | None, bool]


def _encode_fields(message: Message, fields: tuple[_EncodeField, ...]) -> dict[str, Any]:
    """A message as a JSON object, its fields in the order of `fields`."""
    out: dict[str, Any] = {}
    for camel, snake, encode, is_message in fields:
        value = getattr(message, snake)
        if message.HasField(snake) if is_message else value:
            out[camel] = value if encode is None else encode(value)
    return out


def _repeated(fields: tuple[_EncodeField, ...]) -> Callable[[Any], list[dict[str, Any]]]:
    return lambda messages: [_encode_fields(message, fields) for message in messages]


def _message(fields: tuple[_EncodeField, ...]) -> Callable[[Any], dict[str, Any]]:
    return lambda message: _encode_fields(message, fields)


_SCALARS: Final[dict[_Scalar, Callable[[Any], Any] | None]] = {
    _Scalar.ID: bytes.hex,
    _Scalar.STRING: None,
    _Scalar.STRINGS: list,
    _Scalar.COUNT: None,
    _Scalar.FLAGS: None,
    _Scalar.TIME: str,
    _Scalar.ATTRIBUTES: _encode_key_values,
    _Scalar.SPAN_KIND: None,
    _Scalar.STATUS_CODE: None,
}


def _encoders(message: _Message) -> tuple[_EncodeField, ...]:
    """The fields of a message of the schema in `_otlp_json_common`, ready for `_encode_fields`."""
    fields: list[_EncodeField] = []
    for camel, snake, kind in message.fields:
        if isinstance(kind, _Repeated):
            fields.append((camel, snake, _repeated(_encoders(kind.message)), False))
        elif isinstance(kind, _Message):
            fields.append((camel, snake, _message(_encoders(kind)), True))
        else:
            fields.append((camel, snake, _SCALARS[kind], False))
    return tuple(fields)


_REQUEST_FIELDS: Final = _encoders(_REQUEST)


def encode_export_request_json(request: ExportTraceServiceRequest) -> bytes:
    """Encode a trace export request as OTLP/JSON (UTF-8 bytes).

    Hex ids, integer enums, 64-bit integers as decimal strings, lowerCamelCase keys, and
    fields at their default left out (a message field that is set is written, if empty
    as {}). Raises ValueError for attribute values nested deeper than the decoder takes.
    """
    return orjson.dumps(_encode_fields(request, _REQUEST_FIELDS))
