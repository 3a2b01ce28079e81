"""The REST API (and the server of the dashboard)."""

from __future__ import annotations

from ._app import create_app
from ._render import span_json

__all__ = ["create_app", "span_json"]
