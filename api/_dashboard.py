"""The dashboard's pages and files, and the token login (DESIGN §7)."""

from __future__ import annotations

import logging
import os

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import RedirectResponse, Response

from tracebaton import StoreError
from tracebaton.assertions import CheckState, FlowResult, render_divergence, render_headline
from tracebaton.collector import RunRecord, SpanStore, is_run_id
from tracebaton.dashboards import ASSET_TYPES, PAGE_PATHS, PageVerdict, asset, page_html

from ._common import is_trace_id, json_response, newest_run
from ._guard import TOKEN_COOKIE, check_login, cookie_value

log = logging.getLogger("tracebaton.api")


def page_verdict(record: RunRecord) -> PageVerdict:
    """A recorded run's verdict in the flow engine's words, for the top of its Flow page."""
    stored = {k: v for k, v in record.result.items() if k != "spec"}
    result = FlowResult.from_json(stored)
    return PageVerdict(
        title=record.summary.name or result.name,
        passed=result.passed,
        headline=render_headline(result),
        divergence=render_divergence(result),
        failed_checks=tuple((c.check, c.message) for c in result.checks if c.state is CheckState.FAIL),
        test_id=record.summary.test_id,
    )


def dashboard_router(token: str | None, store: SpanStore, jaeger_ui_url: str | None = None) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/api/dashboard-settings")
    def settings() -> Response:
        """What the pages' scripts need of the server's settings (behind the token, as /api is)."""
        return json_response({"jaeger_ui_url": jaeger_ui_url})

    def shell(verdict: PageVerdict | None = None) -> Response:
        html = page_html(verdict)
        if html is None:  # a broken install, not bad input
            raise HTTPException(503, "the dashboard files are missing from this installation; reinstall")
        return Response(html, media_type=ASSET_TYPES[".html"], headers={"cache-control": "no-cache"})

    def page() -> Response:
        return shell()

    def flow_page(key: str) -> Response:
        # A key that names no run (a bad one too) gets the bare shell: its script asks the API,
        # which says what is wrong with the key.
        try:
            if is_run_id(key):
                record = store.run(key)
            else:
                record = newest_run(store, key.lower()) if is_trace_id(key) else None
        except StoreError as error:  # the page still loads; its script reports the store's state
            log.warning("flow page %s: %s", key[:80], error)
            record = None
        return shell(page_verdict(record) if record is not None else None)

    for path in PAGE_PATHS:
        router.add_api_route(path, flow_page if path == "/flows/{key}" else page, methods=["GET"])

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        data = asset(name)
        if data is None:
            raise HTTPException(404, f"no dashboard file {name[:80]!r}")
        return Response(
            data, media_type=ASSET_TYPES[os.path.splitext(name)[1]], headers={"cache-control": "no-cache"}
        )

    @router.get("/login")
    def login(offered: str = Query("", alias="token")) -> Response:
        if token is None:
            return RedirectResponse("/flows", 303)
        if not check_login(token, offered):
            raise HTTPException(401, "wrong or missing token: open /login?token=<the --token value>")
        response = RedirectResponse("/flows", 303)
        # The link that carried the token is spent; the cookie is never readable by scripts.
        response.set_cookie(TOKEN_COOKIE, cookie_value(token), httponly=True, samesite="strict", path="/")
        return response

    return router
