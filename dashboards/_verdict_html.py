"""A Flow page's verdict in the first HTML answer, before any script runs: a screenshot or a
crawler that reads the page as served sees which flow failed and why, not "Loading…".

The words come from the caller (the API renders them with the flow engine's own renderers);
this only places them. Every value is untrusted (span names reach failure messages, test ids
come from clients), so the fragment is built as elements whose text the serializer escapes,
the same rule as the pages' scripts: data is never markup.
"""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

from ._assets import asset

SHELL_PLACEHOLDER = b'<p class="muted">Loading\xe2\x80\xa6</p>'
"""What the page shell shows until its script has drawn the page; a verdict replaces it."""


@dataclasses.dataclass(frozen=True)
class PageVerdict:
    """What the top of a Flow page says about a recorded run."""

    title: str
    """The flow's name."""
    passed: bool
    headline: str
    """The verdict's first line: flow, verdict, trace, how long it waited and why."""
    divergence: str
    """What went wrong first (for a pass: what was seen)."""
    failed_checks: tuple[tuple[str, str], ...] = ()
    """(check id, message) of each failed check."""
    test_id: str | None = None


def verdict_fragment(verdict: PageVerdict) -> bytes:
    """The verdict as the Flow page's script draws its top: badge and title, a line of facts,
    and the failure (or the pass note)."""
    box = ET.Element("div", {"class": "server-verdict"})
    head = ET.SubElement(box, "div", {"class": "verdict"})
    badge = ET.SubElement(head, "span", {"class": "badge pass" if verdict.passed else "badge fail"})
    badge.text = "passed" if verdict.passed else "FAILED"
    ET.SubElement(head, "h1", {"id": "flow-title"}).text = verdict.title
    meta = ET.SubElement(box, "div", {"class": "meta"})
    ET.SubElement(meta, "span").text = verdict.headline
    if verdict.test_id:
        test = ET.SubElement(meta, "span")
        test.text = "test "
        ET.SubElement(test, "code").text = verdict.test_id
    if verdict.passed:
        ET.SubElement(box, "div", {"class": "passed-note", "id": "failure"}).text = verdict.divergence
    else:
        failure = ET.SubElement(box, "div", {"class": "failure", "id": "failure", "role": "alert"})
        ET.SubElement(failure, "div", {"class": "first"}).text = verdict.divergence
        if verdict.failed_checks:
            items = ET.SubElement(failure, "ul")
            for check, message in verdict.failed_checks:
                item = ET.SubElement(items, "li")
                ET.SubElement(item, "b").text = f"FAIL {check}"
                ET.SubElement(item, "span").text = f": {message}" if message else ""
    ET.SubElement(box, "p", {"class": "muted"}).text = "Drawing the hops and the waterfall…"
    fragment: bytes = ET.tostring(box, encoding="utf-8", method="html")
    return fragment


def page_html(verdict: PageVerdict | None = None) -> bytes | None:
    """The page shell, with `verdict` drawn in where the script's page will go; None when the
    dashboard's files are missing from the installation."""
    shell = asset("index.html")
    if shell is None or verdict is None:
        return shell
    if SHELL_PLACEHOLDER not in shell:  # the shell is package data: a broken build, not input
        raise RuntimeError("dashboards/static/index.html lost its Loading placeholder")
    return shell.replace(SHELL_PLACEHOLDER, verdict_fragment(verdict), 1)
