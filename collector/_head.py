"""The in-memory head: acknowledged spans not yet in the DuckDB file.

Acknowledged spans are readable from here the moment they are logged; the writer moves
them to the file in large batches in the background. Readers take a snapshot of the head
before they query the file, and the writer removes flushed spans from the head only after
their commit: so every read sees every acknowledged span in one place or both (a span in
both reads once, as a re-sent span does).

Flushed batches stay in memory a while longer (`recent`, bounded in spans): a check reads
the traces that just arrived, and with the filter of trace ids that left memory
(`_trace_filter`) such a read is answered without a query of the file.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

import pyarrow as pa

from ._columns import SpanBatch
from ._trace_filter import TraceIdFilter


@dataclass(frozen=True)
class HeldBatch:
    """One acknowledged request's spans and links, arrival time added."""

    spans: pa.Table
    links: pa.Table | None
    resources: dict[int, tuple[str, bytes]]
    scopes: dict[int, bytes]
    trace_ids: frozenset[bytes]
    """Of the spans (and the traces they link into): a trace's lookup skips the batches
    without it."""
    arrival_ns: int
    serial: int = field(default_factory=itertools.count().__next__, compare=False)
    """Names this batch for caches of what was read from it (never reused)."""
    _rows: dict[bytes, tuple[int, int]] = field(default_factory=dict, compare=False, repr=False)
    _linking: dict[bytes, frozenset[bytes]] = field(default_factory=dict, compare=False, repr=False)

    def rows_of(self, key: bytes) -> pa.Table:
        """The trace's rows (a zero-copy slice and a small filter, not a compute call over
        the batch: those cost a tenth of a millisecond each, however small the batch)."""
        rows = self._rows
        if not rows:
            # Built by the first read that needs it (a racing read builds the same), then put
            # in whole by one `update` of a dict, which no other thread can see half done.
            built: dict[bytes, tuple[int, int]] = {}
            for index, trace_id in enumerate(self.spans["trace_id"].to_pylist()):
                first, _ = built.get(trace_id, (index, index))
                built[trace_id] = (first, index + 1)
            rows.update(built)
        first, end = rows.get(key, (0, 0))
        return self.spans.slice(first, end - first)

    def linking_into(self, key: bytes) -> frozenset[bytes]:
        """The traces of this batch with a link into trace `key` (built once, as `rows_of`)."""
        linking = self._linking
        if not linking and self.links is not None:
            found: dict[bytes, set[bytes]] = {}
            for trace_id, linked in zip(self.links["trace_id"].to_pylist(),
                                        self.links["linked_trace_id"].to_pylist(), strict=True):
                found.setdefault(linked, set()).add(trace_id)
            linking.update({linked: frozenset(ids) for linked, ids in found.items()})  # whole
        return linking.get(key, frozenset())

    @staticmethod
    def of(batch: SpanBatch, arrival_ns: int) -> HeldBatch:
        def stamped(table: pa.Table) -> pa.Table:
            return table.append_column(
                "arrival_ns", pa.repeat(pa.scalar(arrival_ns, pa.int64()), table.num_rows))
        return HeldBatch(stamped(batch.spans), None if batch.links is None else stamped(batch.links),
                         batch.resources, batch.scopes, batch.trace_ids, arrival_ns)


@dataclass(frozen=True)
class HeadView:
    """What one read sees of the head: its tables, combined once per change of the head."""

    spans: pa.Table | None
    links: pa.Table | None
    resources: dict[int, tuple[str, bytes]]
    scopes: dict[int, bytes]

    @staticmethod
    def of(batches: tuple[HeldBatch, ...]) -> HeadView:
        links = [b.links for b in batches if b.links is not None]
        return HeadView(
            pa.concat_tables([b.spans for b in batches]) if batches else None,
            pa.concat_tables(links) if links else None,
            {rid: v for b in batches for rid, v in b.resources.items()},
            {sid: v for b in batches for sid, v in b.scopes.items()},
        )


_EMPTY = HeadView(None, None, {}, {})


class Head:
    """Held batches in acknowledgement order; appended by the writer, trimmed by the flush.

    Batches the flush wrote stay readable from memory as `recent` until `max_recent_spans`
    newer ones push them out; every trace id that leaves memory goes into `left_memory`
    first, so a read that finds its trace in memory and not in that filter needs no file.
    """

    def __init__(self, max_recent_spans: int = 65_536) -> None:
        self.lock = threading.Lock()
        """Held while a group is logged and appended, and while a flush takes its share, so
        that a log rotation and the head agree on which requests a flush carries."""
        # (not yet in the file, in the file and kept), swapped as one object: a reader takes
        # both in one step, so no batch is ever in neither.
        self._state: tuple[tuple[HeldBatch, ...], tuple[HeldBatch, ...]] = ((), ())
        # The view with the batches it was built from, swapped as one object: a reader
        # that built a view of older batches can never install it as the current one's.
        self._view: tuple[tuple[HeldBatch, ...], HeadView] = ((), _EMPTY)
        self._max_recent = max_recent_spans
        self._recent_spans = 0
        self.left_memory = TraceIdFilter()
        # The batches in memory that name each trace id, oldest first. A check reads a trace
        # many times while thousands of small batches are in memory: a scan of them all took
        # most of a read. Values are tuples, replaced whole (under `lock`), so a reader's
        # `get` is one consistent snapshot.
        self._by_trace: dict[bytes, tuple[HeldBatch, ...]] = {}
        self.span_count = 0

    def append(self, batches: list[HeldBatch]) -> None:
        """Call with `lock` held."""
        pending, recent = self._state
        by_trace = self._by_trace
        for batch in batches:
            for trace_id in batch.trace_ids:
                by_trace[trace_id] = (*by_trace.get(trace_id, ()), batch)
        self._state = (pending + tuple(batches), recent)
        self.span_count += sum(b.spans.num_rows for b in batches)

    def batches(self) -> tuple[HeldBatch, ...]:
        """The batches the file has not caught up with."""
        return self._state[0]

    def in_memory(self) -> tuple[HeldBatch, ...]:
        """Every batch memory holds, flushed or not, oldest first."""
        pending, recent = self._state
        return recent + pending

    def holding(self, trace_id: bytes) -> tuple[HeldBatch, ...]:
        """The batches in memory, flushed or not, that name the trace, oldest first (take
        them before asking `left_memory`: a batch leaves memory only after its ids are in
        that filter)."""
        return self._by_trace.get(trace_id, ())

    def drop_first(self, count: int) -> None:
        """The first `count` batches are committed to the file: keep them as recent."""
        with self.lock:
            pending, recent = self._state
            dropped = pending[:count]
            flushed = sum(b.spans.num_rows for b in dropped)
            self.span_count -= flushed
            self._recent_spans += flushed
            recent += dropped
            spans, drop = self._recent_spans, 0
            while drop < len(recent) and spans > self._max_recent:
                spans -= recent[drop].spans.num_rows
                drop += 1
            self._leave_memory(recent[:drop])
            self._state = (pending[count:], recent[drop:])
            self._recent_spans = spans

    def forget_before(self, arrival_ns: int) -> None:
        """Retention deleted rows that arrived before `arrival_ns`: recent batches that old
        go too (their pinned traces, spared in the file, are read from there)."""
        with self.lock:
            pending, recent = self._state
            old = tuple(b for b in recent if b.arrival_ns < arrival_ns)
            if old:
                self._leave_memory(old)
                self._state = (pending, tuple(b for b in recent if b.arrival_ns >= arrival_ns))
                self._recent_spans -= sum(b.spans.num_rows for b in old)

    def _leave_memory(self, batches: tuple[HeldBatch, ...]) -> None:
        for batch in batches:
            self.left_memory.add(batch.trace_ids)
        by_trace = self._by_trace
        for batch in batches:  # after the filter has them all: see `holding`
            for trace_id in batch.trace_ids:
                kept = tuple(b for b in by_trace.get(trace_id, ()) if b is not batch)
                if kept:
                    by_trace[trace_id] = kept
                else:
                    by_trace.pop(trace_id, None)

    def view(self) -> HeadView:
        """The batches the file has not caught up with, as tables."""
        batches = self._state[0]
        built_from, view = self._view
        if built_from is not batches:
            view = HeadView.of(batches)
            self._view = (batches, view)
        return view
