"""pyproject.toml builds without a setuptools warning, and the wheel's build holds the data
folders: the dashboard's static files and the demo's flow specs.

setuptools runs in a copy of the sources (it writes egg-info and build folders beside
them), with every warning an error: a deprecated `project.license` table, or a data folder
that Python could import but `packages` does not list, fails here rather than scrolling
past in `make install`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
PACKAGE_DIRS = PYPROJECT["tool"]["setuptools"]["package-dir"]


def _copy_sources(to: Path) -> None:
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, to / name)
    for folder in sorted({folder.split("/")[0] for folder in PACKAGE_DIRS.values()}):
        shutil.copytree(REPO / folder, to / folder, ignore=shutil.ignore_patterns("__pycache__"))


def test_setuptools_builds_the_package_without_a_warning(tmp_path: Path) -> None:
    source, lib = tmp_path / "source", tmp_path / "lib"
    source.mkdir()
    _copy_sources(source)
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", "from setuptools import setup; setup()",
         "egg_info", "--egg-base", str(tmp_path), "build_py", "--build-lib", str(lib)],
        cwd=source, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "Warning" not in done.stderr, done.stderr  # a warning class's name, as warnings print it
    built = lib / "tracebaton"
    for data, pattern in (("dashboards/static", "*"), ("demo/flows", "*.yaml")):
        sources = sorted(path.name for path in (REPO / data).glob(pattern))
        assert sources, data
        assert sorted(path.name for path in (built / data).iterdir()) == sources, data
    assert (built / "py.typed").is_file()


def test_the_license_is_an_spdx_expression() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    requires = PYPROJECT["build-system"]["requires"]
    assert "setuptools>=77" in requires, requires  # the first setuptools that reads one


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def test_the_demo_shops_instrumentations_are_an_extra_not_a_dependency() -> None:
    # a service's test environment that installs tracebaton gets none of the shop's packages;
    # make demo and make install take the extra, and `tracebaton demo` names it when missing
    from tracebaton.demo import INSTRUMENTATIONS

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    core = {_name(r) for r in project["dependencies"]}
    demo = {_name(r) for r in project["optional-dependencies"]["demo"]}
    assert demo == set(INSTRUMENTATIONS.values())
    assert not core & demo
    assert not any(name.startswith("opentelemetry-instrumentation") for name in core)
