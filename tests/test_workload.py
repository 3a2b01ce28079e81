"""The reference ingest workload (tests/support/otlp_workload.py) has the shape its figures
are quoted for: 512 spans a request, traces of 20, ~10 attributes a span, ~10% errors,
~470 bytes a span, deterministic for a seed."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

from conftest import SUPPORT
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status
from support.otlp_workload import build_request, requests, span_count

SEEDS = range(10)


def _spans(request: ExportTraceServiceRequest) -> list[Span]:
    return [span for resource in request.resource_spans for scope in resource.scope_spans
            for span in scope.spans]


def _values(attributes: list[KeyValue]) -> dict[str, str | int]:
    values: dict[str, str | int] = {}
    for attribute in attributes:
        which = attribute.value.WhichOneof("value")
        assert which in ("string_value", "int_value"), (attribute.key, which)
        values[attribute.key] = getattr(attribute.value, which)
    return values


def test_a_request_is_four_services_of_128_spans() -> None:
    request = build_request()
    assert span_count(request) == len(_spans(request)) == 512
    assert len(request.resource_spans) == 4
    services = []
    for resource_spans in request.resource_spans:
        resource = _values(list(resource_spans.resource.attributes))
        assert len(resource) == 9
        assert isinstance(resource["process.pid"], int)
        services.append(resource["service.name"])
        assert [len(scope.spans) for scope in resource_spans.scope_spans] == [128]
    assert len(set(services)) == 4


def test_traces_are_20_spans_under_a_server_root() -> None:
    for seed in SEEDS:
        traces: dict[bytes, list[Span]] = defaultdict(list)
        for span in _spans(build_request(seed=seed)):
            traces[span.trace_id].append(span)
        sizes = [len(spans) for spans in traces.values()]
        assert sizes == [20] * 25 + [12]  # 512 = 25 x 20 + 12: the last trace is cut short
        for spans in traces.values():
            root, *children = spans
            assert root.kind == Span.SPAN_KIND_SERVER
            assert root.parent_span_id == b""
            assert {child.kind for child in children} <= {Span.SPAN_KIND_INTERNAL, Span.SPAN_KIND_CLIENT}
            assert all(child.parent_span_id == root.span_id for child in children)
            assert all(root.start_time_unix_nano < child.start_time_unix_nano
                       < child.end_time_unix_nano < root.end_time_unix_nano for child in children)
        kinds = Counter(span.kind for spans in traces.values() for span in spans[1:])
        assert kinds[Span.SPAN_KIND_INTERNAL] > 100
        assert kinds[Span.SPAN_KIND_CLIENT] > 100


def test_a_span_is_about_470_bytes_serialized() -> None:
    for seed in SEEDS:
        body = build_request(seed=seed).SerializeToString()
        assert 440 <= len(body) / 512 <= 500, (seed, len(body) / 512)


def test_attributes_follow_the_http_and_database_conventions() -> None:
    for span in _spans(build_request(seed=1)):
        attributes = _values(list(span.attributes))
        assert len(attributes) == 10, span.name
        assert {type(value) for value in attributes.values()} == {str, int}, span.name
        assert isinstance(attributes["server.port"], int)
        if span.kind == Span.SPAN_KIND_INTERNAL:
            assert attributes["db.system.name"] == "postgresql"
            assert {"db.query.text", "db.operation.name", "db.namespace"} <= attributes.keys()
            assert isinstance(attributes["db.response.returned_rows"], int)
        else:
            assert attributes["http.request.method"] in ("GET", "POST", "PUT")
            assert isinstance(attributes["http.response.status_code"], int)
            if span.kind == Span.SPAN_KIND_SERVER:
                assert span.name == f"{attributes['http.request.method']} {attributes['http.route']}"
            else:
                assert str(attributes["url.full"]).startswith("http://")


def test_about_one_span_in_ten_failed_with_an_exception_event() -> None:
    spans = [span for seed in SEEDS for span in _spans(build_request(seed=seed))]
    failed = [span for span in spans if span.status.code == Status.STATUS_CODE_ERROR]
    assert 0.08 <= len(failed) / len(spans) <= 0.12, len(failed) / len(spans)
    for span in failed:
        (event,) = span.events
        assert event.name == "exception"
        exception = _values(list(event.attributes))
        assert exception.keys() == {"exception.type", "exception.message", "exception.stacktrace"}
        assert span.status.message == exception["exception.message"]
        assert span.start_time_unix_nano <= event.time_unix_nano <= span.end_time_unix_nano
    assert all(not span.events for span in spans if span.status.code != Status.STATUS_CODE_ERROR)


def test_the_same_seed_gives_the_same_request() -> None:
    assert build_request(seed=5).SerializeToString() == build_request(seed=5).SerializeToString()
    expected = [build_request(seed=seed).SerializeToString() for seed in (5, 6)]
    assert list(requests(2, first_seed=5)) == expected


def test_other_seeds_give_other_ids() -> None:
    """The overload test sends 600 seeds and counts spans by trace id: none may repeat."""
    trace_ids: set[bytes] = set()
    span_ids: set[bytes] = set()
    for seed in range(100):
        spans = _spans(build_request(seed=seed))
        traces = {span.trace_id for span in spans}
        assert trace_ids.isdisjoint(traces), seed
        trace_ids |= traces
        span_ids |= {span.span_id for span in spans}
    assert len(span_ids) == 100 * 512


def test_the_script_prints_the_size_and_writes_requests(tmp_path: Path) -> None:
    script = str(SUPPORT / "otlp_workload.py")
    printed = subprocess.run([sys.executable, script], capture_output=True, text=True, check=True).stdout
    assert printed.startswith("spans 512 bytes "), printed
    subprocess.run([sys.executable, script, "--write", str(tmp_path), "--count", "2"], check=True,
                   capture_output=True)
    written = sorted(tmp_path.iterdir())
    assert [path.name for path in written] == ["req-0000.bin", "req-0001.bin"]
    assert [path.read_bytes() for path in written] == list(requests(2))
