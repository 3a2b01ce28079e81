"""tracebaton: assert the hand-offs between services from their OpenTelemetry spans.

The facade stays light on purpose: the pytest plugin imports it in every test run, so
nothing here pulls in duckdb, grpc or fastapi until it is used.
"""

from __future__ import annotations

from ._config import ServerSettings, server_settings
from ._durations import format_duration_ns, parse_duration_ns
from ._errors import (
    ConfigurationError,
    OtlpDecodeError,
    StoreClosedError,
    StoreError,
    StoreSaturatedError,
    TracebatonError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "OtlpDecodeError",
    "ServerSettings",
    "StoreClosedError",
    "StoreError",
    "StoreSaturatedError",
    "TracebatonError",
    "__version__",
    "format_duration_ns",
    "parse_duration_ns",
    "server_settings",
]
