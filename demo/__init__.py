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
"""

from __future__ import annotations

from ._faults import FAULT_HEADER, FAULTS
from ._race import Oversell, find_oversold
from ._run import CASES, RACE_CASES, DemoCase, Outcome, culprit_of, load_flow_spec, render_table, run_demo
from ._shop import SERVICES, Shop, ShopError, start_shop

__all__ = [
    "CASES",
    "FAULTS",
    "FAULT_HEADER",
    "RACE_CASES",
    "SERVICES",
    "DemoCase",
    "Outcome",
    "Oversell",
    "Shop",
    "ShopError",
    "culprit_of",
    "find_oversold",
    "load_flow_spec",
    "render_table",
    "run_demo",
    "start_shop",
]
