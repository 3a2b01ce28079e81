"""Opt-in: the ClickHouse store against a real ClickHouse server, over HTTP(S) — what chdb
cannot stand in for (the HTTP transport, users and passwords, TLS).

Run with a server's URL (and its password in the environment, as `serve` reads it):

    TRACEBATON_CLICKHOUSE_URL=clickhouse://default@127.0.0.1:8123/tracebaton_test \\
    TRACEBATON_CLICKHOUSE_PASSWORD=… .venv/bin/pytest -m clickhouse_server

A `clickhouses://` URL runs the same tests over TLS. Without the variable they skip, saying so.
"""

from __future__ import annotations

import os
import time
import urllib.parse

import pytest
from otlp_requests import new_trace_id, valid_request

from tracebaton import ConfigurationError
from tracebaton.collector import PROTOBUF, StoreOptions, TraceQuery, open_store

URL = os.environ.get("TRACEBATON_CLICKHOUSE_URL", "")
PASSWORD = os.environ.get("TRACEBATON_CLICKHOUSE_PASSWORD")

pytestmark = [
    pytest.mark.clickhouse_server,
    pytest.mark.skipif(not URL, reason="set TRACEBATON_CLICKHOUSE_URL (and TRACEBATON_CLICKHOUSE_PASSWORD) "
                                       "to run the ClickHouse store against a real server"),
]


def test_spans_go_in_and_come_back_over_http() -> None:
    store = open_store(URL, StoreOptions(create_schema=True, password=PASSWORD)).start()
    try:
        trace_id = new_trace_id()
        cursor = store.cursor()
        body = valid_request(trace_id, 3).SerializeToString()
        assert store.ingest(body, PROTOBUF).result(30).accepted_spans == 3
        assert store.wait([trace_id.hex()], time.monotonic() + 10, cursor) is not None
        assert len(store.trace(trace_id.hex())) == 3
        assert trace_id.hex() in {t.trace_id for t in store.traces(TraceQuery(service="checkout"))}
    finally:
        store.shutdown()


def test_wrong_credentials_are_one_error_naming_the_password_variable() -> None:
    parts = urllib.parse.urlsplit(URL)
    wrong = parts._replace(netloc=f"tracebaton_no_such_user@{parts.hostname}:{parts.port or 8123}").geturl()
    store = open_store(wrong, StoreOptions(password="not-the-password"))
    with pytest.raises(ConfigurationError, match="TRACEBATON_CLICKHOUSE_PASSWORD"):
        store.start()
