"""The flow engine: hops, flow specs and verdicts over the collector's read API.

Built on `tracebaton.collector.SpanStore`; it reads spans and never writes them.
"""

from __future__ import annotations

__all__: list[str] = []
