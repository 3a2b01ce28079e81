"""Public names say where users meet them: `tracebaton.Collector`, not the private module
that defines it, in reprs, tracebacks, pytest's "E   ..." lines, pickles and docs."""

from __future__ import annotations

import importlib
import inspect
import pickle
from collections.abc import Iterator
from typing import Any

import pytest

FACADES = [
    "tracebaton",
    "tracebaton.collector",
    "tracebaton.assertions",
    "tracebaton.api",
    "tracebaton.dashboards",
    "tracebaton.demo",
]


def classes_and_functions(facade: str) -> Iterator[tuple[str, Any]]:
    """Every name in the facade's __all__ that is a class or a function (also behind a
    decorator such as functools.lru_cache); lazily loaded names are loaded."""
    module = importlib.import_module(facade)
    for name in module.__all__:
        value = getattr(module, name)
        if isinstance(value, type) or (callable(value) and inspect.isfunction(inspect.unwrap(value))):
            yield name, value


@pytest.mark.parametrize("facade", FACADES)
def test_every_public_class_and_function_reports_its_facade(facade: str) -> None:
    """A name that `tracebaton` itself exports reports "tracebaton" wherever else it is
    exported too (`tracebaton.Client` is also `tracebaton.assertions.Client`)."""
    root = importlib.import_module("tracebaton").__all__
    names = dict(classes_and_functions(facade))
    assert names, f"{facade} exports no class or function: is __all__ read?"
    wrong = {
        name: value.__module__
        for name, value in names.items()
        if value.__module__ != ("tracebaton" if name in root else facade)
    }
    assert wrong == {}, f"these names of {facade} report a private module; end its __init__ with the loop"
    for name, value in names.items():
        assert pickle.loads(pickle.dumps(value)) is value, f"{facade}.{name} does not pickle by its name"


def test_an_error_reads_as_tracebaton_in_its_traceback_line() -> None:
    from tracebaton import Collector, CollectorStateError

    with pytest.raises(CollectorStateError) as caught:
        Collector().flow("checkout")
    assert caught.exconly().startswith("tracebaton.CollectorStateError: this Collector is not started")
    assert repr(Collector).startswith("<class 'tracebaton.Collector'>")
