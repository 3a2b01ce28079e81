"""Reading a Tracetest definition as YAML nodes, so that every construct keeps its line.

`tracebaton import-tracetest` names the line of each construct it could not convert, and of
each input error; PyYAML's composed nodes carry their start marks, constructed Python
values do not. Bad input raises ConfigurationError "<file>:<line>: <what>; <fix>".
"""

from __future__ import annotations

import dataclasses
from typing import NoReturn

import yaml

from tracebaton import ConfigurationError

__all__ = ["Document", "NotConverted", "compose", "line_of"]


@dataclasses.dataclass(frozen=True, slots=True)
class NotConverted:
    """A construct of a Tracetest definition that no flow spec holds: where, what, and why
    (the reason ends with what to do instead)."""

    line: int
    construct: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.construct}: {self.reason}"


def line_of(node: yaml.Node) -> int:
    return node.start_mark.line + 1


_NULL = "tag:yaml.org,2002:null"


@dataclasses.dataclass(frozen=True, slots=True)
class Document:
    """One file's nodes and its name, for messages."""

    origin: str
    root: yaml.Node

    def fail(self, node: yaml.Node | None, message: str) -> NoReturn:
        where = f"{self.origin}:{line_of(node)}" if node is not None else self.origin
        raise ConfigurationError(f"{where}: {message}")

    def mapping(self, node: yaml.Node, what: str, fix: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        """key → (key node, value node), in the file's order; a repeated key is an error
        (PyYAML would keep the last one silently)."""
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{what} is {_kind(node)}, not a mapping; {fix}")
        result: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode):
                self.fail(key, f"{what} has a key that is {_kind(key)}; keys are names")
            if key.value in result:
                self.fail(key, f"{what} has the key {key.value!r} twice; keep one")
            result[key.value] = (key, value)
        return result

    def sequence(self, node: yaml.Node, what: str, fix: str) -> list[yaml.Node]:
        """A list; an empty value (`specs:`) is an empty list."""
        if is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, f"{what} is {_kind(node)}, not a list; {fix}")
        return list(node.value)

    def text(self, node: yaml.Node, what: str, fix: str) -> str:
        """A scalar's text as written (`200` is "200"); null is an error."""
        if not isinstance(node, yaml.ScalarNode) or is_null(node):
            self.fail(node, f"{what} is {_kind(node)}, not text; {fix}")
        return str(node.value)

    def optional_text(self, node: yaml.Node | None, what: str, fix: str) -> str | None:
        if node is None or is_null(node):
            return None
        return self.text(node, what, fix)


def is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL


def _kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if is_null(node):
        return "empty"
    return f"{node.value!r}"


def compose(text: str | bytes, origin: str, expected: str) -> Document:
    """The file's one YAML document as nodes. `expected` says what the file should be, for
    the messages of a file that is not YAML, is empty, or holds several documents."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise ConfigurationError(f"{origin}: byte {error.start} is not UTF-8; {expected} is "
                                     "UTF-8 YAML") from None
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.MarkedYAMLError as error:
        # Where the construct began (an unclosed quote) says more than where the parser gave up.
        mark = error.context_mark or error.problem_mark
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = " ".join(part for part in (error.context, error.problem) if part) or "not YAML"
        if error.context_mark and error.problem_mark and error.problem_mark.line != error.context_mark.line:
            problem += f" at line {error.problem_mark.line + 1}"
        raise ConfigurationError(f"{origin}{where}: not YAML ({problem}); {expected} is a YAML "
                                 "file") from None
    except yaml.YAMLError as error:
        raise ConfigurationError(f"{origin}: not YAML ({error}); {expected} is a YAML file") from None
    except RecursionError:
        raise ConfigurationError(f"{origin}: nested too deeply to be {expected}") from None
    documents = [document for document in documents if document is not None]
    if not documents:
        raise ConfigurationError(f"{origin}: is empty; {expected} starts with `type: Test` "
                                 "and a `spec:` mapping")
    if len(documents) > 1:
        raise ConfigurationError(f"{origin}:{line_of(documents[1])}: holds {len(documents)} YAML "
                                 "documents; give one Tracetest definition per file (split it at `---`)")
    return Document(origin, documents[0])
