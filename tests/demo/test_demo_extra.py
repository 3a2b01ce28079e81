"""Without the demo extra (`pip install 'tracebaton[demo]'`: the FastAPI and httpx
instrumentations), the demo says what to install in one line and exits 2, never a traceback;
what does not start the shop still works.

Each case runs in a subprocess whose import system refuses an instrumentation, as an
environment without the extra would."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tracebaton.demo import INSTRUMENTATIONS, require_demo_extra

INSTALL = "pip install 'tracebaton[demo]'"

REFUSE = """
import importlib.abc, runpy, sys

class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == {module!r} or name.startswith({module!r} + "."):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Refuse())
"""
ABSENT = """
import runpy, sys

sys.modules[{module!r}] = None  # what the import system answers for a module not installed
"""
RUN = """
sys.argv = {argv!r}
runpy.run_module({main!r}, run_name="__main__", alter_sys=True)
"""


def _without(module: str, code: str, *, absent: bool = False) -> subprocess.CompletedProcess[str]:
    prelude = (ABSENT if absent else REFUSE).format(module=module)
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True,
                          timeout=60, check=False)


def _run(module: str, main: str, *argv: str, absent: bool = False) -> subprocess.CompletedProcess[str]:
    return _without(module, RUN.format(argv=[main, *argv], main=main), absent=absent)


def _assert_one_line_exit_2(done: subprocess.CompletedProcess[str], prefix: str, distribution: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(prefix), line
    assert distribution in line, line
    assert line.endswith(INSTALL), line


@pytest.mark.parametrize("module", sorted(INSTRUMENTATIONS))
def test_tracebaton_demo_says_what_to_install(module: str) -> None:
    done = _run(module, "tracebaton", "demo", "--check-only")
    _assert_one_line_exit_2(done, "tracebaton demo: error: the demo shop needs ", INSTRUMENTATIONS[module])
    assert done.stdout == ""


def test_a_module_that_is_not_installed_at_all_is_found_missing_too() -> None:
    module = "opentelemetry.instrumentation.fastapi"
    done = _run(module, "tracebaton", "demo", "--check-only", absent=True)
    _assert_one_line_exit_2(done, "tracebaton demo: error: ", INSTRUMENTATIONS[module])


@pytest.mark.parametrize("argv", [["shop"], ["auth", "--port", "0"]])
def test_python_m_tracebaton_demo_says_what_to_install(argv: list[str]) -> None:
    module = "opentelemetry.instrumentation.httpx"
    done = _run(module, "tracebaton.demo", *argv)
    _assert_one_line_exit_2(done, "python -m tracebaton.demo: error: ", INSTRUMENTATIONS[module])


def test_importing_start_shop_raises_an_import_error_that_says_what_to_install() -> None:
    done = _without("opentelemetry.instrumentation.fastapi", """
from tracebaton import TracebatonError
try:
    from tracebaton.demo import start_shop
except ImportError as error:
    assert isinstance(error, TracebatonError)
    print(error)
else:
    raise SystemExit("imported start_shop without its instrumentations")
""")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith(INSTALL), done.stdout


def test_what_does_not_start_the_shop_needs_no_extra() -> None:
    done = _without("opentelemetry.instrumentation.fastapi", """
from tracebaton.demo import FAULTS, SERVICES, find_oversold, load_flow_spec, render_table
print(load_flow_spec("checkout").name, len(SERVICES))
""")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["checkout", "9"]


def test_the_extra_is_installed_here() -> None:
    require_demo_extra()  # the test environment has it (the dev extra includes tracebaton[demo])
