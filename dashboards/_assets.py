"""The dashboard's files, read from the installed package (wheel or editable install alike)."""

from __future__ import annotations

import functools
import importlib.resources

ASSET_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
"""Every file the dashboard serves, by suffix; nothing else under static/ is served."""

PAGE_PATHS = ("/", "/flows", "/flows/{key}", "/traces", "/traces/{key}", "/compare", "/map")
"""Paths that answer with the page shell (`index.html`)."""


@functools.cache
def asset(name: str) -> bytes | None:
    """The file `static/<name>`, or None when there is no such dashboard file."""
    if "/" in name or "\\" in name or name.startswith(".") or not name.endswith(tuple(ASSET_TYPES)):
        return None
    resource = importlib.resources.files(__package__).joinpath("static", name)
    try:
        return resource.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
