"""Tracetest test definitions to flow specs (`read_tracetest`), on Tracetest's own documented
examples (re-typed in tests/data/tracetest/, each naming its source) and on small cases of
each rule; the CLI around it is tested in tests/test_cli_tracetest.py."""

from __future__ import annotations

import json
import textwrap
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
import yaml
from spans import FlowBuilder, check, judge

from tracebaton import ConfigurationError
from tracebaton.assertions import (
    CheckState,
    NotConverted,
    TracetestSuite,
    TracetestTest,
    parse_flow_spec,
    read_tracetest,
)
from tracebaton.assertions._selectors import selector_matches
from tracebaton.assertions._tracetest import _glob
from tracebaton.collector import StatusCode, StoredSpan

DATA = Path(__file__).parent.parent / "data" / "tracetest"
ALL_DATA = sorted(path for path in DATA.rglob("*.yaml") if path.parent.name != "bad")
KEEPS_MEANING = {"errors": "any", "propagation": {"connected": False}}


def convert(path: Path) -> TracetestTest:
    result = read_tracetest(path.read_bytes(), str(path))
    assert isinstance(result, TracetestTest)
    return result


def test_text(yaml_text: str) -> TracetestTest:
    result = read_tracetest(textwrap.dedent(yaml_text), "test.yaml")
    assert isinstance(result, TracetestTest)
    return result


test_text.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def one_spec(selector: str, *assertions: str) -> TracetestTest:
    """A test of one spec: its selector on line 5, its assertions from line 7."""
    lines = [
        "type: Test",
        "spec:",
        "  name: t",
        "  specs:",
        f"  - selector: {json.dumps(selector)}",
        "    assertions:",
        *(f"    - {json.dumps(assertion)}" for assertion in assertions),
    ]
    result = read_tracetest("\n".join(lines) + "\n", "test.yaml")
    assert isinstance(result, TracetestTest)
    return result


def spans_of(test: TracetestTest) -> list[dict[str, Any]]:
    return list(test.spec["expect"].get("spans", []))


def skipped(test: TracetestTest) -> list[tuple[int, str]]:
    return [(item.line, item.construct) for item in test.not_converted]


# --- Tracetest's documented examples -----------------------------------------------------------


def test_the_books_list_example_converts_whole() -> None:
    test = convert(DATA / "books" / "test-api.yaml")
    assert test.spec == {
        "name": "Books list",
        "expect": {
            **KEEPS_MEANING,
            "spans": [
                {
                    "select": {
                        "name": "GET /books",
                        "attributes": {"http.target": "/books", "http.method": "GET"},
                    },
                    "max_duration": "500ms",
                },
                {"select": {"name": "Books List"}, "attributes": {"books.list.count": 3}},
            ],
        },
    }
    assert test.not_converted == ()
    assert (test.test_id, test.description) == ("phAZcrT4W", "Testing the books list")
    assert [(s.check, s.line) for s in test.sources] == [("spans[0]", 17), ("spans[1]", 21)]


def test_the_specs_section_example_maps_span_types_to_semantic_conventions() -> None:
    test = convert(DATA / "specs-section.yaml")
    assert spans_of(test) == [
        {"select": {"attributes": {"http.request.method": "*"}}, "attributes": {"http.status_code": 200}},
        {"select": {"attributes": {"db.system": "*"}}, "max_duration": "2s"},
    ]
    assert test.not_converted == ()
    assert [s.label for s in test.sources] == [
        "All HTTP Spans: Status  code is 200",
        "All Database Spans: Processing time is less than 100ms",
    ]


def test_the_list_pokemons_example_escapes_the_glob_characters_of_a_span_name() -> None:
    test = convert(DATA / "pokeshop" / "tests" / "list-pokemons.yaml")
    first = spans_of(test)[0]
    assert first == {
        "select": {"name": "GET /pokemon[?]take=100&skip=0", "attributes": {"http.method": "GET"}},
        "attributes": {"http.status_code": 200},
    }
    assert fnmatchcase("GET /pokemon?take=100&skip=0", first["select"]["name"])
    assert not fnmatchcase("GET /pokemonXtake=100&skip=0", first["select"]["name"])
    # db.system="postgres" already says it is a database span: no second db.system: "*"
    assert spans_of(test)[1]["select"]["attributes"]["db.system"] == "postgres"
    assert test.not_converted == ()


def test_the_pokemon_import_example_lists_what_does_not_convert_by_line() -> None:
    test = convert(DATA / "import-pokemon.yaml")
    assert spans_of(test) == [
        {
            "select": {"name": "POST /pokemon/import"},
            "attributes": {"http.status_code": 200},
            "max_duration": "500ms",
        },
        {"select": {"name": "send message to queue"}},
    ]
    assert skipped(test) == [
        (24, "assertion `attr:messaging.message.payload contains 52`"),
        (25, 'selector `span[name = "consume message from queue"]:last`'),
        (27, "assertion `attr:messaging.message.payload contains 52`"),
        (
            28,
            'selector `span[name = "consume message from queue"]:last span[name = "import pokemon from '
            'pokeapi"]`',
        ),
        (31, "assertion `attr:http.status_code = 200`"),
        (
            32,
            'selector `span[name = "consume message from queue"]:last span[name = "save pokemon on '
            'database"]`',
        ),
        (35, 'assertion `attr:db.repository.operation = "create"`'),
        (36, "assertion `attr:tracetest.span.duration <= 500ms`"),
        (38, "output POKEMON_ID"),
    ]
    reasons = {item.construct: item.reason for item in test.not_converted}
    assert "equality only" in reasons["assertion `attr:messaging.message.payload contains 52`"]
    assert (
        ":last picks a span by its position"
        in reasons['selector `span[name = "consume message from queue"]:last`']
    )
    assert (
        "cannot say 'below'"
        in reasons[
            'selector `span[name = "consume message from queue"]:last '
            'span[name = "import pokemon from pokeapi"]`'
        ]
    )
    assert "its selector (line 28) was not converted" in reasons["assertion `attr:http.status_code = 200`"]
    assert "export no values" in reasons["output POKEMON_ID"]
    # the `contains` assertion did not convert, but Tracetest also failed it on no span: that part stays
    assert test.sources[1].label.endswith("(that it selects a span; its assertions did not convert)")


def test_the_http_trigger_becomes_a_curl_command_with_a_traceparent() -> None:
    test = convert(DATA / "import-pokemon.yaml")
    assert test.trigger == (
        "curl -X POST http://demo-pokemon-api.demo/pokemon/import \\",
        "  -H 'Content-Type: application/json' \\",
        '  -H "traceparent: $TRACEPARENT" \\',
        "  --data-binary '{ \"id\": 52 }'",
    )


def test_a_body_of_several_lines_is_sent_from_a_here_document_and_variables_are_named() -> None:
    test = convert(DATA / "pokeshop" / "tests" / "add-pokemon.yaml")
    assert test.trigger[0] == (
        "# Replace ${var:POKESHOP_API_URL} with its value from your Tracetest variable set first."
    )
    assert test.trigger[1] == "curl -X POST '${var:POKESHOP_API_URL}/pokemon' \\"
    assert test.trigger[4:] == (
        "  --data-binary @- <<'EOF'",
        "{",
        '  "name": "meowth",',
        '  "type":"normal",',
        '  "imageUrl":"https://assets.pokemon.com/assets/cms2/img/pokedex/full/052.png",',
        '  "isFeatured": true',
        "}",
        "EOF",
    )


def test_the_grpc_trigger_becomes_a_grpcurl_command() -> None:
    test = convert(DATA / "grpc-stream-propagation.yaml")
    assert test.trigger == (
        "grpcurl -plaintext \\",
        "  -proto ./proto/paymentreceiver.proto \\",
        '  -H "traceparent: $TRACEPARENT" \\',
        "  -d @ \\",
        "  producer-api:8080 proto.PaymentReceiver.ReceivePayment <<'EOF'",
        "{",
        '  "customerId": "1234",',
        '  "amount": 50000',
        "}",
        "EOF",
    )
    assert [entry["count"] for entry in spans_of(test)] == [1, 1, 1, 1]
    assert skipped(test)[0][0] == 35  # the four-level descendant selector


def test_a_string_true_becomes_a_boolean_as_tracetest_compares_strings() -> None:
    test = convert(DATA / "pokeshop" / "tests" / "add-pokemon.yaml")
    assert spans_of(test)[1] == {
        "select": {"name": "validate request"},
        "attributes": {"validation.is_valid": True},
    }
    assert skipped(test) == [
        (
            35,
            "assertion `attr:db.result | json_path '$.imageUrl'  =  "
            '"https://assets.pokemon.com/assets/cms2/img/pokedex/full/052.png"`',
        )
    ]
    assert spans_of(test)[2] == {
        "select": {
            "name": "create pokeshop.pokemon",
            "attributes": {"db.operation": "create", "db.sql.table": "pokemon", "db.system": "*"},
        }
    }


def test_the_selector_docs_examples() -> None:
    test = convert(DATA / "selectors.yaml")
    assert test.spec["expect"]["hops"] == ["cart-api -> auth-api"]
    assert test.spec["expect"]["order"] == "any"  # Tracetest's selectors say nothing of order
    assert spans_of(test)[:2] == [
        {"select": {"attributes": {"http.request.method": "*"}}, "count": 6},
        {
            "select": {"service": "cart-api", "attributes": {"http.request.method": "*"}},
            "attributes": {"http.method": "POST"},
        },
    ]
    # OR: one entry per selector, none of which has to select a span
    assert spans_of(test)[2:] == [
        {"select": {"service": service}, "count": ">=0", "max_duration": "1s"}
        for service in ("api-product", "api-auth", "api-notification", "api-cart")
    ]
    reasons = {line: item.reason for item in test.not_converted for line in [item.line]}
    assert sorted(reasons) == [17, 21, 24, 25, 28, 29, 32, 33, 36]
    assert "'at least one of them'" in reasons[17]
    assert "exact name" in reasons[21]
    assert ":first picks a span by its position" in reasons[25]
    assert ":nth_child(3)" in reasons[29]
    assert "write `cart-api -> auth-api` in expect.hops" in reasons[33]


def test_the_earliest_definition_form_reads_like_the_current_one() -> None:
    legacy = convert(DATA / "legacy-import-pokemon.yaml")
    assert spans_of(legacy) == spans_of(convert(DATA / "import-pokemon.yaml"))[:1]
    assert legacy.trigger == convert(DATA / "import-pokemon.yaml").trigger
    assert legacy.not_converted == ()


def test_a_suite_lists_its_steps_as_files_or_ids() -> None:
    by_file = read_tracetest((DATA / "pokeshop" / "suites" / "pokeshop.yaml").read_bytes(), "pokeshop.yaml")
    by_id = read_tracetest((DATA / "books" / "transaction-api.yaml").read_bytes(), "transaction-api.yaml")
    assert isinstance(by_file, TracetestSuite)
    assert isinstance(by_id, TracetestSuite)
    assert [(s.ref, s.is_file) for s in by_file.steps] == [
        ("../tests/add-pokemon.yaml", True),
        ("../tests/import-pokemon.yaml", True),
        ("../tests/list-pokemons.yaml", True),
    ]
    assert [(s.line, s.ref, s.is_file) for s in by_id.steps] == [
        (8, "phAZcrT4W", False),
        (9, "phAZcrT4B", False),
    ]
    assert by_id.name == "All Tests for the Books List API"


@pytest.mark.parametrize(
    "path",
    [p for p in ALL_DATA if "suites" not in p.parts and p.name != "transaction-api.yaml"],
    ids=lambda p: str(p.relative_to(DATA)),
)
def test_every_converted_example_is_a_spec_tracebaton_reads_back(path: Path) -> None:
    test = convert(path)
    text = test.file_text(source=str(path), spec_path="out.flow.yaml")
    assert parse_flow_spec(text) == parse_flow_spec(test.spec)
    assert all(
        line.startswith("#") for line in text.splitlines()[: text.splitlines().index(f"name: {test.name}")]
    )
    words = " ".join(word for word in text.split() if word != "#")  # the header's wrapping undone
    for item in test.not_converted:  # each construct listed in the file too, with its line
        assert " ".join(f"line {item.line}: {item.construct}".split()) in words


# --- the converted specs judge traces as the Tracetest tests did -------------------------------


def books_trace(*, books_ms: float = 120, count: int = 3) -> list[StoredSpan]:
    """The Books list example's service: a GET /books server span and its "Books List" span."""
    b = FlowBuilder()
    server = b.server(
        "books",
        "GET /books",
        start_ms=0,
        end_ms=books_ms,
        attrs={"http.method": "GET", "http.target": "/books", "http.status_code": 200},
    )
    b.internal("books", "Books List", parent=server, start_ms=5, end_ms=10, attrs={"books.list.count": count})
    return b.spans


def test_the_books_spec_passes_the_trace_tracetest_passed_and_fails_the_others() -> None:
    spec = convert(DATA / "books" / "test-api.yaml").spec
    assert judge(spec, books_trace()).passed
    slow = judge(spec, books_trace(books_ms=600))
    assert check(slow, "spans[0]").state is CheckState.FAIL
    assert "max_duration 500" in check(slow, "spans[0]").message
    assert check(judge(spec, books_trace(count=2)), "spans[1]").state is CheckState.FAIL


def test_a_converted_spec_ignores_errors_and_broken_propagation_as_tracetest_does() -> None:
    spans = books_trace()
    b = FlowBuilder()
    b.spans = spans
    b.client(
        "books",
        "GET /covers",
        parent=spans[0],
        start_ms=20,
        end_ms=30,
        status=StatusCode.ERROR,
        attrs={"http.request.method": "GET"},
    )
    orphan = b.server("covers", "GET /covers", parent="00000000000000aa", start_ms=21, end_ms=29)
    assert orphan in b.spans
    assert judge(convert(DATA / "books" / "test-api.yaml").spec, b.spans).passed


# The e-commerce trace of Tracetest's selector docs (concepts/selectors.mdx): span ids 1-10 and
# which of them each selector selects there.
SHOP: list[tuple[int, int | None, str, str, str, dict[str, Any]]] = [
    (1, None, "cart-api", "close order", "http", {"http.method": "POST"}),
    (2, 1, "product-api", "is product available", "http", {"http.method": "GET"}),
    (3, 2, "product-api", "get product information", "database", {"db.statement": "SELECT * FROM ..."}),
    (4, 2, "auth-api", "get user can access", "http", {"http.method": "GET"}),
    (5, 4, "auth-api", "get user auth information", "database", {"db.statement": "SELECT * FROM ..."}),
    (6, 1, "cart-api", "purchase products", "http", {"http.method": "POST"}),
    (7, 6, "auth-api", "get user can access", "http", {"http.method": "GET"}),
    (8, 7, "auth-api", "get user auth information", "database", {"db.statement": "SELECT * FROM ..."}),
    (9, 6, "notification-api", "notify user", "http", {"http.method": "POST"}),
    (10, 9, "notification-api", "send message to kafka", "messaging", {}),
]


def shop_spans() -> dict[int, StoredSpan]:
    b = FlowBuilder()
    spans: dict[int, StoredSpan] = {}
    system = {"database": {"db.system": "postgresql"}, "messaging": {"messaging.system": "kafka"}}
    for number, parent, service, name, kind, attrs in SHOP:
        spans[number] = b.internal(
            service, name, parent=spans[parent] if parent else None, attrs={**attrs, **system.get(kind, {})}
        )
    return spans


@pytest.mark.parametrize(
    ("selector", "selected"),
    [
        ('span[tracetest.span.type="http"]', {1, 2, 4, 6, 7, 9}),
        ('span[tracetest.span.type="http" service.name="cart-api"]', {1, 6}),
        ('span[tracetest.span.type="database"]', {3, 5, 8}),
        ('span[tracetest.span.type="messaging"]', {10}),
        ('span[service.name="auth-api" tracetest.span.type="http"]', {4, 7}),
        ('span[name="get user can access"]', {4, 7}),
        ('span[name contains "user"]', {4, 5, 7, 8, 9}),
        ('span[tracetest.span.type="general" name="notify user"]', {9}),
    ],
)
def test_converted_selectors_select_what_tracetests_docs_say(selector: str, selected: set[int]) -> None:
    select = spans_of(one_spec(selector, "attr:tracetest.selected_spans.count >= 1"))[0]["select"]
    spec_selector = (
        parse_flow_spec({"name": "s", "expect": {"spans": [{"select": select}]}}).expect.spans[0].select
    )
    spans = shop_spans()
    assert {number for number, span in spans.items() if selector_matches(spec_selector, span)} == selected


# --- the mapping, rule by rule -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("span_type", "attributes"),
    [
        ("http", {"http.request.method": "*"}),
        ("database", {"db.system": "*"}),
        ("rpc", {"rpc.system": "*"}),
        ("messaging", {"messaging.system": "*"}),
    ],
)
def test_span_types_become_the_attribute_that_marks_them(span_type: str, attributes: dict[str, str]) -> None:
    test = one_spec(f'span[tracetest.span.type="{span_type}" name="x"]', "attr:a = 1")
    assert spans_of(test) == [{"select": {"name": "x", "attributes": attributes}, "attributes": {"a": 1}}]


def test_general_type_adds_no_filter() -> None:
    assert spans_of(one_spec('span[tracetest.span.type="general" name="x"]', "attr:a = 1"))[0]["select"] == {
        "name": "x"
    }


@pytest.mark.parametrize("span_type", ["faas", "exception", "db"])
def test_span_types_without_a_marking_attribute_do_not_convert(span_type: str) -> None:
    test = one_spec(f'span[tracetest.span.type="{span_type}"]', "attr:a = 1")
    assert spans_of(test) == []
    assert [line for line, _ in skipped(test)] == [5, 7]  # the selector, and its assertion
    assert ("Tracetest's types" in test.not_converted[0].reason) is (span_type == "db")


@pytest.mark.parametrize(
    ("filters", "select"),
    [
        ('service.name="payment"', {"service": "payment"}),
        ('name="POST /charge"', {"name": "POST /charge"}),
        ('tracetest.span.name="POST /charge"', {"name": "POST /charge"}),
        ('name contains "charge"', {"name": "*charge*"}),
        ('name="a*b?[c]"', {"name": "a[*]b[?][[]c]"}),
        ('kind="server"', {"kind": "server"}),
        ('tracetest.span.status_code="STATUS_CODE_ERROR"', {"status": "error"}),
        ("http.status_code=200", {"attributes": {"http.status_code": 200}}),
        ('app.flag="false"', {"attributes": {"app.flag": False}}),
    ],
)
def test_selector_filters(filters: str, select: dict[str, Any]) -> None:
    assert spans_of(one_spec(f"span[{filters}]", "attr:a = 1"))[0]["select"] == select


def test_an_escaped_name_matches_only_itself() -> None:
    for name in ("GET /p?id=1", "a*b", "list[0]", "[*?]"):
        assert fnmatchcase(name, _glob(name))
    assert not fnmatchcase("GET /pXid=1", _glob("GET /p?id=1"))
    assert not fnmatchcase("aXXb", _glob("a*b"))


@pytest.mark.parametrize(
    ("filters", "reason"),
    [
        ('service.name contains "api"', "exact name"),
        ('name="Tracetest trigger"', "names the span Tracetest's trigger adds"),
        ('service.name="tracetest"', "names the span Tracetest's trigger adds"),
        ('kind="unespecified"', "selects kind server, client"),
        ('http.url contains "/charge"', "equality only"),
        ("tracetest.span.duration=5", "Tracetest's own attribute"),
        ('app.x="*"', "'present'"),
        ('name="a" name="b"', "contradicts another filter on name"),
    ],
)
def test_selector_filters_that_do_not_convert(filters: str, reason: str) -> None:
    test = one_spec(f"span[{filters}]", "attr:a = 1")
    assert spans_of(test) == []
    assert reason in test.not_converted[0].reason


def test_the_empty_selector_selects_every_span() -> None:
    assert spans_of(one_spec("", "attr:tracetest.span.duration < 2s")) == [
        {"select": {}, "max_duration": "2s"}
    ]


@pytest.mark.parametrize(
    ("assertion", "count"),
    [
        ("attr:tracetest.selected_spans.count = 1", 1),
        ("attr:tracetest.selected_spans.count >= 1", ">=1"),
        ("attr:tracetest.selected_spans.count > 0", ">=1"),
        ("attr:tracetest.selected_spans.count != 0", ">=1"),
        ("attr:tracetest.selected_spans.count = 4 ", 4),
    ],
)
def test_counts_that_need_a_span_join_the_entry(assertion: str, count: int | str) -> None:
    assert spans_of(one_spec('span[name="x"]', assertion, "attr:a = 1")) == [
        {"select": {"name": "x"}, "count": count, "attributes": {"a": 1}}
    ]


@pytest.mark.parametrize(
    ("assertion", "count"),
    [
        ("attr:tracetest.selected_spans.count = 0", 0),
        ("attr:tracetest.selected_spans.count <= 2", "<=2"),
        ("attr:tracetest.selected_spans.count < 3", "<=2"),
    ],
)
def test_counts_that_allow_none_stand_alone(assertion: str, count: int | str) -> None:
    assert spans_of(one_spec('span[name="x"]', assertion)) == [{"select": {"name": "x"}, "count": count}]
    # beside an attribute check, which needs a span, they are two entries: both must hold
    assert spans_of(one_spec('span[name="x"]', "attr:a = 1", assertion)) == [
        {"select": {"name": "x"}, "attributes": {"a": 1}},
        {"select": {"name": "x"}, "count": count},
    ]


@pytest.mark.parametrize(
    ("assertion", "reason"),
    [
        ("attr:tracetest.selected_spans.count < 0", "can never hold"),
        ("attr:tracetest.selected_spans.count != 2", "has no counterpart"),
        ('attr:tracetest.selected_spans.count = "many"', "not a whole number"),
    ],
)
def test_counts_that_do_not_convert(assertion: str, reason: str) -> None:
    test = one_spec('span[name="x"]', assertion)
    assert reason in test.not_converted[0].reason


def test_a_count_of_every_span_would_count_tracetests_trigger_span() -> None:
    test = one_spec("", "attr:tracetest.selected_spans.count = 10")
    assert spans_of(test) == []
    assert "includes it" in test.not_converted[0].reason


@pytest.mark.parametrize(
    ("assertion", "max_duration"),
    [
        ("attr:tracetest.span.duration < 500ms", "500ms"),
        ("attr:tracetest.span.duration <= 1.5s", "1500ms"),
        ("attr:tracetest.span.duration < 2000000", "2ms"),  # a bare number is ns, as the attribute is
        ("attr:tracetest.span.duration <= 1h", "60m"),
    ],
)
def test_duration_upper_bounds_become_max_duration(assertion: str, max_duration: str) -> None:
    assert spans_of(one_spec('span[name="x"]', assertion)) == [
        {"select": {"name": "x"}, "max_duration": max_duration}
    ]


def test_the_tighter_of_two_duration_bounds_is_kept() -> None:
    test = one_spec(
        'span[name="x"]', "attr:tracetest.span.duration < 1s", "attr:tracetest.span.duration < 200ms"
    )
    assert spans_of(test) == [{"select": {"name": "x"}, "max_duration": "200ms"}]


@pytest.mark.parametrize(
    ("assertion", "reason"),
    [
        ("attr:tracetest.span.duration > 10ms", "lower bound"),
        ("attr:tracetest.span.duration >= 10ms", "lower bound"),
        ("attr:tracetest.span.duration = 10ms", "from above"),
        ("attr:tracetest.span.duration < 0ms", "above 0"),
        ('attr:tracetest.span.duration < "1s"', "with text"),
    ],
)
def test_durations_that_do_not_convert(assertion: str, reason: str) -> None:
    assert reason in one_spec('span[name="x"]', assertion).not_converted[0].reason


@pytest.mark.parametrize(
    ("assertion", "entries"),
    [
        (
            'attr:tracetest.span.status_code = "STATUS_CODE_OK"',
            [
                {"select": {"name": "x"}},
                {"select": {"name": "x", "status": "error"}, "count": 0},
                {"select": {"name": "x", "status": "unset"}, "count": 0},
            ],
        ),
        (
            'attr:tracetest.span.status_code != "STATUS_CODE_ERROR"',
            [{"select": {"name": "x"}}, {"select": {"name": "x", "status": "error"}, "count": 0}],
        ),
    ],
)
def test_a_status_assertion_becomes_selections_of_the_other_statuses(
    assertion: str, entries: list[dict[str, Any]]
) -> None:
    assert spans_of(one_spec('span[name="x"]', assertion)) == entries


def test_a_status_assertion_judges_like_tracetest() -> None:
    spec = one_spec('span[name="POST /charge"]', 'attr:tracetest.span.status_code = "STATUS_CODE_OK"').spec
    b = FlowBuilder()
    b.server("payment", "POST /charge", status=StatusCode.OK)
    assert judge(spec, b.spans).passed
    b.server("payment", "POST /charge", start_ms=20, status=StatusCode.ERROR)
    assert not judge(spec, b.spans).passed
    assert not judge(spec, []).passed  # Tracetest fails it on no span too


def test_status_named_as_tracetest_never_writes_it() -> None:
    test = one_spec('span[name="x"]', 'attr:tracetest.span.status = "ok"')
    assert "did you mean tracetest.span.status_code?" in test.not_converted[0].reason


@pytest.mark.parametrize(
    ("assertion", "reason"),
    [
        ("attr:http.status_code >= 200", "equality only"),
        ("attr:http.status_code != 500", "equality only"),
        ('attr:db.statement contains "SELECT"', "equality only"),
        ('attr:db.statement not-contains "DROP"', "equality only"),
        ("attr:myapp.output > attr:myapp.input", "something computed"),
        ("attr:myapp.output = attr:myapp.input + 1", "something computed"),
        ('attr:app.product.id = "${var:PRODUCT_ID}"', "interpolates"),
        ("attr:http.response.body | json_path '.id' = 1", "computes its left side"),
        ('attr:name = "x"', "put the name in the selector"),
        ("attr:tracetest.response.status = 200", "trigger received"),
        ('attr:service.name = "cart-api"', "resource attribute"),
        ('attr:span.events = "[]"', "span events"),
        ('attr:app.x = ""', "treats an empty value as absent"),
        ('attr:app.x = "*"', "'present with any value'"),
        ("attr:app.x = 5ms", "with a duration"),
    ],
)
def test_assertions_that_do_not_convert_say_why(assertion: str, reason: str) -> None:
    test = one_spec('span[name="x"]', assertion)
    assert len(test.not_converted) == 1
    assert reason in test.not_converted[0].reason
    # and the selection it implied stays: Tracetest fails every assertion on no span
    assert spans_of(test) == [{"select": {"name": "x"}}]


def test_two_values_for_one_attribute_both_stay() -> None:
    test = one_spec('span[name="x"]', "attr:a = 1", "attr:a = 2", "attr:b = 3")
    assert spans_of(test) == [
        {"select": {"name": "x"}, "attributes": {"a": 1, "b": 3}},
        {"select": {"name": "x"}, "attributes": {"a": 2}},
    ]


def test_a_union_counted_as_none_converts_per_selector() -> None:
    test = one_spec('span[name="a"], span[name="b"]', "attr:tracetest.selected_spans.count = 0")
    assert spans_of(test) == [{"select": {"name": "a"}, "count": 0}, {"select": {"name": "b"}, "count": 0}]
    assert test.not_converted == ()


def test_a_union_counted_otherwise_does_not_convert() -> None:
    test = one_spec('span[name="a"], span[name="b"]', "attr:tracetest.selected_spans.count = 2")
    assert spans_of(test) == []
    assert "several selectors together" in " ".join(item.reason for item in test.not_converted)


@pytest.mark.parametrize(
    ("selector", "hop"),
    [
        (
            'span[service.name="cart" kind="client"] span[service.name="inventory" kind="server"]',
            "cart -> inventory",
        ),
        (
            'span[kind="producer" service.name="orders"] span[kind="consumer" service.name="email"]',
            "orders ~> email",
        ),
    ],
)
def test_a_call_from_one_service_answered_in_another_is_a_hop(selector: str, hop: str) -> None:
    test = one_spec(selector, "attr:tracetest.selected_spans.count >= 1")
    assert test.spec["expect"]["hops"] == [hop]
    assert spans_of(test) == []
    assert test.not_converted == ()


def test_more_about_a_hop_than_that_it_happened_is_listed() -> None:
    test = one_spec(
        'span[service.name="cart" kind="client"] span[service.name="inventory" kind="server"]',
        "attr:http.status_code = 200",
    )
    assert test.spec["expect"]["hops"] == ["cart -> inventory"]
    assert "it became the hop cart -> inventory" in test.not_converted[0].reason


def test_a_descendant_counted_as_none_is_not_a_hop() -> None:
    test = one_spec(
        'span[service.name="cart" kind="client"] span[service.name="inventory" kind="server"]',
        "attr:tracetest.selected_spans.count = 0",
    )
    assert "hops" not in test.spec["expect"]
    assert "cannot say 'below'" in test.not_converted[0].reason


def test_a_hop_converted_judges_the_hand_off() -> None:
    spec = one_spec(
        'span[service.name="cart" kind="client"] span[service.name="inventory" kind="server"]',
        "attr:tracetest.selected_spans.count >= 1",
    ).spec
    b = FlowBuilder()
    cart = b.server("cart", "POST /cart")
    b.call(cart, "inventory", "/reserve", start_ms=1, end_ms=8)
    assert judge(spec, b.spans).passed
    assert check(judge(spec, b.spans[:1], final=True), "hops").state is CheckState.FAIL


def test_the_older_selector_and_assertion_mappings() -> None:
    test = test_text("""
        type: Test
        spec:
          name: old
          specs:
          - selector:
              query: span[tracetest.span.type="http"]
            assertions:
            - attribute: http.status_code
              comparator: "="
              expected: "200"
            - attribute: tracetest.span.duration
              comparator: "<"
              expected: "2000"
        """)
    assert spans_of(test) == [
        {"select": {"attributes": {"http.request.method": "*"}}, "attributes": {"http.status_code": 200}}
    ]
    # the older form's durations had no unit: not guessed
    assert [(line, item) for line, item in skipped(test)] == [
        (12, 'assertion `attr:tracetest.span.duration < "2000"`')
    ]


def test_keys_this_converter_does_not_know_are_listed_not_dropped() -> None:
    test = test_text("""
        type: Test
        spec:
          name: t
          pollingProfile: ./profile.yaml
          skipTraceCollection: false
          trigger:
            type: http
            httpRequest:
              url: http://x/
              method: GET
              proxy: http://proxy:3128
          specs:
          - selector: span[name="x"]
            severity: high
            assertions: [attr:a = 1]
        """)
    assert skipped(test) == [
        (5, "spec.pollingProfile"),
        (6, "spec.skipTraceCollection"),
        (12, "trigger.httpRequest.proxy"),
        (15, "spec entry key severity"),
    ]
    assert "wait.timeout" in test.not_converted[0].reason


@pytest.mark.parametrize(
    ("trigger", "command"),
    [
        (
            "{type: http, httpRequest: {url: 'https://x/a b', method: get, "
            "auth: {type: bearer, bearer: {token: t0k}}}}",
            ["curl -X GET 'https://x/a b' \\", "  --insecure \\", "  -H 'Authorization: Bearer t0k' \\"],
        ),
        (
            "{type: http, httpRequest: {url: 'http://x/', method: GET, authentication: {type: basic, "
            "basic: {user: u, password: p}}}}",
            ["curl -X GET http://x/ \\", "  -H 'Authorization: Basic dTpw' \\"],
        ),
        (
            "{type: http, httpRequest: {url: 'http://x/?a=1', method: GET, auth: {type: apiKey, "
            "apiKey: {key: k, value: v, in: query}}}}",
            ["curl -X GET 'http://x/?a=1&k=v' \\"],
        ),
        (
            "{type: traceid, traceid: {id: 4bf92f3577b34da6a3ce929d0e0e4736}}",
            [
                "# Tracetest judged an existing trace; so does this spec:",
                "TRACE_ID=4bf92f3577b34da6a3ce929d0e0e4736",
            ],
        ),
    ],
)
def test_triggers(trigger: str, command: list[str]) -> None:
    test = test_text(f"""
        type: Test
        spec:
          name: t
          trigger: {trigger}
        """)
    assert list(test.trigger[: len(command)]) == command
    assert test.not_converted == ()


def test_a_trigger_that_is_not_written_as_a_command_is_listed() -> None:
    test = test_text("""
        type: Test
        spec:
          name: t
          trigger:
            type: kafka
            kafka: {brokerUrls: [kafka:9092], topic: pokemon, messageValue: '{"id":144}'}
        """)
    assert skipped(test) == [(6, "trigger (kafka)")]
    assert "traceparent" in test.trigger[-1]


def test_the_file_text_says_how_to_judge_the_trace_and_keeps_tracetests_meaning() -> None:
    text = convert(DATA / "books" / "test-api.yaml").file_text(
        source="books/test-api.yaml", spec_path="out/test-api.flow.yaml"
    )
    assert text.startswith(
        "# Converted by `tracebaton import-tracetest` from books/test-api.yaml:\n"
        "# Tracetest test 'Books list' (id phAZcrT4W).\n"
    )
    assert (
        "#   tracebaton run out/test-api.flow.yaml -- sh -s <<'REQUEST'\n"
        "#   curl -X GET http://app:8080/books \\\n"
        "#     -H 'Content-Type: application/json' \\\n"
        '#     -H "traceparent: $TRACEPARENT"\n'
        "#   REQUEST\n"
    ) in text
    assert "#   spans[0]  line 17: span[" in text
    assert yaml.safe_load(text)["expect"]["errors"] == "any"


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "test.yaml: is empty; a Tracetest test definition starts with `type: Test`"),
        ("type: Test\nspec:\n  name: 'open\n", "test.yaml:3: not YAML (while scanning a quoted scalar"),
        ("- a\n- b\n", "test.yaml:1: the file is a list, not a mapping"),
        ("name: x\n", "test.yaml:1: is not a Tracetest test definition: it has no `type:`"),
        (
            "type: PollingProfile\nspec: {}\n",
            "test.yaml:1: type: PollingProfile is a Tracetest resource but not a test",
        ),
        ("type: Test\n", "test.yaml:1: type: Test has no `spec:`"),
        ("type: Test\nspec:\n  specs: []\n", "test.yaml:3: the test has no name"),
        ("type: Test\nspec:\n  name: a\n  name: b\n", "test.yaml:4: spec has the key 'name' twice"),
        (
            "type: Test\nspec: {name: a}\n---\ntype: Test\nspec: {name: b}\n",
            "test.yaml:4: holds 2 YAML documents",
        ),
        (
            'type: Test\nspec:\n  name: t\n  specs:\n  - selector: span[name="x"\n'
            "    assertions: [attr:a = 1]\n",
            'test.yaml:5: selector \'span[name="x"\' is malformed: expected a "]" to close span[, '
            "found the end (column 14); a selector is span[",
        ),
        (
            'type: Test\nspec:\n  name: t\n  specs:\n  - selector: span[name="x"]\n'
            "    assertions: [attr:a]\n",
            "test.yaml:6: assertion 'attr:a' is malformed: it has no comparator (column 1); "
            "an assertion is attr:<name>",
        ),
        (
            "type: Test\nspec:\n  name: t\n  specs: {selector: x}\n",
            "test.yaml:4: spec.specs is a mapping, not a list",
        ),
        (
            "type: Test\nspec:\n  name: t\n  trigger: {httpRequest: {url: x}}\n",
            "test.yaml:4: trigger has no `type`",
        ),
        (
            "type: Test\nspec:\n  name: t\n  trigger: {type: http}\n",
            "test.yaml:4: trigger (type: http) has no `httpRequest`: Tracetest needs one too; write "
            "trigger.httpRequest: {url: http://frontend:8080/checkout, method: POST}",
        ),
        (
            "type: Test\nspec:\n  name: t\n  trigger: {type: http, httpRequest: {url: 5}}\n",
            "test.yaml:4: trigger.httpRequest.url '5' is not an http(s) URL",
        ),
        (
            "type: Test\nspec:\n  name: t\n  trigger: {type: traceid, traceid: {id: notanid}}\n",
            "test.yaml:4: trigger.traceid.id 'notanid' is not a trace id; write its 32 hex digits",
        ),
        ("type: TestSuite\nspec:\n  name: s\n  steps: []\n", "test.yaml:3: the test suite has no steps"),
    ],
)
def test_bad_input_names_the_file_the_line_and_the_fix(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        read_tracetest(text, "test.yaml")
    assert str(caught.value).startswith(message), str(caught.value)


def test_bytes_that_are_not_utf8() -> None:
    with pytest.raises(ConfigurationError, match="byte 6 is not UTF-8"):
        read_tracetest(b"name: \xff\n", "test.yaml")


def test_not_converted_reads_as_line_construct_reason() -> None:
    assert str(NotConverted(3, "output X", "why; fix")) == "line 3: output X: why; fix"
