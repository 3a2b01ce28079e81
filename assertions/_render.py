"""A flow's verdict as the text people read (DESIGN §6): the message of a TraceAssertionError
and the CLI's text output.

Pure functions, data in and lines out. Nothing depends on the clock or on dict order, so the
same verdict always renders the same text and golden tests can pin it. Layout, top down: the
verdict with the full trace id, the first divergence, the failed checks, a diff of expected
and actual hops, the span tree near the divergence, findings, and where to see it.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import NamedTuple

from tracebaton import FlowSpecError, format_duration_ns

from ._hops import hop_matches
from ._render_tree import plural, render_span_tree
from ._result import CheckResult, CheckState, FlowResult, HopResult, HopStatus
from ._spec import HopPattern
from ._spec_values import parse_hop_pattern
from ._trace import FlowTrace

__all__ = ["render_divergence", "render_headline", "render_hop_table", "render_verdict", "serve_command"]

DEFAULT_DB = ".tracebaton/last.duckdb"
"""Where the pytest plugin leaves an embedded run's store."""
_CONTEXT = 2
"""Unchanged hops kept around each change, as in a unified diff."""
_HOP_CHECKS = ("hops", "order", "times", "chains")
"""The checks of which hops happen, how often, in what order: an extra hop one of them names
is unexpected; any other extra hop is one the spec allows."""
_ALLOWED = "·"
"""The diff's mark of a seen hop the spec does not name but allows (`subsequence` and `any`
order let other hops happen; hops out of the test's own root are ignored)."""
_UNSEEN = (HopStatus.MISSING, HopStatus.PENDING)
_NOT_YET = "not seen yet: another check failed first"
_STATE_WORDS = {CheckState.FAIL: "FAIL", CheckState.PASS: "pass", CheckState.PENDING: "pending"}


def render_verdict(result: FlowResult, trace: FlowTrace | None = None, *, verbosity: int = 0,
                   dashboard_url: str | None = None, db_path: str = DEFAULT_DB) -> str:
    """The whole verdict as text. `verbosity` >= 2 (pytest `-vv`) shows everything: passed and
    pending checks, every hop, the hop table and the whole span tree, unfolded."""
    full = verbosity >= 2
    lines = [render_headline(result), *_continued(render_divergence(result), "  ")]
    for check in result.checks:
        if full or check.state is CheckState.FAIL:
            lines += render_check(check, full)
    lines += _hop_diff(result, full)
    if full and result.hops:
        lines += ["hop table:", *("  " + line for line in render_hop_table(result))]
    if trace is not None:
        lines += render_span_tree(result, trace, verbosity=verbosity)
    lines += _findings(result, trace)
    lines.append(_see_it(result, dashboard_url, db_path))
    return "\n".join(lines)


_MORE_LISTED = 5
"""A check's other violations listed before `… and N more`: a fan-out of fifty broken
hops says what they have in common in a few lines; -vv lists them all."""


def render_check(check: CheckResult, full: bool = False) -> list[str]:
    """A check's lines: its state, id and message, then its other violations (`also: …`)."""
    head = f"  {_STATE_WORDS[check.state]:<7} {check.check}"
    lines = _continued(f"{head}: {check.message}" if check.message else head, "          ")
    listed = check.more if full else check.more[:_MORE_LISTED]
    for message in listed:
        lines += _continued(f"          also: {message}", "                ")
    if len(listed) < len(check.more):
        lines.append(f"          … and {len(check.more) - len(listed)} more (-vv lists them all)")
    return lines


def render_hop_table(result: FlowResult) -> list[str]:
    """Every hop of the result in its order: hop, kind, status, caller and callee span ids,
    the caller span's duration and the detail. [] when there are no hops."""
    if not result.hops:
        return []
    header = ("hop", "kind", "status", "caller span", "callee span", "duration", "detail")
    rows: list[tuple[str, ...]] = [header, *((
        h.hop, h.kind.value, h.status.value, h.caller_span_id or "-", h.callee_span_id or "-",
        "-" if h.duration_ns is None else format_duration_ns(h.duration_ns), h.detail,
    ) for h in result.hops)]
    if not any(h.detail for h in result.hops):
        rows = [row[:-1] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for row in rows:
        cells = [cell.rjust(widths[i]) if i == 5 else cell.ljust(widths[i]) for i, cell in enumerate(row[:6])]
        lines.append("  ".join([*cells, *row[6:]]).rstrip())
    return lines


def render_headline(result: FlowResult) -> str:
    """The verdict's first line: flow, passed or FAILED, the trace, how long it waited and why."""
    verdict = "passed" if result.passed else "FAILED"
    where = f"trace {result.trace_id}" if result.trace_id else "no trace found"
    waited = format_duration_ns(result.waited_ms * 1_000_000)
    return f"flow {result.name!r} {verdict} · {where} · waited {waited} ({result.waited_reason.value})"


def render_divergence(result: FlowResult) -> str:
    """What went wrong first (or, for a pass, what was seen): the verdict's second line."""
    if result.first_divergence:
        return result.first_divergence
    if result.passed:
        seen = sum(1 for h in result.hops if h.status not in _UNSEEN)
        return f"{plural(len(result.checks), 'check')} passed, {plural(seen, 'hop')} seen"
    failed = next((c for c in result.checks if c.state is CheckState.FAIL), None)
    if failed is None:
        return "failed, but no check says why"
    return f"{failed.check}: {failed.message}" if failed.message else failed.check


def _continued(text: str, indent: str) -> list[str]:
    """Multi-line messages keep their later lines under the first, not at column 0."""
    first, *rest = text.splitlines() or [""]
    return [first, *(indent + line for line in rest)]


class _DiffRow(NamedTuple):
    tag: str
    """`-` expected only, `+` actual only and unexpected, `·` actual only and allowed,
    ` ` both (or neutral), `…` an elided run."""
    text: str
    note: str = ""


def _pattern(text: str) -> HopPattern | None:
    """An expected hop as the engine reads it; None for text that is no hop."""
    try:
        return parse_hop_pattern(text, where="expected_hops")
    except FlowSpecError:
        return None


def _canonical(text: str) -> str:
    """Specs are written by hand (`cart->inventory`); hops by the engine (`cart -> inventory`)."""
    pattern = _pattern(text)
    return text.strip() if pattern is None else str(pattern)


def _diff_key(hop: HopResult, patterns: Sequence[HopPattern]) -> str:
    """What a seen hop is compared by: the expected entry it satisfies (its own text first),
    or something no expected entry equals (a broken or unexpected hop is never the hop the
    spec wanted)."""
    if hop.status is HopStatus.BROKEN:
        return "\0broken " + hop.hop
    if hop.status is HopStatus.UNEXPECTED:
        return "\0unexpected " + hop.hop
    satisfied = [str(p) for p in patterns if hop_matches(p, hop)]
    return hop.hop if hop.hop in satisfied or not satisfied else satisfied[0]


def _objected(result: FlowResult) -> tuple[set[str], set[str]]:
    """Caller span ids, and hop texts, that a failed check of which hops happen names."""
    failed = [c for c in result.checks if c.state is CheckState.FAIL and c.check in _HOP_CHECKS]
    return {i for c in failed for i in c.span_ids}, {c.hop for c in failed if c.hop and not c.span_ids}


def _note(hop: HopResult) -> str:
    if hop.status is HopStatus.PENDING:
        return f"[{_NOT_YET}]"
    if hop.status in (HopStatus.BROKEN, HopStatus.MISSING):
        return f"[{hop.status.value}: {hop.detail}]" if hop.detail else f"[{hop.status.value}]"
    return f"[{hop.detail}]" if hop.detail else ""


def _hop_diff(result: FlowResult, full: bool) -> list[str]:
    seen = [h for h in result.hops if h.status not in _UNSEEN]
    expected = list(result.expected_hops)
    if not expected:
        listed = [_DiffRow(" ", h.hop, _note(h)) for h in seen]
        return ["hops:", *_diff_lines(listed)] if listed else []
    missing: dict[str, list[HopResult]] = {}
    for hop in result.hops:
        if hop.status in _UNSEEN:
            missing.setdefault(_canonical(hop.hop), []).append(hop)
    objected_spans, objected_hops = _objected(result)

    def expected_row(text: str) -> _DiffRow:
        found = missing.get(_canonical(text))
        return _DiffRow("-", text, _note(found.pop(0)) if found else "")

    def seen_row(hop: HopResult) -> _DiffRow:
        # An extra hop is a divergence only when a check of the hops objects to it (`exact`
        # order, a `times` bound, a hop seen but not as written) or its hand-off broke.
        unexpected = (
            hop.status is HopStatus.BROKEN
            or hop.caller_span_id in objected_spans
            or hop.hop in objected_hops
        )
        return _DiffRow("+" if unexpected else _ALLOWED, hop.hop, _note(hop))

    patterns = [p for p in map(_pattern, expected) if p is not None]
    wanted = [_canonical(text) for text in expected]
    keys = [_diff_key(h, patterns) for h in seen]
    rows: list[_DiffRow] = []
    matcher = difflib.SequenceMatcher(None, wanted, keys, autojunk=False)
    for op, e1, e2, s1, s2 in matcher.get_opcodes():
        if op == "equal":
            for hop, key in zip(seen[s1:s2], keys[s1:s2], strict=True):
                note = _note(hop) or (f"[as {key}]" if key != hop.hop else "")
                rows.append(_DiffRow(" ", hop.hop, note))
            continue
        rows += [expected_row(text) for text in expected[e1:e2]]
        rows += [seen_row(hop) for hop in seen[s1:s2]]
    # Missing hops the expected list does not account for (a `times` shortfall) go after
    # the last line of the same hop, where a reader looks for them.
    row_keys = [_canonical(row.text) for row in rows]
    for text in sorted(missing):
        for hop in missing[text]:
            at = max((i + 1 for i, key in enumerate(row_keys) if key == text), default=len(rows))
            rows.insert(at, _DiffRow("-", hop.hop, _note(hop)))
            row_keys.insert(at, text)
    shown = rows if full else _elide(rows)
    legend = f", {_ALLOWED} extra but allowed" if any(row.tag == _ALLOWED for row in shown) else ""
    return [f"hops (- expected, + actual{legend}):", *_diff_lines(shown)]


def _elide(rows: list[_DiffRow]) -> list[_DiffRow]:
    """Runs of hops that are no divergence (matching, or extra but allowed) shrink to their
    ends around each change, as in a unified diff."""
    out: list[_DiffRow] = []
    i = 0
    while i < len(rows):
        if rows[i].tag not in (" ", _ALLOWED):
            out.append(rows[i])
            i += 1
            continue
        j = i
        while j < len(rows) and rows[j].tag in (" ", _ALLOWED):
            j += 1
        head = _CONTEXT if i > 0 else 0
        tail = _CONTEXT if j < len(rows) else 0
        if i == 0 and j == len(rows):
            head = tail = _CONTEXT  # nothing changed: keep both ends of the flow
        hidden = j - i - head - tail
        if hidden >= 2:  # one hidden line would cost the same as the line it hides
            out += [*rows[i:i + head], _elided(rows[i + head:j - tail]), *rows[j - tail:j]]
        else:
            out += rows[i:j]
        i = j
    return out


def _elided(hidden: list[_DiffRow]) -> _DiffRow:
    allowed = sum(1 for row in hidden if row.tag == _ALLOWED)
    matching = len(hidden) - allowed
    if not allowed:
        return _DiffRow("…", plural(matching, "matching hop"))
    if not matching:
        return _DiffRow("…", f"{plural(allowed, 'hop')} extra but allowed")
    return _DiffRow("…", f"{plural(matching, 'matching hop')}, {allowed} extra but allowed")


def _diff_lines(rows: list[_DiffRow]) -> list[str]:
    width = max((len(row.text) for row in rows if row.tag != "…"), default=0)
    lines = []
    for row in rows:
        if row.tag == "…":
            lines.append(f"  … {row.text}")
        elif row.note:
            lines.append(f"{row.tag} {row.text.ljust(width)}   {row.note}")
        else:
            lines.append(f"{row.tag} {row.text}".rstrip())
    return lines


def _findings(result: FlowResult, trace: FlowTrace | None) -> list[str]:
    # The engine usually copies the trace's own findings into the result; show each once.
    findings = list(result.findings)
    known = {(f.kind, f.message) for f in findings}
    findings += [f for f in (trace.findings if trace is not None else ()) if (f.kind, f.message) not in known]
    if not findings:
        return []
    return ["findings:", *(line for f in findings
                           for line in _continued(f"  {f.kind.value}: {f.message}", "    "))]


def _see_it(result: FlowResult, dashboard_url: str | None, db_path: str) -> str:
    page = f"/flows/{result.trace_id}" if result.trace_id else "/flows"
    if dashboard_url:
        return f"see it: {dashboard_url.rstrip('/')}{page}"
    return f"see it: {serve_command(db_path)}, then open {page}"


def serve_command(db_path: str) -> str:
    """The command that serves the dashboard over a store file, as every message writes it."""
    return f"tracebaton serve --db {db_path}"
