"""The dashboard pages, served by `tracebaton.api`: plain HTML, CSS and JavaScript files
shipped as package data (no build step). One page shell; the script draws the page the
path names (/flows, /flows/{id}, /traces, /traces/{id}) from the REST API; a recorded run's
verdict is in the shell as served (`page_html`), so it shows before the script has run."""

from __future__ import annotations

import inspect as _inspect

from ._assets import ASSET_TYPES, PAGE_PATHS, asset
from ._verdict_html import PageVerdict, page_html

__all__ = ["ASSET_TYPES", "PAGE_PATHS", "PageVerdict", "asset", "page_html"]

for _name in __all__:  # reported where users meet them (reprs, pickles), not in a private module
    _value = globals().get(_name)
    if isinstance(_value, type) or (callable(_value) and _inspect.isfunction(_inspect.unwrap(_value))):
        _value.__module__ = __name__
