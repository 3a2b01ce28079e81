"""The REST API (and the server of the dashboard)."""

from __future__ import annotations

import inspect as _inspect

import tracebaton as _tracebaton

from ._app import create_app

__all__ = ["create_app"]


for _name in __all__:  # reported where users meet them (reprs, pickles), not in a private module
    _value = globals().get(_name)
    if isinstance(_value, type) or (callable(_value) and _inspect.isfunction(_inspect.unwrap(_value))):
        _value.__module__ = "tracebaton" if _name in _tracebaton.__all__ else __name__
