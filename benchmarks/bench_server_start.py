"""Server start: from `tracebaton serve` being spawned to its ready line.

    python benchmarks/bench_server_start.py [--runs 7]

A test suite starts a server per module (and a plugin run starts an embedded one), so this is
paid hundreds of times per `make test`. Each run spawns `python -m tracebaton serve` on a
fresh DuckDB file with free ports and times it until it prints `tracebaton: ready`, then stops
it with SIGTERM. The first run is a warm-up (bytecode written, files in the page cache) and is
not counted; the median of the rest is reported, with the fastest and slowest.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def start_once(workdir: Path) -> float:
    command = [sys.executable, "-m", "tracebaton", "serve", "--db", str(workdir / "start.duckdb"),
               "--grpc-port", "0", "--http-port", "0", "--api-port", "0"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TRACEBATON_")}  # serve's defaults
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               env=environment)
    assert process.stdout is not None
    line = process.stdout.readline()
    took = time.monotonic() - started
    process.send_signal(signal.SIGTERM)
    process.wait(60)
    process.stdout.close()
    if not line.startswith("tracebaton: ready "):
        raise SystemExit(f"tracebaton serve did not start: {line!r}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        times = []
        for run in range(args.runs + 1):
            workdir = Path(scratch) / str(run)
            workdir.mkdir()
            took = start_once(workdir)
            if run:
                times.append(took)
    print(f"server start to ready line, {args.runs} runs: median {statistics.median(times):.2f} s "
          f"(fastest {min(times):.2f} s, slowest {max(times):.2f} s)")


if __name__ == "__main__":
    main()
