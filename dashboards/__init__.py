"""The dashboard pages, served by `tracebaton.api`: plain HTML, CSS and JavaScript files
shipped as package data (no build step). One page shell; the script draws the page the
path names (/flows, /flows/{id}, /traces, /traces/{id}) from the REST API."""

from __future__ import annotations

from ._assets import ASSET_TYPES, PAGE_PATHS, asset

__all__ = ["ASSET_TYPES", "PAGE_PATHS", "asset"]
