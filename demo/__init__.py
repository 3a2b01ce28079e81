"""The demo shop (DESIGN §9): a checkout across separate service processes, instrumented
with the OpenTelemetry SDK and exporting over OTLP, with integration faults to switch on
per request.

    shop = start_shop(lambda name: collector.sut_env(service_name=name, headers=["x-request-id"]),
                      workdir=tmp_path)
    httpx.post(shop.url + "/checkout", headers={**flow.headers, "x-demo-fault": "slow@inventory"})
    shop.stop()

Faults: `x-demo-fault: <fault>@<service>[, ...]`; `FAULTS` says what each one does.
"""

from __future__ import annotations

from ._faults import FAULT_HEADER, FAULTS
from ._shop import SERVICES, Shop, ShopError, start_shop

__all__ = ["FAULTS", "FAULT_HEADER", "SERVICES", "Shop", "ShopError", "start_shop"]
