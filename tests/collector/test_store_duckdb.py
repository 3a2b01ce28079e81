"""What only the DuckDB store does: refusing files that are not its own, and its upkeep."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from tracebaton import ConfigurationError
from tracebaton.collector import DuckDBSpanStore


def test_a_foreign_duckdb_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    with duckdb.connect(str(path)) as other:
        other.execute("CREATE TABLE invoices (id INTEGER)")
    with pytest.raises(ConfigurationError, match=r"belongs to something else.*invoices"):
        DuckDBSpanStore(str(path))


def test_a_file_that_is_not_duckdb_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are not spans\n" * 100)
    with pytest.raises(ConfigurationError, match=r"DuckDB file .*notes\.txt: this is no DuckDB database"):
        DuckDBSpanStore(str(path))


def test_a_store_from_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "v.duckdb")
    DuckDBSpanStore(path).shutdown()
    with duckdb.connect(path) as connection:
        connection.execute("UPDATE tracebaton_meta SET value = '999' WHERE key = 'schema_version'")
    with pytest.raises(ConfigurationError, match="schema version 999"):
        DuckDBSpanStore(path)
