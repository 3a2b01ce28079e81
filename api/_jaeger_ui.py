"""A built Jaeger UI bundle served under /jaeger/ (`serve --jaeger-ui DIR`), over the
Jaeger-compatible API at /jaeger/api (DESIGN §7).

The UI's base path is /jaeger/, so the API calls it makes (`<base>/api/...`, `<base>/api/v3/...`)
land on those routes, as with Jaeger's query service run with `--query.base-path=/jaeger`.
Its index.html is prepared once, as that service prepares it (`static_handler.go`): the config,
backend capabilities and version written over the `JAEGER_* = DEFAULT_*;` lines, and the
`<base href>` fixed (newer bundles compute it in an inline script, which is replaced by the
tag it would write). Its pages get a policy of their own: its inline scripts by their hashes,
WebAssembly, and the inline styles its component library writes; the dashboard's strict
policy stays on every other page.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import mimetypes
import re
from pathlib import Path

import orjson
from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response

from tracebaton import ConfigurationError, __version__

from ._guard import problem

MOUNT = "/jaeger/"
_BASE_TAG = f'<base href="{MOUNT}" data-inject-target="BASE_URL" />'
_BASE_SCRIPT = re.compile(
    r"<script>(?:(?!</script>).)*data-inject-target=\"BASE_URL\"(?:(?!</script>).)*</script>", re.S)
_BASE_LITERAL = re.compile(r'<base href="[^"]*" data-inject-target="BASE_URL"\s*/?>')
_CONFIG = re.compile(r"JAEGER_CONFIG *= *DEFAULT_CONFIG;")
_CAPABILITIES = re.compile(r"JAEGER_(BACKEND|STORAGE)_CAPABILITIES *= *DEFAULT_\1_CAPABILITIES;")
_VERSION = re.compile(r"JAEGER_VERSION *= *DEFAULT_VERSION;")
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)

UI_CONFIG = {
    # tracebaton answers search, traces and dependencies; Jaeger's archive and its metrics
    # (Monitor) are other backends
    "archiveEnabled": False,
    "dependencies": {"menuEnabled": True},
    "monitor": {"menuEnabled": False},
}
STORAGE_CAPABILITIES = {"archiveStorage": False, "metricsStorage": False}
"""What older bundles read (`JAEGER_STORAGE_CAPABILITIES`)."""
CAPABILITIES = {**STORAGE_CAPABILITIES, "searchWithoutServiceName": True, "aiAssistant": False}
"""Searching every service at once is a search tracebaton's store answers."""



def _not_a_bundle(directory: Path, what: str) -> ConfigurationError:
    return ConfigurationError(
        f"the Jaeger UI bundle {directory} (--jaeger-ui): {what}; give the directory a Jaeger UI build wrote "
        "(jaeger-ui's packages/jaeger-ui/build, holding index.html and static/)")


@dataclasses.dataclass(frozen=True)
class JaegerUi:
    """A bundle's files and its prepared index.html, with the policy its pages are served under."""

    static: Path
    index: bytes
    policy: str

    @classmethod
    def load(cls, directory: Path) -> JaegerUi:
        try:
            html = (directory / "index.html").read_text("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise _not_a_bundle(directory, f"its index.html cannot be read ({error})") from None
        if not (directory / "static").is_dir():
            raise _not_a_bundle(directory, "it has no static/ directory")
        html, based = _BASE_SCRIPT.subn(_BASE_TAG, html, count=1)
        if not based:
            html, based = _BASE_LITERAL.subn(_BASE_TAG, html, count=1)
        if not based:
            raise _not_a_bundle(directory, "its index.html has no <base> Jaeger UI places itself by")
        html, configured = _CONFIG.subn(f"JAEGER_CONFIG = {orjson.dumps(UI_CONFIG).decode()};", html, count=1)
        if not configured:
            raise _not_a_bundle(directory, "its index.html has no `JAEGER_CONFIG = DEFAULT_CONFIG;` line")
        capabilities = {"BACKEND": orjson.dumps(CAPABILITIES).decode(),
                        "STORAGE": orjson.dumps(STORAGE_CAPABILITIES).decode()}
        html = _CAPABILITIES.sub(lambda m: f"JAEGER_{m.group(1)}_CAPABILITIES = {capabilities[m.group(1)]};",
                                 html)
        version = {"gitCommit": "", "gitVersion": f"tracebaton {__version__}", "buildDate": ""}
        html = _VERSION.sub(f"JAEGER_VERSION = {orjson.dumps(version).decode()};", html)
        hashes = " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
            for body in _INLINE_SCRIPT.findall(html)
        )
        # 'wasm-unsafe-eval': its graph layouts run Graphviz compiled to WebAssembly; it lets a
        # page compile WebAssembly, not evaluate script text
        policy = (
            f"default-src 'self'; script-src 'self' 'wasm-unsafe-eval' {hashes}; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
            "connect-src 'self'; worker-src 'self' blob:; "
            "object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'"
        )
        return cls(static=(directory / "static").resolve(), index=html.encode(), policy=policy)

    def file(self, name: str) -> Path | None:
        """A file under static/, never outside it."""
        try:
            path = (self.static / name).resolve()
        except (OSError, ValueError):  # a name no file system holds (a NUL byte, a loop)
            return None
        if not path.is_relative_to(self.static) or not path.is_file():
            return None
        return path


def jaeger_ui_router(ui: JaegerUi | None) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/jaeger")
    def mount() -> Response:
        return RedirectResponse(MOUNT, 307)

    @router.get(f"{MOUNT}static/{{name:path}}")
    def static(name: str) -> Response:
        if ui is None or (path := ui.file(name)) is None:
            return _missing(ui, f"no Jaeger UI file static/{name[:80]}")
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        # Vite names each file by its content: under that name it never changes.
        headers = {"cache-control": "public, max-age=31536000, immutable",
                   "content-security-policy": ui.policy}
        return Response(path.read_bytes(), media_type=kind, headers=headers)

    @router.get(f"{MOUNT}{{page:path}}")
    def page(page: str) -> Response:
        """Every other path is one of the UI's own (/jaeger/search, /jaeger/trace/ID): its index."""
        if ui is None:
            return _missing(ui, "Jaeger UI is not served here")
        return Response(ui.index, media_type="text/html; charset=utf-8",
                        headers={"cache-control": "no-cache", "content-security-policy": ui.policy})

    return router


def _missing(ui: JaegerUi | None, what: str) -> Response:
    if ui is not None:
        return problem(404, f"{what}; the bundle's files are under {MOUNT}static/")
    return problem(404, f"{what}: start tracebaton serve with --jaeger-ui DIR, DIR a built Jaeger UI bundle; "
                        "its API is served at /jaeger/api either way")
