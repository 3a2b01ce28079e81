"""Tracetest test definitions to flow specs: the pure mapping behind `tracebaton import-tracetest`.

`read_tracetest(text, origin)` takes a Tracetest YAML file (`type: Test`, `type: TestSuite`,
or the earliest form with `name`, `trigger` and `specs` at the top) and returns a
`TracetestTest` — the flow spec as a dict, every construct that did not convert with its
line, and the trigger as shell commands — or a `TracetestSuite` (its steps, for the caller
to resolve). Bad input raises ConfigurationError naming the file, the line and the fix.

What a Tracetest test means, read from Tracetest's server (assertion_executor.go,
selectors/, expression/), and kept here:
- Each assertion of a spec holds for **every** selected span, and fails when the selector
  selects **none** (an attribute of "no span" is an error there); only
  `tracetest.selected_spans.count` is judged on the count itself. A flow spec `spans:` entry
  without `count` means the same: at least one, and every one.
- Tracetest checks nothing it was not asked: not errors, not broken propagation, not the
  order of spans. So every converted spec says `errors: any`, `connected: false`, and
  `order: any` when it has hops.
- Nothing is widened or narrowed silently: a selector part with no flow-spec counterpart
  (a pseudo-class, a descendant, `contains` on an attribute) leaves its whole spec entry
  out, listed, because checking the assertions on other spans than Tracetest selected
  would be a different test.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from tracebaton import FlowSpecError, whole_number

from ._selectors import attribute_names
from ._spec_parse import flow_spec_to_yaml, parse_flow_spec
from ._spec_values import MAX_DURATION_NS, format_duration
from ._tracetest_syntax import (
    SELECTOR_FORM,
    STATEMENT_FORM,
    SpanSelector,
    Statement,
    Token,
    TracetestSyntaxError,
    duration_ns,
    parse_selector,
    parse_statement,
)
from ._tracetest_trigger import trigger_commands
from ._tracetest_yaml import Document, NotConverted, compose, is_null, line_of

__all__ = ["NotConverted", "SpecSource", "SuiteStep", "TracetestSuite", "TracetestTest", "read_tracetest"]

_EXPECTED = "a Tracetest test definition"
_SPEC_KEYS = ("id", "name", "description", "trigger", "specs", "outputs")
_ENTRY_KEYS = ("selector", "name", "assertions")
_STATUS = {"OK": "ok", "ERROR": "error", "UNSET": "unset"}
_KINDS = ("server", "client", "producer", "consumer", "internal")
_TRIGGER_SPAN = "Tracetest trigger"
_TRIGGER_SERVICE = "tracetest"
_NO_TRIGGER_SPAN = ("names the span Tracetest's trigger adds to every trace; tracebaton sends no request, so "
                    "no trace has it — select your service's entry span instead")
# tracetest.span.type, from which attributes Tracetest derives it (spanType in
# server/traces/trace_entities.go: the first `http.`, `db.`, `rpc.`, `messaging.` … attribute),
# as the attribute every span of that kind carries under the semantic conventions.
_TYPE_ATTRIBUTE = {"http": "http.request.method", "database": "db.system", "rpc": "rpc.system",
                   "messaging": "messaging.system"}
_TYPES = ("http", "database", "rpc", "messaging", "faas", "exception", "general")
# Resource attributes: Tracetest merges them into each span's attributes; a flow spec's
# `spans[].attributes` reads the span's own, so an assertion on one cannot be carried over.
_RESOURCE_PREFIXES = ("service.", "deployment.", "telemetry.", "host.", "process.", "os.",
                      "container.", "k8s.", "cloud.")
_CHECKS_NOTHING_ELSE = ("Tracetest checks neither errors nor broken propagation, so this spec says "
                        "`errors: any` and `connected: false`; remove them to have tracebaton check both.")


@dataclasses.dataclass(frozen=True, slots=True)
class SpecSource:
    """Which Tracetest spec a check of the flow spec came from."""

    check: str
    """`spans[2]` or a hop, `cart -> auth`."""
    line: int
    label: str


@dataclasses.dataclass(frozen=True, slots=True)
class TracetestTest:
    name: str
    test_id: str | None
    description: str | None
    spec: Mapping[str, Any]
    """The flow spec as `parse_flow_spec` reads it (already checked to parse)."""
    not_converted: tuple[NotConverted, ...]
    sources: tuple[SpecSource, ...]
    trigger: tuple[str, ...]
    """How the flow starts, a shell line each: advice (`# ` lines) first, then the request
    that `tracebaton run` sends (reading $TRACEPARENT), or for an existing trace a last line
    that sets TRACE_ID. Empty: no trigger."""

    def file_text(self, *, source: str, spec_path: str, suite: str | None = None) -> str:
        """The spec file: a header of comments (origin, trigger, provenance, what did not
        convert), then the spec as YAML."""
        header = [f"Converted by `tracebaton import-tracetest` from {source}:",
                  f"Tracetest test {self.name!r}" + (f" (id {self.test_id})" if self.test_id else "") + "."]
        if suite:
            header.append(suite)
        if self.description:
            header += ["", *self.description.strip().splitlines()]
        if self.trigger and self.trigger[-1].startswith("TRACE_ID="):
            header += ["", *("  " + line for line in self.trigger),
                       f'  tracebaton check {spec_path} --trace-id "$TRACE_ID"']
        elif self.trigger:
            header += ["", *_run_lines(self.trigger, spec_path)]
        else:
            header += ["", "Judge it with: tracebaton check " + spec_path + " --trace-id <trace id>"]
        if self.sources:
            header += ["", "Where the checks come from (lines of the Tracetest file):"]
            width = max(len(source.check) for source in self.sources)
            header += [f"  {source.check:<{width}}  line {source.line}: {source.label}"
                       for source in self.sources]
        if self.not_converted:
            header += ["", "Not converted (import-tracetest listed these too):"]
            for item in self.not_converted:
                header += textwrap.wrap(str(item), width=96, initial_indent="  ", subsequent_indent="      ",
                                        break_long_words=False, break_on_hyphens=False)
        header += ["", *textwrap.wrap(_CHECKS_NOTHING_ELSE, width=96)]
        comments = "".join(f"# {line}".rstrip() + "\n" for line in header)
        return comments + flow_spec_to_yaml(parse_flow_spec(self.spec))


def _run_lines(trigger: Sequence[str], spec_path: str) -> list[str]:
    """`tracebaton run` sending the trigger's request from a here-document to `sh -s`: the
    script reads as it was written (no quoting inside quotes), and $TRACEPARENT is expanded
    by the shell `tracebaton run` starts, not by the one it is typed in."""
    advice = list(itertools.takewhile(lambda line: line.startswith("# "), trigger))
    script = list(trigger[len(advice):])
    lines = ["Tracetest sent the request below to start the test. `tracebaton run` sends it with the",
             "flow's own traceparent (the command's environment has TRACEPARENT) and judges the flow:", ""]
    lines += ["  " + line for line in advice]
    if not script:
        return [*lines, f"  tracebaton run {spec_path} -- <the command that starts the flow>"]
    end = "REQUEST"
    while end in script:
        end += "_"
    return [*lines, f"  tracebaton run {spec_path} -- sh -s <<'{end}'", *("  " + line for line in script),
            f"  {end}"]



@dataclasses.dataclass(frozen=True, slots=True)
class SuiteStep:
    line: int
    ref: str
    is_file: bool
    """A path (relative to the suite's file), else a test id."""


@dataclasses.dataclass(frozen=True, slots=True)
class TracetestSuite:
    name: str
    suite_id: str | None
    description: str | None
    steps: tuple[SuiteStep, ...]
    not_converted: tuple[NotConverted, ...]


def read_tracetest(text: str | bytes, origin: str) -> TracetestTest | TracetestSuite:
    """A Tracetest Test or TestSuite definition, converted; raises ConfigurationError on bad input."""
    doc = compose(text, origin, _EXPECTED)
    fix = "a Tracetest test definition is a mapping with `type: Test` and a `spec:` mapping"
    top = doc.mapping(doc.root, "the file", fix)
    if "type" not in top:
        if "specs" in top or "trigger" in top:  # the earliest form: the spec's keys at the top
            return _test(doc, doc.root, [])
        doc.fail(doc.root, f"is not {_EXPECTED}: it has no `type:` ({fix})")
    kind = doc.text(top["type"][1], "type", "write `type: Test` or `type: TestSuite`")
    if kind not in ("Test", "TestSuite", "Transaction"):
        doc.fail(top["type"][1], f"type: {kind} is a Tracetest resource but not a test: only a Test or a "
                 "TestSuite converts to flow specs; give the files with `type: Test` or `type: TestSuite`")
    skipped = [NotConverted(line_of(key_node), key, "is not part of a Tracetest definition; check it")
               for key, (key_node, _) in top.items() if key not in ("type", "spec")]
    if "spec" not in top:
        doc.fail(doc.root, f"type: {kind} has no `spec:`; the definition goes under `spec:`")
    if kind == "Test":
        return _test(doc, top["spec"][1], skipped)
    return _suite(doc, top["spec"][1], skipped)


def _suite(doc: Document, node: yaml.Node, skipped: list[NotConverted]) -> TracetestSuite:
    spec = doc.mapping(node, "spec", "write {name: ..., steps: [test files or ids]}")
    name = _name(doc, spec, node, "test suite")
    steps = []
    listed = doc.sequence(spec["steps"][1], "spec.steps", "write a list of test files or test ids") \
        if "steps" in spec else []
    for step in listed:
        ref = doc.text(step, "a step", "write a test file's path or a test id").strip()
        steps.append(SuiteStep(line_of(step), ref, ref.lower().endswith((".yaml", ".yml")) or "/" in ref))
    if not steps:
        doc.fail(node, "the test suite has no steps, so nothing would be converted; list its tests under "
                       "spec.steps (test files or test ids)")
    skipped += [NotConverted(line_of(key_node), f"spec.{key}", "is not part of a test suite this converter "
                             "knows (id, name, description, steps); check it")
                for key, (key_node, _) in spec.items() if key not in ("id", "name", "description", "steps")]
    return TracetestSuite(name, _optional(doc, spec, "id"), _optional(doc, spec, "description"), tuple(steps),
                          tuple(skipped))


def _optional(doc: Document, fields: Mapping[str, tuple[yaml.Node, yaml.Node]], key: str) -> str | None:
    return doc.optional_text(fields[key][1] if key in fields else None, f"spec.{key}", "write it as text")


def _name(doc: Document, spec: Mapping[str, tuple[yaml.Node, yaml.Node]], node: yaml.Node, what: str) -> str:
    name = _optional(doc, spec, "name")
    if name is None or not name.strip():
        doc.fail(node, f"the {what} has no name; Tracetest requires `name:` too, and it names the flow spec")
    return name.strip()


@dataclasses.dataclass
class _Entry:
    """A `spans:` item being built."""

    select: dict[str, Any]
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)
    max_duration_ns: int | None = None
    count: int | str | None = None

    def value(self) -> dict[str, Any]:
        result: dict[str, Any] = {"select": self.select}
        if self.count is not None:
            result["count"] = self.count
        if self.attributes:
            result["attributes"] = self.attributes
        if self.max_duration_ns is not None:
            result["max_duration"] = format_duration(self.max_duration_ns)
        return result


@dataclasses.dataclass(frozen=True, slots=True)
class _Attribute:
    key: str
    value: Any


@dataclasses.dataclass(frozen=True, slots=True)
class _MaxDuration:
    ns: int


@dataclasses.dataclass(frozen=True, slots=True)
class _Status:
    equal: bool
    label: str


@dataclasses.dataclass(frozen=True, slots=True)
class _Count:
    op: str  # "==", ">=", "<="
    n: int

    def value(self) -> int | str:
        return self.n if self.op == "==" else f"{self.op}{self.n}"

    @property
    def lower(self) -> int:
        return 0 if self.op == "<=" else self.n


_Check = _Attribute | _MaxDuration | _Status | _Count


def _test(doc: Document, node: yaml.Node, skipped: list[NotConverted]) -> TracetestTest:
    spec = doc.mapping(node, "spec", "write {name: ..., trigger: ..., specs: [...]}")
    name = _name(doc, spec, node, "test")
    skipped = list(skipped)
    for key, (key_node, _) in spec.items():
        if key not in _SPEC_KEYS:
            skipped.append(NotConverted(line_of(key_node), f"spec.{key}", _unknown_spec_key(key)))
    trigger: list[str] = []
    if "trigger" in spec and not is_null(spec["trigger"][1]):
        trigger, more = trigger_commands(doc, spec["trigger"][1])
        skipped += more
    spans: list[dict[str, Any]] = []
    hops: list[str] = []
    sources: list[SpecSource] = []
    specs = doc.sequence(spec["specs"][1], "spec.specs",
                         "write a list of {selector: ..., assertions: [...]}") if "specs" in spec else []
    for item in specs:
        _spec_entry(doc, item, spans, hops, sources, skipped)
    for item in doc.sequence(spec["outputs"][1], "spec.outputs", "write a list of outputs") \
            if "outputs" in spec else []:
        output = doc.mapping(item, "an output", "write {name: ..., selector: ..., value: ...}")
        label = _optional(doc, output, "name") or "(no name)"
        skipped.append(NotConverted(line_of(item), f"output {label}",
                                    "flow specs export no values for later tests (tracebaton has no "
                                    "variables); read the value from `flow.trace()` in Python instead"))
    expect: dict[str, Any] = {}
    if hops:
        expect["hops"] = hops
        expect["order"] = "any"  # Tracetest's selectors say nothing about order
    expect["errors"] = "any"
    expect["propagation"] = {"connected": False}
    if spans:
        expect["spans"] = spans
    flow: dict[str, Any] = {"name": name, "expect": expect}
    try:
        parse_flow_spec(flow)
    except FlowSpecError as error:  # a value this mapping let through that spec v1 refuses
        doc.fail(node, f"the converted spec does not parse ({error}); please report this with the file")
    return TracetestTest(name, _optional(doc, spec, "id"), _optional(doc, spec, "description"), flow,
                         tuple(sorted(skipped, key=lambda item: item.line)), tuple(sources), tuple(trigger))


def _unknown_spec_key(key: str) -> str:
    if key == "pollingProfile":
        return ("tracebaton waits for spans on arrival, not by polling; set `wait.timeout` in the spec if "
                "the flow needs longer than 10 s")
    if key == "skipTraceCollection":
        return "a flow spec always judges a trace; there is no test without one"
    return "is not part of a Tracetest test this converter knows (id, name, description, trigger, specs, " \
           "outputs); check it"


def _spec_entry(doc: Document, item: yaml.Node, spans: list[dict[str, Any]], hops: list[str],
                sources: list[SpecSource], skipped: list[NotConverted]) -> None:
    entry = doc.mapping(item, "a spec", "write {selector: 'span[...]', assertions: [...]}")
    for key, (key_node, _) in entry.items():
        # selectorParsed is what Tracetest's export adds: the selector again, parsed
        if key not in (*_ENTRY_KEYS, "selectorParsed"):
            skipped.append(NotConverted(line_of(key_node), f"spec entry key {key}", "is not part of a "
                                        "Tracetest spec (selector, name, assertions); check it"))
    selector_node = entry["selector"][1] if "selector" in entry else item
    text = _selector_text(doc, entry)
    try:
        selector = parse_selector(text)
    except TracetestSyntaxError as error:
        doc.fail(selector_node, f"selector {text!r} is malformed: {error.message} (column {error.column}); "
                 f"a selector is {SELECTOR_FORM}")
    label = _optional(doc, entry, "name") or selector.text or '"" (every span)'
    checks: list[tuple[int, Statement, _Check | str]] = []
    assertions = doc.sequence(entry["assertions"][1], "assertions", "write a list of assertions") \
        if "assertions" in entry else []
    for assertion in assertions:
        statement = _statement(doc, assertion)
        checks.append((line_of(assertion), statement, _check(statement)))
    if not checks:
        return  # a spec without assertions checks nothing in Tracetest either
    line = line_of(selector_node)
    for at, statement, check in checks:
        if isinstance(check, str):
            skipped.append(NotConverted(at, f"assertion `{statement.text}`", check))
    mapped: list[tuple[int, Statement, _Check]] = [
        (at, statement, check) for at, statement, check in checks if not isinstance(check, str)]
    alternatives = [_select(alternative) for alternative in selector.alternatives] or [{}]
    problems = [alternative for alternative in alternatives if isinstance(alternative, str)]
    hop = _hop(selector.alternatives[0]) if len(selector.alternatives) == 1 else None
    problems += [_descendant_reason(alternative) for alternative in selector.alternatives
                 if alternative.child is not None and hop is None]
    if hop is not None:
        # Only an assertion that needs a selected span says the hand-off happened (`count = 0` says
        # it did not).
        exists = any(_needs_a_span(statement, check) for _, statement, check in checks)
        if exists:
            if hop not in hops:
                hops.append(hop)
            sources.append(SpecSource(f"hop {hop}", line, label))
        for at, statement, check in mapped:
            if exists and isinstance(check, _Count) and check.op == ">=" and check.n <= 1:
                continue  # what the hop checks
            became = f"it became the hop {hop}, which checks that the hand-off happened, and " \
                if exists else ""
            skipped.append(NotConverted(
                at, f"assertion `{statement.text}`",
                f"its selector (line {line}) picks spans below another span; {became}a flow spec "
                "selector cannot say 'below'"))
        return
    if problems:
        skipped.append(NotConverted(line, f"selector `{selector.text}`", "; ".join(problems)))
        skipped += [NotConverted(at, f"assertion `{statement.text}`",
                                 f"its selector (line {line}) was not converted")
                    for at, statement, _ in mapped]
        return
    selects = [alternative for alternative in alternatives if isinstance(alternative, dict)]
    # An assertion that did not convert still failed in Tracetest when nothing was selected:
    # that part of it is kept.
    requires_a_span = any(_needs_a_span(statement, check) for _, statement, check in checks
                          # Tracetest's count of every span includes its trigger span: not one of ours
                          if selects != [{}] or not isinstance(check, _Count))
    entries, reasons = _entries(selects, mapped, requires_a_span=requires_a_span)
    skipped += [NotConverted(at, construct, reason) for at, construct, reason in reasons]
    if len(selects) > 1 and requires_a_span:
        skipped.append(NotConverted(line, "at least one span of the selectors",
                                    "Tracetest fails an assertion when its selectors select no span; each "
                                    "selector became its own spans entry (count \">=0\"), and a flow spec "
                                    "cannot say 'at least one of them'"))
    if not mapped:
        label += " (that it selects a span; its assertions did not convert)"
    for built in entries:
        sources.append(SpecSource(f"spans[{len(spans)}]", line, label))
        spans.append(built.value())


def _needs_a_span(statement: Statement, check: _Check | str) -> bool:
    """Does the assertion fail in Tracetest when its selector selects no span? Every one
    does but a count that allows 0."""
    if statement.left[0].text.removeprefix("attr:") != "tracetest.selected_spans.count":
        return True
    return isinstance(check, _Count) and check.lower >= 1


def _selector_text(doc: Document, entry: Mapping[str, tuple[yaml.Node, yaml.Node]]) -> str:
    """The selector string; also the older `selector: {query: ...}` form. Absent: "" (every
    span), as Tracetest reads a missing field."""
    if "selector" not in entry:
        return ""
    node = entry["selector"][1]
    if isinstance(node, yaml.MappingNode):
        fields = doc.mapping(node, "selector", "write the selector as text, e.g. span[name=\"GET /\"]")
        node = fields["query"][1] if "query" in fields else node
    if is_null(node):
        return ""
    return doc.text(node, "selector", 'write the selector as text, e.g. span[name="GET /"]').strip()


def _statement(doc: Document, node: yaml.Node) -> Statement:
    """An assertion: a string, or the older `{attribute, comparator, expected}` mapping."""
    if isinstance(node, yaml.MappingNode):
        fields = doc.mapping(node, "an assertion", "write it as text, e.g. attr:http.status_code = 200")
        parts = []
        for key in ("attribute", "comparator", "expected"):
            if key not in fields:
                doc.fail(node, f"the assertion has no `{key}`; write {{attribute: ..., comparator: ..., "
                         "expected: ...}")
            parts.append(doc.text(fields[key][1], f"assertion {key}", "write it as text"))
        attribute, comparator, expected = parts
        # The older form's numbers had no unit, and its durations were not in ns: a duration
        # stays text there, and so does not convert.
        bare = re.fullmatch(r"[0-9]+(\.[0-9]+)?", expected) and attribute != "tracetest.span.duration"
        quote = "'" if '"' in expected else '"'
        text = f"attr:{attribute} {comparator} {expected if bare else quote + expected + quote}"
    else:
        text = doc.text(node, "an assertion", f"write {STATEMENT_FORM}")
    try:
        return parse_statement(text)
    except TracetestSyntaxError as error:
        doc.fail(node, f"assertion {text.strip()!r} is malformed: it {error.message} "
                 f"(column {error.column}); an assertion is {STATEMENT_FORM}")


def _glob(text: str) -> str:
    """Tracetest compares names exactly; flow spec names are globs, so their glob characters
    are escaped (`GET /pokemon?take=1` is `GET /pokemon[?]take=1`)."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def _filter_value(value: Any) -> Any:
    """Tracetest compares every attribute as a string, so `"true"` matches a boolean true;
    a flow spec boolean matches only a boolean, and a number also the string spelling it."""
    if value in ("true", "false"):
        return value == "true"
    return value


def _select(selector: SpanSelector) -> dict[str, Any] | str:
    """One `span[...]` (its own filters and pseudo-class; the caller handles a descendant) as
    a flow spec selector, or why it cannot be one."""
    select: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    presence: list[str] = []
    problems: list[str] = []

    def put(target: dict[str, Any], key: str, value: Any, text: str) -> None:
        if key in target and target[key] != value:
            problems.append(f"{text} contradicts another filter on {key}, so it selects no span")
        target[key] = value

    for item in selector.filters:
        name, value = item.name, item.value
        if name == "service.name":
            if value == _TRIGGER_SERVICE:
                problems.append(f"{item.text} {_NO_TRIGGER_SPAN}")
            elif item.op != "=" or not isinstance(value, str) or value in ("", "*"):
                problems.append(f"{item.text}: a flow spec selects a service by its exact name")
            else:
                put(select, "service", value, item.text)
        elif name in ("name", "tracetest.span.name"):
            if str(value) == _TRIGGER_SPAN:
                problems.append(f"{item.text} {_NO_TRIGGER_SPAN}")
            elif str(value) == "":
                problems.append(f"{item.text}: an empty name selects no span")
            else:
                glob = _glob(str(value)) if item.op == "=" else f"*{_glob(str(value))}*"
                put(select, "name", glob, item.text)
        elif name == "kind":
            if item.op == "=" and value in _KINDS:
                put(select, "kind", value, item.text)
            else:
                problems.append(f"{item.text}: a flow spec selects kind {', '.join(_KINDS)}, exactly")
        elif name == "tracetest.span.type":
            if item.op == "=" and value in _TYPE_ATTRIBUTE:
                presence.append(_TYPE_ATTRIBUTE[str(value)])
            elif not (item.op == "=" and value == "general"):  # general: any span (see the README)
                known = "" if value in _TYPES else f" (Tracetest's types: {', '.join(_TYPES)})"
                problems.append(f"{item.text}: no semantic-convention attribute marks this span type{known}")
        elif name == "tracetest.span.status_code":
            label = _status_label(value)
            if item.op != "=" or label is None:
                problems.append(f"{item.text}: a flow spec selects status ok, error or unset, exactly")
            else:
                put(select, "status", label, item.text)
        elif name.startswith("tracetest."):
            problems.append(f"{item.text}: {name} is Tracetest's own attribute; tracebaton's spans do not "
                            "have it")
        elif item.op != "=":
            problems.append(f"{item.text}: a flow spec selects attributes by equality only")
        elif value in ("", "*"):
            problems.append(f"{item.text}: a flow spec reads {value!r} as "
                            + ("'present'" if value == "*" else "a value Tracetest treats as absent"))
        else:
            put(attributes, name, _filter_value(value), item.text)
    if selector.pseudo is not None:
        problems.append(f":{selector.pseudo} picks a span by its position among those selected; a flow spec "
                        "selector has no position — select that span by its name, attributes or status")
    if problems:
        return "; ".join(problems)
    for key in presence:
        # `http.method="GET"` already says the span is an http span
        if not any(set(attribute_names(key)) & set(attribute_names(other)) for other in attributes):
            attributes[key] = "*"
    if attributes:
        select["attributes"] = attributes
    return select


def _status_label(value: Any) -> str | None:
    text = str(value).strip().upper().removeprefix("STATUS_CODE_")
    return _STATUS.get(text)


def _hop(selector: SpanSelector) -> str | None:
    """`span[service.name="A" kind="client"] span[service.name="B" kind="server"]`: a call
    from A answered in B, which is what the hop `A -> B` checks. Anything more, or less,
    is not a hop."""
    outer, inner = selector, selector.child
    if inner is None or inner.child is not None or outer.pseudo or inner.pseudo:
        return None
    parts = []
    for side, kinds in ((outer, ("client", "producer")), (inner, ("server", "consumer"))):
        fields = {item.name: item for item in side.filters}
        if set(fields) != {"service.name", "kind"} or len(side.filters) != 2 \
                or any(item.op != "=" for item in side.filters) or fields["kind"].value not in kinds:
            return None
        service = fields["service.name"].value
        if not isinstance(service, str) or not re.fullmatch(r"[^\s*]+", service) or "->" in service \
                or "~>" in service:
            return None
        parts.append((service, fields["kind"].value))
    (caller, caller_kind), (callee, callee_kind) = parts
    arrow = "~>" if caller_kind == "producer" or callee_kind == "consumer" else "->"
    return f"{caller} {arrow} {callee}"


def _descendant_reason(selector: SpanSelector) -> str:
    services = [item.value for side in (selector, selector.child) if side is not None
                for item in side.filters if item.name == "service.name" and item.op == "="]
    hint = ""
    if len(services) == 2:
        hint = (f"; if {services[0]} calls {services[1]} directly, write `{services[0]} -> {services[1]}` in "
                "expect.hops (a selector of service.name and kind client, then service.name and kind "
                "server, converts to that hop)")
    return ("it selects spans below (descendants of) other spans, and a flow spec selector cannot say "
            "'below'" + hint)


def _check(statement: Statement) -> _Check | str:
    """An assertion as a flow spec check, or why it has none."""
    left, right, op = statement.left, statement.right, statement.comparator
    if len(left) != 1 or left[0].kind not in ("attribute", "barename"):
        return ("computes its left side (a filter such as json_path, arithmetic, a variable or a literal); "
                "a flow spec compares an attribute's value as it is")
    name = left[0].text.removeprefix("attr:")
    if len(right) != 1 or right[0].kind not in ("number", "duration", "string"):
        return ("compares with something computed (another attribute, a variable, an expression); a flow "
                "spec compares with a literal value")
    value = right[0]
    if value.kind == "string" and "${" in value.text:
        return "interpolates ${...} (a Tracetest variable or expression); a flow spec compares with a literal"
    if name == "tracetest.selected_spans.count":
        return _count(op, value)
    if name == "tracetest.span.duration":
        return _duration(op, value)
    if name == "tracetest.span.status_code":
        label = _status_label(_literal(value))
        if op not in ("=", "!=") or label is None:
            return ("a flow spec checks a span's status by selecting ok, error or unset (Tracetest writes "
                    "STATUS_CODE_OK, STATUS_CODE_ERROR, STATUS_CODE_UNSET); only = and != convert")
        return _Status(op == "=", label)
    if name == "tracetest.span.status":
        return ("Tracetest sets no attribute tracetest.span.status, so this fails there; did you mean "
                "tracetest.span.status_code?")
    if name == "tracetest.span.type":
        if op == "=" and _literal(value) in _TYPE_ATTRIBUTE:
            return _Attribute(_TYPE_ATTRIBUTE[str(_literal(value))], "*")
        return "only `= http|database|rpc|messaging` converts: to the attribute that marks the type"
    if name in ("name", "tracetest.span.name"):
        return "a flow spec selects spans by name but does not assert it; put the name in the selector"
    if name.startswith("tracetest.response."):
        return ("is the response Tracetest's trigger received; tracebaton sends no request — assert the "
                "entry span's attributes (http.response.status_code) instead")
    if name.startswith("tracetest."):
        return f"{name} is Tracetest's own attribute; tracebaton's spans do not have it"
    if name == "span.events":
        return "span events are Tracetest's JSON of them; a flow spec checks attributes only"
    if name.startswith(_RESOURCE_PREFIXES):
        return (f"{name} is a resource attribute, and a flow spec's `attributes:` reads the span's own; "
                "select by it instead (service.name is the selector's `service`)")
    if op != "=":
        return (f"a flow spec checks attributes for equality only (`attributes: {{{name}: value}}`); {op} "
                "has no counterpart")
    literal = _literal(value)
    if value.kind == "duration":
        return "compares an attribute with a duration; a flow spec compares attribute values as they are"
    if literal in ("", "*"):
        return ("Tracetest treats an empty value as absent, so this never passes there" if literal == ""
                else "a flow spec reads \"*\" as 'present with any value', not the text *")
    return _Attribute(name, _filter_value(literal))


def _literal(token: Token) -> Any:
    if token.kind == "string":
        return token.text[1:-1]  # Tracetest strips the quotes and reads no escapes (str.go)
    if token.kind == "number":
        return float(token.text) if "." in token.text else int(token.text)
    return token.text


def _count(op: str, token: Token) -> _Count | str:
    literal = _literal(token)
    if isinstance(literal, str) and (number := whole_number(literal)) is not None:
        literal = number
    if not isinstance(literal, int):
        return "counts spans against something that is not a whole number"
    bounds = {"=": _Count("==", literal), ">=": _Count(">=", literal), "<=": _Count("<=", literal),
              ">": _Count(">=", literal + 1)}
    if op in bounds:
        return bounds[op]
    if op == "<":
        return _Count("<=", literal - 1) if literal > 0 else "can never hold (fewer than 0 spans)"
    if op == "!=" and literal == 0:
        return _Count(">=", 1)
    return f"a flow spec count is exact, at least or at most; {op} {literal} has no counterpart"


def _duration(op: str, token: Token) -> _MaxDuration | str:
    if op in (">", ">="):
        return "a flow spec has max_duration only; a lower bound on a span's duration has no counterpart"
    if op not in ("<", "<="):
        return f"a flow spec bounds a span's duration from above (max_duration); {op} has no counterpart"
    if token.kind == "string":
        return "compares the duration with text; write a number and a unit, e.g. < 500ms"
    ns = duration_ns(token)
    if ns is None or ns == 0 or ns > MAX_DURATION_NS:
        return "is not a duration a flow spec takes (above 0, at most 30 days, in whole ns)"
    return _MaxDuration(ns)


_COUNTS_THE_TRIGGER = (
    "its selector also selects the span Tracetest's trigger adds to every trace (it has no filter that "
    "span fails), so Tracetest's count includes it and tracebaton's traces have no such span; write the "
    "count for your own spans by hand")
_OTHER_STATUSES = {"ok": ("error", "unset"), "error": ("ok", "unset"), "unset": ("ok", "error")}


def _entries(selects: Sequence[dict[str, Any]], checks: Sequence[tuple[int, Statement, _Check]], *,
             requires_a_span: bool) -> tuple[list[_Entry], list[tuple[int, str, str]]]:
    """The `spans:` entries that say what the checks say about the spans `selects` picks
    (their union, when several), and the checks that cannot be said, with why.
    `requires_a_span`: some assertion of the spec, converted or not, fails on no span."""
    skipped: list[tuple[int, str, str]] = []
    per_span = [(at, statement, check) for at, statement, check in checks if not isinstance(check, _Count)]
    counts = [(at, statement, check) for at, statement, check in checks if isinstance(check, _Count)]
    union = len(selects) > 1
    entries: list[_Entry] = []
    for select in selects:
        main = _Entry(dict(select), count=">=0" if union else None)
        spilled: list[_Entry] = []
        needs_main = requires_a_span and not union
        for at, statement, check in per_span:
            if isinstance(check, _Attribute):
                target = next((entry for entry in [main, *spilled] if entry.count == main.count
                               and entry.attributes.get(check.key, check.value) == check.value), None)
                if target is None:  # a second value for one attribute: both must hold, as in Tracetest
                    target = _Entry(dict(select), count=main.count)
                    spilled.append(target)
                target.attributes[check.key] = check.value
                needs_main = True
            elif isinstance(check, _MaxDuration):
                main.max_duration_ns = min(check.ns, main.max_duration_ns or check.ns)
                needs_main = True
            else:
                selected = select.get("status")
                if selected is not None and (selected == check.label) != check.equal:
                    if select is selects[0]:
                        skipped.append((at, f"assertion `{statement.text}`",
                                        f"can never hold: its selector selects status {selected}"))
                    continue
                needs_main = True
                if selected is None:  # "all are X" is "none is any other status"
                    others = _OTHER_STATUSES[check.label] if check.equal else (check.label,)
                    spilled += [_Entry({**select, "status": other}, count=0) for other in others]
        for count_at, count_statement, count in counts:
            if not select:
                skipped.append((count_at, f"assertion `{count_statement.text}`", _COUNTS_THE_TRIGGER))
            elif union:
                if count.op in ("==", "<=") and count.n == 0:
                    spilled.append(_Entry(dict(select), count=0))
                elif select is selects[0]:
                    skipped.append((count_at, f"assertion `{count_statement.text}`",
                                    "counts the spans of several selectors together; a flow spec counts "
                                    "per selector"))
            elif count.lower >= 1 and main.count is None:
                main.count = count.value()  # exact: the entry asks for at least one span anyway
                needs_main = True
            else:
                spilled.append(_Entry(dict(select), count=count.value()))
        if needs_main and not (union and not main.attributes and main.max_duration_ns is None):
            entries.append(main)
        entries += spilled
    return entries, skipped
