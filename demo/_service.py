"""The runtime every instrumented HTTP service of the shop shares: a FastAPI app with the
OpenTelemetry instrumentations, the fault middleware, an httpx client that forwards what a
service must forward, and a uvicorn server that reports its port once it listens."""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import signal
import sys
import uuid
from collections.abc import Mapping
from typing import Any, NoReturn

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor, RequestInfo
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tracebaton import whole_number

from ._faults import (
    ATTEMPT_HEADER,
    FAULT_HEADER,
    NO_FAULTS,
    OUTLIVE_S,
    REQUEST_ID_HEADER,
    SHORT_TIMEOUT_S,
    SLOW_S,
    FaultHeaderError,
    Faults,
)
from ._process import announce_ready, exit_when_stdin_closes
from ._telemetry import setup_tracing

DEFAULT_TIMEOUT_S = 5.0
_DROP_TRACE_CONTEXT = "tracebaton_demo.drop_trace_context"
_PEER_SERVICE = "tracebaton_demo.peer_service"
_URL_TEMPLATE = "tracebaton_demo.url_template"


@dataclasses.dataclass(frozen=True)
class Incoming:
    """What the request being handled carries that the service must act on or pass on."""

    request_id: str | None
    faults: Faults
    attempt: int


_INCOMING: contextvars.ContextVar[Incoming] = contextvars.ContextVar("tracebaton_demo_incoming")
_OUTSIDE_A_REQUEST = Incoming(None, NO_FAULTS, 1)


def incoming() -> Incoming:
    """The request being handled (its forwarded headers and faults)."""
    return _INCOMING.get(_OUTSIDE_A_REQUEST)


class FaultMiddleware:
    """Reads x-request-id and x-demo-fault for the handler and its outgoing calls, and plays
    the faults that happen on the receiving side. A plain ASGI middleware: it runs inside
    the OpenTelemetry server span, so a refusal or a delay shows on that span."""

    def __init__(self, app: ASGIApp, *, service: str, mint_request_id: bool) -> None:
        self.app = app
        self.service = service
        self.mint_request_id = mint_request_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            faults = Faults.parse(headers.get(FAULT_HEADER))
        except FaultHeaderError as error:
            await JSONResponse({"error": str(error), "service": self.service}, 400)(scope, receive, send)
            return
        request_id = headers.get(REQUEST_ID_HEADER) or (uuid.uuid4().hex if self.mint_request_id else None)
        raw_attempt = headers.get(ATTEMPT_HEADER, "1")
        number = whole_number(raw_attempt)
        attempt = 1 if number is None else number

        async def send_with_request_id(message: Message) -> None:
            # the client learns the id it can quote (and the frontend's minted one)
            if message["type"] == "http.response.start" and request_id is not None:
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        token = _INCOMING.set(Incoming(request_id, faults, attempt))
        try:
            refusal = self._refusal(faults, attempt)
            if refusal is not None:
                await refusal(scope, receive, send_with_request_id)
                return
            if faults.on("slow", self.service):
                await asyncio.sleep(SLOW_S)
            if faults.on("outlive-timeout", self.service):
                # the caller gives up after SHORT_TIMEOUT_S; this service does not notice
                await asyncio.sleep(SHORT_TIMEOUT_S + OUTLIVE_S)
            await self.app(scope, receive, send_with_request_id)
        finally:
            _INCOMING.reset(token)

    def _refusal(self, faults: Faults, attempt: int) -> Response | None:
        me = self.service
        if faults.on("expired-token", me):
            return JSONResponse({"error": "token expired", "service": me}, 401)
        if faults.on("format-mismatch", me):
            return JSONResponse({"error": "request does not match the expected format", "service": me}, 422)
        if faults.on("retry", me) and attempt == 1:
            return JSONResponse({"error": "temporarily unavailable, retry", "service": me}, 503)
        return None


class CallFailed(Exception):
    """An outgoing call that did not succeed; answered by the handler below, so a failure
    travels back up the chain as the HTTP status a caller would see."""

    def __init__(self, callee: str, status: int | None, reason: str) -> None:
        super().__init__(f"{callee} {reason}")
        self.callee = callee
        self.status = status
        self.reason = reason
        self.timed_out = False

    @property
    def answer_status(self) -> int:
        if self.timed_out:
            return 504
        # an expired or refused token, or an item out of stock, is the client's problem, not
        # a failure of this service: passed on as it came
        return self.status if self.status in (401, 409) else 502


async def _answer_call_failed(request: Request, error: Exception) -> Response:
    assert isinstance(error, CallFailed)
    service = request.app.state.service_name
    return JSONResponse({"error": str(error), "service": service}, error.answer_status)


class _FaultAwareTransport(httpx.AsyncBaseTransport):
    """Below the instrumentation's wrapper: the CLIENT span is recorded and the context
    injected, then `drop-traceparent` strips it again — the bug of a service that rebuilds
    its outgoing headers and loses the trace context on the way."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.extensions.get(_DROP_TRACE_CONTEXT):
            for name in ("traceparent", "tracestate"):
                request.headers.pop(name, None)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def _describe_client_span(span: Span, request: RequestInfo) -> None:
    extensions = request.extensions or {}
    if peer := extensions.get(_PEER_SERVICE):
        # the callee exports no spans: peer.service is how its hop gets a name
        span.set_attribute("peer.service", peer)
    if template := extensions.get(_URL_TEMPLATE):
        method = request.method.decode() if isinstance(request.method, bytes) else str(request.method)
        span.set_attribute("url.template", template)
        span.update_name(f"{method} {template}")


class Downstream:
    """Outgoing calls to the shop's other services, by name."""

    def __init__(self, service: str, urls: Mapping[str, str], provider: TracerProvider) -> None:
        self.service = service
        self.urls = dict(urls)
        self.client = httpx.AsyncClient(transport=_FaultAwareTransport(), timeout=DEFAULT_TIMEOUT_S)
        HTTPXClientInstrumentor.instrument_client(
            self.client, tracer_provider=provider, request_hook=_describe_client_span
        )

    async def call(
        self,
        callee: str,
        method: str,
        path: str,
        *,
        json: Any = None,
        template: str | None = None,
        uninstrumented: bool = False,
    ) -> Any:
        """Call `callee` and return its JSON answer; retries a 503 once; raises CallFailed.

        Forwards x-request-id and x-demo-fault; traceparent and baggage are injected by the
        httpx instrumentation from the current context (the handler's server span).
        """
        now = incoming()
        headers: dict[str, str] = {}
        if now.request_id is not None and not now.faults.on("drop-request-id", self.service):
            headers[REQUEST_ID_HEADER] = now.request_id
        if now.faults.header is not None:
            headers[FAULT_HEADER] = now.faults.header
        timeout = SHORT_TIMEOUT_S if now.faults.on("outlive-timeout", callee) else DEFAULT_TIMEOUT_S
        extensions: dict[str, Any] = {}
        if now.faults.on("drop-traceparent", self.service):
            extensions[_DROP_TRACE_CONTEXT] = True
        if uninstrumented:
            extensions[_PEER_SERVICE] = callee
        if template is not None:
            extensions[_URL_TEMPLATE] = template
        url = self.urls[callee].rstrip("/") + path
        for attempt in (1, 2):
            try:
                response = await self.client.request(
                    method,
                    url,
                    json=json,
                    headers={**headers, ATTEMPT_HEADER: str(attempt)},
                    timeout=timeout,
                    extensions=extensions,
                )
            except httpx.TimeoutException:
                failed = CallFailed(callee, None, f"did not answer within {timeout * 1000:.0f} ms")
                failed.timed_out = True
                raise failed from None
            except httpx.HTTPError as error:
                raise CallFailed(callee, None, f"could not be reached: {error!r}") from None
            if response.status_code == 503 and attempt == 1:
                continue  # one retry, as a client library with a retry policy would
            if response.is_success:
                return response.json()
            raise CallFailed(
                callee, response.status_code, f"answered {response.status_code}: {response.text}"
            )
        raise AssertionError("unreachable: the second attempt returns or raises")

    async def aclose(self) -> None:
        await self.client.aclose()


class _Server(uvicorn.Server):
    """Says where it listens once it does (port 0 picks one), and flushes spans on the way out."""

    def __init__(self, config: uvicorn.Config, service: Service) -> None:
        super().__init__(config)
        self.service = service

    async def startup(self, sockets: list[Any] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            announce_ready(self.service.name, f"http://{host}:{port}")

    async def shutdown(self, sockets: list[Any] | None = None) -> None:
        await super().shutdown(sockets)
        await self.service.downstream.aclose()
        # the BatchSpanProcessor would lose the last batch at exit: export it now
        await asyncio.to_thread(self.service.provider.shutdown)


def _exit_cleanly(signum: int, frame: object) -> NoReturn:
    sys.exit(0)


@dataclasses.dataclass
class Service:
    """One instrumented shop service: its app, its outgoing calls, its telemetry."""

    name: str
    app: FastAPI
    provider: TracerProvider
    downstream: Downstream

    @classmethod
    def create(cls, name: str, urls: Mapping[str, str], *, mint_request_id: bool = False) -> Service:
        provider = setup_tracing(name)
        app = FastAPI(title=f"tracebaton demo: {name}", openapi_url=None, docs_url=None, redoc_url=None)
        app.state.service_name = name
        app.add_middleware(FaultMiddleware, service=name, mint_request_id=mint_request_id)
        app.add_exception_handler(CallFailed, _answer_call_failed)

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"service": name, "status": "ok"}

        # header capture comes from OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST
        FastAPIInstrumentor.instrument_app(app, tracer_provider=provider, excluded_urls="healthz")
        return cls(name, app, provider, Downstream(name, urls, provider))

    def serve(self, port: int, *, host: str = "127.0.0.1", watch_stdin: bool) -> None:
        config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            lifespan="off",
            log_level="info",
            timeout_graceful_shutdown=2,
        )
        # uvicorn restores these handlers after its graceful shutdown and re-raises the
        # signal: exiting 0 then tells the starter the service stopped as asked
        signal.signal(signal.SIGTERM, _exit_cleanly)
        signal.signal(signal.SIGINT, _exit_cleanly)
        if watch_stdin:
            exit_when_stdin_closes()
        _Server(config, self).run()
