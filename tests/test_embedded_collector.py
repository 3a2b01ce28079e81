"""`Collector`'s lifecycle: not started, running, shut down. Outside its run it says how to
start it instead of failing somewhere inside; it may run again after a shutdown."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind

from tracebaton import Collector, CollectorStateError, TracebatonError

HOW = "use `with Collector() as tb:` or call `tb.start()`"

USES: dict[str, Callable[[Collector], Any]] = {
    "flow": lambda tb: tb.flow("checkout"),
    "check": lambda tb: tb.check({"name": "x", "expect": {"hops": ["a -> b"]}}, "0" * 31 + "1"),
    "trace": lambda tb: tb.trace("0" * 31 + "1"),
    "find": lambda tb: tb.find(service="cart"),
    "sut_env": lambda tb: tb.sut_env(),
    "span_processor": lambda tb: tb.span_processor(),
    "addresses": lambda tb: tb.addresses,
    "store": lambda tb: tb.store,
}


@pytest.mark.parametrize("use", USES.values(), ids=USES.keys())
def test_before_start_every_use_says_how_to_start_it(use: Callable[[Collector], Any]) -> None:
    tb = Collector()
    assert tb.state == "not started"
    with pytest.raises(CollectorStateError) as caught:
        use(tb)
    assert isinstance(caught.value, TracebatonError)
    assert caught.value.state == "not started"
    assert str(caught.value).startswith("this Collector is not started, and ")
    assert HOW in str(caught.value)


def test_after_shutdown_it_says_so_and_starts_again_with_its_file(tmp_path: Path) -> None:
    tb = Collector(str(tmp_path / "store.duckdb"))
    with tb:
        assert tb.state == "running"
        with tb.flow("checkout") as flow:
            pass
        first_api = tb.addresses.api_url
    assert tb.state == "shut down"
    for use in USES.values():
        with pytest.raises(CollectorStateError, match="was shut down") as caught:
            use(tb)
        assert HOW in str(caught.value)
        assert caught.value.state == "shut down"
    tb.shutdown()  # a second shutdown does nothing
    with tb:
        assert tb.state == "running"
        assert tb.addresses.api_url != first_api, "new free ports"
        spans = tb.trace(flow.trace_id).spans
        assert [s.name for s in spans] == ["flow checkout"], "the file kept the first run's flow"


def test_starting_a_running_collector_is_refused() -> None:
    with Collector() as tb:
        with pytest.raises(CollectorStateError, match=r"already running \(API at http://127\.0\.0\.1:\d+\)"):
            tb.start()
        assert tb.state == "running", "the refused start left it running"
        assert tb.sut_env()["OTEL_EXPORTER_OTLP_ENDPOINT"] == tb.addresses.otlp_http_url


def test_its_span_processor_feeds_the_store_from_this_process() -> None:
    with Collector() as tb:
        provider = TracerProvider(resource=Resource.create({"service.name": "inventory"}))
        provider.add_span_processor(tb.span_processor())
        tracer = provider.get_tracer("test")
        with tb.flow("reserve") as flow, tracer.start_as_current_span("POST /reserve", kind=SpanKind.SERVER):
            pass
        provider.force_flush()
        spans = {(s.service, s.name) for s in flow.trace().spans}
        provider.shutdown()
    assert spans == {("test", "flow reserve"), ("inventory", "POST /reserve")}
