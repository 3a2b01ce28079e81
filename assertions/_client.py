"""The Python API's flow host: what `Collector` (a collector in this process, defined in the
app layer, `tracebaton.Collector`) and `Client` (a remote `tracebaton serve`) share — they
judge flows, fetch traces and find many the same way, over a `FlowBackend`."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tracebaton import TraceAssertionError, parse_duration_ns
from tracebaton import sut_env as _sut_env
from tracebaton.collector import TraceQuery

from ._backends import FlowBackend, RemoteBackend
from ._flow import Flow, _BackendExporter, flow_tracer_provider
from ._render import render_verdict
from ._result import FlowResult
from ._spec import FlowSpec
from ._spec_parse import parse_flow_spec
from ._trace_view import Trace

if TYPE_CHECKING:
    import polars
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider


class FlowHost:
    """Flows, checks, traces and `find` over one backend. A subclass provides `_backend`,
    and raises there when it has none (a `Collector` that is not running)."""

    def __init__(self, *, ingest_token: str | None = None) -> None:
        self.render_options: dict[str, Any] = {}
        """How failures read: `verbosity` (2 = everything), `dashboard_url`, `db_path`."""
        self._ingest_token = ingest_token
        self._provider: tuple[FlowBackend, TracerProvider, _BackendExporter] | None = None

    @property
    def _backend(self) -> FlowBackend:
        raise NotImplementedError

    def _flow_provider(self) -> tuple[TracerProvider, _BackendExporter]:
        backend = self._backend
        # a Collector started again has a new backend: the old provider would export to a closed store
        if self._provider is None or self._provider[0] is not backend:
            self._provider = (backend, *flow_tracer_provider(backend))
        return self._provider[1], self._provider[2]

    def flow(
        self,
        name: str,
        *,
        baggage: Mapping[str, str] | None = None,
        test_id: str | None = None,
        session_id: str | None = None,
    ) -> Flow:
        """A flow to send requests in (`with` or `async with`), then to judge."""
        provider, exporter = self._flow_provider()
        return Flow(self._backend, provider, exporter, name, baggage=baggage, test_id=test_id,
                    session_id=session_id, render_options=self._render_options())

    def _render_options(self) -> dict[str, Any]:
        return {"dashboard_url": self._backend.dashboard_url, **self.render_options}

    def check(
        self, spec: FlowSpec | Mapping[str, Any] | str | Any, trace_id: str | None = None
    ) -> FlowResult:
        """Judge a spec on a trace (found by the spec's `find` when no id is given)."""
        return self._backend.check(parse_flow_spec(spec), trace_id)

    def assert_spec(
        self, spec: FlowSpec | Mapping[str, Any] | str | Any, trace_id: str | None = None
    ) -> FlowResult:
        result = self.check(spec, trace_id)
        if not result.passed:
            trace = Trace.load(self._backend, result.trace_ids, root_trace_id=result.trace_id)
            raise TraceAssertionError(render_verdict(result, trace.tree, **self._render_options()), result)
        return result

    def trace(self, trace_id: str) -> Trace:
        """A trace as stored now (it does not wait: use `flow.trace()` for a settled flow)."""
        return Trace.load(self._backend, [trace_id], root_trace_id=trace_id)

    def find(
        self,
        *,
        service: str | None = None,
        name: str | None = None,
        attributes: Mapping[str, str | int | float | bool] | None = None,
        since: str | None = None,
        limit: int = 500,
    ) -> Traces:
        """Many traces at once, for aggregate assertions (p99 of a hop across a load test)."""
        since_ns = None if since is None else time.time_ns() - parse_duration_ns(since, what="find(since=)")
        backend = self._backend
        summaries = backend.traces(
            TraceQuery(
                service=service,
                name=name,
                attributes=dict(attributes or {}),
                since_unix_nano=since_ns,
                limit=limit,
            )
        )
        return Traces([Trace.load(backend, [s.trace_id]) for s in summaries])

    def sut_env(
        self, *, service_name: str | None = None, headers: Iterable[str] = (), host: str | None = None
    ) -> dict[str, str]:
        """The environment for a service process under test: export here, fast, headers captured."""
        return _sut_env(
            self._backend.otlp_http_endpoint,
            service_name=service_name,
            headers=headers,
            ingest_token=self._ingest_token,
            host=host,
        )

    def span_processor(self) -> SpanProcessor:
        """For services under test that run in the test process: add it to their
        TracerProvider and their spans reach this host's store (an embedded one without a
        network hop)."""
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        return BatchSpanProcessor(_BackendExporter(self._backend), schedule_delay_millis=20)


class Client(FlowHost):
    """A remote `tracebaton serve`: flows are judged there (`POST /api/check`)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        otlp_http_endpoint: str | None = None,
        ingest_token: str | None = None,
    ) -> None:
        super().__init__(ingest_token=ingest_token)
        self._remote = RemoteBackend(url, token=token, otlp_http_endpoint=otlp_http_endpoint,
                                     ingest_token=ingest_token)

    @property
    def _backend(self) -> FlowBackend:
        return self._remote

    def close(self) -> None:
        self._remote.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Traces(Sequence[Trace]):
    """Many traces, for aggregates computed with polars."""

    def __init__(self, traces: list[Trace]) -> None:
        self._traces = traces

    def __len__(self) -> int:
        return len(self._traces)

    def __getitem__(self, index: Any) -> Any:
        return self._traces[index]

    def to_polars(self) -> polars.DataFrame:
        """The spans of every trace, one row each (the columns of `Trace.to_polars()`): for
        checks across traces, such as two requests that overlap and should not have."""
        import polars as pl

        frames = [t.to_polars() for t in self._traces]
        return pl.concat(frames) if frames else Trace(_empty_tree()).to_polars()

    def hops_frame(self) -> polars.DataFrame:
        import polars as pl

        frames = [t.hops_frame() for t in self._traces]
        return pl.concat(frames) if frames else Trace(_empty_tree()).hops_frame()

    def hop_quantiles(self, quantile: float = 0.99) -> polars.DataFrame:
        """Per hop: how many times it happened and the duration quantile, in ms."""
        import polars as pl

        return (
            self.hops_frame()
            .group_by("hop")
            .agg(
                pl.len().alias("count"),
                (pl.col("duration_ns").quantile(quantile, interpolation="higher") / 1e6).alias("ms"),
            )
            .sort("hop")
        )

    def expect_budget(self, hops: Mapping[str, str], *, quantile: float = 0.99) -> None:
        """E.g. `{"cart -> inventory": "200ms"}`: the quantile of each hop is within budget."""
        table = {row["hop"]: row for row in self.hop_quantiles(quantile).iter_rows(named=True)}
        problems = []
        for hop, budget in hops.items():
            limit_ms = parse_duration_ns(budget, what=f"budget of {hop}") / 1e6
            row = table.get(" ".join(hop.split()))
            if row is None:
                problems.append(f"{hop}: never seen in {len(self)} traces")
            elif row["ms"] > limit_ms:
                problems.append(
                    f"{hop}: p{quantile * 100:g} {row['ms']:.1f} ms over {row['count']} calls, "
                    f"budget {budget}"
                )
        if problems:
            raise AssertionError("\n".join(problems))


def _empty_tree() -> Any:
    from ._trace import build_trace

    return build_trace(None, [], now_unix_nano=time.time_ns())
