"""ClickHouse failing mid-run: the API answers 503, OTLP exporters hear a retryable error,
nothing acknowledged is lost, and the store recovers when ClickHouse answers again.

chdb cannot vanish, so the failure is injected where a vanished server shows itself: the
clickhouse-connect client's calls raise the driver's own OperationalError."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver._chdbclient import ChdbClient
from clickhouse_connect.driver.exceptions import OperationalError
from otlp_requests import new_trace_id, valid_request
from store_backends import BACKENDS, StoreBackend

from tracebaton import StoreError
from tracebaton.api import create_app
from tracebaton.collector import SpanStore, otlp_http_app


@pytest.fixture
def store_backend() -> StoreBackend:
    return BACKENDS["chdb"]


@pytest.fixture
def clickhouse_down(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Set it and every call of every ClickHouse client fails as a lost connection does."""
    down = threading.Event()
    for name in ("query", "insert_arrow", "command", "insert"):
        original = getattr(ChdbClient, name)

        def failing(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            if down.is_set():
                raise OperationalError("HTTPConnectionPool(host='clickhouse', port=8123): "
                                       "Connection refused (injected)")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(ChdbClient, name, failing)
    yield down
    down.clear()


class _App:
    """An ASGI app called in this process, as a server would call it."""

    def __init__(self, app: Any) -> None:
        self._app = app

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self._app)
            async with httpx.AsyncClient(transport=transport, base_url="http://tracebaton") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(call())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)


def _export(otlp: _App, trace_id: bytes) -> int:
    response = otlp.post("/v1/traces", content=valid_request(trace_id, 3).SerializeToString(),
                         headers={"Content-Type": "application/x-protobuf"})
    return response.status_code


def test_a_failing_clickhouse_is_503_and_retryable_and_recovers(
        store: SpanStore, clickhouse_down: threading.Event) -> None:
    api = _App(create_app(store))
    otlp = _App(otlp_http_app(store, max_body_bytes=4 * 1024 * 1024))
    acknowledged = new_trace_id()
    assert _export(otlp, acknowledged) == 200

    clickhouse_down.set()
    during = new_trace_id()
    refused = otlp.post("/v1/traces", content=valid_request(during, 3).SerializeToString(),
                        headers={"Content-Type": "application/x-protobuf"})
    assert refused.status_code == 503                     # OTLP/HTTP: the exporter retries
    assert refused.headers.get("Retry-After")
    read = api.get(f"/api/traces/{acknowledged.hex()}")
    assert read.status_code == 503, read.text
    assert "retry shortly" in read.text
    assert api.get("/api/traces", params={"service": "checkout"}).status_code == 503

    clickhouse_down.clear()
    assert _export(otlp, during) == 200                   # the exporter's retry lands
    assert len(api.get(f"/api/traces/{acknowledged.hex()}").json()["spans"]) == 3   # nothing lost
    assert len(api.get(f"/api/traces/{during.hex()}").json()["spans"]) == 3


def test_a_wait_on_a_failing_clickhouse_raises_a_store_error(
        store: SpanStore, clickhouse_down: threading.Event) -> None:
    cursor = store.cursor()
    clickhouse_down.set()
    with pytest.raises(StoreError, match="failed to answer a wait"):
        store.wait([new_trace_id().hex()], time.monotonic() + 5, cursor)
