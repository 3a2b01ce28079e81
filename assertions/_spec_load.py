"""Where a flow spec comes from: YAML text, a .yaml/.yml/.json file, or a Python mapping.

Turns the source into the raw structure (dicts, lists, scalars) and its origin (a file name,
for messages). Syntax errors become FlowSpecErrors with a line and column.
"""

from __future__ import annotations

import json
import os
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import yaml

from tracebaton import FlowSpecError

from ._spec_values import show

__all__ = ["load_spec_source"]

_SPEC_FILE_SUFFIXES = (".yaml", ".yml", ".json")
_YAML_FIX = ("fix the YAML there; quote values that start with * & ! | > % @ or contain ': ' or ' #', "
             "e.g. \"* -> payment\"")


class _Loader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys silently; a spec with `hops:` twice is a mistake."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {show(key)} appears twice in one mapping", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_spec_source(source: str | bytes | os.PathLike[str] | Mapping[str, Any]) -> tuple[object, str]:
    """(the raw structure, its origin): the file it came from, or "" for text and mappings."""
    if isinstance(source, os.PathLike):
        origin = os.fspath(source)
        return _read_file(Path(origin)), origin
    if isinstance(source, str) and _names_spec_file(source):
        return _read_file(Path(source)), source
    if isinstance(source, str | bytes):
        return _load_yaml(source, "flow spec"), ""
    return source, ""


def _names_spec_file(text: str) -> bool:
    if "\n" in text or not text.strip().lower().endswith(_SPEC_FILE_SUFFIXES):
        return False
    try:
        if Path(text).is_file():
            return True
    except (OSError, ValueError):
        return False
    if ": " in text or text.lstrip().startswith(("{", "[")):
        return False  # one line of YAML, such as `name: orders.yaml`
    raise FlowSpecError(f"{text}: no such flow spec file; give an existing path (relative to "
                        f"{os.getcwd()}), or YAML text")


def _read_file(path: Path) -> object:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise FlowSpecError(f"{path}: cannot read the flow spec file ({error.strerror or error}); "
                            "give a readable .yaml or .json file") from None
    if path.suffix.lower() != ".json":
        return _load_yaml(data, str(path))
    try:
        return json.loads(data, object_pairs_hook=_json_object)
    except json.JSONDecodeError as error:
        raise FlowSpecError(f"{path}: line {error.lineno}, column {error.colno}: {error.msg}; "
                            "fix the JSON there") from None
    except (UnicodeDecodeError, RecursionError, ValueError) as error:
        raise FlowSpecError(f"{path}: not a JSON flow spec ({error}); save it as UTF-8 JSON") from None


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key!r} appears twice in one object")
        result[key] = value
    return result


def _load_yaml(text: str | bytes, origin: str) -> object:
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise FlowSpecError(f"{origin}: byte {error.start} is not UTF-8; "
                                "save the spec as UTF-8") from None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = " ".join(part for part in (error.context, error.problem) if part) or "not YAML"
        raise FlowSpecError(f"{origin}:{where}: {problem}; {_YAML_FIX}") from None
    except yaml.YAMLError as error:
        raise FlowSpecError(f"{origin}: not YAML ({error}); {_YAML_FIX}") from None
    except RecursionError:
        raise FlowSpecError(f"{origin}: nested too deeply to be a flow spec; check the indentation") from None
