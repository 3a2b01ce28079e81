"""Read queries over the exporter's `otel_traces` (and tracebaton's side tables), in
ClickHouse SQL, returning the engine-neutral model.

What the schema loses is replaced by the rules of DESIGN §3b: no span flags (is-remote is
unknown: `flags` reads 0), attribute values are strings (`AsString()`), both spellings of kind
and status are read, and a re-sent span (a row with the same content) reads once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from ._addresses import served_at
from ._anyvalue import PRESENT
from ._clickhouse_schema import Tables
from ._clickhouse_values import float_string
from ._model import (
    Attributes,
    AttributeValue,
    Operation,
    SpanEvent,
    SpanKind,
    SpanLink,
    StatusCode,
    StoredSpan,
    TraceQuery,
    TraceSummary,
)

_KINDS: dict[str, SpanKind] = {}
for _kind in SpanKind:
    # ptrace's `Kind().String()` (since v0.10x) and traceutil's older SPAN_KIND_* spelling
    _KINDS[_kind.name.capitalize()] = _kind
    _KINDS[f"SPAN_KIND_{_kind.name}"] = _kind
_STATUSES: dict[str, StatusCode] = {}
for _status in StatusCode:
    _STATUSES[_status.name.capitalize()] = _status
    _STATUSES[f"STATUS_CODE_{_status.name}"] = _status


def kind_spellings(kind: SpanKind) -> list[str]:
    return [s for s, k in _KINDS.items() if k is kind]


def status_spellings(status: StatusCode) -> list[str]:
    return [s for s, k in _STATUSES.items() if k is status]


_SERVER_KINDS = kind_spellings(SpanKind.SERVER)
_ERROR_STATUSES = status_spellings(StatusCode.ERROR)

# Captured headers arrive as a string array, which AsString() wrote as its JSON text; they
# are read back as arrays, so `traceparent: valid` and `x-request-id: same` see values.
_HEADER_PREFIXES = ("http.request.header.", "http.response.header.",
                    "rpc.grpc.request.metadata.", "rpc.grpc.response.metadata.")

_END_NS = "toUnixTimestamp64Nano(Timestamp) + toInt64(Duration)"

CLOCK_AHEAD_S = 3600
"""How far a service's clock may run ahead of ClickHouse's and its operations stay listed."""


def _span_columns(scope_columns: bool) -> str:
    scope = "ScopeName, ScopeVersion" if scope_columns else "'' AS ScopeName, '' AS ScopeVersion"
    return (
        "TraceId, SpanId, ParentSpanId, TraceState, SpanName, SpanKind, ServiceName, ResourceAttributes, "
        f"{scope}, SpanAttributes, toUnixTimestamp64Nano(Timestamp) AS StartNs, Duration, StatusCode, "
        "StatusMessage, arrayMap(t -> toUnixTimestamp64Nano(t), Events.Timestamp) AS EventNs, Events.Name, "
        "Events.Attributes, Links.TraceId, Links.SpanId, Links.TraceState, Links.Attributes"
    )


# A re-sent span is the same row again; a span id reused with other content is kept (the flow
# engine reports it as duplicate_span).
_CONTENT = ("sipHash128(ParentSpanId, TraceState, SpanName, SpanKind, ServiceName, ResourceAttributes, "
            "SpanAttributes, Timestamp, Duration, StatusCode, StatusMessage, Events.Timestamp, Events.Name, "
            "Events.Attributes, Links.TraceId, Links.SpanId, Links.TraceState, Links.Attributes)")


def glob_regex(glob: str) -> str:
    """An fnmatch glob (`*`, `?`, `[...]`) as an anchored RE2 pattern for `match()`."""
    out, i = ["^"], 0
    while i < len(glob):
        char = glob[i]
        if char == "*":
            out.append(".*")
        elif char == "?":
            out.append(".")
        elif char == "[" and (end := glob.find("]", i + 2)) != -1:
            body = glob[i + 1:end]
            negate = body.startswith("!")
            body = body[1:] if negate else body
            out.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out) + "$"


def expected_strings(wanted: str | int | float | bool) -> list[str]:
    """The stored (AsString) forms an expected attribute value matches: `200` matches "200"."""
    if isinstance(wanted, bool):
        return ["true" if wanted else "false"]
    if isinstance(wanted, int):
        return [str(wanted)]
    if isinstance(wanted, float):
        return [float_string(wanted)]
    return [wanted]


def _attributes(raw: Mapping[str, str]) -> dict[str, AttributeValue]:
    out: dict[str, AttributeValue] = dict(raw)
    for key, value in raw.items():
        if value.startswith("[") and key.startswith(_HEADER_PREFIXES):
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                continue
            if isinstance(parsed, list) and all(isinstance(v, str) for v in parsed):
                out[key] = parsed
    return out


class Arrivals:
    """When each span arrived, from `tracebaton_arrivals` (a row per insert block, trace and
    service, with the block's span ends): the newest block of the span's service whose ends
    cover the span's end. That is exact when blocks do not overlap and otherwise errs late —
    export lag is overstated, never understated, so a check never settles on a lag it hid."""

    def __init__(self, rows: Iterable[Sequence[Any]]) -> None:
        self._blocks: dict[tuple[str, str], list[tuple[int, int, int]]] = {}
        for trace_id, service, min_end, max_end, inserted in rows:
            block = (int(inserted), int(min_end), int(max_end))
            self._blocks.setdefault((trace_id, service), []).append(block)
        for blocks in self._blocks.values():
            blocks.sort()

    def of(self, trace_id: str, service: str, end_ns: int) -> int:
        blocks = self._blocks.get((trace_id, service))
        if not blocks:
            return end_ns  # written before tracebaton's tables existed: no arrival is known
        for inserted, min_end, max_end in reversed(blocks):
            if min_end <= end_ns <= max_end:
                return inserted
        return blocks[-1][0]


def spans_from_rows(rows: Iterable[Sequence[Any]], arrivals: Arrivals) -> list[StoredSpan]:
    out: list[StoredSpan] = []
    resources: dict[int, Attributes] = {}
    for (trace_id, span_id, parent_id, trace_state, name, kind, service, resource, scope_name, scope_version,
         attributes, start, duration, status, status_message, event_ns, event_names, event_attributes,
         link_trace_ids, link_span_ids, link_states, link_attributes) in rows:
        start = int(start)
        end = (start + int(duration)) % (1 << 64)
        raw_attributes: Mapping[str, str] = attributes or {}
        if not scope_name and "otel.scope.name" in raw_attributes:  # exporters before ScopeName
            scope_name = raw_attributes["otel.scope.name"]
            scope_version = raw_attributes.get("otel.scope.version", "")
        resource_key = id(resource)
        if resource_key not in resources:
            resources[resource_key] = dict(resource or {})
        out.append(StoredSpan(
            trace_id=trace_id,
            span_id=span_id,
            parent_span_id=parent_id or None,
            name=name,
            kind=_KINDS.get(kind, SpanKind.UNSPECIFIED),
            start_unix_nano=start,
            end_unix_nano=end,
            status_code=_STATUSES.get(status, StatusCode.UNSET),
            status_message=status_message,
            service=service,
            trace_state=trace_state,
            flags=0,  # the schema keeps no flags: is-remote is unknown (DESIGN §3b)
            attributes=_attributes(raw_attributes),
            events=tuple(SpanEvent(n, int(t), _attributes(a or {}))
                         for t, n, a in zip(event_ns, event_names, event_attributes, strict=False)),
            links=tuple(SpanLink(t, s, st, 0, _attributes(a or {}))
                        for t, s, st, a in zip(link_trace_ids, link_span_ids, link_states, link_attributes,
                                               strict=False)),
            resource=resources[resource_key],
            scope_name=scope_name or "",
            scope_version=scope_version or "",
            arrival_unix_nano=arrivals.of(trace_id, service, end),
        ))
    out.sort(key=lambda s: (s.start_unix_nano, s.span_id))
    return out


class ClickHouseReads:
    """The read protocol's queries, through one client (one per thread)."""

    def __init__(self, client: Any, tables: Tables, *, scope_columns: bool, pinned: bool) -> None:
        """`pinned`: whether pins copy rows to the pinned table (only a traces table with a TTL)."""
        self._client = client
        self._tables = tables
        self._columns = _span_columns(scope_columns)
        self._pinned = pinned

    def _rows(self, sql: str, parameters: Mapping[str, Any]) -> list[Sequence[Any]]:
        return list(self._client.query(sql, parameters=dict(parameters)).result_rows)

    def _arrivals(self, trace_ids: Sequence[str]) -> Arrivals:
        if not trace_ids:
            return Arrivals(())
        return Arrivals(self._rows(
            f"SELECT TraceId, toString(ServiceName), MinEndNs, MaxEndNs, toUnixTimestamp64Nano(InsertTime) "
            f"FROM {self._tables.arrivals} WHERE TraceId IN {{ids:Array(String)}}", {"ids": list(trace_ids)}))

    def trace(self, trace_id: str) -> list[StoredSpan]:
        t = self._tables
        # The exporter README's trace-by-id query, bounded by the lookup table (whole seconds of
        # span starts, hence End + 1). The bounds and the trace's arrivals come in one small
        # query first: as a subquery of the main one they cost as much again (chdb plans each
        # scalar subquery as a query of its own). A trace missing from the lookup gets 1970
        # bounds and would read as empty: then it is read by TraceId alone (the bloom-filter index).
        ((start, end, arrivals),) = self._rows(f"""
            SELECT toUInt32(min(Start)), toUInt32(max(End)) + 1,
                   (SELECT groupArray((TraceId, toString(ServiceName), MinEndNs, MaxEndNs,
                                       toUnixTimestamp64Nano(InsertTime)))
                    FROM {t.arrivals} WHERE TraceId = {{tid:String}})
            FROM {t.trace_id_ts} WHERE TraceId = {{tid:String}}""", {"tid": trace_id})
        bounded = "Timestamp >= toDateTime({lo:UInt32}) AND Timestamp <= toDateTime({hi:UInt32})"
        source = f"{t.traces} WHERE TraceId = {{tid:String}}{f' AND {bounded}' if start > 0 else ''}"
        if self._pinned:
            source = (f"(SELECT * FROM {source} "
                      f"UNION ALL SELECT * FROM {t.pinned} WHERE TraceId = {{tid:String}})")
        rows = self._rows(f"""
            SELECT {self._columns} FROM {source}
            ORDER BY Timestamp, SpanId
            LIMIT 1 BY SpanId, {_CONTENT}""", {"tid": trace_id, "lo": start, "hi": end})
        return spans_from_rows(rows, Arrivals(arrivals))

    def roots(self, service: str | None, address: tuple[str, int] | None,
              start_unix_nano: int, end_unix_nano: int) -> list[StoredSpan]:
        t = self._tables
        where = ["ParentSpanId = ''", "SpanKind IN {kinds:Array(String)}",
                 "Timestamp BETWEEN fromUnixTimestamp64Nano({low:Int64}) "
                 "AND fromUnixTimestamp64Nano({high:Int64})"]
        params: dict[str, Any] = {"kinds": _SERVER_KINDS, "low": _clamp(start_unix_nano),
                                  "high": _clamp(end_unix_nano)}
        if service is not None:
            where.append("ServiceName = {service:String}")
            params["service"] = service
        if address is not None:  # a prefilter; served_at decides by the conventions' keys
            where.append("arrayExists(v -> position(v, {host:String}) > 0, mapValues(SpanAttributes))")
            params["host"] = address[0]
        rows = self._rows(
            f"SELECT {self._columns} FROM {t.traces} WHERE {' AND '.join(where)} "
            f"ORDER BY Timestamp, SpanId LIMIT 1 BY TraceId, SpanId, {_CONTENT} LIMIT 10000", params)
        spans = spans_from_rows(rows, self._arrivals(sorted({r[0] for r in rows})))
        if address is not None:
            spans = [s for s in spans if served_at(s.attributes, *address)]
        return spans

    def linked(self, trace_id: str) -> list[str]:
        rows = self._rows(
            f"SELECT DISTINCT TraceId FROM {self._tables.links} WHERE LinkedTraceId = {{tid:String}} "
            "AND TraceId != {tid:String} ORDER BY TraceId", {"tid": trace_id})
        return [r[0] for r in rows]

    def oldest_span_start(self) -> int:
        """The traces table's oldest span start, in seconds (0 when it is empty): the parts'
        min-max indexes answer it without reading rows."""
        rows = self._rows(f"SELECT toUnixTimestamp(min(Timestamp)) FROM {self._tables.traces}", {})
        return int(rows[0][0]) if rows else 0

    def _operations_kept(self, oldest_span_start: int) -> tuple[str, dict[str, Any]]:
        """The operations whose spans the traces table may still hold: seen since its oldest
        span started, less `CLOCK_AHEAD_S`. Under a TTL on the traces table, an operation
        whose spans all expired drops off the list."""
        return (f"(SELECT * FROM {self._tables.operations} WHERE LastSeen >= toDateTime({{kept:UInt32}}))",
                {"kept": max(0, oldest_span_start - CLOCK_AHEAD_S)})

    def services(self, oldest_span_start: int) -> list[str]:
        kept, params = self._operations_kept(oldest_span_start)
        rows = self._rows(f"SELECT DISTINCT toString(ServiceName) AS s FROM {kept} WHERE s != '' ORDER BY s",
                          params)
        return [r[0] for r in rows]

    def operations(self, service: str, oldest_span_start: int) -> list[Operation]:
        kept, params = self._operations_kept(oldest_span_start)
        rows = self._rows(
            f"SELECT DISTINCT toString(SpanName), toString(SpanKind) FROM {kept} "
            "WHERE ServiceName = {service:String}", {**params, "service": service})
        found = {(name, _KINDS.get(kind, SpanKind.UNSPECIFIED)) for name, kind in rows}
        return [Operation(name, kind) for name, kind in sorted(found, key=lambda o: (o[0], int(o[1])))]

    def span_count(self) -> int:
        rows = self._rows(f"SELECT count() FROM {self._tables.traces}", {})
        return int(rows[0][0]) if rows else 0

    def traces(self, query: TraceQuery) -> list[TraceSummary]:
        t = self._tables
        where: list[str] = ["TraceId != ''"]
        params: dict[str, Any] = {}
        if query.service is not None:
            where.append("ServiceName = {service:String}")
            params["service"] = query.service
        if query.name is not None:
            where.append("match(SpanName, {name_re:String})")
            params["name_re"] = glob_regex(query.name)
        if query.status is not None:
            where.append("StatusCode IN {statuses:Array(String)}")
            params["statuses"] = status_spellings(query.status)
        for index, (key, wanted) in enumerate(query.attributes.items()):
            params[f"ak{index}"] = key
            if wanted == PRESENT:
                where.append(f"mapContains(SpanAttributes, {{ak{index}:String}})")
            else:
                values = expected_strings(wanted)
                params[f"av{index}"] = values
                check = f"SpanAttributes[{{ak{index}:String}}] IN {{av{index}:Array(String)}}"
                if "" in values:
                    check = f"(mapContains(SpanAttributes, {{ak{index}:String}}) AND {check})"
                where.append(check)
        if query.since_unix_nano is not None:
            # arrival, as every store reads `since`: the exporter's rows keep no insert time
            where.append(f"TraceId IN (SELECT TraceId FROM {t.arrivals} "
                         "WHERE InsertTime >= fromUnixTimestamp64Nano({since:Int64}))")
            params["since"] = _clamp(query.since_unix_nano)
        condition = " AND ".join(where)
        params["limit"] = max(1, min(int(query.limit), 10_000))
        newest = self._rows(f"""
            SELECT m.TraceId, greatest(m.last_end, a.last_arrival) AS last
            FROM (SELECT TraceId, max({_END_NS}) AS last_end FROM {t.traces} WHERE {condition}
                  GROUP BY TraceId) AS m
            LEFT JOIN (SELECT TraceId, max(toUnixTimestamp64Nano(InsertTime)) AS last_arrival
                       FROM {t.arrivals} WHERE TraceId IN (SELECT TraceId FROM {t.traces} WHERE {condition})
                       GROUP BY TraceId) AS a ON a.TraceId = m.TraceId
            ORDER BY last DESC, m.TraceId
            LIMIT {{limit:UInt32}}""", params)
        if not newest:
            return []
        last = {r[0]: int(r[1]) for r in newest}
        rows = self._rows(f"""
            SELECT TraceId,
                   countIf(ParentSpanId = '') > 0,
                   argMinIf(toString(ServiceName), Timestamp, ParentSpanId = ''),
                   argMin(toString(ServiceName), Timestamp),
                   argMinIf(toString(SpanName), Timestamp, ParentSpanId = ''),
                   argMin(toString(SpanName), Timestamp),
                   min(toUnixTimestamp64Nano(Timestamp)), max({_END_NS}),
                   uniqExact(SpanId), uniqExactIf(SpanId, StatusCode IN {{errors:Array(String)}}),
                   arraySort(groupUniqArray(toString(ServiceName)))
            FROM {t.traces} WHERE TraceId IN {{ids:Array(String)}}
            GROUP BY TraceId""", {"ids": list(last), "errors": _ERROR_STATUSES})
        summaries = [
            TraceSummary(
                trace_id=r[0], root_service=r[2] if r[1] else r[3], root_name=r[4] if r[1] else r[5],
                start_unix_nano=int(r[6]), end_unix_nano=int(r[7]), span_count=int(r[8]),
                error_count=int(r[9]), services=tuple(r[10]), last_arrival_unix_nano=last[r[0]],
            )
            for r in rows
        ]
        summaries.sort(key=lambda s: (-s.last_arrival_unix_nano, s.trace_id))
        return summaries


def _clamp(ns: int) -> int:
    return min(max(int(ns), 0), (1 << 63) - 1)

