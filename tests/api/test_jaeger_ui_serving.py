"""`tracebaton serve --jaeger-ui DIR` serving a Jaeger UI bundle under /jaeger/, with a real
server and a bundle laid out as jaeger-ui's build writes it (index.html and static/).

The index.html below re-types the lines of jaegertracing/jaeger-ui's `packages/jaeger-ui/
index.html` that a backend rewrites (facts, not code): the inline script that writes the
`<base>` tag, and the `JAEGER_* = DEFAULT_*;` lines Jaeger's query service replaces
(`static_handler.go`). The browser test with a real build is tests/dashboard/test_jaeger_ui.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import RunningServer, start_server

INDEX = """<!doctype html>
<html lang="en">
  <head>
    <script>
      (function () {
        var prefix = '/';
        document.currentScript.insertAdjacentHTML(
          'afterend',
          '<base href="' + prefix + '" data-inject-target="BASE_URL" />'
        );
      })();
    </script>
    <title>Jaeger UI</title>
    <script>
      function getJaegerUiConfig() {
        const DEFAULT_CONFIG = null;
        const JAEGER_CONFIG = DEFAULT_CONFIG;
        return JAEGER_CONFIG;
      }
      function _getJaegerStorageCapabilities() {
        const DEFAULT_STORAGE_CAPABILITIES = { archiveStorage: false, metricsStorage: false };
        const JAEGER_STORAGE_CAPABILITIES = DEFAULT_STORAGE_CAPABILITIES;
        return JAEGER_STORAGE_CAPABILITIES;
      }
      function getJaegerBackendCapabilities() {
        const DEFAULT_BACKEND_CAPABILITIES = { ..._getJaegerStorageCapabilities(), aiAssistant: false };
        const JAEGER_BACKEND_CAPABILITIES = DEFAULT_BACKEND_CAPABILITIES;
        return JAEGER_BACKEND_CAPABILITIES;
      }
      function getJaegerVersion() {
        const DEFAULT_VERSION = { gitCommit: '', gitVersion: '', buildDate: '' };
        const JAEGER_VERSION = DEFAULT_VERSION;
        return JAEGER_VERSION;
      }
    </script>
    <script type="module" crossorigin src="./static/index-abc123.js"></script>
  </head>
  <body><div id="jaeger-ui-root"></div></body>
</html>
"""
DASHBOARD_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def bundle(root: Path, index: str = INDEX) -> Path:
    (root / "static").mkdir(parents=True)
    (root / "index.html").write_text(index)
    (root / "static" / "index-abc123.js").write_text("console.log('jaeger ui');\n")
    return root


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("jaeger-ui")
    running = start_server(root / "store.duckdb", "--jaeger-ui", str(bundle(root / "build")))
    yield running
    assert running.stop() == 0, running.stderr
    assert "Traceback" not in running.stderr, running.stderr


def policy(response: httpx.Response) -> dict[str, str]:
    directives = (d.strip().split(" ", 1) for d in response.headers["content-security-policy"].split(";"))
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


def test_every_ui_path_is_the_index_with_its_base_config_and_capabilities(served: RunningServer) -> None:
    for path in ("/jaeger/", "/jaeger/search", "/jaeger/trace/4bf92f3577b34da6a3ce929d0e0e4736",
                 "/jaeger/dependencies"):
        page = httpx.get(f"{served.api}{path}")
        assert page.status_code == 200, path
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["cache-control"] == "no-cache"
    html = page.text
    assert '<base href="/jaeger/" data-inject-target="BASE_URL" />' in html
    assert "insertAdjacentHTML" not in html, "the script that computes the base is replaced by its tag"
    config = json.loads(re.search(r"JAEGER_CONFIG = (.*);", html).group(1))  # type: ignore[union-attr]
    assert config == {"archiveEnabled": False, "dependencies": {"menuEnabled": True},
                      "monitor": {"menuEnabled": False}}
    backend = json.loads(re.search(r"JAEGER_BACKEND_CAPABILITIES = (.*);", html).group(1))  # type: ignore[union-attr]
    assert backend == {"archiveStorage": False, "metricsStorage": False, "searchWithoutServiceName": True,
                       "aiAssistant": False}
    storage = json.loads(re.search(r"JAEGER_STORAGE_CAPABILITIES = (.*);", html).group(1))  # type: ignore[union-attr]
    assert storage == {"archiveStorage": False, "metricsStorage": False}
    version = r'JAEGER_VERSION = \{"gitCommit":"","gitVersion":"tracebaton [^"]+","buildDate":""\};'
    assert re.search(version, html)
    redirect = httpx.get(f"{served.api}/jaeger")
    assert (redirect.status_code, redirect.headers["location"]) == (307, "/jaeger/")


def test_ui_pages_have_their_own_policy_and_the_dashboards_keep_the_strict_one(served: RunningServer) -> None:
    page = httpx.get(f"{served.api}/jaeger/search")
    ui = policy(page)
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.S)
    assert len(inline) == 1, "the config script stays; the base script is gone"
    hashes = {f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline}
    assert set(ui["script-src"].split()) == {"'self'", "'wasm-unsafe-eval'"} | hashes, "no unsafe-inline"
    assert ui["style-src"] == "'self' 'unsafe-inline'"
    assert ui["connect-src"] == "'self'"
    assert ui["base-uri"] == "'self'"
    assert ui["frame-ancestors"] == "'none'"
    assert len(page.headers.get_list("content-security-policy")) == 1
    script = httpx.get(f"{served.api}/jaeger/static/index-abc123.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert policy(script) == ui
    for dashboard in ("/flows", "/static/index.html", "/api/traces", "/jaeger/api/v3/services", "/healthz"):
        answer = httpx.get(f"{served.api}{dashboard}")
        assert answer.headers.get_list("content-security-policy") == [DASHBOARD_POLICY], dashboard


def test_the_api_under_jaeger_api_is_not_shadowed_and_files_stay_inside_static(served: RunningServer) -> None:
    assert httpx.get(f"{served.api}/jaeger/api/v3/services").json() == {"services": []}
    unknown = httpx.get(f"{served.api}/jaeger/api/nothing-here")
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["msg"].startswith("no Jaeger route /jaeger/api/nothing-here")
    for path in ("/jaeger/static/missing.js", "/jaeger/static/%2e%2e/index.html",
                 "/jaeger/static/..%2f..%2fstore.duckdb", "/jaeger/static/"):
        missing = httpx.get(f"{served.api}{path}")
        assert missing.status_code == 404, path
        assert "no Jaeger UI file static/" in missing.json()["detail"], path
    assert httpx.get(f"{served.api}/jaeger/search").status_code == 200, "still serving"


def test_without_a_bundle_jaeger_pages_say_how_to_serve_one(server: RunningServer) -> None:
    missing = httpx.get(f"{server.api}/jaeger/search")
    assert missing.status_code == 404
    assert missing.json()["detail"] == (
        "Jaeger UI is not served here: start tracebaton serve with --jaeger-ui DIR, DIR a built Jaeger UI "
        "bundle; its API is served at /jaeger/api either way")
    assert httpx.get(f"{server.api}/jaeger/api/v3/services").status_code == 200


def test_with_a_token_the_ui_and_its_api_calls_ride_on_the_dashboards_cookie(tmp_path: Path) -> None:
    running = start_server(tmp_path / "store.duckdb", "--token", "s3cret",
                           "--jaeger-ui", str(bundle(tmp_path / "build")))
    try:
        refused = httpx.get(f"{running.api}/jaeger/search")
        assert refused.status_code == 401
        assert "/login?token=<token>" in refused.text
        assert httpx.get(f"{running.api}/jaeger/static/index-abc123.js").status_code == 401
        login = httpx.get(f"{running.api}/login", params={"token": "s3cret"})
        with httpx.Client(base_url=running.api, cookies=login.cookies) as browser:
            assert browser.get("/jaeger/search").status_code == 200
            assert browser.get("/jaeger/static/index-abc123.js").status_code == 200
            assert browser.get("/jaeger/api/v3/services").json() == {"services": []}
            assert browser.get("/jaeger/api/traces/4bf92f3577b34da6a3ce929d0e0e4736").status_code == 404
    finally:
        assert running.stop() == 0


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tracebaton", "serve", "--grpc-port", "0", "--http-port", "0",
               "--api-port", "0", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, **(env or {})})


def test_a_directory_that_is_no_jaeger_ui_build_exits_2_saying_what_to_give(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "not-a-dir").write_text("")
    db = ("--db", str(tmp_path / "store.duckdb"))
    cases = [
        ((*db, "--jaeger-ui", str(tmp_path / "nowhere")), None,
         f"argument --jaeger-ui: {str(tmp_path / 'nowhere')!r} is not a directory; give the directory a "
         "Jaeger UI build wrote (jaeger-ui's packages/jaeger-ui/build)"),
        ((*db, "--jaeger-ui", str(tmp_path / "not-a-dir")), None, "is not a directory"),
        ((*db, "--jaeger-ui", str(tmp_path / "empty")), None,
         f"{str(tmp_path / 'empty')!r} holds no index.html, so it is not a built Jaeger UI"),
        (db, {"TRACEBATON_JAEGER_UI_DIR": str(tmp_path / "nowhere")},
         f"TRACEBATON_JAEGER_UI_DIR: {str(tmp_path / 'nowhere')!r} is not a directory"),
        ((*db, "--jaeger-ui", str(bundle(tmp_path / "plain", "<html><head></head></html>"))), None,
         f"the Jaeger UI bundle {tmp_path / 'plain'} (--jaeger-ui): its index.html has no <base> Jaeger UI "
         "places itself by; give the directory a Jaeger UI build wrote"),
        ((*db, "--jaeger-ui", str(bundle(tmp_path / "odd", INDEX.replace("= DEFAULT_CONFIG;", ";")))),
         None, "its index.html has no `JAEGER_CONFIG = DEFAULT_CONFIG;` line"),
    ]
    for args, env, message in cases:
        done = _serve(*args, env=env)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
    (tmp_path / "nostatic").mkdir()
    (tmp_path / "nostatic" / "index.html").write_text(INDEX)
    done = _serve(*db, "--jaeger-ui", str(tmp_path / "nostatic"))
    assert done.returncode == 2
    assert "it has no static/ directory" in done.stderr
