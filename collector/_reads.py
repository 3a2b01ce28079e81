"""Read queries over the DuckDB store, returning the engine-neutral model.

Every read sees the file and the in-memory head of acknowledged spans the file has not
caught up with (`_head`). The head is taken first, the file read after: a span the flush
moves in between is then seen in both places, and reads once, as a re-sent span does.
"""

from __future__ import annotations

import collections
import functools
import threading
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeAlias

import duckdb
import pyarrow as pa
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from ._addresses import served_at
from ._anyvalue import attribute_dict, attribute_dict_of_bytes, attribute_patterns, attributes_match
from ._column_messages import AttributeSpan
from ._head import Head, HeadView, HeldBatch
from ._ids import ResentSpans, trace_id_bytes
from ._maintenance import RowLayout
from ._model import (
    Attributes,
    Operation,
    SpanEvent,
    SpanKind,
    SpanLink,
    StatusCode,
    StoredSpan,
    TraceQuery,
    TraceSummary,
)
from ._schema import only_row

_SPAN_SELECT = (
    "SELECT s.trace_id, s.span_id, s.parent_span_id, s.service, s.resource_id, s.scope_id, "
    "s.body, s.arrival_ns FROM spans s"
)
_SPAN_COLUMNS = ("trace_id", "span_id", "parent_span_id", "service", "resource_id", "scope_id",
                 "body", "arrival_ns")
_HEAD_SPAN_SELECT = _SPAN_SELECT.replace("FROM spans s", "FROM head_spans s")
# The reads that aggregate over spans see the head through these names.
_WITH_HEAD = ("WITH spans AS NOT MATERIALIZED (SELECT * FROM main.spans UNION ALL BY NAME "
              "SELECT * FROM head_spans)")
# Prefilter over bodies: both sides go through the same decoding, so equal bytes give
# equal text (see _anyvalue.attribute_patterns); exact matching happens in Python.
_BODY_CONTAINS = "contains(decode(s.body, 'replace'), decode(?::BLOB, 'replace'))"


_EMPTY_LINKS = pa.table({name: pa.array([], pa.binary()) for name in (
    "trace_id", "span_id", "linked_trace_id", "linked_span_id")} | {"arrival_ns": pa.array([], pa.int64())})


@functools.lru_cache(maxsize=4096)
def _resource(body: bytes) -> Attributes:
    # Shared between the spans of a resource, hence read-only.
    return types.MappingProxyType(attribute_dict(Resource.FromString(body).attributes))


@functools.lru_cache(maxsize=4096)
def _scope(body: bytes) -> tuple[str, str]:
    scope = InstrumentationScope.FromString(body)
    return scope.name, scope.version


def _kind(value: int) -> SpanKind:
    try:
        return SpanKind(value)
    except ValueError:
        return SpanKind.UNSPECIFIED


def _status(value: int) -> StatusCode:
    try:
        return StatusCode(value)
    except ValueError:
        return StatusCode.UNSET


Decoded: TypeAlias = tuple[bytes, bytes, StoredSpan]
"""A span read: its id and bytes (what tells a re-send, `ResentSpans`) and the span."""


def _read_once(decoded: Iterable[Decoded]) -> list[StoredSpan]:
    resent = ResentSpans()
    out = [span for span_id, body, span in decoded if resent.first(span_id, body)]
    out.sort(key=lambda s: (s.start_unix_nano, s.span_id))
    return out


class DecodedSpans:
    """A trace's spans in an in-memory batch, decoded once for every reader.

    A check reads its trace again on every round while it waits, and most of a read of
    memory was turning the batch's rows into `StoredSpan`s again. Batches never change, so
    what was decoded stays right; bounded in spans, the least recently read go first.
    """

    def __init__(self, max_spans: int = 16_384) -> None:
        self._entries: collections.OrderedDict[tuple[int, bytes], tuple[Decoded, ...]] = (
            collections.OrderedDict())
        self._spans = 0
        self._max_spans = max_spans
        self._lock = threading.Lock()

    def get(self, batch: HeldBatch, key: bytes) -> tuple[Decoded, ...] | None:
        with self._lock:
            found = self._entries.get((batch.serial, key))
            if found is not None:
                self._entries.move_to_end((batch.serial, key))
            return found

    def put(self, batch: HeldBatch, key: bytes, decoded: tuple[Decoded, ...]) -> None:
        with self._lock:
            if (batch.serial, key) in self._entries:
                return
            self._entries[(batch.serial, key)] = decoded
            self._spans += len(decoded)
            while self._spans > self._max_spans and len(self._entries) > 1:
                _, dropped = self._entries.popitem(last=False)
                self._spans -= len(dropped)


class SpanReader:
    """Reads through one DuckDB connection (one per thread: connections are not shared)."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, head: Head,
                 resource_generation: Callable[[], int], decoded: DecodedSpans,
                 layout: RowLayout) -> None:
        self._connection = connection
        self.connection = connection
        """This thread's cursor, for the store's other reads and small writes (runs)."""
        self._head = head
        self._decoded = decoded
        self._layout = layout
        self._registered: tuple[pa.Table | None, pa.Table | None] = (None, None)
        self._resource_bodies: dict[int, bytes] = {}
        self._scope_bodies: dict[int, bytes] = {}
        self._resource_generation = resource_generation
        self._file_services: tuple[int, frozenset[str]] | None = None

    def _take_head(self) -> HeadView | None:
        """The head as this read sees it, registered as `head_spans` and `head_links` (None:
        the head is empty, read the file alone). Call before reading the file."""
        view = self._head.view()
        if view.spans is None:
            return None
        if self._registered != (view.spans, view.links):
            self._connection.register("head_spans", view.spans)
            self._connection.register("head_links", view.links if view.links is not None
                                      else _EMPTY_LINKS)
            self._registered = (view.spans, view.links)
        for rid, (_, body) in view.resources.items():
            self._resource_bodies.setdefault(rid, body)
        for sid, body in view.scopes.items():
            self._scope_bodies.setdefault(sid, body)
        return view

    def _lookup_bodies(self, table: str, key: str, ids: set[int], cache: dict[int, bytes]) -> None:
        missing = [i for i in ids if i not in cache]
        if missing:
            for rid, body in self._connection.execute(
                f"SELECT {key}, body FROM {table} WHERE {key} IN (SELECT unnest(?))", [missing]
            ).fetchall():
                cache[rid] = body

    def _spans(self, rows: Sequence[tuple[Any, ...]]) -> list[StoredSpan]:
        return _read_once(self._decode(rows))

    def _decode(self, rows: Sequence[tuple[Any, ...]]) -> list[Decoded]:
        self._lookup_bodies("resources", "resource_id", {r[4] for r in rows}, self._resource_bodies)
        self._lookup_bodies("scopes", "scope_id", {r[5] for r in rows}, self._scope_bodies)
        out: list[Decoded] = []
        for trace_id, span_id, parent_id, service, resource_id, scope_id, body, arrival in rows:
            span = Span.FromString(body)
            resource_body = self._resource_bodies.get(resource_id)
            scope_body = self._scope_bodies.get(scope_id)
            scope_name, scope_version = _scope(scope_body) if scope_body is not None else ("", "")
            out.append((span_id, body, StoredSpan(
                trace_id=trace_id.hex(),
                span_id=span_id.hex(),
                parent_span_id=parent_id.hex() if parent_id else None,
                name=span.name,
                kind=_kind(span.kind),
                start_unix_nano=span.start_time_unix_nano,
                end_unix_nano=span.end_time_unix_nano,
                status_code=_status(span.status.code),
                status_message=span.status.message,
                service=service,
                trace_state=span.trace_state,
                flags=span.flags,
                attributes=attribute_dict_of_bytes(AttributeSpan.FromString(body).attributes),
                events=tuple(
                    SpanEvent(e.name, e.time_unix_nano, attribute_dict(e.attributes))
                    for e in span.events
                ),
                links=tuple(
                    SpanLink(link.trace_id.hex(), link.span_id.hex(), link.trace_state,
                             link.flags, attribute_dict(link.attributes))
                    for link in span.links
                ),
                resource=_resource(resource_body) if resource_body is not None else {},
                scope_name=scope_name,
                scope_version=scope_version,
                arrival_unix_nano=arrival,
            )))
        return out

    def _held_batches(self, key: bytes) -> tuple[list[HeldBatch], bool]:
        """The batches in memory that name the trace (a trace's spans sit in the few that
        name it: no scan of memory), and whether the file may hold spans of it that memory
        does not. Memory is taken first: see `Head.holding`."""
        batches = list(self._head.holding(key))
        return batches, self._head.left_memory.may_hold(key)

    def _held_spans(self, batches: list[HeldBatch], key: bytes) -> list[Decoded]:
        decoded: list[Decoded] = []
        for held in batches:
            found = self._decoded.get(held, key)
            if found is None:
                for rid, (_, body) in held.resources.items():
                    self._resource_bodies.setdefault(rid, body)
                for sid, body in held.scopes.items():
                    self._scope_bodies.setdefault(sid, body)
                table = held.rows_of(key)
                found = tuple(self._decode([
                    row for row in zip(*(table[name].to_pylist() for name in _SPAN_COLUMNS), strict=True)
                    if row[0] == key]))
                self._decoded.put(held, key, found)
            decoded.extend(found)
        return decoded

    def trace(self, trace_id: str) -> list[StoredSpan]:
        key = trace_id_bytes(trace_id)
        batches, in_file = self._held_batches(key)  # before the file: see the module's docstring
        held = self._held_spans(batches, key)
        if not in_file:
            return _read_once(held)
        # A trace's spans arrive together, so they sit in a narrow band of rows. Fetched one by
        # one through the index, each row decompresses its whole block of bodies again (a
        # 500-span trace: ~45 ms); read as one range of rows, each block once (~4 ms).
        layout = self._layout.version
        rows = None if layout % 2 else self._file_rows(key)
        if rows is None or self._layout.version != layout:
            # A checkpoint may have renumbered the rows between the two steps: one snapshot.
            self._connection.execute("BEGIN TRANSACTION")
            try:
                rows = self._file_rows(key)
            finally:
                self._connection.execute("COMMIT")
        return _read_once([*self._decode(rows), *held])

    def _file_rows(self, key: bytes) -> list[tuple[Any, ...]]:
        connection = self._connection
        low, high, count = only_row(connection.execute(
            "SELECT min(rowid), max(rowid), count(*) FROM spans WHERE trace_id = ?", [key]
        )) or (None, None, 0)
        if not count:
            return []
        if high - low < 4 * count + 8192:
            # Values written into the statement, not bound: DuckDB then prunes the scan to the
            # range before reading bodies (a 20-span trace among 10 million: 3.8 -> 2.3 ms).
            return connection.execute(
                f"{_SPAN_SELECT} WHERE s.rowid BETWEEN {int(low)} AND {int(high)} "
                f"AND s.trace_id = from_hex('{key.hex()}')").fetchall()
        # spread over the file (a trace that trickled in over hours): by the index
        return connection.execute(f"{_SPAN_SELECT} WHERE s.trace_id = ?", [key]).fetchall()

    def roots(self, service: str | None, address: tuple[str, int] | None,
              start_unix_nano: int, end_unix_nano: int) -> list[StoredSpan]:
        head = self._take_head()
        sql = (f" WHERE s.parent_span_id IS NULL AND s.kind = {int(SpanKind.SERVER)} "
               "AND s.start_ns BETWEEN ? AND ?")
        params: list[Any] = [max(start_unix_nano, 0), max(end_unix_nano, 0)]
        if service is not None:
            sql += " AND s.service = ?"
            params.append(service)
        if address is not None:
            sql += f" AND {_BODY_CONTAINS}"
            params.append(address[0].encode())
        rows = self._connection.execute(_SPAN_SELECT + sql, params).fetchall()
        if head is not None:
            rows += self._connection.execute(_HEAD_SPAN_SELECT + sql, params).fetchall()
        spans = self._spans(rows)
        if address is not None:
            spans = [s for s in spans if served_at(s.attributes, *address)]
        return spans

    def linked(self, trace_id: str) -> list[str]:
        key = trace_id_bytes(trace_id)
        # A batch with a link into the trace names the trace among its own (`HeldBatch`).
        batches, in_file = self._held_batches(key)
        found: set[bytes] = set()
        for held in batches:
            found.update(held.linking_into(key))
        if in_file:
            found.update(row[0] for row in self._connection.execute(
                "SELECT DISTINCT trace_id FROM span_links WHERE linked_trace_id = ?", [key]).fetchall())
        found.discard(key)
        return sorted(trace_id.hex() for trace_id in found)

    def services(self) -> list[str]:
        # Every span's service has its resource row (written in the span's commit); that
        # table is a row per service instance, not per span. Read again only once the
        # writer changed it. The head is taken first: a batch the flush moves meanwhile is
        # then in the file the query reads (the writer counts its resources before it lets
        # the batch go from the head).
        pending = self._head.batches()
        generation = self._resource_generation()
        if self._file_services is None or self._file_services[0] != generation:
            self._file_services = (generation, frozenset(row[0] for row in self._connection.execute(
                "SELECT DISTINCT service FROM resources WHERE service IS NOT NULL").fetchall()))
        found = set(self._file_services[1])
        for held in pending:
            found.update(service for service, _ in held.resources.values() if service is not None)
        return sorted(found)

    def operations(self, service: str) -> list[Operation]:
        head = self._take_head()
        sql = "SELECT DISTINCT name, kind FROM {} WHERE service = ?"
        found = set(self._connection.execute(sql.format("spans"), [service]).fetchall())
        if head is not None:
            found.update(self._connection.execute(sql.format("head_spans"), [service]).fetchall())
        return [Operation(name, _kind(kind)) for name, kind in sorted(found)]

    def span_count(self) -> int:
        """Rows in the file and the head (a span the flush is moving counts in both)."""
        head = self._take_head()
        row = only_row(self._connection.execute("SELECT count(*) FROM spans"))
        return (int(row[0]) if row else 0) + (head.spans.num_rows if head and head.spans else 0)

    def _attribute_matches(self, condition: str, params: list[Any], query: TraceQuery,
                           limit: int, with_head: str) -> list[bytes]:
        """Trace ids whose spans carry the attributes, newest first.

        The body prefilter scans span bodies, the costly part of a search. Rows arrive in
        arrival order, so windows of arrival time, newest first and doubling, let DuckDB skip
        whole row groups: a search that the newest window satisfies never reads the rest.
        """
        bounds = only_row(self._connection.execute(
            f"{with_head} SELECT min(arrival_ns), max(arrival_ns) FROM spans"))
        if bounds is None or bounds[0] is None:
            return []
        oldest, newest = int(bounds[0]), int(bounds[1])
        matched: list[bytes] = []
        seen: set[bytes] = set()
        width = max(1, (newest - oldest) // 16)
        upper = newest + 1
        while len(matched) < limit and upper > oldest:
            lower = max(oldest, upper - width)
            cursor = self._connection.execute(
                f"{with_head} SELECT s.trace_id, s.body FROM spans s WHERE {condition} "
                "AND s.arrival_ns >= ? AND s.arrival_ns < ? ORDER BY s.arrival_ns DESC",
                [*params, lower, upper],
            )
            # In pages: a common value matches thousands of spans, and moving them all into
            # Python costs more than the scan.
            while len(matched) < limit and (candidates := cursor.fetchmany(1024)):
                for trace_id, body in candidates:
                    if trace_id in seen:
                        continue
                    attributes = attribute_dict_of_bytes(AttributeSpan.FromString(body).attributes)
                    if attributes_match(attributes, query.attributes):
                        seen.add(trace_id)
                        matched.append(trace_id)
                        if len(matched) >= limit:
                            break
            upper, width = lower, width * 2
        return matched

    def traces(self, query: TraceQuery) -> list[TraceSummary]:
        with_head = _WITH_HEAD if self._take_head() is not None else ""
        where: list[str] = []
        params: list[Any] = []
        if query.since_unix_nano is not None:
            where.append("s.arrival_ns >= ?")
            params.append(query.since_unix_nano)
        if query.service is not None:
            where.append("s.service = ?")
            params.append(query.service)
        if query.name is not None:
            where.append("s.name GLOB ?")
            params.append(query.name)
        if query.status is not None:
            where.append("s.status_code = ?")
            params.append(int(query.status))
        for key, wanted in query.attributes.items():
            alternatives = attribute_patterns(key, wanted)
            where.append("(" + " OR ".join([_BODY_CONTAINS] * len(alternatives)) + ")")
            params.extend(alternatives)
        condition = " AND ".join(where) or "TRUE"
        limit = max(1, min(int(query.limit), 10_000))
        if query.attributes:
            matched = self._attribute_matches(condition, params, query, limit, with_head)
        else:
            # The ids first, in a statement of their own: as a subquery of the summaries, with
            # the head in the union, DuckDB scanned every row of the file for them (a search by
            # service among 2 million spans with 30,000 in the head took 159 ms, split 26 ms).
            matched = [row[0] for row in self._connection.execute(
                f"{with_head} SELECT s.trace_id FROM spans s WHERE {condition} GROUP BY s.trace_id "
                "ORDER BY max(s.arrival_ns) DESC LIMIT ?", [*params, limit]).fetchall()]
        if not matched:
            return []
        # The file may have taken rows from the head since: a span then counts in both, and
        # every summary below is a min, a max or a distinct count, which it leaves as it was.
        # A trace retention pruned meanwhile is left out, as a search a moment later would.
        rows = self._connection.execute(
            f"""
            {with_head + "," if with_head else "WITH"} ids AS (SELECT unnest(?) AS trace_id)
            SELECT trace_id,
                   coalesce(arg_min(service, start_ns) FILTER (WHERE parent_span_id IS NULL),
                            arg_min(service, start_ns)),
                   coalesce(arg_min(name, start_ns) FILTER (WHERE parent_span_id IS NULL),
                            arg_min(name, start_ns)),
                   min(start_ns), max(end_ns),
                   count(DISTINCT span_id),
                   count(DISTINCT span_id) FILTER (WHERE status_code = {int(StatusCode.ERROR)}),
                   list(DISTINCT service ORDER BY service),
                   max(arrival_ns)
            FROM spans WHERE trace_id IN (SELECT trace_id FROM ids)
            GROUP BY trace_id
            ORDER BY max(arrival_ns) DESC, trace_id
            """,
            [matched],
        ).fetchall()
        return [
            TraceSummary(
                trace_id=row[0].hex(), root_service=row[1], root_name=row[2],
                start_unix_nano=int(row[3]), end_unix_nano=int(row[4]), span_count=int(row[5]),
                error_count=int(row[6]), services=tuple(row[7]), last_arrival_unix_nano=int(row[8]),
            )
            for row in rows
        ]
