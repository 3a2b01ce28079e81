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


def test_a_trace_reads_whole_while_retention_deletes_and_checkpoints_run(tmp_path: Path) -> None:
    # A file read finds the trace's rows, then reads them in a second statement; DuckDB
    # does not promise row ids stay put across a checkpoint after deletes, so a read that
    # overlaps one reads again in one snapshot. (DuckDB 2.0 kept them in every case tried:
    # the read in a checkpoint's shadow is also made on purpose below.)
    import os
    import threading

    from otlp_requests import new_trace_id, valid_request

    from tracebaton.collector import PROTOBUF

    store = DuckDBSpanStore(str(tmp_path / "r.duckdb"), retention_max_spans=4_000).start()
    try:
        watched = new_trace_id()
        store.ingest(valid_request(watched, 40).SerializeToString(), PROTOBUF).result(30)
        store.pin(watched.hex())  # retention spares it however old it gets
        assert store.flush_to_file()
        stop = threading.Event()
        short: list[int] = []

        def read() -> None:
            while not stop.is_set():
                got = len(store.trace(watched.hex()))
                if got != 40:
                    short.append(got)

        reader = threading.Thread(target=read)
        reader.start()
        try:
            for _ in range(30):  # each round: new spans past the limit, a delete, a checkpoint
                body = valid_request(os.urandom(16), 500).SerializeToString()
                store.ingest(body, PROTOBUF).result(30)
                store.prune()
                store.checkpoint()
        finally:
            stop.set()
            reader.join()
        assert short == []
        with store._layout.moving():  # as a checkpoint running: the read takes one snapshot
            assert len(store.trace(watched.hex())) == 40
        assert store.span_count() <= 4_000 + 500 + 40
    finally:
        store.shutdown()
