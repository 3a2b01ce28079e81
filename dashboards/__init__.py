"""The dashboard pages, served by `tracebaton.api`."""

from __future__ import annotations

__all__: list[str] = []
