"""What a write of the head to the DuckDB file costs, by how many rows a commit carries.

    python benchmarks/bench_file_writes.py [--requests 1440] [--rows 65536,122880,135000]

Ingests the reference workload (`tests/support/otlp_workload.py`, 512 spans a request)
into a store and reads its rows back as they are stored; then, for each commit size, writes
those rows into a fresh store file in commits of that many rows and checkpoints it, and
prints the CPU a span of the process (DuckDB's threads included) for the commits and for
the checkpoint, the longest commit and the file's size. A commit of whole row groups
(122,880 rows) is compressed and written to the file at once; any other goes through the
WAL and the checkpoint compresses it again, which is why the store's flush under load
writes whole row groups only (`collector/_writer.py`).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
from otlp_workload import build_request  # noqa: E402

from tracebaton.collector import PROTOBUF, DuckDBSpanStore  # noqa: E402


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def stored_rows(folder: Path, requests: int) -> pa.Table:
    path = str(folder / "source.duckdb")
    with DuckDBSpanStore(path).start() as store:
        for seed in range(requests):
            store.ingest(build_request(seed=seed).SerializeToString(), PROTOBUF).result(60)
    with duckdb.connect(path, read_only=True) as connection:
        return connection.sql("SELECT * FROM spans ORDER BY rowid").to_arrow_table().combine_chunks()


def write_in_commits(folder: Path, rows: pa.Table, per_commit: int) -> dict[str, float]:
    path = str(folder / f"commits-{per_commit}.duckdb")
    DuckDBSpanStore(path).start().shutdown()  # the store's own schema, empty
    written = longest = 0.0
    with duckdb.connect(path, config={"checkpoint_threshold": "1TB"}) as connection:
        started = cpu_s()
        for offset in range(0, rows.num_rows - per_commit + 1, per_commit):
            connection.register("incoming", rows.slice(offset, per_commit).combine_chunks())
            begun = time.perf_counter()
            connection.execute("BEGIN; INSERT INTO spans SELECT * FROM incoming; COMMIT")
            longest = max(longest, time.perf_counter() - begun)
            connection.unregister("incoming")
            written += per_commit
        committed = cpu_s()
        connection.execute("CHECKPOINT")
        checkpointed = cpu_s()
    return {"commits_us": (committed - started) / written * 1e6,
            "checkpoint_us": (checkpointed - committed) / written * 1e6,
            "longest_commit_ms": longest * 1000, "file_mib": os.path.getsize(path) / (1 << 20)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1440, help="workload requests of 512 spans")
    parser.add_argument("--rows", default="65536,122880,135000", help="rows a commit, comma-separated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        rows = stored_rows(folder, args.requests)
        print(f"{rows.num_rows:,} spans of the workload, written in commits of:")
        print("| rows a commit | commits µs/span | checkpoint µs/span | total µs/span "
              "| longest commit ms | file MiB |")
        print("|---|---|---|---|---|---|")
        for per_commit in (int(part) for part in args.rows.split(",")):
            f = write_in_commits(folder, rows, per_commit)
            print(f"| {per_commit:,} | {f['commits_us']:.2f} | {f['checkpoint_us']:.2f} | "
                  f"{f['commits_us'] + f['checkpoint_us']:.2f} | {f['longest_commit_ms']:.0f} | "
                  f"{f['file_mib']:.0f} |")


if __name__ == "__main__":
    main()
