"""Stores for tests, through one fixture: `make_store(**options)`.

Every test that needs a store of its own opens it here, by URL through `open_store`, as
`serve` does, never by a concrete class. A backend says how a test gets fresh, isolated
data: DuckDB opens a file in the test's temporary folder; a backend whose engine allows
one data directory per process (chdb) keeps one engine for the session and gives each
store a database of its own. A backend also names what its tests may do that the
protocol does not offer (apply retention now, say).

The conformance suite (`tests/collector/test_store_conformance.py`) runs on every entry
of `BACKENDS`; other tests get the default, the first.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import pytest

from tracebaton.collector import (
    ClickHouseSpanStore,
    DuckDBSpanStore,
    SpanStore,
    StoreCapabilities,
    StoreOptions,
    open_store,
)


@dataclasses.dataclass(frozen=True)
class StoreBackend:
    name: str
    url: Callable[[Path, str], str]
    """The URL of the store called `key` for a test whose temporary folder is given: the
    same key gives the same data again (a restart), another key other data."""
    apply_retention: Callable[[SpanStore], int]
    """Prune now what the store's retention options say; returns the spans removed."""
    span_rows: Callable[[SpanStore], int]
    """Rows stored, re-sent copies included (what retention bounds)."""
    settle: Callable[[SpanStore], None]
    """Move everything acknowledged to where the store keeps it for good (DuckDB: from the
    in-memory head into the file), so that a test reads it from there."""
    capabilities: StoreCapabilities
    """What the store declares, read before any store is opened, to select tests."""
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    """StoreOptions every store of this backend opens with (a test's own options win)."""


def _duckdb_prune(store: SpanStore) -> int:
    return cast(DuckDBSpanStore, store).prune()


def _duckdb_settle(store: SpanStore) -> None:
    assert cast(DuckDBSpanStore, store).flush_to_file(), "the head did not reach the file"


def _flushed(store: SpanStore) -> None:
    assert store.force_flush(), "the store did not flush"


def _duckdb_rows(store: SpanStore) -> int:
    return cast(DuckDBSpanStore, store).span_count()


def _chdb_url(folder: Path, key: str) -> str:
    # chdb runs one ClickHouse engine per process on one data directory: every test of this
    # process shares it (the parent of the tests' temporary folders is this process's), and
    # each store gets a database named after its test folder and key
    database = re.sub(r"[^0-9A-Za-z_]", "_", f"t_{folder.name}_{key}")
    return f"chdb:{folder.parent / 'chdb-engine'}?database={database}"


def _no_retention(store: SpanStore) -> int:
    raise AssertionError("the ClickHouse store leaves retention to its tables' TTL")


def _clickhouse_rows(store: SpanStore) -> int:
    return cast(ClickHouseSpanStore, store).span_count()


BACKENDS = {
    "duckdb": StoreBackend(
        "duckdb",
        url=lambda folder, key: f"duckdb:{folder / (key + '.duckdb')}",
        apply_retention=_duckdb_prune,
        span_rows=_duckdb_rows,
        settle=_duckdb_settle,
        capabilities=DuckDBSpanStore.capabilities,
    ),
    "chdb": StoreBackend(
        "chdb",
        url=_chdb_url,
        apply_retention=_no_retention,
        span_rows=_clickhouse_rows,
        settle=_flushed,
        capabilities=ClickHouseSpanStore.capabilities,
        # an empty database per test: the exporter's tables are created as `--create-schema` does
        options={"create_schema": True},
    ),
}
DEFAULT_BACKEND = "duckdb"


class StoreMaker:
    """`make_store(key="store", start=True, **StoreOptions fields)`; every store it made is
    shut down at the test's end. `make_store.backend` is the backend in use."""

    def __init__(self, backend: StoreBackend, folder: Path) -> None:
        self.backend = backend
        self._folder = folder
        self._made: list[SpanStore] = []

    def url(self, key: str = "store") -> str:
        return self.backend.url(self._folder, key)

    def __call__(self, key: str = "store", *, start: bool = True, **options: Any) -> SpanStore:
        store = open_store(self.url(key), StoreOptions(**{**self.backend.options, **options}))
        self._made.append(store)
        return store.start() if start else store

    def close_all(self) -> None:
        for store in reversed(self._made):
            store.shutdown()


@pytest.fixture
def store_backend() -> StoreBackend:
    """The backend of `make_store`; the conformance suite overrides it, parametrized."""
    return BACKENDS[DEFAULT_BACKEND]


@pytest.fixture
def make_store(store_backend: StoreBackend, tmp_path: Path) -> Iterator[StoreMaker]:
    maker = StoreMaker(store_backend, tmp_path)
    yield maker
    maker.close_all()


@pytest.fixture
def store(make_store: StoreMaker) -> SpanStore:
    """A started store of the backend under test, shut down after the test."""
    return make_store()


@pytest.fixture(params=list(BACKENDS))
def every_backend(request: pytest.FixtureRequest) -> StoreBackend:
    """Import as `store_backend` in a module to run its tests on every store."""
    return BACKENDS[request.param]


def needs(capability: str) -> pytest.MarkDecorator:
    """Mark a conformance test as needing a `StoreCapabilities` field: on a store that does
    not declare it, the test does not run, and says which capability it lacks."""
    if capability not in {f.name for f in dataclasses.fields(StoreCapabilities)}:
        raise ValueError(f"{capability!r} is not a StoreCapabilities field")
    return pytest.mark.needs_capability(capability)


@pytest.fixture(autouse=True)
def _capability_gate(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("needs_capability")
    if marker is None:
        return
    backend: StoreBackend = request.getfixturevalue("store_backend")
    if not getattr(backend.capabilities, marker.args[0]):
        pytest.skip(f"the {backend.name} store does not declare {marker.args[0]}")
