"""OTLP/JSON decoding of trace export requests (the encoder is `_otlp_json_encode`).

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

from collections.abc import Callable
from typing import Any, Final

import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from tracebaton import OtlpDecodeError

from ._otlp_json_common import _MAX_DEPTH, _REQUEST, _Message, _Repeated, _Scalar
from ._otlp_json_decode_values import (
    _Bad,
    _enum,
    _id,
    _key_values,
    _list,
    _object,
    _show,
    _string,
    _string_list,
    _time,
    _u32,
)

__all__ = ["decode_export_request_json"]

_SPAN_KINDS: Final[dict[str, int]] = dict(Span.SpanKind.items())
_STATUS_CODES: Final[dict[str, int]] = dict(Status.StatusCode.items())
_FLAGS_HINT: Final = "write the 32 flag bits as a JSON number from 0 to 4294967295"

#: Checks one JSON value and returns it as a constructor argument; given the value and
#: its JSON name, which is the last part of the path in an error.
_Decode = Callable[[Any, str], Any]
#: A field as `_fields` reads it: JSON name, proto name (accepted in the JSON too, and
#: the constructor keyword), and how its value is decoded.
_DecodeField = tuple[str, str, _Decode]


def _fields(d: dict[str, Any], fields: tuple[_DecodeField, ...]) -> dict[str, Any]:
    """A message's fields as constructor keywords, checked in the order of `fields`.

    Spans go through here too: against a hand-unrolled walk per message this costs about
    4% of decode throughput (benchmarks/bench_otlp_json.py), which the one table is worth.
    """
    out: dict[str, Any] = {}
    for camel, snake, decode in fields:
        v = d.get(camel)
        if v is None:
            v = d.get(snake)
        if v is not None:  # null is "not set"
            out[snake] = decode(v, camel)
    return out


def _message(what: str, fields: tuple[_DecodeField, ...]) -> _Decode:
    """The decoder of a message field."""

    def decode(value: Any, name: str) -> dict[str, Any]:
        d = _object(value, what, [name])
        try:
            return _fields(d, fields)
        except _Bad as bad:
            bad.path.append(name)
            raise

    return decode


def _repeated(what: str, fields: tuple[_DecodeField, ...]) -> _Decode:
    """The decoder of a repeated message field, a JSON array of objects."""

    def decode(value: Any, name: str) -> list[dict[str, Any]]:
        out = []
        for i, item in enumerate(_list(value, name)):
            try:
                out.append(_fields(_object(item, what, []), fields))
            except _Bad as bad:
                bad.path.append(f"{name}[{i}]")
                raise
        return out

    return decode


def _flags(value: Any, name: str) -> int:
    return _u32(value, name, _FLAGS_HINT)


def _span_kind(value: Any, name: str) -> int:
    return _enum(value, name, _SPAN_KINDS)


def _status_code(value: Any, name: str) -> int:
    return _enum(value, name, _STATUS_CODES)


_SCALARS: Final[dict[_Scalar, _Decode]] = {
    _Scalar.ID: _id,
    _Scalar.STRING: _string,
    _Scalar.STRINGS: _string_list,
    _Scalar.COUNT: _u32,
    _Scalar.FLAGS: _flags,
    _Scalar.TIME: _time,
    _Scalar.ATTRIBUTES: _key_values,
    _Scalar.SPAN_KIND: _span_kind,
    _Scalar.STATUS_CODE: _status_code,
}


def _decoders(message: _Message) -> tuple[_DecodeField, ...]:
    """The fields of a message of the schema in `_otlp_json_common`, ready for `_fields`."""
    fields: list[_DecodeField] = []
    for camel, snake, kind in message.fields:
        if isinstance(kind, _Repeated):
            decode = _repeated(kind.message.what, _decoders(kind.message))
        elif isinstance(kind, _Message):
            decode = _message(kind.what, _decoders(kind))
        else:
            decode = _SCALARS[kind]
        fields.append((camel, snake, decode))
    return tuple(fields)


_REQUEST_FIELDS: Final = _decoders(_REQUEST)


def decode_export_request_json(body: bytes) -> ExportTraceServiceRequest:
    """Decode an OTLP/JSON trace export request body (Content-Type: application/json).

    Raises OtlpDecodeError, whose message names the JSON path of the first bad value,
    when the body is not JSON, not an object, or holds a value of the wrong type or
    out of range. Ids of the wrong length are not an error here.
    """
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in exc.msg:
            raise OtlpDecodeError(
                f"the request body nests JSON deeper than 1024 levels ({exc}); attribute "
                f"values may nest at most {_MAX_DEPTH} levels of arrayValue/kvlistValue"
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
        fields = _fields(document, _REQUEST_FIELDS)
    except _Bad as bad:
        raise OtlpDecodeError(bad.render()) from None
    try:
        return ExportTraceServiceRequest(**fields)
    except (TypeError, ValueError) as exc:  # every value was checked above: a bug if reached
        raise OtlpDecodeError(f"the request cannot be built ({type(exc).__name__}: {exc})") from exc
