"""The in-memory head: acknowledged spans not yet in the DuckDB file.

Acknowledged spans are readable from here the moment they are logged; the writer moves
them to the file in large batches in the background. Readers take a snapshot of the head
before they query the file, and the writer removes flushed spans from the head only after
their commit: so every read sees every acknowledged span in one place or both (a span in
both reads once, as a re-sent span does).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import pyarrow as pa

from ._columns import SpanBatch


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

    @staticmethod
    def of(batch: SpanBatch, arrival_ns: int) -> HeldBatch:
        def stamped(table: pa.Table) -> pa.Table:
            return table.append_column(
                "arrival_ns", pa.repeat(pa.scalar(arrival_ns, pa.int64()), table.num_rows))
        return HeldBatch(stamped(batch.spans), None if batch.links is None else stamped(batch.links),
                         batch.resources, batch.scopes, batch.trace_ids)


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
    """Held batches in acknowledgement order; appended by the writer, trimmed by the flush."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        """Held while a group is logged and appended, and while a flush takes its share, so
        that a log rotation and the head agree on which requests a flush carries."""
        self._batches: tuple[HeldBatch, ...] = ()
        # The view with the batches it was built from, swapped as one object: a reader
        # that built a view of older batches can never install it as the current one's.
        self._view: tuple[tuple[HeldBatch, ...], HeadView] = ((), _EMPTY)
        self.span_count = 0

    def append(self, batches: list[HeldBatch]) -> None:
        """Call with `lock` held."""
        self._batches = self._batches + tuple(batches)
        self.span_count += sum(b.spans.num_rows for b in batches)

    def batches(self) -> tuple[HeldBatch, ...]:
        return self._batches

    def drop_first(self, count: int) -> None:
        """Forget the first `count` batches: they are committed to the file."""
        with self.lock:
            dropped, self._batches = self._batches[:count], self._batches[count:]
            self.span_count -= sum(b.spans.num_rows for b in dropped)

    def view(self) -> HeadView:
        batches = self._batches
        built_from, view = self._view
        if built_from is not batches:
            view = HeadView.of(batches)
            self._view = (batches, view)
        return view
