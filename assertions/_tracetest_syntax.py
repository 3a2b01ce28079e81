"""Tracetest's two small languages, read into plain values: span selectors and assertions.

Read from Tracetest's own grammars (server/assertions/selectors/parser.go and
server/expression/parser_rules.go in kubeshop/tracetest) and its docs (concepts/selectors,
concepts/expressions); nothing here maps to flow specs — `_tracetest` does that.

- A **selector** is `span[filter ...]`, optionally `:first`, `:last` or `:nth_child(n)`,
  optionally followed by another `span[...]` (a descendant of it: any depth below), and
  several of those separated by commas (their union). Filters are `name = value` or
  `name contains value`, separated by spaces or commas; values are double-quoted strings,
  numbers, true or false. The empty selector selects every span; `span[]` is a syntax error
  (Tracetest's docs say so).
- An **assertion** is `left comparator right`: comparators `= != < <= > >= contains
  not-contains`; terms `attr:name`, `var:name`, `env:name`, numbers, durations (`500ms`),
  quoted strings, arrays, function calls, arithmetic and `| filter` chains. Only the
  tokens are read here; which statements map is `_tracetest`'s business.

A text that is neither raises TracetestSyntaxError with the column and what was expected.
"""

from __future__ import annotations

import dataclasses
import json
import re
from decimal import Decimal

__all__ = [
    "Filter",
    "SpanSelector",
    "Statement",
    "Token",
    "TracetestSelector",
    "TracetestSyntaxError",
    "duration_ns",
    "parse_selector",
    "parse_statement",
]

SELECTOR_FORM = ('span[attribute="value" ...] — filters `name = value` or `name contains value`, '
                 'then optionally :first, :last or :nth_child(n), a descendant `span[...]` after a '
                 'space, and more selectors after commas; "" selects every span')
STATEMENT_FORM = "attr:<name> <comparator> <value>, comparators = != < <= > >= contains not-contains"


class TracetestSyntaxError(ValueError):
    """`message` says what is wrong; `column` (1-based) is where, within the text."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(message)
        self.message = message
        self.column = column


FilterValue = str | int | float | bool


@dataclasses.dataclass(frozen=True, slots=True)
class Filter:
    name: str
    op: str
    """`=` or `contains`."""
    value: FilterValue
    text: str
    """As written, for messages."""


@dataclasses.dataclass(frozen=True, slots=True)
class SpanSelector:
    filters: tuple[Filter, ...]
    pseudo: str | None
    """`first`, `last`, `nth_child(3)`, or None."""
    child: SpanSelector | None
    """The selector that follows after a space: it selects descendants of these spans."""
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class TracetestSelector:
    alternatives: tuple[SpanSelector, ...]
    """Joined by commas: the union. Empty: every span of the trace."""
    text: str


_SELECTOR_TOKENS = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:\\.|[^"\\])*")
  | (?P<unterminated>"(?:\\.|[^"\\])*$)
  | (?P<number>\d+(?:\.\d+)?(?![A-Za-z_]))
  | (?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)
  | (?P<punct>[\[\](),:=])
""", re.VERBOSE)


@dataclasses.dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    text: str
    column: int


def _selector_tokens(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    at = 0
    while at < len(text):
        match = _SELECTOR_TOKENS.match(text, at)
        if match is None:
            hint = " (write values in double quotes)" if text[at] == "'" else ""
            raise TracetestSyntaxError(f"unexpected {text[at]!r}{hint}", at + 1)
        kind = match.lastgroup or ""
        if kind == "unterminated":
            raise TracetestSyntaxError("a string has no closing double quote", at + 1)
        if kind != "space":
            tokens.append(_Tok(kind, match.group(), at + 1))
        at = match.end()
    return tokens


class _SelectorParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _selector_tokens(text)
        self.at = 0

    def peek(self) -> _Tok | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def column(self) -> int:
        token = self.peek()
        return token.column if token is not None else len(self.text) + 1

    def expect(self, text: str, what: str) -> _Tok:
        token = self.peek()
        if token is None or token.text != text:
            found = "the end" if token is None else repr(token.text)
            raise TracetestSyntaxError(f"expected {what}, found {found}", self.column())
        self.at += 1
        return token

    def selector(self) -> TracetestSelector:
        alternatives: list[SpanSelector] = []
        if self.peek() is not None:
            alternatives.append(self.span_selector())
            while self.peek() is not None:
                self.expect(",", "a comma before the next selector, or the end")
                alternatives.append(self.span_selector())
        return TracetestSelector(tuple(alternatives), self.text.strip())

    def span_selector(self) -> SpanSelector:
        start = self.column()
        token = self.peek()
        if token is None or token.text != "span":
            found = "the end" if token is None else repr(token.text)
            raise TracetestSyntaxError(f'expected "span[", found {found}', self.column())
        self.at += 1
        self.expect("[", 'a "[" after span')
        filters: list[Filter] = []
        while (token := self.peek()) is not None and token.text != "]":
            if filters and token.text == ",":
                self.at += 1
            filters.append(self.filter())
        if not filters:
            raise TracetestSyntaxError('span[] has no filter (a syntax error in Tracetest too): write '
                                       'span[name="..."], or the empty selector "" for every span',
                                       self.column())
        self.expect("]", 'a "]" to close span[')
        pseudo = self.pseudo_class()
        child = None
        if (token := self.peek()) is not None and token.text == "span":
            child = self.span_selector()
        end = self.tokens[self.at - 1]
        return SpanSelector(tuple(filters), pseudo, child,
                            self.text[start - 1:end.column - 1 + len(end.text)])

    def filter(self) -> Filter:
        token = self.peek()
        start = self.column()
        if token is None or token.kind != "name":
            found = "the end" if token is None else repr(token.text)
            raise TracetestSyntaxError(f"expected an attribute name, found {found}", start)
        name = token.text
        self.at += 1
        operator = self.peek()
        if operator is None or operator.text not in ("=", "contains"):
            found = "the end" if operator is None else repr(operator.text)
            raise TracetestSyntaxError(f'expected = or contains after {name}, found {found}', self.column())
        self.at += 1
        value = self.value(name)
        end = self.tokens[self.at - 1]
        return Filter(name, operator.text, value, self.text[start - 1:end.column - 1 + len(end.text)])

    def value(self, name: str) -> FilterValue:
        token = self.peek()
        if token is None or (token.kind not in ("string", "number") and token.text not in ("true", "false")):
            found = "the end" if token is None else repr(token.text)
            raise TracetestSyntaxError(f'expected a value for {name} — "text", a number, true or '
                                       f"false — found {found}", self.column())
        self.at += 1
        if token.kind == "string":
            try:
                decoded: str = json.loads(token.text)
            except ValueError:
                raise TracetestSyntaxError(f"the string {token.text} has an escape Tracetest does not read",
                                           token.column) from None
            return decoded
        if token.kind == "number":
            return float(token.text) if "." in token.text else int(token.text)
        return token.text == "true"

    def pseudo_class(self) -> str | None:
        token = self.peek()
        if token is None or token.text != ":":
            return None
        self.at += 1
        kind = self.peek()
        if kind is None or kind.text not in ("first", "last", "nth_child"):
            found = "the end" if kind is None else repr(kind.text)
            raise TracetestSyntaxError(f"expected first, last or nth_child(n) after ':', found {found}",
                                       self.column())
        self.at += 1
        if kind.text != "nth_child":
            return kind.text
        self.expect("(", '"(" after nth_child')
        number = self.peek()
        if number is None or number.kind != "number" or "." in number.text:
            raise TracetestSyntaxError("expected a whole number in nth_child(n)", self.column())
        self.at += 1
        self.expect(")", '")" after nth_child(n')
        if (token := self.peek()) is not None and token.text == ":":
            raise TracetestSyntaxError("a span selector takes one pseudo-class", self.column())
        return f"nth_child({number.text})"


def parse_selector(text: str) -> TracetestSelector:
    """A Tracetest selector; raises TracetestSyntaxError (column, and the form expected)."""
    return _SelectorParser(text).selector()


# The expression lexer's rules, in Tracetest's order (parser_rules.go): the first that
# matches at a position wins, so `500ms` is a duration and `200` a number. One addition: a
# bare dotted name (`http.status_code`) is the attribute of Tracetest's earliest assertion
# form, written without `attr:`.
_STATEMENT_TOKENS = re.compile(r"""
    (?P<space>\s+)
  | (?P<punct>[(),|\[\]])
  | (?P<comparator>!=|<=|>=|=|<|>|not-contains\b|contains\b)
  | (?P<operator>[-+*/])
  | (?P<duration>[0-9]+(?:\.[0-9]+)?\ ?(?:ns|us|ms|s|m|h)(?![A-Za-z0-9_]))
  | (?P<number>[0-9]+(?:\.[0-9]+)?)
  | (?P<attribute>attr:[a-zA-Z_0-9][a-zA-Z_0-9.-]*)
  | (?P<environment>env:[a-zA-Z_0-9][a-zA-Z_0-9.]*)
  | (?P<variable>var:[a-zA-Z_0-9][a-zA-Z_0-9.]*)
  | (?P<string>"(?:\\"|[^"])*"|'(?:\\'|[^'])*')
  | (?P<barename>[a-zA-Z_][a-zA-Z0-9_]*(?:\.[a-zA-Z0-9_-]+)+)
  | (?P<ident>[a-zA-Z][a-zA-Z0-9_]*)
""", re.VERBOSE)


@dataclasses.dataclass(frozen=True, slots=True)
class Token:
    kind: str
    """punct comparator operator duration number attribute environment variable string barename ident"""
    text: str


@dataclasses.dataclass(frozen=True, slots=True)
class Statement:
    left: tuple[Token, ...]
    comparator: str
    right: tuple[Token, ...]
    text: str


def parse_statement(text: str) -> Statement:
    """An assertion's tokens, split at its one comparator; raises TracetestSyntaxError."""
    tokens: list[tuple[Token, int]] = []
    at = 0
    while at < len(text):
        match = _STATEMENT_TOKENS.match(text, at)
        if match is None:
            what = "a string has no closing quote" if text[at] in "\"'" else f"unexpected {text[at]!r}"
            raise TracetestSyntaxError(what, at + 1)
        if match.lastgroup != "space":
            tokens.append((Token(match.lastgroup or "", match.group()), at + 1))
        at = match.end()
    comparators = [index for index, (token, _) in enumerate(tokens) if token.kind == "comparator"]
    if not comparators:
        raise TracetestSyntaxError("has no comparator", 1)
    if len(comparators) > 1:
        raise TracetestSyntaxError(f"has more than one comparator ({tokens[comparators[1]][0].text!r})",
                                   tokens[comparators[1]][1])
    split = comparators[0]
    left = tuple(token for token, _ in tokens[:split])
    right = tuple(token for token, _ in tokens[split + 1:])
    if not left or not right:
        side = "left" if not left else "right"
        raise TracetestSyntaxError(f"has nothing on the {side} of {tokens[split][0].text!r}",
                                   tokens[split][1])
    return Statement(left, tokens[split][0].text, right, text.strip())


_UNIT_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
            "h": 3_600_000_000_000}


def duration_ns(token: Token) -> int | None:
    """A duration or a bare number (Tracetest's span durations are in ns) as whole ns; None
    when it is not a whole number of ns (`0.5ns`)."""
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?) ?([a-z]*)", token.text)
    if match is None:
        return None
    ns = Decimal(match.group(1)) * _UNIT_NS.get(match.group(2) or "ns", 1)
    return int(ns) if ns == ns.to_integral_value() else None
