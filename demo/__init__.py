"""The demo shop (DESIGN §9): a checkout across separate service processes, instrumented
with the OpenTelemetry SDK and exporting over OTLP, with integration faults to switch on
per request.

    shop = start_shop(lambda name: collector.sut_env(service_name=name, headers=["x-request-id"]),
                      workdir=tmp_path)
    httpx.post(shop.url + "/checkout", headers={**flow.headers, "x-demo-fault": "slow@inventory"})
    shop.stop()

Faults: `x-demo-fault: <fault>@<service>[, ...]`; `FAULTS` says what each one does.

`run_demo()` is `tracebaton demo`: the shop and a collector, a checkout per fault judged by
the specs in `flows/`, a race that only a check across traces reveals (`find_oversold`),
a table, and the dashboard.

The shop's services need the FastAPI and httpx instrumentations, which tracebaton installs
only with its demo extra (`pip install 'tracebaton[demo]'`). Without them, importing
`start_shop` or `run_demo` raises `DemoExtraMissing`, one line saying so (`tracebaton demo`
prints it and exits 2); everything else here works without them.
"""

from __future__ import annotations

import importlib.util
import inspect as _inspect
from typing import TYPE_CHECKING, Any

import tracebaton as _tracebaton
from tracebaton import TracebatonError

from ._faults import FAULT_HEADER, FAULTS
from ._race import Oversell, find_oversold
from ._run import CASES, RACE_CASES, DemoCase, Outcome, culprit_of, load_flow_spec, render_table
from ._shop import SERVICES, Shop, ShopError

if TYPE_CHECKING:
    from ._run import run_demo
    from ._shop import start_shop

__all__ = [
    "CASES",
    "FAULTS",
    "FAULT_HEADER",
    "INSTRUMENTATIONS",
    "RACE_CASES",
    "SERVICES",
    "DemoCase",
    "DemoExtraMissing",
    "Outcome",
    "Oversell",
    "Shop",
    "ShopError",
    "culprit_of",
    "find_oversold",
    "load_flow_spec",
    "render_table",
    "require_demo_extra",
    "run_demo",
    "start_shop",
]

INSTRUMENTATIONS = {
    "opentelemetry.instrumentation.fastapi": "opentelemetry-instrumentation-fastapi",
    "opentelemetry.instrumentation.httpx": "opentelemetry-instrumentation-httpx",
}
"""What the shop's services import beyond tracebaton's own dependencies: module -> distribution."""


class DemoExtraMissing(TracebatonError, ImportError):
    """The demo shop's instrumentations are not installed: `pip install 'tracebaton[demo]'`."""


def require_demo_extra() -> None:
    """Raise `DemoExtraMissing` unless every module in `INSTRUMENTATIONS` can be imported.
    Looks them up without importing them (the shop's processes do that)."""
    missing = []
    for module, distribution in INSTRUMENTATIONS.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a parent package missing, or an import hook refusing it
            found = False
        if not found:
            missing.append(distribution)
    if missing:
        raise DemoExtraMissing(f"the demo shop needs {' and '.join(missing)}, part of tracebaton's "
                               "demo extra: pip install 'tracebaton[demo]'")


_NEED_THE_EXTRA = {"run_demo": "._run", "start_shop": "._shop"}


def __getattr__(name: str) -> Any:
    """`start_shop` and `run_demo`, once `require_demo_extra()` found the instrumentations."""
    if name not in _NEED_THE_EXTRA:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    require_demo_extra()
    value = getattr(importlib.import_module(_NEED_THE_EXTRA[name], __name__), name)
    value.__module__ = __name__  # as the loop below does for the names loaded at once
    globals()[name] = value  # later lookups skip this function
    return value

for _name in __all__:  # reported where users meet them (reprs, pickles), not in a private module
    _value = globals().get(_name)
    if isinstance(_value, type) or (callable(_value) and _inspect.isfunction(_inspect.unwrap(_value))):
        _value.__module__ = "tracebaton" if _name in _tracebaton.__all__ else __name__
