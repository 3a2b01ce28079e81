"""A flow's normalised structure, as a golden-flow snapshot keeps it (DESIGN §6 "Flow
snapshots"), and its YAML form.

A `FlowShape` is the hops of a flow as a tree: each hop lists the hops its callee made
(`calls`), in steps whose order is proven; the hops inside one step are concurrent as far
as the spans can tell, and are written in a canonical order. A hop also records what a
change to a service would alter: its kind, how many times it happened, which captured
headers and baggage keys its callee received, how it answered, whether its propagation
broke or its callee span never came. No ids, no timestamps; the only time is a budget with
headroom, which a snapshot writes once.

Stability is the point: the same healthy flow must give the same shape byte for byte on
every run, however its concurrent calls interleave. So:

- hops are grouped by what they are (caller, callee, kind) under the hop whose callee made
  them, never by when they happened or which span ids they got;
- order between two hops is recorded only where it is proven: a hop nested in another's
  callee comes below it (`calls`), and siblings are in sequence only when every pair of
  them ended before the other started on one clock (the engine's order rule, `_order`),
  and the later one started at least `LAUNCH_NS` after the earlier one — two calls
  launched together that merely failed to overlap on a busy machine stay one step;
- steps are the finest split of siblings into blocks where everything in one block is
  before everything in the next: computed from the order relation alone, so it cannot
  depend on the order in which concurrent calls started or finished;
- within a step, hops are written sorted by their text: a canonical order where no order
  was proven, and only there.

Pure: a `FlowTrace` and its hops in, a `FlowShape` out; YAML text in and out.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tracebaton import FlowSpecError, whole_number
from tracebaton.collector import StatusCode, StoredSpan

from ._checks_propagation import baggage_entries
from ._hops import Hop
from ._order import Relation, hop_relation
from ._result import HopKind
from ._selectors import attribute_lookup, header_values
from ._spec import FlowSpec, HopPattern
from ._spec_dump import dump_yaml
from ._spec_load import _load_yaml as load_yaml
from ._spec_parse import parse_flow_spec
from ._spec_values import (
    as_bool,
    as_list,
    as_mapping,
    check_keys,
    fail,
    format_duration,
    item_path,
    key_path,
    parse_duration,
    parse_hop,
)
from ._trace import FlowTrace

__all__ = [
    "FORMAT",
    "LAUNCH_NS",
    "FlowShape",
    "HopNode",
    "SnapshotFile",
    "budget_for",
    "captured_header_names",
    "flow_shape",
    "read_snapshot",
    "shape_from_json",
    "shape_to_json",
    "snapshot_yaml",
    "with_budgets",
]

FORMAT = 1
"""The `snapshot.format` this code writes and reads."""
LAUNCH_NS = 1_000_000
"""Siblings that started less than this apart on one clock were launched together, as far as
anyone can tell from spans, even if they did not overlap: recorded as one step."""
_MAX_ORDERED = 200
"""Siblings beyond which no order among them is recorded (one step): the order relation is
quadratic in their number, and no person reads a sequence of that many calls anyway."""
_MS = 1_000_000
_BUDGET_STEPS_MS = (250, 500, 1000, 2000, 5000, 10_000, 20_000, 30_000, 60_000)
_BUDGET_FLOOR_NS = 200 * _MS
_BUDGET_FACTOR = 3
_GROUP = "any order"
_HOP_KEYS = ("kind", "times", "optional", "headers", "baggage", "status", "broken", "answered", "budget",
             "calls")
_SNAPSHOT_KEYS = ("format", "hops")
_RANGE = re.compile(r"^\s*(\d+)\s*\.\.\s*(\d+)\s*$")
_STATUS = re.compile(r"^(\d{3}|grpc \d+|error( [\w.:-]+)?)$")
_HEADER_PREFIXES = ("http.request.header.", "rpc.grpc.request.metadata.")
_KIND_WORDS = {"peer": HopKind.PEER}

HEADER_COMMENT = """\
# tracebaton flow snapshot (a golden flow). `pytest --tracebaton-update` writes it; a test's
# flow.assert_snapshot() fails with a hop diff when the flow no longer matches it.
# The keys above `snapshot:` are a flow spec, judged as any spec is: edit them freely.
# Under `snapshot:`, mark a hop `optional: true`, or give a range of counts, `times: "1..3"`;
# both survive --tracebaton-update unless the flow contradicts them.
"""


@dataclasses.dataclass(frozen=True, slots=True)
class HopNode:
    """Every instance of one hop (caller, callee, kind) below one parent, merged."""

    caller: str
    callee: str
    kind: HopKind
    times: int = 1
    times_range: tuple[int, int] | None = None
    """A range the user wrote (`times: "1..2"`); None: exactly `times`."""
    optional: bool = False
    headers: tuple[str, ...] = ()
    """Captured request headers present on every instance's callee span, lower-case, sorted."""
    baggage: tuple[str, ...] = ()
    """Baggage keys every instance's callee received, sorted."""
    status: tuple[str, ...] = ()
    """How the instances answered, each distinct answer once, sorted; () when all were ok."""
    broken: bool = False
    """An instance's propagation broke (its callee started a trace of its own)."""
    answered: bool = True
    """False when an instance's callee span never came (refused, timed out before it started)."""
    budget_ns: int | None = None
    calls: tuple[tuple[HopNode, ...], ...] = ()
    """The hops the callees made: steps in proven order, each a group in canonical order."""
    took_ns: int | None = dataclasses.field(default=None, compare=False)
    """Observed, never written: the slowest instance (what a budget is checked against)."""
    note: str = dataclasses.field(default="", compare=False)
    """Observed, never written: why the hop broke or has no callee, with ids."""

    @property
    def text(self) -> str:
        return str(HopPattern(self.caller, self.callee, self.kind is HopKind.ASYNC))

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.caller, self.callee, self.kind.value)

    @property
    def bounds(self) -> tuple[int, int]:
        """The counts the snapshot accepts."""
        low, high = self.times_range or (self.times, self.times)
        return (0 if self.optional else low, high)

    def walk(self) -> Iterable[HopNode]:
        yield self
        for step in self.calls:
            for node in step:
                yield from node.walk()


@dataclasses.dataclass(frozen=True, slots=True)
class FlowShape:
    hops: tuple[tuple[HopNode, ...], ...] = ()
    """The hops no other hop's callee made (the test's own, and orphans of the flow)."""

    def walk(self) -> Iterable[HopNode]:
        for step in self.hops:
            for node in step:
                yield from node.walk()


# normalising a flow ------------------------------------------------------------------------


def flow_shape(trace: FlowTrace, hops: Sequence[Hop]) -> FlowShape:
    """The shape of a settled flow: `hops` as the engine found them (broken ones included)."""
    hops = sorted(hops, key=lambda h: (h.anchor.start_unix_nano, h.anchor.span_id,
                                       h.callee_span.span_id if h.callee_span else ""))
    by_callee: dict[str, int] = {}
    for index, hop in enumerate(hops):
        if hop.callee_span is not None:
            by_callee.setdefault(hop.callee_span.span_id, index)
    parent: list[int | None] = []
    for index, hop in enumerate(hops):
        found = None
        for ancestor in trace.ancestors(hop.anchor):
            owner = by_callee.get(ancestor.span_id)
            if owner is not None and owner != index:
                found = owner
                break
        parent.append(found)
    children: dict[int | None, list[int]] = {}
    for index, owner in enumerate(parent):
        children.setdefault(owner, []).append(index)
    builder = _Builder(trace, hops, parent, children)
    return FlowShape(builder.steps([None]))


class _Builder:
    def __init__(self, trace: FlowTrace, hops: Sequence[Hop], parent: Sequence[int | None],
                 children: Mapping[int | None, Sequence[int]]) -> None:
        self.trace, self.hops, self.parent, self.children = trace, hops, parent, children

    def steps(self, owners: Sequence[int | None]) -> tuple[tuple[HopNode, ...], ...]:
        """The hops made below any of `owners` (instances of one node), merged and ordered."""
        groups: dict[tuple[str, str, str], list[int]] = {}
        for owner in owners:
            for index in self.children.get(owner, ()):
                hop = self.hops[index]
                groups.setdefault((hop.caller, hop.callee, hop.kind.value), []).append(index)
        keys = sorted(groups)
        nodes = {key: self.node(groups[key]) for key in keys}
        blocks = _series_blocks(keys, lambda a, b: self.precedes(groups[a], groups[b]))
        return tuple(tuple(nodes[key] for key in sorted(block, key=lambda k: (nodes[k].text, k)))
                     for block in blocks)

    def precedes(self, first: Sequence[int], second: Sequence[int]) -> bool:
        """Every instance of `first` is proven before every instance of `second` made by the
        same parent instance, and at least one such pair exists."""
        pairs = [(a, b) for a in first for b in second if self.parent[a] == self.parent[b]]
        return bool(pairs) and all(self.before(self.hops[a], self.hops[b]) for a, b in pairs)

    def before(self, x: Hop, y: Hop) -> bool:
        if hop_relation(self.trace, x, y) is not Relation.BEFORE:
            return False
        if x.anchor.service == y.anchor.service:  # one process, one clock: launched apart?
            return y.anchor.start_unix_nano - x.anchor.start_unix_nano >= LAUNCH_NS
        return True

    def node(self, instances: Sequence[int]) -> HopNode:
        hops = [self.hops[i] for i in instances]
        first = hops[0]
        answered = [h for h in hops if h.callee_span is not None]
        checked = [h for h in answered if first.kind is not HopKind.PEER]
        headers = _common(captured_header_names(h.callee_span) for h in checked if h.callee_span)
        baggage = _common(_baggage_keys(h.callee_span) for h in checked if h.callee_span)
        statuses = sorted({_status(h) for h in hops})
        took = [t for h in hops if (t := _took_ns(h)) is not None]
        notes = [h.detail for h in hops if h.broken or (h.callee_span is None and h.kind is not HopKind.PEER)]
        return HopNode(
            caller=first.caller,
            callee=first.callee,
            kind=first.kind,
            times=len(hops),
            headers=headers,
            baggage=baggage,
            status=() if statuses == ["ok"] else tuple(statuses),
            broken=any(h.broken for h in hops),
            answered=first.kind is HopKind.PEER or len(answered) == len(hops),
            calls=self.steps(instances),
            took_ns=max(took) if took else None,
            note=next((n for n in notes if n), ""),
        )


def _series_blocks(keys: Sequence[Any], precedes: Any) -> list[list[Any]]:
    """The finest split of `keys` into blocks B1 < B2 < … with every member of an earlier block
    preceding every member of a later one. It depends on `precedes` only, never on the order
    of `keys`: members that are not ordered either way end up in one block, and so do blocks
    the evidence orders both ways (a cycle)."""
    count = len(keys)
    if count == 0:
        return []
    if count == 1 or count > _MAX_ORDERED:
        return [list(keys)]
    before = [[i != j and bool(precedes(keys[i], keys[j])) for j in range(count)] for i in range(count)]
    block = list(range(count))  # union-find over indexes

    def find(i: int) -> int:
        while block[i] != i:
            block[i] = block[block[i]]
            i = block[i]
        return i

    def union(i: int, j: int) -> bool:
        a, b = find(i), find(j)
        if a == b:
            return False
        block[max(a, b)] = min(a, b)
        return True

    for i, j in itertools.combinations(range(count), 2):
        if not before[i][j] and not before[j][i]:
            union(i, j)  # unordered: they share a block
    while True:
        roots = sorted({find(i) for i in range(count)})
        members = {r: [i for i in range(count) if find(i) == r] for r in roots}
        # block r precedes block s when every cross pair says so
        ahead = {(r, s): all(before[i][j] for i in members[r] for j in members[s])
                 for r in roots for s in roots if r != s}
        changed = False
        for r, s in itertools.combinations(roots, 2):
            if not ahead[r, s] and not ahead[s, r]:
                changed |= union(r, s)  # mixed evidence: no order between them is proven
        if changed:
            continue
        # what remains is a tournament; a cycle in it (a before b before c before a) is no order
        reach = {(r, s): ahead[r, s] for r in roots for s in roots if r != s}
        for k, r, s in itertools.product(roots, roots, roots):
            if len({k, r, s}) == 3 and reach[r, k] and reach[k, s]:
                reach[r, s] = True
        for r, s in itertools.combinations(roots, 2):
            if reach[r, s] and reach[s, r]:
                changed |= union(r, s)
        if not changed:
            ranked = sorted(roots, key=lambda r: -sum(ahead[r, s] for s in roots if s != r))
            return [[keys[i] for i in members[r]] for r in ranked]


def _common(sets: Iterable[Iterable[str]]) -> tuple[str, ...]:
    shared: set[str] | None = None
    for names in sets:
        shared = set(names) if shared is None else shared & set(names)
    return tuple(sorted(shared or ()))


def captured_header_names(span: StoredSpan) -> set[str]:
    """The request headers a callee span captured, as header names (lower case, dashes)."""
    names = set()
    for key in span.attributes:
        for prefix in _HEADER_PREFIXES:
            if key.startswith(prefix):
                # Python instrumentations write dashes as underscores; header names ignore case
                names.add(key[len(prefix):].strip().lower().replace("_", "-"))
    return names


def _baggage_keys(span: StoredSpan) -> set[str]:
    values = header_values(span.attributes, "baggage")
    return set(baggage_entries(",".join(values))) if values else set()


def _status(hop: Hop) -> str:
    """How the hand-off answered: the caller's view first (what it got back), else the
    callee's (the test's own root and a producer record no answer). "ok" when nothing failed."""
    sides = [hop.callee_span] if hop.from_test else [hop.anchor, hop.callee_span]
    for span in sides:
        if span is None:
            continue
        found, code = attribute_lookup(span.attributes, "http.response.status_code")
        number = whole_number(str(code)) if found and isinstance(code, int | str) else None
        if number is not None:
            failed = number >= 400 or span.status_code is StatusCode.ERROR
            return str(number) if failed else "ok"
        grpc = span.attributes.get("rpc.grpc.status_code")
        if isinstance(grpc, int) and not isinstance(grpc, bool):
            return "ok" if grpc == 0 else f"grpc {grpc}"
        if span.status_code is StatusCode.ERROR:
            kind = span.attributes.get("error.type")
            word = re.sub(r"[^\w.:-]", "", kind) if isinstance(kind, str) else ""
            return f"error {word}" if word and not word.isdigit() else "error"
    return "ok"


def _took_ns(hop: Hop) -> int | None:
    """What a hop's budget measures: its caller span; for the test's own root (which spans the
    whole `with` block, test code included) its callee, the entry span. Async: nothing."""
    if hop.kind is HopKind.ASYNC:
        return None
    if hop.from_test:
        return hop.callee_span.duration_ns if hop.callee_span is not None else None
    return hop.anchor.duration_ns


# budgets -----------------------------------------------------------------------------------


def budget_for(took_ns: int) -> int:
    """A budget with headroom: three times what was seen and at least 200 ms more, rounded up
    to 250 ms, 500 ms, 1 s, 2 s, 5 s, … A budget is written once and kept while it holds, so
    it must take a busy machine's spikes, yet still catch a hop that became much slower."""
    wanted = max(took_ns * _BUDGET_FACTOR, took_ns + _BUDGET_FLOOR_NS)
    for step in _BUDGET_STEPS_MS:
        if step * _MS >= wanted:
            return step * _MS
    return -(-wanted // (60_000 * _MS)) * 60_000 * _MS  # whole minutes beyond that


def with_budgets(shape: FlowShape) -> FlowShape:
    """Budgets with headroom for every hop that has none and whose time was seen."""
    return FlowShape(_budget_steps(shape.hops))


def _budget_steps(steps: tuple[tuple[HopNode, ...], ...]) -> tuple[tuple[HopNode, ...], ...]:
    return tuple(tuple(_budget_node(node) for node in step) for step in steps)


def _budget_node(node: HopNode) -> HopNode:
    budget = node.budget_ns
    if budget is None and node.took_ns is not None:
        budget = budget_for(node.took_ns)
    return dataclasses.replace(node, budget_ns=budget, calls=_budget_steps(node.calls))


# the YAML form -----------------------------------------------------------------------------


def shape_to_json(shape: FlowShape) -> dict[str, Any]:
    """The `snapshot:` section as plain data (what the file holds, and the API sends)."""
    return {"format": FORMAT, "hops": _steps_value(shape.hops)}


def _steps_value(steps: tuple[tuple[HopNode, ...], ...]) -> list[Any]:
    return [_node_value(step[0]) if len(step) == 1 else {_GROUP: [_node_value(n) for n in step]}
            for step in steps]


def _node_value(node: HopNode) -> Any:
    props: dict[str, Any] = {}
    if node.kind is HopKind.PEER:
        props["kind"] = "peer"
    if node.times_range is not None:
        props["times"] = f"{node.times_range[0]}..{node.times_range[1]}"
    elif node.times != 1:
        props["times"] = node.times
    if node.optional:
        props["optional"] = True
    if node.headers:
        props["headers"] = list(node.headers)
    if node.baggage:
        props["baggage"] = list(node.baggage)
    if node.status:
        values = [s if (number := whole_number(s)) is None else number for s in node.status]
        props["status"] = values[0] if len(values) == 1 else values
    if node.broken:
        props["broken"] = True
    if not node.answered:
        props["answered"] = False
    if node.budget_ns is not None:
        props["budget"] = format_duration(node.budget_ns)
    if node.calls:
        props["calls"] = _steps_value(node.calls)
    return {node.text: props} if props else node.text


def snapshot_yaml(spec: Mapping[str, Any], shape: FlowShape) -> str:
    """The snapshot file: a comment, the flow spec's keys as given, then `snapshot:`."""
    body = {**{k: v for k, v in spec.items() if k != "snapshot"}, "snapshot": shape_to_json(shape)}
    return HEADER_COMMENT + dump_yaml(body)


@dataclasses.dataclass(frozen=True)
class SnapshotFile:
    spec_raw: Mapping[str, Any]
    """The keys above `snapshot:` as written, so an update that keeps them keeps them as they were."""
    spec: FlowSpec
    shape: FlowShape


_FIX_SNAPSHOT = ("fix it by hand, or delete the file and record it again with `pytest --tracebaton-update`")


def read_snapshot(source: str | bytes | Mapping[str, Any], origin: str = "snapshot") -> SnapshotFile:
    """A snapshot file's text (or its data). Raises FlowSpecError naming the file, the key,
    the rule and the fix."""
    try:
        raw = load_yaml(source, origin) if isinstance(source, str | bytes) else source
    except FlowSpecError as error:
        raise FlowSpecError(f"{error}; or delete the file and record it again with "
                            "`pytest --tracebaton-update`") from None
    if raw is None:
        raise FlowSpecError(f"{origin}: is empty; {_FIX_SNAPSHOT}")
    top = as_mapping(raw, origin, "a snapshot file is a flow spec mapping with a `snapshot:` section; "
                     + _FIX_SNAPSHOT)
    if "snapshot" not in top:
        raise FlowSpecError(f"{origin}: has no `snapshot:` section, so it is a flow spec, not a snapshot; "
                            "judge it with flow.assert_spec(), or delete it and record a snapshot with "
                            "`pytest --tracebaton-update`")
    spec_raw = {k: v for k, v in top.items() if k != "snapshot"}
    try:
        spec = parse_flow_spec(spec_raw)
    except FlowSpecError as error:
        raise FlowSpecError(f"{origin}: the flow spec above `snapshot:` is invalid: {error}; or delete the "
                            "file and record it again with `pytest --tracebaton-update`") from None
    expect = spec_raw.get("expect")
    for derived in ("hops", "order"):
        if isinstance(expect, Mapping) and derived in expect:
            raise FlowSpecError(
                f"{origin}: expect.{derived}: a snapshot's hops and their order are its `snapshot:` "
                f"section; remove expect.{derived} and edit the hops under `snapshot:` (mark one "
                "`optional: true`, or give `times: \"1..3\"`)")
    try:
        shape = _read_section(top["snapshot"])
    except FlowSpecError as error:
        raise FlowSpecError(f"{origin}: {error}; {_FIX_SNAPSHOT}") from None
    return SnapshotFile(spec_raw, spec, shape)


def shape_from_json(data: Mapping[str, Any]) -> FlowShape:
    """The inverse of `shape_to_json`; raises FlowSpecError on data it did not write."""
    return _read_section(data)


def _read_section(value: object) -> FlowShape:
    section = as_mapping(value, "snapshot", "write `snapshot:` as a mapping with `format: 1` and `hops:`")
    check_keys(section, "snapshot", _SNAPSHOT_KEYS)
    version = section.get("format", FORMAT)
    if version != FORMAT:
        fail("snapshot.format", version, f"is not a format this tracebaton reads ({FORMAT})",
             "record the snapshot again with this version of tracebaton")
    hops = section.get("hops", [])
    return FlowShape(_read_steps(hops, "snapshot.hops", None))


def _read_steps(value: object, path: str, owner: HopNode | None) -> tuple[tuple[HopNode, ...], ...]:
    fix = (f"write a list of hops, each `caller -> callee` or a mapping `caller -> callee: {{...}}`, "
           f"and `{_GROUP}: [...]` for hops in no proven order")
    items = as_list([] if value is None else value, path, fix)
    steps: list[tuple[HopNode, ...]] = []
    seen: dict[tuple[str, str, str], str] = {}
    for index, item in enumerate(items):
        here = item_path(path, index)
        if isinstance(item, Mapping) and len(item) == 1 and _GROUP in item:
            group = as_list(item[_GROUP], key_path(here, _GROUP), fix)
            if not group:
                fail(key_path(here, _GROUP), group, "is empty", "remove it, or list the hops it holds")
            nodes = []
            for inner, entry in enumerate(group):
                if isinstance(entry, Mapping) and _GROUP in entry:
                    fail(item_path(key_path(here, _GROUP), inner), entry, "is a group inside a group",
                         "list its hops in the outer group")
                nodes.append(_read_node(entry, item_path(key_path(here, _GROUP), inner), owner))
            step = tuple(nodes)
        else:
            step = (_read_node(item, here, owner),)
        for node in step:
            if node.key in seen:
                fail(here, node.text, f"appears twice under {_owner_text(owner)} (also at {seen[node.key]})",
                     "keep one entry and give it `times:` for how often it happens")
            seen[node.key] = here
        steps.append(step)
    return tuple(steps)


def _owner_text(owner: HopNode | None) -> str:
    return "the top of the flow" if owner is None else owner.text


def _read_node(value: object, path: str, owner: HopNode | None) -> HopNode:
    props: Mapping[Any, Any] = {}
    if isinstance(value, str):
        text = value
    elif isinstance(value, Mapping) and len(value) == 1:
        text, raw = next(iter(value.items()))
        props = as_mapping({} if raw is None else raw, item_path(path, text),
                           f"write the hop's properties as a mapping ({', '.join(_HOP_KEYS)})")
    else:
        fail(path, value, "is not a hop", "write `caller -> callee`, or `caller -> callee:` and its "
             "properties indented below it")
    pattern = parse_hop(text, path)
    where = item_path(path, text)
    if "*" in (pattern.caller, pattern.callee):
        fail(path, text, "names `*`, but a snapshot records services by name", "write the service's name")
    check_keys(props, where, _HOP_KEYS)
    kind = HopKind.ASYNC if pattern.asynchronous else HopKind.SYNC
    if "kind" in props:
        word = props["kind"]
        if word not in _KIND_WORDS or pattern.asynchronous:
            fail(key_path(where, "kind"), word, "is not a kind a snapshot writes",
                 "write `kind: peer` for an uninstrumented peer on a `->` hop, or leave it out")
        kind = _KIND_WORDS[word]
    times, times_range = _read_times(props.get("times", 1), key_path(where, "times"))
    budget = props.get("budget")
    node = HopNode(
        caller=pattern.caller,
        callee=pattern.callee,
        kind=kind,
        times=times,
        times_range=times_range,
        optional=as_bool(props.get("optional", False), key_path(where, "optional")),
        headers=_names(props.get("headers", []), key_path(where, "headers"), lower=True),
        baggage=_names(props.get("baggage", []), key_path(where, "baggage"), lower=False),
        status=_statuses(props.get("status"), key_path(where, "status")),
        broken=as_bool(props.get("broken", False), key_path(where, "broken")),
        answered=as_bool(props.get("answered", True), key_path(where, "answered")),
        budget_ns=None if budget is None else parse_duration(budget, key_path(where, "budget"),
                                                             positive=True),
    )
    return dataclasses.replace(node, calls=_read_steps(props.get("calls"), key_path(where, "calls"), node))


def _read_times(value: object, path: str) -> tuple[int, tuple[int, int] | None]:
    fix = 'write a count (`times: 2`) or a range (`times: "1..3"`)'
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            fail(path, value, "is below 1", fix + "; a hop that may not happen is `optional: true`")
        return value, None
    if isinstance(value, str) and (match := _RANGE.match(value)):
        low, high = int(match.group(1)), int(match.group(2))
        if low > high or high < 1:
            fail(path, value, "is an empty range", fix + ", the smaller number first")
        return max(low, 1), (low, high)
    return fail(path, value, "is not a count", fix)


def _names(value: object, path: str, *, lower: bool) -> tuple[str, ...]:
    items = as_list(value, path, "write a list of names, e.g. [traceparent, x-request-id]")
    names = []
    for index, item in enumerate(items):
        if not isinstance(item, str) or not item.strip():
            fail(item_path(path, index), item, "is not a name", "write each as a plain string")
        names.append(item.strip().lower() if lower else item.strip())
    return tuple(sorted(set(names)))


def _statuses(value: object, path: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    found = []
    for item in items:
        text = str(item).strip() if isinstance(item, int | str) and not isinstance(item, bool) else None
        if text is None or not (_STATUS.match(text) or text == "ok"):
            fail(path, item, "is not a status a snapshot writes",
                 "write an HTTP status (503), `grpc 14`, `error`, `error ReadTimeout` or `ok`")
        found.append(text)
    statuses = tuple(sorted(set(found)))
    return () if statuses == ("ok",) else statuses
