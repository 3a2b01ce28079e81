"""A check across traces: two checkouts of the last item in stock that both got it.

Each checkout on its own is healthy — every hop there, every header right — so no check of
one trace can fail. The evidence is in the two traces together: inventory's reservations
of the SKU overlap in time, both saw the same stock level, and both succeeded. Found with
`find` (any `tracebaton.Collector` or `tracebaton.Client`) and judged with polars.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import polars

    from tracebaton.assertions import FlowResult, Traces

_FIELDS = {
    "inventory.sku": "String",
    "inventory.stock.before": "Int64",
    "inventory.stock.after": "Int64",
    "http.response.status_code": "Int64",
    "http.status_code": "Int64",
}


class _Finds(Protocol):
    def find(
        self,
        *,
        service: str | None = None,
        name: str | None = None,
        attributes: Any = None,
        since: str | None = None,
        limit: int = 500,
    ) -> Traces: ...


@dataclasses.dataclass(frozen=True)
class Oversell:
    """What the reservations of one SKU show. `oversold` is the verdict (True: the race lost)."""

    sku: str
    reservations: polars.DataFrame
    """One row per successful reservation of the SKU: trace_id, span_id, start/end (unix ns),
    the stock it saw (`before`), what it left (`after`), and its hop (`cart -> inventory`)."""
    overlaps: polars.DataFrame
    """One row per pair of those that overlapped in time having seen the same level: their
    trace ids, the level, the overlap (ns) and the units they took beyond it (`beyond`)."""
    oversold_by: int
    """Units handed out beyond the level the reservations saw (0: no oversell)."""

    @property
    def oversold(self) -> bool:
        return self.oversold_by > 0

    @property
    def hop(self) -> str | None:
        """The hop the reservations were made through, as the flow engine names it."""
        hops = [h for h in self.reservations["hop"].to_list() if h]
        return hops[0] if hops else None

    @property
    def trace_ids(self) -> list[str]:
        return list(dict.fromkeys(self.reservations["trace_id"].to_list()))

    def result(self, name: str) -> FlowResult:
        """This verdict as a flow result over the reservations' traces, to record as a run: the
        dashboard then lists it with the checks of one trace, its Flow page showing both traces."""
        from tracebaton.assertions import FlowResult, WaitedReason

        trace_ids = tuple(self.trace_ids)
        return FlowResult(
            passed=not self.oversold, name=name, trace_id=trace_ids[0] if trace_ids else None, waited_ms=0,
            # judged on spans the flows' own checks had already waited for
            waited_reason=WaitedReason.SETTLED,
            first_divergence=self.message if self.oversold else None,
            checks=(), hops=(), trace_ids=trace_ids, span_count=self.reservations.height,
        )

    @property
    def message(self) -> str:
        where = self.hop or "inventory"
        count = self.reservations.height
        if not self.oversold:
            return (f"{where}: {count} reservation{'' if count == 1 else 's'} of {self.sku!r}, none beyond "
                    "the stock they saw")
        worst = self.overlaps.sort("beyond", "overlap_ns", descending=True).row(0, named=True)
        return (
            f"{where}: two reservations of {self.sku!r} both saw {worst['before']} in stock, overlapped by "
            f"{worst['overlap_ns'] / 1e6:.0f} ms and both succeeded: oversold by {self.oversold_by} "
            "(check-then-act without a lock)"
        )


def find_oversold(host: _Finds, sku: str, *, since: str = "10m") -> Oversell:
    """Judge the reservations of `sku` stored in the last `since` across all their traces.

    Inventory marks a counted reservation with `inventory.sku`, `inventory.stock.before` and
    `inventory.stock.after`; the SKU was oversold when two successful reservations that saw
    one level overlapped in time and took more than that level between them.
    """
    import polars as pl

    traces = host.find(service="inventory", attributes={"inventory.sku": sku}, since=since)
    fields = pl.Struct({name: getattr(pl, kind) for name, kind in _FIELDS.items()})
    spans = traces.to_polars()
    hops = traces.hops_frame().select(pl.col("callee_span_id").alias("span_id"), "hop")
    reservations = (
        spans.filter((pl.col("service") == "inventory") & (pl.col("kind") == "server"))
        .with_columns(pl.col("attributes").str.json_decode(fields).alias("a"))
        .unnest("a")
        .filter(pl.col("inventory.sku") == sku)
        .with_columns(pl.coalesce("http.response.status_code", "http.status_code").alias("http_status"))
        .filter((pl.col("status") != "error") & (pl.col("http_status").fill_null(200) < 400))
        .filter(pl.col("inventory.stock.after").is_not_null())
        .select(
            "trace_id",
            "span_id",
            pl.col("start_unix_nano").alias("start"),
            pl.col("end_unix_nano").alias("end"),
            pl.col("inventory.stock.before").alias("before"),
            pl.col("inventory.stock.after").alias("after"),
        )
        .join(hops, on="span_id", how="left")
        .unique("span_id")
        .sort("start", "span_id")
    )
    overlaps = (
        reservations.join(reservations, how="cross", suffix="_b")
        .filter(
            (pl.col("span_id") < pl.col("span_id_b"))
            & (pl.col("before") == pl.col("before_b"))
            & (pl.col("start") < pl.col("end_b"))
            & (pl.col("start_b") < pl.col("end"))
        )
        .with_columns(
            (pl.min_horizontal("end", "end_b") - pl.max_horizontal("start", "start_b")).alias("overlap_ns"),
            # both took from the one level they saw: what they took beyond it was never there
            (pl.col("before") - pl.col("after") + pl.col("before_b") - pl.col("after_b") - pl.col("before"))
            .clip(lower_bound=0)
            .alias("beyond"),
        )
        .select("trace_id", "trace_id_b", "before", "overlap_ns", "beyond")
    )
    beyond: int = overlaps["beyond"].max() if overlaps.height else 0  # type: ignore[assignment]
    return Oversell(sku=sku, reservations=reservations, overlaps=overlaps, oversold_by=int(beyond or 0))
