"""A fresh clone is all the project needs: no file refers to a folder beside the repository
(as the reference workload once came from `../shared/workloads`, and its tests skipped
wherever that folder was missing)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import REPO

OUTSIDE = re.compile(
    r"\.\./shared\b"                                  # ../shared/...
    r"|\bshared/workloads\b"                          # shared/workloads/otlp_workload.py
    r"|/work/shared\b"
    r"|\.parents?\b[^\n]{0,12}/\s*[\"']shared[\"']"   # REPO.parent / "shared", parents[1] / "shared"
    r"|[\"']\.\.[\"']\s*/\s*[\"']shared[\"']"          # ... / ".." / "shared"
    r"|[\"']shared[\"']\s*/\s*[\"']workloads[\"']"     # "shared" / "workloads"
)


def _project_files() -> list[Path]:
    """Tracked files, and new ones git does not ignore: the package, tests, benchmarks and
    everything else a clone holds."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip(f"not a git checkout: {listed.stderr.decode(errors='replace').strip()}")
    return [REPO / name for name in listed.stdout.decode().split("\0") if name]


def test_the_pattern_catches_the_old_references() -> None:
    for line in ['WORKLOADS = REPO.parent / "shared" / "workloads"',
                 'pathlib.Path(__file__).resolve().parents[2] / ".." / "shared" / "workloads"',
                 "from `shared/workloads/otlp_workload.py` (512 spans each)",
                 "sys.path.insert(0, '../shared/workloads')"]:
        assert OUTSIDE.search(line), line
    for line in ['tmp_path_factory.mktemp("shared") / "store.duckdb"', "a shared server", "shared_server"]:
        assert not OUTSIDE.search(line), line


def test_no_file_refers_to_a_folder_beside_the_repository() -> None:
    here = Path(__file__).resolve()
    found = []
    for path in _project_files():
        if path == here or not path.is_file():  # this file names the patterns; deleted files are listed too
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # images
            continue
        found += [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
                  for number, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]
    assert found == [], "the repository must not depend on ../shared:\n" + "\n".join(found)
