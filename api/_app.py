"""The REST API and dashboard server (FastAPI), over any SpanStore (DESIGN §7)."""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.responses import Response

from tracebaton import __version__
from tracebaton.assertions import FlowEngine, ServiceMapper
from tracebaton.collector import SpanStore

from ._common import json_response
from ._dashboard import dashboard_router
from ._diff import diff_router
from ._guard import BodyLimit, SecurityHeaders, TokenGuard, install_error_handlers, known_query_parameters
from ._import import import_router
from ._jaeger import jaeger_router
from ._jaeger_ui import JaegerUi, jaeger_ui_router
from ._jaeger_v3 import jaeger_v3_router
from ._models import Health
from ._runs import RunStreams, runs_router
from ._service_map import service_map_router
from ._traces import traces_router

DEFAULT_IMPORT_BYTES = 32 * 1024 * 1024
MAX_JSON_BODY_BYTES = 1024 * 1024
"""Any other body (a spec to check) is small; a megabyte is far more than a spec needs."""

DESCRIPTION = """\
Trace-based integration assertions over OpenTelemetry spans.

Every error answer is JSON `{"detail": "..."}` whose message says what to change. With
`--token`, every `/api/*` route needs `Authorization: Bearer <token>`; `/healthz` never does.
"""


def create_app(
    store: SpanStore,
    *,
    otlp_http_url: str | None = None,
    otlp_grpc: str | None = None,
    token: str | None = None,
    max_import_bytes: int = DEFAULT_IMPORT_BYTES,
    jaeger_ui: Path | None = None,
    jaeger_ui_url: str | None = None,
) -> FastAPI:
    """`otlp_http_url` and `otlp_grpc` are announced on /healthz, so a remote client can
    point services under test at this server knowing only its API URL.

    `app.state.close_streams()` ends the open live streams and the service map's background
    summaries; call it before stopping the server, so they do not hold up its graceful
    shutdown or read a store that has shut down.

    `jaeger_ui`: a built Jaeger UI bundle to serve under /jaeger/ (ConfigurationError when the
    directory is not one). `jaeger_ui_url`: a Jaeger UI elsewhere, which the dashboard links
    every trace to as well.
    """
    bundle = JaegerUi.load(jaeger_ui) if jaeger_ui is not None else None
    engine = FlowEngine(store)
    mapper = ServiceMapper(store)  # one cache for the Map page and Jaeger's dependencies
    streams = RunStreams()
    app = FastAPI(
        title="tracebaton",
        version=__version__,
        summary="Trace-based integration assertions.",
        description=DESCRIPTION,
    )

    def close() -> None:
        streams.close()
        mapper.close()

    app.state.close_streams = close
    install_error_handlers(app)
    app.router.dependencies.append(Depends(known_query_parameters(app)))

    @app.get("/healthz", tags=["health"], response_model=Health)
    def healthz() -> Response:
        """Liveness: answers whenever the server runs; never needs a token."""
        health = {"status": "ok", "version": __version__}
        if otlp_http_url:
            health["otlp_http"] = otlp_http_url
        if otlp_grpc:
            health["otlp_grpc"] = otlp_grpc
        return json_response(health)

    app.include_router(traces_router(store, engine))
    app.include_router(runs_router(store, engine, streams))
    app.include_router(import_router(store))
    app.include_router(diff_router(store, engine))
    app.include_router(service_map_router(mapper))
    app.include_router(jaeger_v3_router(store))  # before the v1 router's catch-all under /jaeger/api
    app.include_router(jaeger_router(store, mapper))
    app.include_router(jaeger_ui_router(bundle))  # after the API routes under /jaeger/api
    app.include_router(dashboard_router(token, store, jaeger_ui_url))
    # Outermost last: headers on every answer, then the token, then the body limit.
    import_fix = "split the import into several files, or raise the server's TRACEBATON_MAX_BODY_BYTES"
    app.add_middleware(BodyLimit, default_limit=MAX_JSON_BODY_BYTES,
                       limits={"/api/import": (max_import_bytes, import_fix)})
    app.add_middleware(TokenGuard, token=token)
    app.add_middleware(SecurityHeaders)
    return app
