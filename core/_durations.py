"""Durations as users write them: a number and a unit (`250ms`, `1.5s`, `10m`); whole numbers."""

from __future__ import annotations

import re

from ._errors import ConfigurationError

_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
            "h": 3_600_000_000_000, "d": 86_400_000_000_000}
DURATION_UNITS = " ".join(_UNIT_NS)
"""The units a duration may have, as messages list them: `ns us ms s m h d`."""
DURATION_PATTERN = rf"^\s*(\d+(?:\.\d+)?)\s*({'|'.join(_UNIT_NS)})\s*$"
"""What a duration's text matches (the API's parameters validate against it)."""
_DURATION = re.compile(DURATION_PATTERN)


def parse_duration_ns(text: str, *, what: str = "duration") -> int:
    """`"250ms"` -> 250_000_000. Raises ConfigurationError naming `what` on bad input."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigurationError(
            f"{what}: {text!r} is not a duration; write a number and a unit, "
            f"one of {DURATION_UNITS}, e.g. '250ms' or '10s'"
        )
    return round(float(match.group(1)) * _UNIT_NS[match.group(2)])


def format_duration_ns(ns: int) -> str:
    """The shortest exact-enough rendering people read: 1.2 s, 250 ms, 80 us; 10 m, 2.5 h
    (never an exponent: `3.6e+03 s` reads as nothing)."""
    if ns >= 1000 * 3_600_000_000_000:
        return f"{round(ns / 3.6e12)} h"
    if ns >= 3_600_000_000_000:
        return f"{ns / 3.6e12:.3g} h"
    if ns >= 600_000_000_000:
        return f"{ns / 6e10:.3g} m"
    if ns >= 1_000_000_000:
        return f"{ns / 1e9:.3g} s"
    if ns >= 1_000_000:
        return f"{ns / 1e6:.3g} ms"
    if ns >= 1_000:
        return f"{ns / 1e3:.3g} us"
    return f"{ns} ns"


def whole_number(text: str) -> int | None:
    """`"42"` -> 42; None unless `text` is ASCII digits only. `str.isdigit()` is true of
    `"³"`, which `int()` refuses: a header, attribute or query value that passed it crashed
    the code that trusted it."""
    if not (text.isascii() and text.isdigit()):
        return None
    return int(text)
