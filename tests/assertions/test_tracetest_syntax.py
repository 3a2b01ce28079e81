"""Tracetest's selector and assertion languages, read as Tracetest's grammars read them
(kubeshop/tracetest server/assertions/selectors/parser.go, server/expression/parser_rules.go);
the selectors are the ones of its docs (docs/concepts/selectors.mdx) and parser tests."""

from __future__ import annotations

import pytest

from tracebaton.assertions._tracetest_syntax import (
    Filter,
    Token,
    TracetestSyntaxError,
    duration_ns,
    parse_selector,
    parse_statement,
)


def test_filters_are_separated_by_spaces_or_commas() -> None:
    spaced = parse_selector('span[tracetest.span.type="http" service.name="cart-api"]')
    commas = parse_selector('span[service.name="cart-api", name="purchase products"]')
    assert [(f.name, f.op, f.value) for f in spaced.alternatives[0].filters] == [
        ("tracetest.span.type", "=", "http"),
        ("service.name", "=", "cart-api"),
    ]
    assert [(f.name, f.value) for f in commas.alternatives[0].filters] == [
        ("service.name", "cart-api"),
        ("name", "purchase products"),
    ]


def test_values_are_strings_numbers_and_booleans() -> None:
    selector = parse_selector('span[http.status_code=200 ratio=0.5 cached=true label="a \\"b\\""]')
    assert [f.value for f in selector.alternatives[0].filters] == [200, 0.5, True, 'a "b"']
    assert selector.alternatives[0].filters[0] == Filter("http.status_code", "=", 200, "http.status_code=200")


def test_commas_between_selectors_make_a_union_and_a_space_a_descendant() -> None:
    selector = parse_selector(
        'span[tracetest.span.type="http"], span[service.name="Pokeshop"] span[tracetest.span.type="grpc"]'
    )
    first, second = selector.alternatives
    assert first.child is None
    assert second.child is not None
    assert second.child.filters[0].value == "grpc"
    assert second.text == 'span[service.name="Pokeshop"] span[tracetest.span.type="grpc"]'


@pytest.mark.parametrize(
    ("text", "pseudo"),
    [
        ('span[tracetest.span.type="http"]:first', "first"),
        ('span[tracetest.span.type="http"]:last', "last"),
        ('span[tracetest.span.type="http"]:nth_child(3)', "nth_child(3)"),
    ],
)
def test_pseudo_classes(text: str, pseudo: str) -> None:
    assert parse_selector(text).alternatives[0].pseudo == pseudo


def test_the_empty_selector_selects_every_span() -> None:
    assert parse_selector("").alternatives == ()
    assert parse_selector("   ").alternatives == ()


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("span[]", 6, "span[] has no filter"),
        ("span", 5, 'expected a "[" after span'),
        ('span[name="a"', 14, 'expected a "]" to close span['),
        ('span[name="a]', 11, "a string has no closing double quote"),
        ("span[name=]", 11, "expected a value for name"),
        ("span[name='a']", 11, "write values in double quotes"),
        ('span[name ~ "a"]', 11, "unexpected '~'"),
        ('span[name startsWith "a"]', 11, "expected = or contains after name, found 'startsWith'"),
        ('span[name="a"]:second', 16, "expected first, last or nth_child(n)"),
        ('span[name="a"]:nth_child(x)', 26, "expected a whole number in nth_child(n)"),
        ('span[name="a"],', 16, 'expected "span[", found the end'),
        ('span[name="a"] name="b"', 16, "expected a comma before the next selector"),
    ],
)
def test_malformed_selectors_say_where_and_what_was_expected(text: str, column: int, message: str) -> None:
    with pytest.raises(TracetestSyntaxError) as caught:
        parse_selector(text)
    assert message in caught.value.message
    assert caught.value.column == column


def test_an_assertion_is_split_at_its_comparator() -> None:
    statement = parse_statement("attr:http.status_code   =   200")
    assert statement.left == (Token("attribute", "attr:http.status_code"),)
    assert statement.comparator == "="
    assert statement.right == (Token("number", "200"),)


@pytest.mark.parametrize("comparator", ["=", "!=", "<", "<=", ">", ">=", "contains", "not-contains"])
def test_every_comparator(comparator: str) -> None:
    assert parse_statement(f'attr:x {comparator} "y"').comparator == comparator


def test_durations_numbers_strings_and_computed_terms_are_told_apart() -> None:
    assert [t.kind for t in parse_statement("attr:tracetest.span.duration <= 500ms").right] == ["duration"]
    assert [t.kind for t in parse_statement("attr:d < 1 s").right] == ["duration"]
    assert [t.kind for t in parse_statement("attr:myapp.output > attr:myapp.input").right] == ["attribute"]
    assert [t.kind for t in parse_statement("attr:b | json_path '.id' = \"1\"").left] == [
        "attribute",
        "punct",
        "ident",
        "string",
    ]
    assert [t.kind for t in parse_statement('attr:a = "${var:ID}"').right] == ["string"]
    # the earliest assertion form names the attribute without attr:
    assert parse_statement("tracetest.response.status = 200").left == (
        Token("barename", "tracetest.response.status"),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("attr:http.status_code", "has no comparator"),
        ("attr:x = = 1", "has more than one comparator"),
        ('attr:x = "a', "a string has no closing quote"),
        ("= 200", "has nothing on the left of '='"),
        ("attr:x @ 1", "unexpected '@'"),
    ],
)
def test_malformed_assertions(text: str, message: str) -> None:
    with pytest.raises(TracetestSyntaxError, match=message):
        parse_statement(text)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("500ms", 500_000_000),
        ("1.5s", 1_500_000_000),
        ("2m", 120_000_000_000),
        ("1h", 3_600_000_000_000),
        ("250us", 250_000),
        ("100", 100),
        ("3 ms", 3_000_000),
        ("0.5ns", None),
    ],
)
def test_durations_in_whole_nanoseconds(text: str, ns: int | None) -> None:
    token = parse_statement(f"attr:tracetest.span.duration < {text}").right[0]
    assert duration_ns(token) == ns
