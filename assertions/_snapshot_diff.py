"""The hop diff of two flow shapes (DESIGN §6 "Flow snapshots", §8 `tracebaton diff`): the
one renderer behind a failed `flow.assert_snapshot()`, `tracebaton diff TRACE_A TRACE_B`
and the API's `/api/diff` that the dashboard draws.

`-` is the snapshot (or the first trace), `+` the flow now, `!` a hop of both whose
properties changed, with the change written on the hop's line:

    ! cart -> inventory  headers: x-request-id was present, now missing

The first changed hop is the culprit the failure's second line names. Consequences are told
from causes the way the engine attributes errors, deepest first: a hop whose answer changed
because a hop below it answered differently points at that hop, and a budget exceeded by a
hop is reported on the deepest hop that exceeded one, not on every caller whose time
includes it. Hops that follow a failure and never happened are listed, but the failure
comes first in the flow, so it is named.

Pure: two shapes in, rows out; rows in, lines out. Nothing depends on the clock or on dict
order, so golden tests can pin the text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from tracebaton import format_duration_ns

from ._render import DEFAULT_DB, _continued, _findings, _see_it, render_check, render_headline
from ._render_tree import plural, render_span_tree
from ._result import CheckState, FlowResult, HopKind
from ._snapshot import FlowShape, HopNode
from ._trace import FlowTrace

__all__ = ["Change", "DiffRow", "ShapeDiff", "diff_shapes", "render_shape_diff", "render_snapshot_verdict",
           "render_trace_diff"]

_CONTEXT = 2
"""Unchanged hops kept around each change, as in a unified diff."""
_CONSEQUENCES = {"status": "status", "budget": "budget"}
_KIND_WORDS = {HopKind.SYNC: "synchronous (->)", HopKind.ASYNC: "asynchronous (~>)",
               HopKind.PEER: "an uninstrumented peer"}


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    prop: str
    """`missing` (in the snapshot only), `new` (in the flow now only), `kind`, `times`,
    `order`, `propagation`, `callee`, `status`, `headers`, `baggage`, `budget`."""
    text: str

    def __str__(self) -> str:
        return f"{self.prop}: {self.text}"


@dataclasses.dataclass(frozen=True, slots=True)
class DiffRow:
    depth: int
    mark: str
    """` ` the same, `!` changed, `-` in the snapshot only, `+` in the flow now only."""
    hop: str
    kind: HopKind
    changes: tuple[Change, ...] = ()
    note: str = ""
    """Said of a hop that did not change (`optional, not seen`)."""
    caller: str = ""
    callee: str = ""
    seen_now: bool = True
    """False for an optional hop of the snapshot that did not happen: unchanged, yet absent
    from the flow now (a side-by-side view draws it on the snapshot's side only)."""

    @property
    def before(self) -> bool:
        """The hop is in the snapshot (A)."""
        return self.mark != "+"

    @property
    def after(self) -> bool:
        """The hop is in the flow now (B)."""
        return self.mark != "-" and self.seen_now

    @property
    def said(self) -> str:
        """What the hop's line says after the hop: its changes, else its note."""
        return "; ".join(str(c) for c in self.changes) or self.note

    @property
    def line(self) -> str:
        """The hop and what changed, as the failure's second line names it."""
        return f"{self.hop}  {self.said}" if self.said else self.hop

    def to_json(self) -> dict[str, Any]:
        return {"depth": self.depth, "mark": self.mark, "hop": self.hop, "kind": self.kind.value,
                "caller": self.caller, "callee": self.callee, "before": self.before, "after": self.after,
                "changes": [{"property": c.prop, "text": c.text} for c in self.changes],
                "note": self.note, "said": self.said}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DiffRow:
        return cls(int(data["depth"]), str(data["mark"]), str(data["hop"]), HopKind(data["kind"]),
                   tuple(Change(str(c["property"]), str(c["text"])) for c in data.get("changes", ())),
                   str(data.get("note", "")), str(data.get("caller", "")), str(data.get("callee", "")),
                   bool(data.get("after", True)) or data.get("mark") == "-")


@dataclasses.dataclass(frozen=True, slots=True)
class ShapeDiff:
    rows: tuple[DiffRow, ...]
    culprit: int | None
    """Index of the row the failure names first; None when nothing changed."""

    @property
    def same(self) -> bool:
        return self.culprit is None

    @property
    def first_change(self) -> str | None:
        return None if self.culprit is None else self.rows[self.culprit].line

    @property
    def changed(self) -> int:
        return sum(1 for row in self.rows if row.changes)

    def to_json(self) -> dict[str, Any]:
        return {"same": self.same, "first_change": self.first_change, "culprit": self.culprit,
                "changed_hops": self.changed, "rows": [row.to_json() for row in self.rows]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ShapeDiff:
        culprit = data.get("culprit")
        return cls(tuple(DiffRow.from_json(r) for r in data.get("rows", ())),
                   None if culprit is None else int(culprit))


# comparing -----------------------------------------------------------------------------------


def diff_shapes(before: FlowShape, after: FlowShape) -> ShapeDiff:
    """`before` is the snapshot (its budgets and tolerances apply), `after` the flow now."""
    rows = _diff_steps(before.hops, after.hops, 0)
    return ShapeDiff(tuple(rows), _culprit(rows))


@dataclasses.dataclass
class _Entry:
    old: HopNode | None
    new: HopNode | None
    order: list[Change] = dataclasses.field(default_factory=list)


def _flat(steps: tuple[tuple[HopNode, ...], ...]) -> list[tuple[int, HopNode]]:
    return [(index, node) for index, step in enumerate(steps) for node in step]


def _diff_steps(old_steps: tuple[tuple[HopNode, ...], ...], new_steps: tuple[tuple[HopNode, ...], ...],
                depth: int) -> list[DiffRow]:
    old, new = _flat(old_steps), _flat(new_steps)
    match = _match([n for _, n in old], [n for _, n in new])
    old_step = {id(n): s for s, n in old}
    new_step = {id(n): s for s, n in new}
    entries = {id(n): _Entry(m, n) if (m := match.get(id(n))) is not None else _Entry(None, n)
               for _, n in new}
    _order_changes([e for e in entries.values() if e.old is not None], old_step, new_step)
    # what happened, in the order it happened, with the snapshot's hops that did not happen
    # where the snapshot had them: after the hop that came before them there
    shown: list[_Entry] = [entries[id(n)] for _, n in new]
    matched_old = {id(e.old) for e in shown if e.old is not None}
    at = 0
    for _, node in old:
        if id(node) in matched_old:
            at = next(i for i, e in enumerate(shown) if e.old is node) + 1
            continue
        shown.insert(at, _Entry(node, None))
        at += 1
    rows: list[DiffRow] = []
    for entry in shown:
        rows += _entry_rows(entry, depth)
    return rows


def _match(old: Sequence[HopNode], new: Sequence[HopNode]) -> dict[int, HopNode]:
    """new node id -> the snapshot's node it is: the same hop, else the same two services (a
    hop that changed its kind)."""
    found: dict[int, HopNode] = {}
    free = list(old)
    for loose in (False, True):
        for node in new:
            if id(node) in found:
                continue
            for candidate in free:
                same = (candidate.caller, candidate.callee) == (node.caller, node.callee)
                if same and (loose or candidate.kind is node.kind):
                    found[id(node)] = candidate
                    free.remove(candidate)
                    break
    return found


def _order_changes(entries: Sequence[_Entry], old_step: Mapping[int, int],
                   new_step: Mapping[int, int]) -> None:
    """A proven inversion: the snapshot had x in a step before y's, and now y is in a step
    before x's (both orders proven, or they would share a step). It is told on the hop that
    moved: the one of the pair with more inversions, else the one the snapshot had later."""
    both = [(e, e.old, e.new) for e in entries if e.old is not None and e.new is not None]
    pairs = [(x, y, y_new.text, x_new.text) for x, x_old, x_new in both for y, y_old, y_new in both
             if old_step[id(x_old)] < old_step[id(y_old)] and new_step[id(y_new)] < new_step[id(x_new)]]
    count: dict[int, int] = {}
    for x, y, _, _ in pairs:
        count[id(x)] = count.get(id(x), 0) + 1
        count[id(y)] = count.get(id(y), 0) + 1
    was_after: dict[int, list[str]] = {}
    was_before: dict[int, list[str]] = {}
    for x, y, y_text, x_text in pairs:
        if count[id(x)] > count[id(y)]:
            was_before.setdefault(id(x), []).append(y_text)
        else:
            was_after.setdefault(id(y), []).append(x_text)
    for entry in entries:
        for words, names in (("after", was_after.get(id(entry))), ("before", was_before.get(id(entry)))):
            if names:
                them = "it" if len(names) == 1 else "them"
                now = "before" if words == "after" else "after"
                listed = ", ".join(sorted(names))
                entry.order.append(Change("order", f"was {words} {listed}, now {now} {them}"))


def _entry_rows(entry: _Entry, depth: int) -> list[DiffRow]:
    old, new = entry.old, entry.new
    if new is None:
        assert old is not None
        if old.optional or old.bounds[0] == 0:
            return [_row(depth, " ", old, note="optional, not seen", seen_now=False)]
        head = _row(depth, "-", old, (Change("missing", "in the snapshot, not seen now"),))
        return [head, *_listed(old.calls, depth + 1, "-")]
    if old is None:
        head = _row(depth, "+", new, (Change("new", "not in the snapshot"),))
        return [head, *_listed(new.calls, depth + 1, "+")]
    below = _diff_steps(old.calls, new.calls, depth + 1)
    changes = [*_changes(old, new), *entry.order]
    if any(c.prop == "budget" for row in below for c in row.changes):
        changes = [c for c in changes if c.prop != "budget"]  # its time includes the slower hop's
    changes.sort(key=lambda c: _ORDER.index(c.prop))
    return [_row(depth, "!" if changes else " ", new, tuple(changes)), *below]


def _row(depth: int, mark: str, node: HopNode, changes: tuple[Change, ...] = (), *, note: str = "",
         seen_now: bool = True) -> DiffRow:
    return DiffRow(depth, mark, node.text, node.kind, changes, note, node.caller, node.callee, seen_now)


_ORDER = ("missing", "new", "kind", "propagation", "callee", "order", "times", "status", "headers", "baggage",
          "budget")
"""The order a hop's changes are told in: what broke the hand-off first, its time last."""


def _listed(steps: tuple[tuple[HopNode, ...], ...], depth: int, mark: str) -> list[DiffRow]:
    rows = []
    for step in steps:
        for node in step:
            rows.append(_row(depth, mark, node))
            rows += _listed(node.calls, depth + 1, mark)
    return rows


def _changes(old: HopNode, new: HopNode) -> Iterator[Change]:
    if old.kind is not new.kind:
        yield Change("kind", f"was {_KIND_WORDS[old.kind]}, now {_KIND_WORDS[new.kind]}")
    if new.broken and not old.broken:
        yield Change("propagation", "was connected, now broken" + (f" — {new.note}" if new.note else ""))
    elif old.broken and not new.broken:
        yield Change("propagation", "was broken, now connected")
    if old.answered and not new.answered:
        yield Change("callee", f"was answered, now no span of {new.callee} answered")
    elif new.answered and not old.answered:
        yield Change("callee", "was unanswered, now answered")
    low, high = old.bounds
    if not low <= new.times <= high:
        was = f"{low}..{high}" if old.times_range or old.optional else str(old.times)
        yield Change("times", f"was {was}, now {new.times}")
    if old.status != new.status:
        yield Change("status", f"was {_answers(old.status)}, now {_answers(new.status)}")
    if new.answered and new.kind is not HopKind.PEER:
        yield from _presence("headers", old.headers, new.headers)
        yield from _presence("baggage", old.baggage, new.baggage)
    if old.budget_ns is not None and new.took_ns is not None and new.took_ns > old.budget_ns:
        yield Change("budget", f"took {format_duration_ns(new.took_ns)}, budget "
                               f"{format_duration_ns(old.budget_ns)}")


def _answers(status: tuple[str, ...]) -> str:
    return " and ".join(status) if status else "ok"


def _presence(prop: str, old: tuple[str, ...], new: tuple[str, ...]) -> Iterator[Change]:
    lost = [name for name in old if name not in new]
    found = [name for name in new if name not in old]
    parts = []
    if lost:
        parts.append(f"{', '.join(lost)} {'was' if len(lost) == 1 else 'were'} present, now missing")
    if found:
        parts.append(f"{', '.join(found)} {'is' if len(found) == 1 else 'are'} new")
    if parts:
        yield Change(prop, "; ".join(parts))


def _culprit(rows: Sequence[DiffRow]) -> int | None:
    """The first changed hop in the flow; a changed answer that a hop below it explains
    (it answered differently first) hands the blame down to that hop."""
    first = next((i for i, row in enumerate(rows) if row.changes), None)
    if first is None:
        return None
    current = first
    while True:
        props = {c.prop for c in rows[current].changes}
        if not props <= set(_CONSEQUENCES):
            return current
        below = _subtree(rows, current)
        deeper = next((i for i in below if props & {c.prop for c in rows[i].changes}), None)
        if deeper is None:
            return current
        current = deeper


def _subtree(rows: Sequence[DiffRow], index: int) -> list[int]:
    depth = rows[index].depth
    found = []
    for i in range(index + 1, len(rows)):
        if rows[i].depth <= depth:
            break
        found.append(i)
    return found


# rendering -----------------------------------------------------------------------------------


def render_shape_diff(diff: ShapeDiff, *, before: str = "snapshot", after: str = "now",
                      full: bool = False) -> list[str]:
    """The diff as lines: a legend, then a line per hop, indented by nesting. Unchanged runs
    shrink to their ends around each change unless `full` (pytest -vv)."""
    legend = f"hops (- {before}, + {after}, ! changed):"
    rows = list(diff.rows)
    lines = [legend]
    if not rows:
        return [*lines, "  (no hops)"]
    shown = rows if full else _elide(rows)
    for row in shown:
        if isinstance(row, str):
            lines.append(row)
            continue
        text = "  " * row.depth + row.hop
        said = row.said
        lines.append(f"{row.mark} {text}  {said}" if said else f"{row.mark} {text}")
    return lines


def _elide(rows: list[DiffRow]) -> list[DiffRow | str]:
    out: list[DiffRow | str] = []
    i = 0
    while i < len(rows):
        if rows[i].mark != " " or rows[i].note:
            out.append(rows[i])
            i += 1
            continue
        j = i
        while j < len(rows) and rows[j].mark == " " and not rows[j].note:
            j += 1
        head = _CONTEXT if i > 0 else 0
        tail = _CONTEXT if j < len(rows) else 0
        if i == 0 and j == len(rows):
            head = tail = _CONTEXT
        hidden = j - i - head - tail
        if hidden >= 2:  # one hidden line would cost the same as the line it hides
            depth = min(row.depth for row in rows[i + head:j - tail])
            elided = f"  {'  ' * depth}… {plural(hidden, 'matching hop')}"
            out += [*rows[i:i + head], elided, *rows[j - tail:j]]
        else:
            out += rows[i:j]
        i = j
    return out


def render_snapshot_verdict(result: FlowResult, diff: ShapeDiff | None, trace: FlowTrace | None = None, *,
                            snapshot: str, accept: str | None = None, verbosity: int = 0,
                            dashboard_url: str | None = None, db_path: str = DEFAULT_DB) -> str:
    """A failed `assert_snapshot()` as text: the verdict with the trace id, the first changed
    hop, the snapshot file, the hop diff, the spec part's failed checks, the span tree near
    the culprit, findings, where to see it, and the command that accepts the flow."""
    full = verbosity >= 2
    lines = [render_headline(result), *_continued(result.first_divergence or "", "  ")]
    state = "differs" if diff is not None and not diff.same else "its flow spec failed"
    lines.append(f"snapshot: {snapshot} ({state})" if not result.passed else f"snapshot: {snapshot}")
    if diff is not None:
        lines += render_shape_diff(diff, full=full)
    failed = [c for c in result.checks if c.check != "snapshot" and (full or c.state is CheckState.FAIL)]
    if failed:
        lines.append("checks of its flow spec:")
        for check in failed:
            lines += render_check(check, full)
    if trace is not None:
        lines += render_span_tree(result, trace, verbosity=verbosity)
    lines += _findings(result, trace)
    lines.append(_see_it(result, dashboard_url, db_path))
    if accept:
        lines.append(f"accept this flow as the snapshot: {accept}")
    return "\n".join(lines)


def render_trace_diff(diff: ShapeDiff, before: str, after: str, *, full: bool = False) -> str:
    """`tracebaton diff TRACE_A TRACE_B`: the same diff, the first trace in the snapshot's place."""
    if diff.same:
        head = f"flows match · trace {before} (-) · trace {after} (+) · the same hops"
        return "\n".join([head, *render_shape_diff(diff, before="A", after="B", full=full)])
    head = (f"flows differ · trace {before} (-) · trace {after} (+) · "
            f"{plural(diff.changed, 'hop')} changed")
    return "\n".join([head, diff.first_change or "",
                      *render_shape_diff(diff, before="A", after="B", full=full)])
