"""tracebaton: assert the hand-offs between services from their OpenTelemetry spans.

The facade stays light on purpose: the pytest plugin imports it in every test run, so
nothing here pulls in duckdb, grpc or fastapi until it is used.

`core/` (this package's own modules) is two layers:

- the **base layer**: `_errors`, `_config`, `_durations`, `_sut_env`, `_services` and this
  facade's eager part. Every component (collector, assertions, api, dashboards, demo) may
  import it, through this facade (`from tracebaton import StoreError`); it imports no
  component at run time, so it can never close a cycle.
- the **app layer**: `_embedded` (`Collector`), `_server`, `_cli`, `_cli_client`,
  `__main__` and `pytest_plugin`. These wire the components together, so they may import
  every component; no component may import them. The names they define that users need
  (`Collector`) are loaded lazily here, so importing the facade loads no app module.

`tests/test_import_graph.py` holds the package to these rules.
"""

from __future__ import annotations

import importlib
import inspect
from typing import TYPE_CHECKING, Any

from ._config import ServerSettings, server_settings
from ._durations import DURATION_PATTERN, DURATION_UNITS, format_duration_ns, parse_duration_ns, whole_number
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
    from tracebaton.assertions import Client, FlowResult, FlowSpec, Trace

    from ._embedded import Collector

__version__ = "0.1.0"

_LAZY = {
    "Client": "tracebaton.assertions",
    "Collector": "tracebaton._embedded",
    "FlowResult": "tracebaton.assertions",
    "FlowSpec": "tracebaton.assertions",
    "Trace": "tracebaton.assertions",
}
"""Names loaded on first use: the flow API pulls in the OpenTelemetry SDK, `Collector` the
store and the server. `tracebaton.assertions` and `_embedded` set their `__module__` to
"tracebaton" (the loop at the end of this file runs before they are loaded)."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'tracebaton' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


__all__ = [
    "DURATION_PATTERN",
    "DURATION_UNITS",
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
    "whole_number",
]

# Reported where users meet them (reprs, tracebacks, pytest's "E   ..." lines, pickles), not
# in the private module that defines them; the lazy ones are claimed by their own modules.
for _name in __all__:
    _value = globals().get(_name)
    if isinstance(_value, type) or (callable(_value) and inspect.isfunction(inspect.unwrap(_value))):
        _value.__module__ = __name__
