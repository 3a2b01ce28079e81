"""`tracebaton import-tracetest` as a user runs it: a subprocess on Tracetest's documented
examples (tests/data/tracetest/), its exit codes (0 all converted, 1 some not, 2 bad input),
what it prints, and the spec files it writes (which tracebaton's own parser reads back)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tracebaton.assertions import parse_flow_spec

DATA = Path(__file__).parent / "data" / "tracetest"


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracebaton", "import-tracetest", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
    )


def files(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def test_a_test_that_converts_whole_exits_0_and_writes_its_spec(tmp_path: Path) -> None:
    done = run(DATA / "books" / "test-api.yaml", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    target = tmp_path / "test-api.flow.yaml"
    assert done.stdout == f"wrote {target} from {DATA / 'books' / 'test-api.yaml'}: 2 span checks\n"
    spec = parse_flow_spec(target)
    assert spec.name == "Books list"
    assert [entry.select.name for entry in spec.expect.spans] == ["GET /books", "Books List"]
    text = target.read_text()
    assert f"#   tracebaton run {target} -- sh -s <<'REQUEST'\n" in text
    assert "#   curl -X GET http://app:8080/books \\\n" in text


def test_what_does_not_convert_is_listed_on_stderr_with_its_line_and_exits_1(tmp_path: Path) -> None:
    source = DATA / "import-pokemon.yaml"
    done = run(source, "--out", tmp_path)
    assert done.returncode == 1
    assert done.stdout == f"wrote {tmp_path / 'import-pokemon.flow.yaml'} from {source}: 2 span checks\n"
    lines = done.stderr.splitlines()
    assert [line.split(": not converted: ")[0] for line in lines[:-1]] == [
        f"{source}:{line}" for line in (24, 25, 27, 28, 31, 32, 35, 36, 38)
    ]
    assert lines[1] == (
        f'{source}:25: not converted: selector `span[name = "consume message from queue"]:last`: '
        ":last picks a span by its position among those selected; a flow spec selector has no "
        "position — select that span by its name, attributes or status"
    )
    assert lines[-1] == (
        "tracebaton import-tracetest: 9 constructs not converted (listed above, and in the "
        "header of each spec written)"
    )
    assert "Traceback" not in done.stderr
    written = (tmp_path / "import-pokemon.flow.yaml").read_text()
    assert "# Not converted (import-tracetest listed these too):\n#   line 24: assertion" in written
    parse_flow_spec(tmp_path / "import-pokemon.flow.yaml")


def test_specs_are_written_beside_their_tests_by_default(tmp_path: Path) -> None:
    shutil.copy(DATA / "specs-section.yaml", tmp_path / "specs.yml")
    shutil.copy(DATA / "legacy-import-pokemon.yaml", tmp_path / "legacy.yaml")
    done = run("specs.yml", "legacy.yaml", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "wrote specs.flow.yaml from specs.yml: 2 span checks",
        "wrote legacy.flow.yaml from legacy.yaml: 1 span check",
    ]
    assert files(tmp_path) == ["legacy.flow.yaml", "legacy.yaml", "specs.flow.yaml", "specs.yml"]


def test_a_suite_of_test_files_becomes_a_folder_of_specs_in_step_order(tmp_path: Path) -> None:
    done = run(DATA / "pokeshop" / "suites" / "pokeshop.yaml", "--out", tmp_path)
    assert done.returncode == 1  # its steps assert on json_path filters
    assert files(tmp_path) == [
        "pokeshop/01-add-pokemon.flow.yaml",
        "pokeshop/02-import-pokemon.flow.yaml",
        "pokeshop/03-list-pokemons.flow.yaml",
    ]
    first = (tmp_path / "pokeshop" / "01-add-pokemon.flow.yaml").read_text()
    assert "# Step 1 of Tracetest test suite 'Pokeshop Demo Test Suite'" in first
    assert f"{DATA / 'pokeshop' / 'tests' / 'add-pokemon.yaml'}:35: not converted: assertion" in done.stderr
    assert "suites/../" not in done.stderr + done.stdout
    for path in (tmp_path / "pokeshop").iterdir():
        parse_flow_spec(path)


def test_a_suite_of_test_ids_finds_the_tests_beside_it(tmp_path: Path) -> None:
    done = run(DATA / "books" / "transaction-api.yaml", "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    assert files(tmp_path) == [
        "transaction-api/01-test-api.flow.yaml",
        "transaction-api/02-test-api-and-av.flow.yaml",
    ]


def test_a_suite_step_whose_id_no_file_has_is_listed(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text("type: TestSuite\nspec:\n  name: s\n  steps:\n  - nowhere1\n")
    done = run(suite)
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        f"{suite}:5: not converted: step 1, test id nowhere1: no Tracetest test with this id (spec.id) is "
        "among the files given or beside the suite; pass its file too"
    )


def test_existing_specs_are_not_overwritten_without_force(tmp_path: Path) -> None:
    source = DATA / "books" / "test-api.yaml"
    assert run(source, "--out", tmp_path).returncode == 0
    target = tmp_path / "test-api.flow.yaml"
    target.write_text("name: edited by hand\n")
    refused = run(source, DATA / "specs-section.yaml", "--out", tmp_path)
    assert refused.returncode == 2
    assert refused.stderr == (
        f"tracebaton import-tracetest: error: {target}: already exists; nothing was "
        "written — pass --force to overwrite, or --out DIR to write elsewhere\n"
    )
    assert target.read_text() == "name: edited by hand\n"
    assert not (tmp_path / "specs-section.flow.yaml").exists()  # all or nothing
    forced = run(source, "--out", tmp_path, "--force")
    assert forced.returncode == 0
    assert parse_flow_spec(target).name == "Books list"


def test_two_tests_that_would_write_one_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    shutil.copy(DATA / "books" / "test-api.yaml", tmp_path / "a" / "test-api.yaml")
    done = run(DATA / "books" / "test-api.yaml", tmp_path / "a" / "test-api.yaml", "--out", tmp_path / "out")
    assert done.returncode == 2
    assert "would be written there; rename one" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "malformed-selector.yaml",
            "malformed-selector.yaml:10: selector "
            '\'span[tracetest.span.type="general" name="Books List"\' is malformed: '
            'expected a "]" to close span[, found the end (column 53); a selector is span[',
        ),
        (
            "datastore.yaml",
            "datastore.yaml:3: type: DataStore is a Tracetest resource but not a test: only a Test "
            "or a TestSuite converts to flow specs; give the files with `type: Test` or `type: TestSuite`",
        ),
        (
            "not-yaml.yaml",
            "not-yaml.yaml:4: not YAML (while scanning a quoted scalar found unexpected end of "
            "stream at line 6); a Tracetest test definition is a YAML file",
        ),
    ],
)
def test_bad_input_exits_2_with_the_line_and_writes_nothing(tmp_path: Path, name: str, message: str) -> None:
    done = run(DATA / "books" / "test-api.yaml", DATA / "bad" / name, "--out", tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"tracebaton import-tracetest: error: {DATA / 'bad'}/{message}")
    assert done.stderr.count("\n") == 1  # one message, no traceback
    assert files(tmp_path) == []  # the good file before it is not written either


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_a_file_that_cannot_be_read_exits_2(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "tests"
    if kind == "folder":
        path.mkdir()
    done = run(path)
    assert done.returncode == 2
    expected = (
        "is a folder; give the Tracetest YAML files in it"
        if kind == "folder"
        else "cannot read it (No such file or directory); give a readable Tracetest test definition"
    )
    assert done.stderr == f"tracebaton import-tracetest: error: {path}: {expected}" + (
        "\n" if kind == "folder" else " (YAML)\n"
    )


def test_a_step_file_that_does_not_exist_exits_2(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text("type: TestSuite\nspec:\n  name: s\n  steps:\n  - ./gone.yaml\n")
    done = run(suite, "--out", tmp_path / "out")
    assert done.returncode == 2
    assert done.stderr == (
        f"tracebaton import-tracetest: error: {suite}:5: step 1, ./gone.yaml: no such file "
        f"({tmp_path / 'gone.yaml'}); steps name test files relative to the suite's file, "
        "or test ids\n"
    )


def test_out_must_be_a_folder(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    done = run(DATA / "books" / "test-api.yaml", "--out", tmp_path / "file")
    assert done.returncode == 2
    assert "is a file, not a folder" in done.stderr
