"""The demo shop: instrumented services with switchable integration faults."""

from __future__ import annotations

__all__: list[str] = []
