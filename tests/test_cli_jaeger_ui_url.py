"""`tracebaton serve --jaeger-ui-url URL` / TRACEBATON_JAEGER_UI_URL: where the dashboard's
"open in Jaeger" links point. A bad value exits 2 naming it; the flag overrides the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import start_server

FIX = "give the address Jaeger UI answers at, e.g. http://jaeger:16686 or https://tracing.example.com/jaeger"


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracebaton", "serve", *args], capture_output=True,
                          text=True, timeout=60, check=False, env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("value", "problem"), [
    ("ftp://jaeger:16686", "is not an http(s) URL with a host"),
    ("jaeger:16686", "is not an http(s) URL with a host"),
    ("http://", "is not an http(s) URL with a host"),
    ("http://jaeger:16686/?service=shop", "has a query or fragment, and /trace/<id> is appended to it"),
    ("http://jaeger:16686/#top", "has a query or fragment, and /trace/<id> is appended to it"),
    ("https://me:secret@jaeger", "carries credentials, which every dashboard page would show"),
], ids=["scheme", "no-scheme", "no-host", "query", "fragment", "credentials"])
def test_a_bad_url_exits_2_naming_the_value_the_rule_and_the_fix(
    tmp_path: Path, value: str, problem: str
) -> None:
    done = _serve("--db", str(tmp_path / "x.duckdb"), "--jaeger-ui-url", value)
    assert done.returncode == 2, done.stderr
    assert f"argument --jaeger-ui-url: {value!r} {problem}; {FIX}" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_environment_value_exits_2_naming_the_variable(tmp_path: Path) -> None:
    done = _serve("--db", str(tmp_path / "x.duckdb"), env={"TRACEBATON_JAEGER_UI_URL": "jaeger"})
    assert done.returncode == 2, done.stderr
    assert f"TRACEBATON_JAEGER_UI_URL: 'jaeger' is not an http(s) URL with a host; {FIX}" in done.stderr


def _setting(tmp_path: Path, name: str, *args: str, env: dict[str, str] | None = None) -> object:
    running = start_server(tmp_path / f"{name}.duckdb", *args, env=env)
    try:
        return httpx.get(f"{running.api}/api/dashboard-settings", timeout=30).json()["jaeger_ui_url"]
    finally:
        assert running.stop() == 0, running.stderr


def test_the_flag_overrides_the_variable_and_the_dashboard_reads_it(tmp_path: Path) -> None:
    env = {"TRACEBATON_JAEGER_UI_URL": "http://env-jaeger:16686/"}
    assert _setting(tmp_path, "none", env={"TRACEBATON_JAEGER_UI_URL": ""}) is None
    assert _setting(tmp_path, "env", env=env) == "http://env-jaeger:16686"
    assert _setting(tmp_path, "flag", "--jaeger-ui-url", "https://tracing.example.com/jaeger/",
                    env=env) == "https://tracing.example.com/jaeger"
