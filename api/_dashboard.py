"""The dashboard's pages and files, and the token login (DESIGN §7)."""

from __future__ import annotations

import os

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import RedirectResponse, Response

from tracebaton.dashboards import ASSET_TYPES, PAGE_PATHS, asset

from ._guard import TOKEN_COOKIE, check_login, cookie_value


def dashboard_router(token: str | None) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def page() -> Response:
        shell = asset("index.html")
        if shell is None:  # a broken install, not bad input
            raise HTTPException(503, "the dashboard files are missing from this installation; reinstall")
        return Response(shell, media_type=ASSET_TYPES[".html"], headers={"cache-control": "no-cache"})

    for path in PAGE_PATHS:
        router.add_api_route(path, page, methods=["GET"])

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
