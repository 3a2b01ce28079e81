"""The REST API (and the server of the dashboard)."""

from __future__ import annotations

from ._app import create_app

__all__ = ["create_app"]
