"""What stands in front of every route: errors as messages (never a stack trace), bounded
request bodies, the bearer token, and security headers for the dashboard.

Written as plain ASGI middleware where it must see the raw request (body limits, tokens), so
that no route can forget it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from tracebaton import DURATION_UNITS, StoreClosedError, StoreError, StoreSaturatedError, TracebatonError

from ._jaeger_json import error_body
from ._jaeger_v3_shapes import error_body as v3_error_body

log = logging.getLogger("tracebaton.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_COOKIE = "tracebaton_token"
JAEGER_SIGN_IN = (
    "this server requires a token: open /login?token=<token> once in this browser (the dashboard's "
    "cookie then signs in Jaeger UI), or send `Authorization: Bearer <token>` (in Grafana: a custom HTTP "
    "header on the data source); the token is the value of --token / TRACEBATON_TOKEN"
)

# The dashboard runs only its own scripts and styles: span data that slipped into markup
# could still not execute. (The pages also never put data into HTML; see dashboards/.)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def cookie_value(token: str) -> str:
    """What the dashboard's cookie holds: derived from the token (hex, so any token is a valid
    cookie value), never the token itself."""
    return hmac.new(token.encode(), b"tracebaton dashboard", hashlib.sha256).hexdigest()


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps({"detail": detail}), status, headers, media_type="application/json")


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("query", "path", "header", "cookie"):
        return f"{parts[0]} parameter {'.'.join(parts[1:])}"
    if parts and parts[0] == "body":
        return "body field " + ".".join(parts[1:]) if len(parts) > 1 else "the body"
    return ".".join(parts) or "the request"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# What a pattern means, in words, by the parameter it guards.
_PATTERN_HINTS = {
    "trace_id": "is not 32 hex digits; copy it from a traceparent header (its second field) or a test "
    "failure message",
    "run_id": "is not a run id (`r` and 20 hex digits, as POST /api/check and GET /api/runs return it)",
    # the two traces of GET /api/diff
    "a": "is not 32 hex digits; copy a trace id from a traceparent header or the dashboard's Traces page",
    "b": "is not 32 hex digits; copy a trace id from a traceparent header or the dashboard's Traces page",
    "key": "is neither a run id (`r` and 20 hex digits) nor a trace id (32 hex digits)",
    "since": f"is not a duration; write a number and a unit ({DURATION_UNITS}), e.g. 15m",
}


_MEMBER_WORDS = {"str": "a string", "int": "a whole number", "float": "a number", "bool": "true or false",
                 "none": "null"}


def _member_words(tag: str) -> str | None:
    """A union member as pydantic tags its error (`str`, `dict[str,any]`), in words; None when
    `tag` is a field's name instead."""
    if tag in _MEMBER_WORDS:
        return _MEMBER_WORDS[tag]
    if tag.startswith("dict["):
        return "a JSON object"
    if tag.startswith("list["):
        return "a list"
    return None


def _unions_folded(errors: list[Any]) -> list[Any]:
    """A value that fits no member of a union gets one error per member from pydantic; a
    person needs one sentence naming what the field takes."""
    folded: list[Any] = []
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for error in errors:
        loc = tuple(error.get("loc", ()))
        words = _member_words(str(loc[-1])) if loc else None
        if words is None:
            folded.append(error)
            continue
        key = loc[:-1]
        if key not in groups:
            groups[key] = {"loc": key, "type": "union", "input": error.get("input"), "members": []}
            folded.append(groups[key])
        if words not in groups[key]["members"]:
            groups[key]["members"].append(words)
    return folded


def validation_message(errors: list[Any]) -> str:
    """Pydantic's error list as sentences a person acts on: where, what was sent, the rule."""
    lines = []
    errors = _unions_folded(errors)
    for error in errors[:5]:
        where = _where(tuple(error.get("loc", ())))
        kind = error.get("type", "")
        message = error.get("msg", "is invalid")
        if kind == "missing":
            lines.append(f"{where} is required")
        elif kind == "extra_forbidden":
            lines.append(f"{where} is not a field of this request; remove it")
        elif kind == "json_invalid":
            lines.append(
                f"the body is not valid JSON ({error.get('ctx', {}).get('error', message)}); "
                "send a JSON object"
            )
        elif kind == "string_pattern_mismatch" and str(error.get("loc", ("",))[-1]) in _PATTERN_HINTS:
            lines.append(f"{where}: {_shown(error.get('input'))} {_PATTERN_HINTS[str(error['loc'][-1])]}")
        elif kind == "literal_error":
            lines.append(
                f"{where}: {_shown(error.get('input'))} is not one of "
                f"{error.get('ctx', {}).get('expected', 'the allowed values')}"
            )
        elif kind == "union":
            members = error["members"]
            takes = (f"not {members[0]}" if len(members) == 1
                     else f"neither {members[0]} nor {members[1]}" if len(members) == 2
                     else "none of: " + ", ".join(members))
            lines.append(f"{where}: {_shown(error.get('input'))} is {takes}")
        elif kind == "model_attributes_type":
            lines.append(f"{where} must be a JSON object, got {_shown(error.get('input'))}")
        else:
            lines.append(f"{where}: {_shown(error.get('input'))} is not accepted: {message}")
    if len(errors) > 5:
        lines.append(f"and {len(errors) - 5} more")
    return "; ".join(lines)


_OPEN_QUERY_PREFIXES = {"/api/traces": ("attr.",)}
"""Routes that take parameters by a prefix, besides those they declare (`attr.<key>=`)."""


def known_query_parameters(app: FastAPI) -> Callable[[Request], Awaitable[None]]:
    """A dependency refusing query parameters an `/api` route does not take: a misspelt filter
    (`?servce=cart`) was ignored, and the answer held everything. What a route takes is read
    from its OpenAPI operation, the one list its documentation shows too. Jaeger's routes
    keep Jaeger's leniency: its clients send parameters of their own."""
    taken: dict[tuple[str, str], frozenset[str]] = {}

    async def refuse_unknown(request: Request) -> None:
        if not request.query_params or not request.url.path.startswith("/api/"):
            return
        path = getattr(request.scope.get("route"), "path", None)
        if not isinstance(path, str):
            return
        key = (path, request.method.lower())
        if key not in taken:
            operation = app.openapi().get("paths", {}).get(path, {}).get(key[1], {})
            parameters = operation.get("parameters", [])
            taken[key] = frozenset(p["name"] for p in parameters if p.get("in") == "query")
        allowed, prefixes = taken[key], _OPEN_QUERY_PREFIXES.get(path, ())
        unknown = [name for name in dict.fromkeys(request.query_params)
                   if name not in allowed and not name.startswith(prefixes)]
        if unknown:
            takes = ", ".join([*sorted(allowed), *(f"{prefix}<key>" for prefix in prefixes)]) or "none"
            raise StarletteHTTPException(
                422, f"query parameter {unknown[0][:80]!r} is not one {request.method} {path} takes; "
                     f"it takes {takes}")

    return refuse_unknown


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> Response:
        return problem(422, validation_message(list(error.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        detail = error.detail if isinstance(error.detail, str) else str(error.detail)
        if error.status_code == 404 and detail == "Not Found":
            detail = "no such route; the API is under /api (see /openapi.json) and the dashboard at /"
            if request.url.path.startswith("/api/api/"):
                detail = ("no such route: the path has /api twice; give clients the server's base "
                          "URL (http://HOST:7357), not its /api")
        if error.status_code == 405:
            detail = "this route does not take that method; see /openapi.json"
        return problem(error.status_code, detail, dict(error.headers or {}))

    @app.exception_handler(StoreSaturatedError)
    async def saturated(_: Request, error: StoreSaturatedError) -> Response:
        return problem(503, str(error), {"Retry-After": str(max(1, round(error.retry_after_s)))})

    @app.exception_handler(StoreClosedError)
    async def closed(_: Request, error: StoreClosedError) -> Response:
        return problem(503, f"{error}; the server is stopping", {"Retry-After": "1"})

    @app.exception_handler(StoreError)
    async def store_failed(_: Request, error: StoreError) -> Response:
        log.warning("store error: %s", error)
        return problem(503, f"the store could not answer ({error}); retry shortly", {"Retry-After": "1"})

    @app.exception_handler(TracebatonError)
    async def refused(_: Request, error: TracebatonError) -> Response:
        return problem(400, str(error))

    @app.exception_handler(Exception)
    async def crashed(request: Request, error: Exception) -> Response:
        # A bug of ours: logged with its traceback here, never sent to the client.
        log.exception("%s %s failed", request.method, request.url.path)
        return problem(
            500,
            f"tracebaton failed on this request ({type(error).__name__}); "
            "the server log has the details — please report it",
        )


class BodyLimit:
    """Buffers a request body up to the route's limit, refusing it with 413 past that.

    The limit is checked on the bytes as they arrive, so a client that announces no length
    (chunked) cannot make the server hold more than the limit either.
    """

    def __init__(self, app: ASGIApp, *, default_limit: int, limits: dict[str, tuple[int, str]]) -> None:
        """`limits`: a route's own limit and what to do past it; other routes take `default_limit`."""
        self.app = app
        self.default_limit = default_limit
        self.limits = limits

    def _limit(self, path: str) -> tuple[int, str]:
        return self.limits.get(path, (self.default_limit, "send a smaller request: a spec or query this "
                                                          "large is not what this route is for"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        limit, fix = self._limit(scope["path"])
        message = f"the body is larger than this route takes ({limit} bytes); {fix}"
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await problem(413, message)(scope, receive, send)
            return
        body = bytearray()
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                return
            body += event.get("body", b"")
            if len(body) > limit:
                await problem(413, message)(scope, receive, send)
                return
            if not event.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class TokenGuard:
    """`--token`: `/api/*` and `/jaeger/api/*` need `Authorization: Bearer <token>` (or the
    dashboard's cookie);
    dashboard pages need the cookie, set once by `/login?token=…`. `/healthz` never does."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token
        self.cookie = cookie_value(token).encode() if token else b""

    def _authorized(self, scope: Scope) -> bool:
        assert self.token is not None
        headers = dict(scope["headers"])
        expected = self.token.encode()
        authorization = headers.get(b"authorization", b"")
        if authorization[:7].lower() == b"bearer " and hmac.compare_digest(
            authorization[7:].strip(), expected
        ):
            return True
        for part in headers.get(b"cookie", b"").split(b";"):
            name, _, value = part.strip().partition(b"=")
            if name == TOKEN_COOKIE.encode() and hmac.compare_digest(value, self.cookie):
                return _same_origin(scope["method"], headers)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in ("/healthz", "/login") or path.startswith("/static/") or self._authorized(scope):
            await self.app(scope, receive, send)
            return
        if path.startswith("/jaeger/api/v3/"):
            response = Response(v3_error_body(401, JAEGER_SIGN_IN), 401,
                                {"WWW-Authenticate": 'Bearer realm="tracebaton"'},
                                media_type="application/json")
        elif path.startswith("/jaeger/api/"):
            # Jaeger's envelope, which Jaeger UI and Grafana show; a browser cannot send a
            # bearer token, so it signs in once through the dashboard's login.
            response = Response(
                error_body(401, JAEGER_SIGN_IN),
                401, {"WWW-Authenticate": 'Bearer realm="tracebaton"'}, media_type="application/json",
            )
        elif path.startswith("/api/"):
            response = problem(
                401,
                "this server requires a token: send `Authorization: Bearer <token>` "
                "(the value of --token / TRACEBATON_TOKEN)",
                {"WWW-Authenticate": 'Bearer realm="tracebaton"'},
            )
        else:
            response = Response(
                "This tracebaton dashboard requires its token. Open /login?token=<token> once "
                "(the value of --token / TRACEBATON_TOKEN); a cookie keeps you signed in.\n",
                401,
                media_type="text/plain; charset=utf-8",
            )
        await response(scope, receive, send)


def _same_origin(method: str, headers: dict[bytes, bytes]) -> bool:
    """A state change riding on the dashboard's cookie must come from the dashboard itself.
    SameSite=Strict already keeps the cookie off cross-site requests; this also refuses a
    request whose browser says it came from another origin."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return True
    origin = headers.get(b"origin")
    if origin is None:
        return True  # not sent by a browser on a cross-origin request
    host = headers.get(b"host", b"")
    return origin.split(b"://", 1)[-1] == host


def check_login(token: str | None, offered: str) -> bool:
    return token is not None and hmac.compare_digest(offered.encode(), token.encode())


class SecurityHeaders:
    """nosniff everywhere; the content security policy on everything but the API docs page
    (which loads its scripts from a CDN) and the routes that set a policy of their own (Jaeger
    UI's pages, whose bundle needs inline styles)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"] in ("/docs", "/redoc", "/docs/oauth2-redirect")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"referrer-policy", b"no-referrer"))
                own = any(name.lower() == b"content-security-policy" for name, _ in headers)
                if not docs and not own:
                    headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)
