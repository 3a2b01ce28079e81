"""tracebaton: assert the hand-offs between services from their OpenTelemetry spans.

The facade stays light on purpose: the pytest plugin imports it in every test run, so
nothing here pulls in duckdb, grpc or fastapi until it is used.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from ._config import ServerSettings, server_settings
from ._durations import format_duration_ns, parse_duration_ns
from ._errors import (
    CollectorStateError,
    ConfigurationError,
    FlowSpecError,
    OtlpDecodeError,
    RemoteError,
    RequestRejectedError,
    ServerError,
    ServerUnreachableError,
    StoreClosedError,
    StoreError,
    StoreSaturatedError,
    TraceAssertionError,
    TracebatonError,
)
from ._services import ServiceProcess, start_service
from ._sut_env import sut_env

if TYPE_CHECKING:
    from tracebaton.assertions import Client, Collector, FlowResult, FlowSpec, Trace

__version__ = "0.1.0"

_LAZY = {"Client", "Collector", "FlowResult", "FlowSpec", "Trace"}


def __getattr__(name: str) -> Any:
    # the flow API pulls in the OpenTelemetry SDK and the store; load it on first use only
    if name in _LAZY:
        from tracebaton import assertions

        return getattr(assertions, name)
    raise AttributeError(f"module 'tracebaton' has no attribute {name!r}")


__all__ = [
    "Client",
    "Collector",
    "CollectorStateError",
    "ConfigurationError",
    "FlowResult",
    "FlowSpec",
    "FlowSpecError",
    "OtlpDecodeError",
    "RemoteError",
    "RequestRejectedError",
    "ServerError",
    "ServerSettings",
    "ServerUnreachableError",
    "ServiceProcess",
    "StoreClosedError",
    "StoreError",
    "StoreSaturatedError",
    "Trace",
    "TraceAssertionError",
    "TracebatonError",
    "__version__",
    "format_duration_ns",
    "parse_duration_ns",
    "server_settings",
    "start_service",
    "sut_env",
]

# Reported where users meet them (reprs, tracebacks, pytest's "E   ..." lines, pickles), not
# in the private module that defines them; the lazy ones are claimed by their own modules.
for _name in __all__:
    _value = globals().get(_name)
    if isinstance(_value, type) or (callable(_value) and inspect.isfunction(inspect.unwrap(_value))):
        _value.__module__ = __name__
