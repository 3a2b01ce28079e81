"""The suite's own configuration under pytest-xdist: `pytest -n 2` keeps the tests marked
`xdist_group("heavy")` (demo shops, crash and overload runs, browsers) on one worker, so that
two of them never compete for a 2-core machine. pytest-xdist groups by rewriting node ids,
which some pytest versions ignore without a word (pytest-xdist#1386): this notices."""

from __future__ import annotations

import re

import pytest
from conftest import REPO

pytest_plugins = ["pytester"]

HEAVY = """
import pytest

pytestmark = pytest.mark.xdist_group("heavy")


@pytest.mark.parametrize("i", range(4))
def test_heavy(i):
    pass
"""


def test_heavy_tests_of_several_files_share_one_worker(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_one=HEAVY, test_two=HEAVY, test_light="def test_light():\n    pass\n")
    # the project's own pytest configuration (its addopts choose the scheduling)
    outcome = pytester.runpytest_subprocess("-c", str(REPO / "pyproject.toml"), "--rootdir",
                                            str(pytester.path), "-p", "no:cacheprovider", "-n", "2", "-v",
                                            "test_one.py", "test_two.py", "test_light.py",
                                            timeout=120)
    outcome.assert_outcomes(passed=9)
    workers = {m.group(2): m.group(1)
               for m in re.finditer(r"\[(gw\d)\] \[\s*\d+%\] PASSED (\S+)", outcome.stdout.str())}
    heavy = {test: worker for test, worker in workers.items() if "test_heavy" in test}
    assert len(heavy) == 8, outcome.stdout.str()
    assert len(set(heavy.values())) == 1, f"the heavy tests ran on several workers: {heavy}"
