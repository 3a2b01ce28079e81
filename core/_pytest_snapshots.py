"""The pytest plugin's golden-flow bookkeeping: where a test's snapshots live, which ones a
run used and wrote, and which are unused (DESIGN §6 "Flow snapshots").

Unused means what syrupy means by it: a snapshot file of a test that ran and passed without
comparing with it, or one that belongs to no test of a test file that was collected whole (a
renamed test). A file of a test that was deselected (`-k`, `--lf`, a node id), skipped or
failed before it got to compare is never unused: a run that did not reach it says nothing
about it. Under pytest-xdist each worker collects every test and runs some; the workers send
what they saw (`workeroutput`) and the controller decides, once, after the last one is down.

Imports nothing heavy: the plugin module loads it in every pytest run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

SNAPSHOT_DIR = "__snapshots__"
SUFFIX = ".flow.yaml"
WORKER_KEY = "tracebaton_snapshots"
_UNSAFE = re.compile(r"[^\w.\[\]@=+,-]")
_MAX_STEM = 150


def test_stem(item: pytest.Item) -> str:
    """The part of a snapshot's file name that names its test: the node id after the file,
    classes joined by dots, parametrized ids kept, anything a file name cannot hold replaced."""
    name = item.nodeid.split("::", 1)[1] if "::" in item.nodeid else item.name
    stem = _UNSAFE.sub("_", name.replace("::", "."))
    if len(stem) > _MAX_STEM:  # a long parametrization: cut, and keep it unique
        stem = stem[:_MAX_STEM - 11] + "-" + hashlib.sha1(name.encode()).hexdigest()[:10]
    return stem


def snapshot_dir(module: Path) -> Path:
    return module.parent / SNAPSHOT_DIR / module.stem


def owns(stem: str, file_name: str) -> bool:
    """`test_x.flow.yaml` and `test_x.<name>.flow.yaml` belong to the test `test_x`."""
    return file_name == stem + SUFFIX or (file_name.startswith(stem + ".") and file_name.endswith(SUFFIX))


def update_command(item: pytest.Item) -> str:
    """The command that writes this test's snapshots, from where pytest was started."""
    where = item.config.invocation_params.dir
    try:
        path = os.path.relpath(item.path, where)
    except ValueError:  # another drive (Windows)
        path = str(item.path)
    rest = item.nodeid.split("::", 1)[1] if "::" in item.nodeid else ""
    node = f"{path}::{rest}" if rest else path
    return f"pytest --tracebaton-update {shlex.quote(node)}"


@dataclasses.dataclass
class Snapshots:
    update: bool
    used: set[str] = dataclasses.field(default_factory=set)
    created: set[str] = dataclasses.field(default_factory=set)
    updated: set[str] = dataclasses.field(default_factory=set)
    passed: set[tuple[str, str]] = dataclasses.field(default_factory=set)
    """(test file, test stem) of each test whose call passed."""
    known: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    """Test file -> stems of every test collected in it, before any deselection."""
    partial: set[str] = dataclasses.field(default_factory=set)
    """Test files collected only in part (a node id on the command line, `--lf`)."""
    unused: list[str] = dataclasses.field(default_factory=list)
    deleted: list[str] = dataclasses.field(default_factory=list)

    def note(self, path: Path, event: str) -> None:
        target = {"used": self.used, "created": self.created, "updated": self.updated}[event]
        target.add(str(path))

    def collected(self, config: pytest.Config, items: Iterable[pytest.Item]) -> None:
        for item in items:
            self.known.setdefault(str(item.path), set()).add(test_stem(item))
        everything = bool(config.getoption("lf", default=False))  # --lf collects failed tests only
        for arg in config.args:
            if "::" in arg or everything:
                self.partial.add(str((config.invocation_params.dir / arg.split("::", 1)[0]).resolve()))
        if everything:
            self.partial.update(self.known)

    def to_json(self) -> dict[str, Any]:
        return {"used": sorted(self.used), "created": sorted(self.created), "updated": sorted(self.updated),
                "passed": sorted(self.passed), "known": {k: sorted(v) for k, v in self.known.items()},
                "partial": sorted(self.partial)}

    def merge(self, data: Mapping[str, Any]) -> None:
        self.used.update(data.get("used", ()))
        self.created.update(data.get("created", ()))
        self.updated.update(data.get("updated", ()))
        self.passed.update((str(m), str(s)) for m, s in data.get("passed", ()))
        for module, stems in data.get("known", {}).items():
            self.known.setdefault(module, set()).update(stems)
        self.partial.update(data.get("partial", ()))

    def finish(self) -> None:
        """Find the unused snapshots (and delete them under --tracebaton-update)."""
        for module in sorted({m for m, _ in self.passed}):
            folder = snapshot_dir(Path(module))
            if not folder.is_dir():
                continue
            ran = [s for m, s in self.passed if m == module]
            known = self.known.get(module, set())
            for file in sorted(folder.glob("*" + SUFFIX)):
                if str(file) in self.used or str(file) in self.created:
                    continue
                mine = any(owns(stem, file.name) for stem in ran)
                orphaned = module not in self.partial and not any(owns(stem, file.name) for stem in known)
                if mine or orphaned:
                    self.unused.append(str(file))
        if self.update:
            for name in self.unused:
                Path(name).unlink(missing_ok=True)
                self.deleted.append(name)
            for name in self.deleted:
                for folder in (Path(name).parent, Path(name).parent.parent):
                    try:
                        folder.rmdir()  # only when it is empty
                    except OSError:
                        break

    def summary(self) -> list[str]:
        lines = []
        written = len(self.created) + len(self.updated)
        if written or self.deleted:
            parts = [f"{written} written ({len(self.created)} new, {len(self.updated)} updated)"]
            if self.deleted:
                parts.append(f"{len(self.deleted)} unused deleted")
            lines.append(f"tracebaton: snapshots: {', '.join(parts)}")
            lines += [f"    deleted {_shown(name)}" for name in self.deleted]
        elif self.unused:
            count = len(self.unused)
            lines.append(f"tracebaton: {count} unused snapshot{'s' if count != 1 else ''} (their tests ran "
                         "and compared with none of them); `pytest --tracebaton-update` deletes them:")
            lines += [f"    {_shown(name)}" for name in self.unused]
        return lines


def _shown(name: str) -> str:
    try:
        return os.path.relpath(name)
    except ValueError:
        return name
