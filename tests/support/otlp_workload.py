"""tracebaton's reference OTLP ingest workload: ExportTraceServiceRequest messages shaped
like what an instrumented shop exports.

A request holds 512 spans: 4 resources (one service each, 9 resource attributes) of 128
spans. Spans come in traces of 20 (a SERVER root, then INTERNAL and CLIENT children of it;
a trace may continue into the next resource, as a request crosses services), 10 attributes
each, strings and ints: HTTP semantic conventions on SERVER and CLIENT spans, database
conventions on INTERNAL ones. About one span in ten failed: status ERROR and an
`exception` event. About 470 bytes a span serialized. The same seed gives the same
request; different seeds give different trace and span ids.

Every ingest benchmark and load test uses it, so that their figures stay comparable:

    from otlp_workload import build_request, requests, span_count
    body = build_request(seed=7).SerializeToString()

    python tests/support/otlp_workload.py                        # the size of one request
    python tests/support/otlp_workload.py --write DIR --count 200  # DIR/req-0000.bin ... (protobuf)

The tests import it as `support.otlp_workload` (tests/ is on pytest's path), the scripts
beside it as `otlp_workload`, the benchmarks after putting tests/support on `sys.path`.
Needs only opentelemetry-proto.
"""

from __future__ import annotations

import argparse
import pathlib
import random
from collections.abc import Iterator

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

ERROR_SHARE = 0.1
"""The share of spans that failed (status ERROR, an `exception` event)."""
BASE_NS = 1_700_000_000_000_000_000
"""When the first trace of every request starts (2023-11-14T22:13:20Z)."""

SERVICES = ("shop-frontend", "shop-cart", "shop-inventory", "shop-payment")
ROUTES = (
    "/api/checkout", "/api/cart/{cart_id}", "/api/stock/{sku}", "/api/charges", "/api/orders/{order_id}",
)
PEERS = ("cart", "inventory", "payment", "orders")
QUERIES = (
    ("SELECT", "orders", "SELECT id, status, total FROM orders WHERE id = $1"),
    ("UPDATE", "stock", "UPDATE stock SET reserved = reserved + $1 WHERE sku = $2"),
    ("INSERT", "charges", "INSERT INTO charges (order_id, cents) VALUES ($1, $2)"),
)
STATUS_CODES = (200, 200, 200, 200, 201, 204, 404, 503)
EXCEPTIONS = (
    ("TimeoutError", "upstream did not answer within 2s", "call_upstream"),
    ("KeyError", "sku not in catalogue", "reserve"),
    ("ConnectionResetError", "connection reset by peer", "charge"),
)


def _attribute(key: str, value: str | int) -> KeyValue:
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def _attributes(pairs: dict[str, str | int]) -> list[KeyValue]:
    return [_attribute(key, value) for key, value in pairs.items()]


def _resource_attributes(rnd: random.Random, index: int) -> list[KeyValue]:
    return _attributes({
        "service.name": SERVICES[index % len(SERVICES)],
        "service.version": f"2.{index}.{rnd.randint(0, 9)}",
        "service.instance.id": f"{rnd.getrandbits(128):032x}",
        "deployment.environment.name": "integration",
        "host.name": f"ci-runner-{rnd.randint(1, 8)}",
        "process.pid": rnd.randint(100, 65_000),
        "telemetry.sdk.language": "python",
        "telemetry.sdk.name": "opentelemetry",
        "telemetry.sdk.version": "1.27.0",
    })


def _fill(route: str, rnd: random.Random) -> str:
    """`route` with its `{placeholder}` replaced by an id."""
    head, brace, _ = route.partition("{")
    return f"{head}{rnd.randint(1, 999_999)}" if brace else route


def _server_attributes(rnd: random.Random, method: str, route: str) -> list[KeyValue]:
    return _attributes({
        "http.request.method": method,
        "http.route": route,
        "url.path": _fill(route, rnd),
        "url.scheme": "http",
        "http.response.status_code": rnd.choice(STATUS_CODES),
        "server.address": "shop.test.svc.cluster.local",
        "server.port": 8000,
        "client.address": f"10.0.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}",
        "network.protocol.version": "1.1",
        "user_agent.original": "python-httpx/0.27.2",
    })


def _client_attributes(rnd: random.Random, peer: str) -> list[KeyValue]:
    route = rnd.choice(ROUTES)
    return _attributes({
        "http.request.method": rnd.choice(("GET", "POST", "PUT")),
        "url.full": f"http://{peer}.test.svc:8000{_fill(route, rnd)}",
        "url.template": route,
        "server.address": f"{peer}.test.svc",
        "server.port": 8000,
        "http.response.status_code": rnd.choice(STATUS_CODES),
        "http.request.resend_count": rnd.choice((0, 0, 0, 1)),
        "network.peer.address": f"10.1.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}",
        "network.protocol.version": "1.1",
        "app.request_id": f"{rnd.getrandbits(128):032x}",
    })


def _database_attributes(rnd: random.Random, operation: str, table: str, text: str) -> list[KeyValue]:
    return _attributes({
        "db.system.name": "postgresql",
        "db.namespace": "shop",
        "db.collection.name": table,
        "db.operation.name": operation,
        "db.query.text": text,
        "db.response.returned_rows": rnd.randint(0, 250),
        "server.address": "postgres.test.svc",
        "server.port": 5432,
        "thread.id": rnd.randint(1, 32),
        "code.function.name": f"shop.repository.{table}",
    })


def _fail(span: Span, rnd: random.Random) -> None:
    kind, message, function = rnd.choice(EXCEPTIONS)
    event = span.events.add()
    event.name = "exception"
    event.time_unix_nano = span.end_time_unix_nano - 1_000
    event.attributes.extend(_attributes({
        "exception.type": kind,
        "exception.message": message,
        "exception.stacktrace": f'Traceback (most recent call last):\n  File "shop/app.py", line '
                                f"{rnd.randint(10, 400)}, in {function}\n{kind}: {message}",
    }))
    span.status.code = Status.STATUS_CODE_ERROR
    span.status.message = message


class _Trace:
    """The trace being written: its id, its root's id and times, how many spans it has."""

    def __init__(self, rnd: random.Random, start_ns: int) -> None:
        self.trace_id = rnd.randbytes(16)
        self.root_id = b""
        self.start_ns = start_ns
        self.end_ns = start_ns + rnd.randint(20_000_000, 80_000_000)
        self.spans = 0


def _write_span(span: Span, trace: _Trace, rnd: random.Random) -> None:
    span.trace_id = trace.trace_id
    span.span_id = rnd.randbytes(8)
    if not trace.spans:
        trace.root_id = span.span_id
        method, route = rnd.choice(("GET", "POST")), rnd.choice(ROUTES)
        span.name = f"{method} {route}"
        span.kind = Span.SPAN_KIND_SERVER
        span.start_time_unix_nano, span.end_time_unix_nano = trace.start_ns, trace.end_ns
        span.attributes.extend(_server_attributes(rnd, method, route))
    else:
        span.parent_span_id = trace.root_id
        start = rnd.randint(trace.start_ns + 100_000, trace.end_ns - 5_000_000)
        span.start_time_unix_nano = start
        span.end_time_unix_nano = start + rnd.randint(100_000, 4_900_000)
        if rnd.random() < 0.5:
            span.kind = Span.SPAN_KIND_CLIENT
            peer = rnd.choice(PEERS)
            span.name = f"POST {peer}"
            span.attributes.extend(_client_attributes(rnd, peer))
        else:
            operation, table, text = rnd.choice(QUERIES)
            span.kind = Span.SPAN_KIND_INTERNAL
            span.name = f"{operation} shop.{table}"
            span.attributes.extend(_database_attributes(rnd, operation, table, text))
    if rnd.random() < ERROR_SHARE:
        _fail(span, rnd)
    elif rnd.random() < 0.25:
        span.status.code = Status.STATUS_CODE_OK
    trace.spans += 1


def build_request(
    seed: int = 0,
    n_resources: int = 4,
    spans_per_resource: int = 128,
    spans_per_trace: int = 20,
    base_ns: int = BASE_NS,
) -> ExportTraceServiceRequest:
    """One request of `n_resources * spans_per_resource` spans; the same for the same
    arguments, with other trace and span ids for another seed."""
    rnd = random.Random(seed)
    request = ExportTraceServiceRequest()
    trace = _Trace(rnd, base_ns)
    for index in range(n_resources):
        resource_spans = request.resource_spans.add()
        resource_spans.resource.attributes.extend(_resource_attributes(rnd, index))
        scope_spans = resource_spans.scope_spans.add()
        scope_spans.scope.name = "opentelemetry.instrumentation.fastapi"
        scope_spans.scope.version = "0.48b0"
        for _ in range(spans_per_resource):
            if trace.spans == spans_per_trace:
                trace = _Trace(rnd, trace.start_ns + rnd.randint(1_000_000, 50_000_000))
            _write_span(scope_spans.spans.add(), trace, rnd)
    return request


def requests(count: int, first_seed: int = 0) -> Iterator[bytes]:
    """`count` serialized requests, seeds `first_seed` onwards: no two share an id."""
    for seed in range(first_seed, first_seed + count):
        yield build_request(seed=seed).SerializeToString()


def span_count(request: ExportTraceServiceRequest) -> int:
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--write", type=pathlib.Path, metavar="DIR",
                        help="write serialized requests into DIR")
    parser.add_argument("--count", type=int, default=1, help="how many requests to write (default 1)")
    parser.add_argument("--first-seed", type=int, default=0)
    args = parser.parse_args()
    if args.write is not None:
        args.write.mkdir(parents=True, exist_ok=True)
        for number, body in enumerate(requests(args.count, args.first_seed)):
            (args.write / f"req-{number:04d}.bin").write_bytes(body)
        print(f"wrote {args.count} requests to {args.write}")
        return
    request = build_request(seed=args.first_seed)
    size, spans = request.ByteSize(), span_count(request)
    print(f"spans {spans} bytes {size} bytes/span {size / spans:.0f}")


if __name__ == "__main__":
    main()
