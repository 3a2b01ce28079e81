"""The Jaeger query API's parameters, read as Jaeger's query service reads them
(`cmd/query/app/query_parser.go`), and what a trace search matches.

Each parameter's pattern is written once, here: the OpenAPI document publishes it and the
parser holds requests to it, so the two never disagree. Every refusal names the parameter
and what to send instead, and is answered 400 in Jaeger's error envelope.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import orjson

from tracebaton.collector import AttributeValue, SpanKind, StatusCode, StoredSpan, TraceQuery, TraceSummary

from ._jaeger_json import value_text

MAX_NS = 2**63 - 1
MAX_SEARCH_LIMIT = 1500
"""The largest `limit` Jaeger UI's search form offers."""
DEFAULT_SEARCH_LIMIT = 100
DEFAULT_SEARCH_LOOKBACK_NS = 2 * 24 * 3600 * 10**9
"""Jaeger's search window when `start` is not given: two days."""
DEFAULT_DEPENDENCY_LOOKBACK_MS = 24 * 3600 * 1000
MAX_LISTED = 100
"""At most this many `traceID` or `tag` values in one request."""

TRACE_ID_PATTERN = (
    r"^(?:[0-9a-fA-F]{1,32}|[A-Za-z0-9+/]{22}(?:==)?|[A-Za-z0-9_-]{22}(?:==)?"
    r"|[A-Za-z0-9+/]{11}=?|[A-Za-z0-9_-]{11}=?)$"
)
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_UNIT = r"(?:ns|us|µs|μs|ms|s|m|h)"
_GO_DURATION = rf"\+?(?:0|(?:{_NUMBER}{_UNIT})+)"
DURATION_PATTERN = rf"^(?:{_GO_DURATION})?$"
"""Go's `time.ParseDuration` without negative values: `100ms`, `1.5s`, `1h30m`."""
LOOKBACK_PATTERN = rf"^(?:custom|[0-9]+[dw]|{_GO_DURATION})?$"
"""What Jaeger UI sends as `lookback` (`1h`, `2d`, `custom`); used only without `start`."""
MICROS_PATTERN = r"^[0-9]{0,19}$"
MILLIS_PATTERN = r"^[0-9]{0,16}$"
LIMIT_PATTERN = r"^(?:[1-9][0-9]{0,2}|1[0-4][0-9]{2}|1500)?$"
BOOL_PATTERN = r"^(?:1|t|T|TRUE|true|True|0|f|F|FALSE|false|False)?$"
SPAN_KINDS = ("", "server", "client", "producer", "consumer", "internal", "unspecified")

_UNIT_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
            "h": 3600 * 10**9, "d": 86400 * 10**9, "w": 7 * 86400 * 10**9}
_DURATION_PART = re.compile(rf"({_NUMBER})({_UNIT})")
# tags Jaeger derives from a span's fields rather than its attributes (the translator's
# names, and those of Jaeger v2's own stores)
_DERIVED_TAGS = frozenset({
    "error", "span.kind", "span.status", "otel.status_code", "otel.status_description",
    "scope.name", "scope.version", "otel.scope.name", "otel.scope.version", "w3c.tracestate",
})
_GLOB = re.compile(r"[*?\[]")


def jaeger_responses(ok: type, ok_description: str, error: type,
                     not_found: str | None = None) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI responses of a Jaeger route, in either API's shapes: its answer, the 400
    a parameter Jaeger does not take gets, the 401 of a token server, and its 404."""
    responses: dict[int | str, dict[str, Any]] = {
        200: {"model": ok, "description": ok_description},
        400: {"model": error, "description": "a parameter Jaeger's API does not take: the message names it"},
        401: {"model": error, "description": "the server has a token and the request carried neither it "
                                             "nor the dashboard's cookie"},
    }
    if not_found is not None:
        responses[404] = {"model": error, "description": not_found}
    return responses


class JaegerBadRequest(ValueError):
    """A parameter Jaeger's API would not take: answered 400 with this message."""


def _matching(pattern: str, value: str) -> str | None:
    """The value if it matches (Python's `$` also takes one trailing newline, as the
    OpenAPI document's regular expressions do; it is dropped), else None."""
    if re.match(pattern, value) is None:
        return None
    return value.removesuffix("\n")


def _shown(value: str) -> str:
    return repr(value if len(value) <= 60 else value[:57] + "...")


def parse_trace_id(text: str) -> str:
    """32 lower-case hex digits from what Jaeger accepts: up to 32 hex digits (left-padded
    with zeros: a 64-bit id is the lower half), or the id's 16 (or 8) bytes in base64."""
    value = _matching(TRACE_ID_PATTERN, text)
    if value is None:
        raise JaegerBadRequest(
            f"trace id {_shown(text)} is not a trace id; send 1 to 32 hex digits (shorter ids are "
            "left-padded with zeros, as Jaeger does), e.g. 4bf92f3577b34da6a3ce929d0e0e4736"
        )
    if re.fullmatch(r"[0-9a-fA-F]+", value):
        return value.lower().rjust(32, "0")
    urlsafe = "-" in value or "_" in value
    padded = value + "=" * (-len(value) % 4)
    try:
        raw = base64.b64decode(padded, altchars=b"-_" if urlsafe else None, validate=True)
    except binascii.Error:  # the pattern admits only decodable text; kept for safety
        raise JaegerBadRequest(f"trace id {_shown(text)} is neither hex nor base64") from None
    return raw.hex().rjust(32, "0")


def parse_duration_ns(name: str, text: str | None) -> int:
    """Go's duration syntax, as Jaeger reads minDuration and maxDuration; 0 when absent."""
    value = _matching(DURATION_PATTERN, text or "")
    if value is None:
        raise JaegerBadRequest(
            f"query parameter {name}: {_shown(text or '')} is not a duration; write numbers with units "
            "(ns, us, ms, s, m, h) as Jaeger does, e.g. 100ms, 1.5s or 1m30s"
        )
    return _duration_ns(value)


def _duration_ns(value: str) -> int:
    total = Decimal(0)
    for number, unit in _DURATION_PART.findall(value):
        total += Decimal(number) * _UNIT_NS[unit]
    return min(MAX_NS, int(total))


def parse_lookback_ns(text: str | None) -> int | None:
    value = _matching(LOOKBACK_PATTERN, text or "")
    if value is None:
        raise JaegerBadRequest(
            f"query parameter lookback: {_shown(text or '')} is not a look-back window; send a duration "
            "such as 1h, 2d or 1w, or `custom` with start and end"
        )
    if value in ("", "custom"):
        return None
    if value[-1] in "dw":
        return min(MAX_NS, int(value[:-1]) * _UNIT_NS[value[-1]])
    return _duration_ns(value)


def _integer(name: str, text: str | None, pattern: str, what: str) -> int | None:
    value = _matching(pattern, text or "")
    if value is None:
        raise JaegerBadRequest(f"query parameter {name}: {_shown(text or '')} is not {what}")
    return int(value) if value else None


def parse_micros_ns(name: str, text: str | None) -> int | None:
    """A time in microseconds since the epoch (Jaeger's search and trace parameters)."""
    micros = _integer(name, text, MICROS_PATTERN, "a time; send microseconds since the epoch, e.g. "
                      "1700000000000000")
    return None if micros is None else min(MAX_NS, micros * 1000)


def parse_millis(name: str, text: str | None, *, example: str = "1700000000000") -> int | None:
    """Milliseconds: a time since the epoch or a window (the dependencies parameters)."""
    return _integer(name, text, MILLIS_PATTERN, f"a whole number of milliseconds, e.g. {example}")


def parse_limit(text: str | None, *, name: str = "limit") -> int:
    limit = _integer(name, text, LIMIT_PATTERN, f"a whole number from 1 to {MAX_SEARCH_LIMIT}")
    return DEFAULT_SEARCH_LIMIT if limit is None else limit


def _go_bool(text: str) -> bool | None:
    """Go's `strconv.ParseBool`, which Jaeger reads booleans with; None for anything else."""
    value = _matching(BOOL_PATTERN, text)
    return None if not value else value.lower() in ("1", "t", "true")


def parse_bool(name: str, text: str | None) -> bool:
    if _matching(BOOL_PATTERN, text or "") is None:
        raise JaegerBadRequest(f"query parameter {name}: {_shown(text or '')} is not true or false")
    return bool(_go_bool(text or ""))


def parse_span_kind(text: str | None) -> SpanKind | None:
    value = text or ""
    if value not in SPAN_KINDS:
        raise JaegerBadRequest(
            f"query parameter spanKind: {_shown(value)} is not a span kind; send one of "
            + ", ".join(k for k in SPAN_KINDS if k)
        )
    return SpanKind[value.upper()] if value else None


def parse_tags(simple: Sequence[str], json_maps: Sequence[str], *, json_name: str = "tags") -> dict[str, str]:
    """`tag=key:value` (repeatable) and `tags={"key":"value"}` (a JSON object of strings), as
    Jaeger merges them; `json_name` is what the API calls the JSON one (v3: query.attributes)."""
    if len(simple) > MAX_LISTED:
        raise JaegerBadRequest(f"query parameter tag is given {len(simple)} times; send at most {MAX_LISTED}")
    tags: dict[str, str] = {}
    for item in simple:
        key, colon, value = item.partition(":")
        if not colon:
            raise JaegerBadRequest(
                f"query parameter tag: {_shown(item)} is not key:value, e.g. tag=http.status_code:500"
            )
        tags[key] = value
    for text in json_maps:
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError as error:
            raise JaegerBadRequest(
                f"query parameter {json_name} is not JSON ({error}); send a JSON object of strings, "
                f'e.g. {json_name}={{"http.status_code":"500"}}'
            ) from None
        if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
            raise JaegerBadRequest(
                f"query parameter {json_name}: {_shown(text)} is not a JSON object of strings; quote "
                f'every value, e.g. {json_name}={{"http.status_code":"500","error":"true"}}'
            )
        tags.update(parsed)
    for key, value in tags.items():
        try:
            (key + value).encode()
        except UnicodeEncodeError:
            raise JaegerBadRequest(f"query parameter {json_name}: {_shown(key)} is not UTF-8 text") from None
    return tags


def _value_equals(stored: AttributeValue, wanted: str) -> bool:
    """Jaeger compares a tag's text; numbers also compare as numbers (`200` = `200.0`)."""
    if value_text(stored) == wanted:
        return True
    if isinstance(stored, bool) or not isinstance(stored, int | float):
        return False
    try:
        return float(wanted) == stored
    except ValueError:
        return False


def _in(attributes: Mapping[str, AttributeValue], key: str, wanted: str) -> bool:
    return key in attributes and _value_equals(attributes[key], wanted)


def _status(text: str) -> StatusCode:
    return {"OK": StatusCode.OK, "ERROR": StatusCode.ERROR}.get(text.upper(), StatusCode.UNSET)


def tag_matches(span: StoredSpan, key: str, wanted: str) -> bool:
    """One search tag on one span, as Jaeger's stores match it: the tags Jaeger derives
    (error, span.kind, otel.status_code, the scope) from the span's fields, `resource.<key>`
    on the resource, any other key on the span's, its resource's, its events' or its links'
    attributes."""
    if key == "error":
        error = _go_bool(wanted)
        return error is not None and (span.status_code is StatusCode.ERROR) == error
    if key in ("span.status", "otel.status_code"):
        return span.status_code is _status(wanted)
    if key == "span.kind":
        return span.kind.label == wanted.lower() and span.kind is not SpanKind.UNSPECIFIED
    if key in ("scope.name", "otel.scope.name"):
        return span.scope_name == wanted
    if key in ("scope.version", "otel.scope.version"):
        return span.scope_version == wanted
    if key == "otel.status_description":
        return span.status_message == wanted
    if key == "w3c.tracestate":
        return span.trace_state == wanted
    if key.startswith("resource."):
        return _in(span.resource, key[len("resource."):], wanted)
    return (
        _in(span.attributes, key, wanted)
        or _in(span.resource, key, wanted)
        or any(_in(event.attributes, key, wanted) for event in span.events)
        or any(_in(link.attributes, key, wanted) for link in span.links)
    )


@dataclasses.dataclass(frozen=True)
class TraceSearch:
    """A Jaeger trace search: a trace matches when one of its spans matches every field."""

    service: str | None = None
    operation: str | None = None
    tags: Mapping[str, str] = dataclasses.field(default_factory=dict)
    start_min_ns: int = 0
    start_max_ns: int = MAX_NS
    duration_min_ns: int = 0
    duration_max_ns: int = 0
    """0: no bound (Jaeger's reading of an absent or zero duration)."""
    limit: int = DEFAULT_SEARCH_LIMIT

    def span_matches(self, span: StoredSpan) -> bool:
        if self.service is not None and span.service != self.service:
            return False
        if self.operation is not None and span.name != self.operation:
            return False
        if not self.start_min_ns <= span.start_unix_nano <= self.start_max_ns:
            return False
        duration = span.end_unix_nano - span.start_unix_nano
        if self.duration_min_ns and duration < self.duration_min_ns:
            return False
        if self.duration_max_ns and duration > self.duration_max_ns:
            return False
        return all(tag_matches(span, key, wanted) for key, wanted in self.tags.items())

    def may_match(self, summary: TraceSummary) -> bool:
        """False when no span of the summarized trace can match: skip reading it."""
        if self.service is not None and self.service not in summary.services:
            return False
        if summary.end_unix_nano < self.start_min_ns or summary.start_unix_nano > self.start_max_ns:
            return False
        return not self.duration_min_ns or summary.duration_ns >= self.duration_min_ns

    def store_queries(self, *, limit: int, arrival_slack_ns: int) -> list[TraceQuery]:
        """What the store can filter on, most selective first: the same span in the service,
        with the operation's name, carrying the tags as attributes (a tag that is a derived
        tag or lives on a resource or event is not one the store finds, so a second query
        without the tags follows when the first finds nothing). Arrival bounds the window
        from below: a span arrives after it started, give or take the slack of a clock."""
        status: StatusCode | None = None
        attributes: dict[str, str] = {}
        for key, value in self.tags.items():
            if key == "error" and _go_bool(value):
                status = StatusCode.ERROR
            elif key in ("span.status", "otel.status_code"):
                status = _status(value)
            elif key not in _DERIVED_TAGS and not key.startswith("resource."):
                attributes[key] = value
        name = self.operation if self.operation is not None and not _GLOB.search(self.operation) else None
        since = max(0, self.start_min_ns - arrival_slack_ns) if self.start_min_ns else None
        first = TraceQuery(service=self.service, name=name, attributes=attributes, status=status,
                           since_unix_nano=since, limit=limit)
        if not attributes:
            return [first]
        return [first, dataclasses.replace(first, attributes={})]


def search_window(start_ns: int | None, end_ns: int | None, lookback_ns: int | None) -> tuple[int, int]:
    """Jaeger's defaults: `end` now; `start` the look-back before now (two days by default)."""
    now = time.time_ns()
    end = now if end_ns is None else end_ns
    if start_ns is None:
        start_ns = max(0, now - (DEFAULT_SEARCH_LOOKBACK_NS if lookback_ns is None else lookback_ns))
    return start_ns, end
