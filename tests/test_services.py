"""`tracebaton.start_service` with real processes: a free port through `{port}`, the port a
service bound read from its ready line, and what it says when a service is never ready."""

from __future__ import annotations

import sys

import httpx
import pytest

from tracebaton import ConfigurationError, start_service

# binds port 0 and says which port it got, as uvicorn --port 0 does
LISTEN_ON_ZERO = (
    "import http.server, socketserver\n"
    "server = socketserver.TCPServer(('127.0.0.1', 0), http.server.SimpleHTTPRequestHandler)\n"
    "print(f'listening on http://127.0.0.1:{server.server_address[1]}', flush=True)\n"
    "server.serve_forever()\n"
)


def test_port_placeholder_gets_one_free_port_in_command_env_and_ready_url() -> None:
    code = "import os, sys; print('env', os.environ['SERVICE_PORT'], 'argv', sys.argv[1], flush=True)"
    echo = start_service([sys.executable, "-c", code, "{port}"], name="echo", env={"SERVICE_PORT": "{port}"},
                         ready_line="^env ")
    try:
        assert echo.port is not None
        assert echo.log_tail() == f"env {echo.port} argv {echo.port}"
    finally:
        echo.stop()
    web = start_service([sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1"], name="web",
                        ready_url="http://127.0.0.1:{port}/")
    try:
        assert web.url == f"http://127.0.0.1:{web.port}"
        assert httpx.get(web.url + "/").status_code == 200
    finally:
        web.stop()


def test_a_port_group_in_the_ready_line_gives_the_port_the_service_bound() -> None:
    service = start_service([sys.executable, "-c", LISTEN_ON_ZERO], name="web",
                            ready_line=r"listening on (?P<url>http://[\d.]+:(?P<port>\d+))")
    try:
        assert service.url == f"http://127.0.0.1:{service.port}"
        assert httpx.get(service.url + "/").status_code == 200
    finally:
        service.stop()


def test_without_a_known_port_url_says_how_to_get_one() -> None:
    service = start_service([sys.executable, "-c", "print('up', flush=True)"], name="quiet", ready_line="up")
    try:
        with pytest.raises(ConfigurationError, match=r"service quiet: its port is not known; put \{port\}"):
            _ = service.url
    finally:
        service.stop()


def test_a_service_never_ready_is_stopped_naming_what_was_awaited() -> None:
    code = "import time; print('starting', flush=True); time.sleep(60)"
    with pytest.raises(ConfigurationError) as never:
        start_service([sys.executable, "-c", code], name="slow", ready_line="^ready", timeout_s=0.5)
    assert "was not ready within timeout_s=0.5 (waited for a line matching '^ready')" in str(never.value)
    assert str(never.value).endswith("its last output:\nstarting")
    with pytest.raises(ConfigurationError, match="exited with 3 before it was ready"):
        start_service([sys.executable, "-c", "raise SystemExit(3)"], name="dead", ready_line="^ready")
