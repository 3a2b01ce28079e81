"""What the store hands to readers: typed, immutable, independent of the storage engine.

A ClickHouse-backed store returns the same objects, so the flow engine, the API and the
dashboard never see SQL rows or protobuf messages.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping, Sequence
from typing import TypeAlias

AttributeValue: TypeAlias = (
    str | bool | int | float | bytes | Sequence["AttributeValue"] | Mapping[str, "AttributeValue"] | None
)
"""An OTLP AnyValue as Python: types are kept (an int stays an int)."""

Attributes: TypeAlias = Mapping[str, AttributeValue]


class SpanKind(enum.IntEnum):
    """OTLP span kinds, with the lower-case names the flow spec and REST API use."""

    UNSPECIFIED = 0
    INTERNAL = 1
    SERVER = 2
    CLIENT = 3
    PRODUCER = 4
    CONSUMER = 5

    @property
    def label(self) -> str:
        return self.name.lower()


class StatusCode(enum.IntEnum):
    UNSET = 0
    OK = 1
    ERROR = 2

    @property
    def label(self) -> str:
        return self.name.lower()


# W3C trace flags live in bits 0-7 of Span.flags; OTLP adds whether the parent was remote.
FLAG_SAMPLED = 0x01
FLAG_HAS_IS_REMOTE = 0x100
FLAG_IS_REMOTE = 0x200


@dataclasses.dataclass(frozen=True, slots=True)
class SpanEvent:
    name: str
    time_unix_nano: int
    attributes: Attributes


@dataclasses.dataclass(frozen=True, slots=True)
class SpanLink:
    trace_id: str
    span_id: str
    trace_state: str
    flags: int
    attributes: Attributes


@dataclasses.dataclass(frozen=True, slots=True)
class StoredSpan:
    """One span as stored. Ids are lower-case hex; times are unix nanoseconds."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: SpanKind
    start_unix_nano: int
    end_unix_nano: int
    status_code: StatusCode
    status_message: str
    service: str
    trace_state: str
    flags: int
    attributes: Attributes
    events: tuple[SpanEvent, ...]
    links: tuple[SpanLink, ...]
    resource: Attributes
    scope_name: str
    scope_version: str
    arrival_unix_nano: int

    @property
    def duration_ns(self) -> int:
        return self.end_unix_nano - self.start_unix_nano

    @property
    def parent_is_remote(self) -> bool | None:
        """True/False when the exporter said so (OTLP flags bits 8-9), else None."""
        if not self.flags & FLAG_HAS_IS_REMOTE:
            return None
        return bool(self.flags & FLAG_IS_REMOTE)


@dataclasses.dataclass(frozen=True, slots=True)
class TraceSummary:
    """One line of a trace listing."""

    trace_id: str
    root_service: str | None
    root_name: str | None
    start_unix_nano: int
    end_unix_nano: int
    span_count: int
    error_count: int
    services: tuple[str, ...]
    last_arrival_unix_nano: int

    @property
    def duration_ns(self) -> int:
        return self.end_unix_nano - self.start_unix_nano


@dataclasses.dataclass(frozen=True, slots=True)
class TraceQuery:
    """A filter for `SpanStore.traces`. Every given field must hold for some span."""

    service: str | None = None
    name: str | None = None
    """A glob over span names (`POST /checkout*`)."""
    attributes: Mapping[str, str | int | float | bool] = dataclasses.field(default_factory=dict)
    status: StatusCode | None = None
    since_unix_nano: int | None = None
    """Only traces with a span that arrived at or after this time."""
    limit: int = 100


@dataclasses.dataclass(frozen=True, slots=True)
class IngestResult:
    """What a receiver reports back to an exporter once spans are committed."""

    accepted_spans: int
    rejected_spans: int
    error_message: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class RunSummary:
    """One recorded flow result as a listing shows it (the whole result is in `RunRecord`)."""

    run_id: str
    name: str
    trace_id: str | None
    passed: bool
    test_id: str | None
    session_id: str | None
    recorded_unix_nano: int
    first_divergence: str | None
    waited_ms: int | None


@dataclasses.dataclass(frozen=True, slots=True)
class RunRecord:
    """A recorded flow result: its summary and the result JSON exactly as it was recorded."""

    summary: RunSummary
    result: Mapping[str, object]


@dataclasses.dataclass(frozen=True, slots=True)
class RunQuery:
    """A filter for `SpanStore.runs`; every given field must hold. Failed runs come first,
    then newest first."""

    passed: bool | None = None
    name: str | None = None
    """A glob over flow names (`checkout*`)."""
    test_id: str | None = None
    """A glob over test ids (`tests/test_shop.py::*`)."""
    session_id: str | None = None
    trace_id: str | None = None
    """Runs of this trace, or with it among the traces the flow covered."""
    since_unix_nano: int | None = None
    limit: int = 100


@dataclasses.dataclass(frozen=True, slots=True)
class Operation:
    """A span name a service has used, with its kind (the Jaeger query API lists both)."""

    name: str
    kind: SpanKind


class WaitCursor:
    """A position in one store's arrivals: take it with `SpanStore.cursor()` before a read,
    give it back to `wait(after=...)`. Opaque: only the store that made it reads it (a
    commit number for DuckDB; an insert-time watermark where arrivals are polled)."""

    __slots__ = ("_position", "_store")

    def __init__(self, store: object, position: object) -> None:
        self._store = store
        self._position = position

    def position_for(self, store: object) -> object:
        """The position, for the store that made it; a cursor from another store is a bug."""
        if store is not self._store:
            raise ValueError("this wait cursor comes from another store; take one with cursor() on "
                             "the store you wait on")
        return self._position

    def __repr__(self) -> str:
        return f"WaitCursor({self._position!r})"


@dataclasses.dataclass(frozen=True, slots=True)
class StoreCapabilities:
    """What a store's schema and engine can do. The flow engine turns a missing capability
    into findings, and the conformance suite selects its tests by these, never by name."""

    typed_attributes: bool
    """Attribute, event and link values keep their OTLP types (an int stays an int); without
    it they read back as strings and an expected value matches its string form."""
    remote_parent_flags: bool
    """Spans keep OTLP's is-remote flag bits, so a hop is known from its edge alone."""
    retention_by_span_count: bool
    """The store applies `retention_max_spans` and `retention_max_age` itself, oldest first,
    sparing pinned traces (ClickHouse leaves retention to its tables' TTL instead)."""
    instant_wake: bool
    """`wait` wakes the moment an arrival commits, for every writer; without it, arrivals
    written by another process are seen by bounded polling."""
