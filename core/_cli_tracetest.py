"""`tracebaton import-tracetest FILE... [--out DIR] [--force]` (DESIGN §8): Tracetest test
definitions to flow spec files.

The mapping is `tracebaton.assertions.read_tracetest` (pure); this module reads the files,
follows test suites to their steps, decides where each spec goes, refuses to overwrite, and
writes. Every input is read and converted before anything is written, so bad input (exit 2)
leaves no half-written folder. Exit 0: everything converted; 1: specs written, and what did
not convert is listed on stderr (and in each spec's header); 2: bad input, nothing written.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from ._errors import ConfigurationError

_SUFFIXES = (".yaml", ".yml")


def add_tracetest_command(commands: Any) -> None:
    command = commands.add_parser(
        "import-tracetest",
        help="convert Tracetest test definitions (YAML) to flow specs (exit 0 all converted, 1 some not, "
        "2 bad input)",
        description="Write one flow spec per Tracetest test (`type: Test`), as <name>.flow.yaml beside it or "
        "in --out; a test suite (`type: TestSuite`) becomes a folder of its steps' specs. Selectors "
        "and assertions that have a flow-spec counterpart are converted; everything else is listed "
        "with its file and line, never dropped silently. Exit 0 when everything converted, 1 when "
        "something did not, 2 on bad input (nothing is written then).",
    )
    command.add_argument("files", nargs="+", metavar="FILE", help="Tracetest test or test suite files (YAML)")
    command.add_argument("--out", metavar="DIR", help="write the specs here (default: beside each input)")
    command.add_argument("--force", action="store_true", help="overwrite spec files that exist")


@dataclasses.dataclass(frozen=True)
class _Job:
    source: Path
    target: Path
    test: Any
    """A tracebaton.assertions.TracetestTest."""
    suite: str | None = None


def _read(path: Path) -> Any:
    from tracebaton.assertions import read_tracetest

    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise ConfigurationError(f"{path}: is a folder; give the Tracetest YAML files in it") from None
    except OSError as error:
        raise ConfigurationError(f"{path}: cannot read it ({error.strerror or error}); give a readable "
                                 "Tracetest test definition (YAML)") from None
    return read_tracetest(data, str(path))


def _stem(path: Path) -> str:
    name = path.name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


class _Tests:
    """Converted tests by file and by Tracetest id; a suite's id steps are looked up among
    the files given and the YAML files beside the suite."""

    def __init__(self) -> None:
        self.by_path: dict[Path, Any] = {}
        self.by_id: dict[str, tuple[Path, Any]] = {}
        self.scanned: set[Path] = set()

    def add(self, path: Path, result: Any) -> None:
        from tracebaton.assertions import TracetestTest

        self.by_path[path.resolve()] = result
        if isinstance(result, TracetestTest) and result.test_id:
            self.by_id.setdefault(result.test_id, (path, result))

    def get(self, path: Path) -> Any:
        if path.resolve() not in self.by_path:
            self.add(path, _read(path))
        return self.by_path[path.resolve()]

    def find_id(self, test_id: str, folder: Path) -> tuple[Path, Any] | None:
        if test_id not in self.by_id and folder.resolve() not in self.scanned:
            self.scanned.add(folder.resolve())
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in _SUFFIXES and path.is_file() and path.resolve() not in self.by_path:
                    try:
                        self.add(path, _read(path))
                    except ConfigurationError:
                        continue  # not a Tracetest test: not what the suite names
        return self.by_id.get(test_id)


def run_import_tracetest(args: argparse.Namespace) -> int:
    from tracebaton.assertions import NotConverted, TracetestSuite, TracetestTest

    tests = _Tests()
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise ConfigurationError(f"--out {out}: is a file, not a folder; give a folder for the specs")
    jobs: list[_Job] = []
    skipped: list[tuple[Path, NotConverted]] = []
    inputs = [Path(name) for name in args.files]
    for path in inputs:
        tests.get(path)
    for path in inputs:
        result = tests.get(path)
        folder = out if out is not None else path.parent
        if isinstance(result, TracetestTest):
            jobs.append(_Job(path, folder / f"{_stem(path)}.flow.yaml", result))
            continue
        assert isinstance(result, TracetestSuite)
        skipped += [(path, item) for item in result.not_converted]
        suite_folder = folder / _stem(path)
        for number, step in enumerate(result.steps, 1):
            if step.is_file:
                step_path = Path(os.path.normpath(path.parent / step.ref))  # no `suites/../tests` in messages
                if not step_path.is_file():
                    raise ConfigurationError(f"{path}:{step.line}: step {number}, {step.ref}: no such file "
                                             f"({step_path}); steps name test files relative to the suite's "
                                             "file, or test ids")
                found: tuple[Path, Any] | None = (step_path, tests.get(step_path))
            else:
                found = tests.find_id(step.ref, path.parent)
            if found is None:
                skipped.append((path, NotConverted(step.line, f"step {number}, test id {step.ref}",
                                                   "no Tracetest test with this id (spec.id) is among the "
                                                   "files given or beside the suite; pass its file too")))
                continue
            step_path, step_result = found
            if not isinstance(step_result, TracetestTest):
                raise ConfigurationError(f"{path}:{step.line}: step {number}, {step.ref}: is a test suite; "
                                         "a suite's steps are tests")
            target = suite_folder / f"{number:02d}-{_stem(step_path)}.flow.yaml"
            note = f"Step {number} of Tracetest test suite {result.name!r} ({path})."
            jobs.append(_Job(step_path, target, step_result, note))
    jobs = _check_targets(jobs, force=args.force)
    for job in jobs:
        skipped += [(job.source, item) for item in job.test.not_converted]
    for job in jobs:
        text = job.test.file_text(source=str(job.source), spec_path=str(job.target), suite=job.suite)
        job.target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(job.target, "w" if args.force else "x", encoding="utf-8") as handle:
                handle.write(text)
        except FileExistsError:
            raise ConfigurationError(f"{job.target}: appeared while converting; not overwritten (pass "
                                     "--force to overwrite)") from None
        except OSError as error:
            raise ConfigurationError(f"{job.target}: cannot write it ({error.strerror or error}); give "
                                     "--out a folder you can write to") from None
        spec = job.test.spec.get("expect", {})
        print(f"wrote {job.target} from {job.source}: {_checks(spec)}")
    seen: set[tuple[Path, NotConverted]] = set()
    for source, item in skipped:
        if (source.resolve(), item) in seen:  # a test given and also a suite's step
            continue
        seen.add((source.resolve(), item))
        print(f"{source}:{item.line}: not converted: {item.construct}: {item.reason}", file=sys.stderr)
    if seen:
        print(f"tracebaton import-tracetest: {len(seen)} construct{'s' if len(seen) != 1 else ''} not "
              "converted (listed above, and in the header of each spec written)", file=sys.stderr)
        return 1
    return 0


def _check_targets(jobs: list[_Job], *, force: bool) -> list[_Job]:
    """The jobs, each target once, checked before anything is written: no two tests to one
    file, and no spec over an existing file unless --force."""
    claimed: dict[Path, Path] = {}
    unique = []
    for job in jobs:
        key = Path(os.path.abspath(job.target))
        if key in claimed:
            if claimed[key] != job.source.resolve():
                raise ConfigurationError(f"{job.target}: both {claimed[key]} and {job.source} would be "
                                         "written there; rename one, or convert them into different --out "
                                         "folders")
            continue  # the same file given twice
        claimed[key] = job.source.resolve()
        unique.append(job)
    jobs = unique
    existing = sorted({str(job.target) for job in jobs if job.target.exists()})
    if existing and not force:
        shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
        raise ConfigurationError(f"{shown}: already exist{'s' if len(existing) == 1 else ''}; nothing was "
                                 "written — pass --force to overwrite, or --out DIR to write elsewhere")
    return jobs


def _checks(expect: dict[str, Any]) -> str:
    spans, hops = len(expect.get("spans", [])), len(expect.get("hops", []))
    parts = [f"{spans} span check{'s' if spans != 1 else ''}"]
    if hops:
        parts.append(f"{hops} hop{'s' if hops != 1 else ''}")
    return ", ".join(parts)
