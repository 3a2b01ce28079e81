"""`flow(name)`: a test's own root span, the headers that carry it, and the assertions on
what the services under test did inside it (DESIGN §6)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from opentelemetry import baggage as otel_baggage
from opentelemetry import context as otel_context
from opentelemetry import trace as otel_trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from tracebaton import ConfigurationError, TraceAssertionError

from ._backends import EmbeddedBackend, FlowBackend, RemoteBackend
from ._engine import FlowEngine
from ._hops import TEST_SERVICE
from ._render import render_verdict
from ._result import FlowResult
from ._snapshot import read_snapshot
from ._snapshot_diff import render_snapshot_verdict
from ._snapshot_judge import SnapshotOutcome, flow_of, judge_snapshot
from ._spec import FlowSpec, WaitSpec
from ._spec_parse import parse_flow_spec
from ._trace_view import Trace

_MARGIN_S = 30.0
"""Beyond its waits, how long a remote snapshot check may take to come back."""


@dataclasses.dataclass
class SnapshotPlace:
    """Where a flow's snapshots live and what a run does with them: the pytest plugin makes
    one per test (`__snapshots__/<test file stem>/<test name>.flow.yaml`, `--tracebaton-update`)."""

    directory: Path
    test_name: str
    """The file name's stem: the test's name, parametrized ids included, made file-safe."""
    update: bool = False
    command: str | None = None
    """The command that writes this test's snapshots (`pytest --tracebaton-update NODE`)."""
    on_use: Callable[[Path, str], None] | None = None
    """Told of each snapshot file a test compared with (`used`), wrote (`created`, `updated`)."""
    asserted: set[Path] = dataclasses.field(default_factory=set)

    def path(self, name: str | None) -> Path:
        if name is not None and (not name.strip() or any(c in name for c in "/\\\0")):
            raise ConfigurationError(
                f"assert_snapshot(name={name!r}): a snapshot name is a plain word that goes into its file "
                "name; give e.g. name='refund'"
            )
        stem = self.test_name if name is None else f"{self.test_name}.{name.strip()}"
        return self.directory / f"{stem}.flow.yaml"


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _write_atomically(path: Path, text: str) -> None:
    """Whole or not at all: an interrupted run never leaves half a snapshot behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class _TestTrafficSampler(Sampler):
    """Samples every flow root and marks it `tracebaton=1` in tracestate, so a shared
    OpenTelemetry Collector can route test traffic apart."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        state = (
            (trace_state or TraceState()).add("tracebaton", "1")
            if not (trace_state and "tracebaton" in trace_state)
            else trace_state
        )
        return SamplingResult(Decision.RECORD_AND_SAMPLE, attributes, state)

    def get_description(self) -> str:
        return "TracebatonTestTraffic"


class _BackendExporter(SpanExporter):
    def __init__(self, backend: FlowBackend) -> None:
        self._backend = backend
        self.error: BaseException | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self._backend.export_spans(spans)
        except Exception as error:  # surfaced by Flow.__exit__, not swallowed by the SDK
            self.error = error
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS


def flow_tracer_provider(backend: FlowBackend) -> tuple[TracerProvider, _BackendExporter]:
    """A provider of the test's own (never the global one: the test's services may set that)."""
    exporter = _BackendExporter(backend)
    provider = TracerProvider(
        resource=Resource.create({"service.name": TEST_SERVICE}), sampler=_TestTrafficSampler()
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter



_BAGGAGE_KEY = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""A W3C Baggage key (an HTTP token): OpenTelemetry's propagator drops any other in silence."""


def _checked_baggage(baggage: Mapping[str, str]) -> dict[str, str]:
    for key in baggage:
        if not isinstance(key, str) or not _BAGGAGE_KEY.fullmatch(key):
            raise ConfigurationError(
                f"baggage key {key!r} is not one W3C Baggage can carry (letters, digits and "
                "!#$%&'*+-.^_`|~ only), so it would never reach a service; write e.g. tenant_id")
    return dict(baggage)

class Flow:
    """One request (or several) a test sends through the services under test.

    Inside `with`, the flow's root span is the current OpenTelemetry context, so
    instrumented clients propagate it unasked; `headers` carries it to those that are not.
    """

    def __init__(
        self,
        backend: FlowBackend,
        provider: TracerProvider,
        exporter: _BackendExporter,
        name: str,
        *,
        baggage: Mapping[str, str] | None = None,
        test_id: str | None = None,
        session_id: str | None = None,
        render_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.render_options: dict[str, Any] = dict(render_options or {})
        """dashboard_url, db_path, verbosity: how a failure reads (pytest -vv sets verbosity)."""
        self.test_id = test_id
        self.session_id = session_id
        self._backend = backend
        self._tracer = provider.get_tracer("tracebaton")
        self._exporter = exporter
        self._baggage = _checked_baggage(baggage or {})
        self._span: Any = None
        self._token: object | None = None
        self.trace_id: str = ""
        self.headers: dict[str, str] = {}
        self.results: list[FlowResult] = []
        self.on_start: list[Callable[[Flow], None]] = []
        """Called once the trace id is known (the pytest plugin notes it for JUnit)."""
        self.snapshots: SnapshotPlace | None = None
        """Where `assert_snapshot()` finds its files; the pytest plugin sets it."""

    # the with block ----------------------------------------------------------------------

    def __enter__(self) -> Flow:
        attributes = {"tracebaton.flow": self.name}
        if self.test_id:
            attributes["tracebaton.test_id"] = self.test_id
        self._span = self._tracer.start_span(
            f"flow {self.name}", kind=SpanKind.CLIENT, attributes=attributes, context=Context()
        )
        ctx = otel_trace.set_span_in_context(self._span, Context())
        for key, value in self._baggage.items():
            ctx = otel_baggage.set_baggage(key, value, ctx)
        self._token = otel_context.attach(ctx)
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier, ctx)
        W3CBaggagePropagator().inject(carrier, ctx)
        self.headers = carrier
        self.trace_id = format(self._span.get_span_context().trace_id, "032x")
        for callback in self.on_start:
            callback(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._token = None
        if exc is not None:
            self._span.record_exception(exc)
        self._span.end()
        if self._exporter.error is not None and exc is None:
            error, self._exporter.error = self._exporter.error, None
            raise error

    async def __aenter__(self) -> Flow:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # contextvars differ per task: detach here, export (network in remote mode) off the loop
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._token = None
        await asyncio.to_thread(self.__exit__, exc_type, exc, tb)

    # judging -----------------------------------------------------------------------------

    def _spec(self, spec: FlowSpec | Mapping[str, Any] | str | Any) -> FlowSpec:
        if isinstance(spec, Mapping) and "name" not in spec:
            spec = {"name": self.name, **spec}
        return parse_flow_spec(spec)

    def check(self, spec: FlowSpec | Mapping[str, Any] | str | Any) -> FlowResult:
        """Judge a spec on this flow and return the verdict, pass or fail."""
        if not self.trace_id:
            raise RuntimeError("the flow has not started: judge it after its `with` block")
        result = self._backend.check(
            self._spec(spec), self.trace_id, test_id=self.test_id, session_id=self.session_id
        )
        self.results.append(result)
        return result

    def assert_spec(self, spec: FlowSpec | Mapping[str, Any] | str | Any) -> FlowResult:
        """Judge a spec (FlowSpec, dict, YAML text or file path); raise TraceAssertionError on failure."""
        result = self.check(spec)
        if not result.passed:
            raise TraceAssertionError(self.render(result), result)
        return result

    def render(self, result: FlowResult, *, verbosity: int | None = None) -> str:
        trace = Trace.load(self._backend, result.trace_ids or (self.trace_id,), root_trace_id=self.trace_id)
        options = {"dashboard_url": self._backend.dashboard_url, **self.render_options}
        if verbosity is not None:
            options["verbosity"] = verbosity
        return render_verdict(result, trace.tree, **options)

    async def assert_spec_async(self, spec: FlowSpec | Mapping[str, Any] | str | Any) -> FlowResult:
        return await asyncio.to_thread(self.assert_spec, spec)

    # golden flows ----------------------------------------------------------------------

    def assert_snapshot(self, name: str | None = None, *, path: str | os.PathLike[str] | None = None,
                        update: bool | None = None) -> FlowResult:
        """Compare the flow with its snapshot file; raise TraceAssertionError with a hop diff
        (`-` snapshot, `+` now) when it changed. In pytest the file is
        `__snapshots__/<test file stem>/<test name>[.<name>].flow.yaml` beside the test, and
        `pytest --tracebaton-update` writes missing and changed ones; elsewhere give `path=`
        (and `update=True` to write it)."""
        if not self.trace_id:
            raise RuntimeError("the flow has not started: compare it with its snapshot after its `with` "
                               "block")
        place = self.snapshots
        if path is not None:
            file = Path(path)
        elif place is not None:
            file = place.path(name)
        else:
            raise ConfigurationError(
                "flow.assert_snapshot() outside pytest needs path=: the snapshot file to compare the flow "
                "with, e.g. path='snapshots/checkout.flow.yaml' (update=True writes it)"
            )
        writing = update if update is not None else bool(place and place.update)
        if place is not None:
            if file in place.asserted:
                raise ConfigurationError(
                    f"this test already compared a flow with {_shown(file)}; give each snapshot of one "
                    "test a name of its own: flow.assert_snapshot(name='refund')"
                )
            place.asserted.add(file)
        shown = _shown(file)
        text = file.read_bytes() if file.is_file() else None
        wait = read_snapshot(text, shown).spec.wait if text is not None else WaitSpec()  # bad files fail here
        outcome = self._judge_snapshot(text, shown, writing, wait)
        self.results.append(outcome.result)
        if place is not None and place.on_use is not None:
            place.on_use(file, "used")
        if outcome.written is not None:
            _write_atomically(file, outcome.written)
            if place is not None and place.on_use is not None:
                place.on_use(file, "updated" if outcome.existed else "created")
            return outcome.result
        command = (place.command if place is not None else None) or (
            f"flow.assert_snapshot(path={str(file)!r}, update=True)")
        if outcome.refused is not None:
            raise TraceAssertionError(self._refusal(outcome, shown), outcome.result)
        if not outcome.existed:
            raise TraceAssertionError(
                f"flow {self.name!r}: no snapshot {shown} · trace {self.trace_id}\n"
                f"write it from this flow: {command}", outcome.result)
        if not outcome.result.passed:
            raise TraceAssertionError(self.render_snapshot(outcome, shown, command), outcome.result)
        return outcome.result

    async def assert_snapshot_async(self, name: str | None = None, *,
                                    path: str | os.PathLike[str] | None = None,
                                    update: bool | None = None) -> FlowResult:
        return await asyncio.to_thread(self.assert_snapshot, name, path=path, update=update)

    def _judge_snapshot(self, text: bytes | None, shown: str, update: bool,
                        wait: WaitSpec) -> SnapshotOutcome:
        backend = self._backend
        if isinstance(backend, EmbeddedBackend):
            # the backend's own engine: it learned which service answers where from earlier flows
            engine = getattr(backend, "_engine", None) or FlowEngine(backend.store)
            return judge_snapshot(backend.store, engine, trace_id=self.trace_id, name=self.name,
                                  snapshot=text, origin=shown, update=update, test_id=self.test_id,
                                  session_id=self.session_id)
        if isinstance(backend, RemoteBackend):
            # judged where the spans are, as `assert_spec` is: the server waits on arrivals
            payload = {"trace_id": self.trace_id, "name": self.name,
                       "snapshot": None if text is None else text.decode("utf-8", "replace"),
                       "origin": shown, "update": update, "test_id": self.test_id,
                       "session_id": self.session_id}
            wait_s = 3 * wait.timeout_ns / 1e9 + _MARGIN_S  # up to three waits: verdict, settle, a queue
            response = backend._request(backend._http, "POST", "/api/snapshots/check", json=payload,
                                        timeout=wait_s)
            return SnapshotOutcome.from_json(backend._json(response))
        raise ConfigurationError("flow snapshots need an embedded or a remote backend, not "
                                 f"{type(backend).__name__}")

    def _flow_tree(self, result: FlowResult) -> Any:
        spans = self._backend.spans(list(result.trace_ids or (self.trace_id,)))
        return flow_of(result, spans, now_unix_nano=time.time_ns())[0]

    def render_snapshot(self, outcome: SnapshotOutcome, shown: str, accept: str | None,
                        *, verbosity: int | None = None) -> str:
        options = {"dashboard_url": self._backend.dashboard_url, **self.render_options}
        if verbosity is not None:
            options["verbosity"] = verbosity
        return render_snapshot_verdict(outcome.result, outcome.diff, self._flow_tree(outcome.result),
                                       snapshot=shown, accept=accept, **options)

    def _refusal(self, outcome: SnapshotOutcome, shown: str) -> str:
        return (f"flow {self.name!r}: cannot record snapshot {shown} · trace {self.trace_id}\n"
                f"{outcome.refused}\n"
                "a snapshot is recorded only from a complete flow whose services export promptly; "
                "fix that, then record it again")

    def expect_hops(
        self,
        *hops: str | Sequence[str],
        order: str = "subsequence",
        timeout: str | None = None,
    ) -> FlowResult:
        """These hops happened, in this order (a list inside is a group in any order)."""
        return self.assert_spec(
            self._builder(
                {"hops": [h if isinstance(h, str) else list(h) for h in hops], "order": order}, timeout
            )
        )

    def expect_budget(
        self,
        *,
        trace: str | None = None,
        hops: Mapping[str, str] | None = None,
        deadlines: bool = False,
        timeout: str | None = None,
    ) -> FlowResult:
        budgets: dict[str, Any] = {"deadlines": deadlines}
        if trace is not None:
            budgets["trace"] = trace
        if hops:
            budgets["hops"] = dict(hops)
        return self.assert_spec(self._builder({"budgets": budgets}, timeout))

    def expect_propagated(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        baggage: Mapping[str, str] | None = None,
        timeout: str | None = None,
    ) -> FlowResult:
        propagation: dict[str, Any] = {"connected": True}
        if headers:
            propagation["headers"] = dict(headers)
        if baggage:
            propagation["baggage"] = dict(baggage)
        return self.assert_spec(self._builder({"propagation": propagation}, timeout))

    def _builder(self, expect: dict[str, Any], timeout: str | None) -> dict[str, Any]:
        # a builder checks what it names: the spec defaults for errors and connectedness
        # would make `expect_hops` fail on an unrelated 500
        spec: dict[str, Any] = {
            "name": self.name,
            "expect": {"errors": "any", "propagation": {"connected": False}, **expect},
        }
        if timeout is not None:
            spec["wait"] = {"timeout": timeout}
        return spec

    def trace(self, *, timeout: str | None = None) -> Trace:
        """The flow's spans once it settled: hops, tree, `to_polars()`, `to_spec()`."""
        spec: dict[str, Any] = {"name": self.name, "expect": {"errors": "any"}}
        if timeout is not None:
            spec["wait"] = {"timeout": timeout}
        result = self._backend.check(
            parse_flow_spec(spec),
            self.trace_id,
            test_id=self.test_id,
            session_id=self.session_id,
            record=False,
        )
        return Trace.load(
            self._backend, result.trace_ids or (self.trace_id,), root_trace_id=self.trace_id, name=self.name
        )
