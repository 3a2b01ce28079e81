"""Two flows side by side in a real browser (chromium_pages.py): a flow that failed its
snapshot, drawn beside the snapshot with the changed hops marked and the text diff below;
"Compare with…" on a flow; the linkable /compare page; and bad trace ids, each shown as the
API's message."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from chromium_pages import RED, Page, shot
from scripted_traces import ScriptedSpan, ScriptedTrace, import_spans, new_id, scripted_checkout

pytest_plugins = ["chromium_pages"]  # its fixtures: api, browser, page
pytestmark = pytest.mark.xdist_group("heavy")  # with the other heavy tests on one xdist worker

CULPRIT = "headers: x-request-id was present, now missing"


def changed_checkout() -> ScriptedTrace:
    """The healthy checkout, but inventory no longer receives x-request-id and cart now also
    calls payment: one changed hop (the culprit) and one added."""
    trace = scripted_checkout(inventory_fails=False)
    del trace.span("inventory", "POST /reserve").attributes["http.request.header.x_request_id"]
    cart = trace.span("cart", "POST /cart/checkout")
    call = ScriptedSpan("cart", "POST /charge", 3, 42, 50, parent=cart,
                        attributes={"server.address": "payment", "server.port": 80})
    trace.spans += [call, ScriptedSpan("payment", "POST /charge", 2, 43, 49, parent=call,
                                       attributes={"http.request.header.x_request_id": ["req-1"]})]
    return trace


@pytest.fixture(scope="module")
def flows(api: str) -> dict[str, Any]:
    made: dict[str, ScriptedTrace] = {}
    for name in ("healthy", "again", "changed"):
        made[name] = changed_checkout() if name == "changed" else scripted_checkout(inventory_fails=False)
        import_spans(api, made[name])
    ids = {name: trace.trace_id for name, trace in made.items()}
    # The snapshot of the healthy checkout as the API reads a trace as A: a snapshot file's
    # `snapshot:` section, written here as JSON (which YAML reads).
    healthy = httpx.get(f"{api}/api/diff", params={"a": ids["healthy"], "b": ids["again"]}, timeout=30)
    assert healthy.status_code == 200, healthy.text
    snapshot = json.dumps({"name": "checkout", "snapshot": healthy.json()["before"]})
    judged = httpx.post(f"{api}/api/snapshots/check", timeout=60, json={
        "trace_id": ids["changed"], "name": "checkout", "snapshot": snapshot, "origin": "checkout.flow.yaml",
        "test_id": "tests/test_shop.py::test_checkout"})
    assert judged.status_code == 200, judged.text
    outcome = judged.json()
    assert outcome["result"]["first_divergence"] == f"cart -> inventory  {CULPRIT}"
    return {**ids, "run_id": outcome["run_id"]}


def test_a_snapshot_failure_shows_both_diagrams_with_the_culprit_marked_and_the_text(
    api: str, page: Page, flows: dict[str, Any]
) -> None:
    page.goto(f"{api}/flows/{flows['run_id']}")
    page.locator("#snapshot-comparison[data-drawn]").wait_for()
    for side in ("before", "after"):
        culprit = page.locator(f'#diagram-{side} g.hop.culprit[data-hop="cart -> inventory"]')
        assert culprit.count() == 1, f"the culprit is marked on the {side} side"
        assert culprit.locator("line").evaluate("el => getComputedStyle(el).stroke") == RED
        assert page.locator(f'#diagram-{side} g.hop[data-hop="frontend -> auth"].d-same').count() == 1
    assert page.locator('#diagram-after g.hop.culprit text.change').text_content() == CULPRIT
    told_before = page.locator("#diagram-before g.hop.culprit text.change").count()
    assert told_before == 0, "what changed is told on the side of the flow now"
    added = page.locator('#diagram-after g.hop.d-added[data-hop="cart -> payment"]')
    assert added.locator("text.change").text_content() == "new: not in the snapshot"
    assert page.locator('#diagram-before g.hop[data-hop="cart -> payment"]').count() == 0
    # aligned: a hop is at one height on both sides
    ys = [page.locator(f'#diagram-{side} g.hop[data-hop="cart -> inventory"] line').get_attribute("y1")
          for side in ("before", "after")]
    assert ys[0] == ys[1]
    assert page.locator("#snapshot-diff-text").inner_text().splitlines() == [
        "hops (- snapshot, + now, ! changed):",
        "  frontend -> auth",
        "  frontend -> cart",
        f"!   cart -> inventory  {CULPRIT}",
        "+   cart -> payment  new: not in the snapshot",
    ]
    assert page.locator("#sequence").count() == 1, "the flow's own diagram is still there"
    shot(page, "flow-snapshot-diff")


def test_a_flow_that_passed_or_was_no_snapshot_check_has_no_comparison(
    api: str, page: Page, flows: dict[str, Any]
) -> None:
    page.goto(f"{api}/traces/{flows['healthy']}")
    page.locator("#sequence").wait_for()
    assert page.locator("#snapshot-comparison").count() == 0
    assert page.locator("#compare-with summary").inner_text() == "Compare with…"


def test_compare_with_from_a_flow_lists_recent_traces_of_its_operation_and_takes_a_pasted_id(
    api: str, page: Page, flows: dict[str, Any]
) -> None:
    page.goto(f"{api}/flows/{flows['run_id']}")
    page.locator("#compare-with summary").click()
    listed = page.locator(f'#compare-recent li[data-trace-id="{flows["healthy"]}"] a')
    listed.wait_for()
    assert page.locator(f'#compare-recent li[data-trace-id="{flows["changed"]}"]').count() == 0, "not itself"
    assert "frontend POST /checkout" in page.locator("#compare-recent").inner_text()
    listed.click()
    page.locator("#comparison[data-drawn]").wait_for()
    assert page.url == f"{api}/compare?a={flows['healthy']}&b={flows['changed']}"
    assert page.locator("#compare-verdict .first").inner_text() == f"cart -> inventory  {CULPRIT}"
    assert page.locator('#diagram-after g.hop.culprit[data-hop="cart -> inventory"]').count() == 1
    shot(page, "compare-from-flow")
    page.goto(f"{api}/traces/{flows['changed']}")
    page.locator("#compare-with summary").click()
    page.locator("#compare-trace").fill(flows["again"])
    page.locator("#compare-form button").click()
    page.locator("#comparison[data-drawn]").wait_for()
    assert page.url == f"{api}/compare?a={flows['again']}&b={flows['changed']}"


def test_the_compare_page_is_a_link_with_the_text_diff_and_a_swap(
    api: str, page: Page, flows: dict[str, Any]
) -> None:
    a, b = flows["healthy"], flows["changed"]
    page.goto(f"{api}/compare?a={a}&b={b}")
    page.locator("#comparison[data-drawn]").wait_for()
    text = page.locator("#compare-diff-text").inner_text().splitlines()
    assert text[:3] == [f"flows differ · trace {a} (-) · trace {b} (+) · 2 hops changed",
                        f"cart -> inventory  {CULPRIT}", "hops (- A, + B, ! changed):"]
    assert page.locator("#diagram-before h3").inner_text() == f"A {a[:12]}…"
    page.locator("#compare-swap").click()
    page.locator("#comparison[data-drawn]").wait_for()
    assert page.url == f"{api}/compare?a={b}&b={a}"
    assert page.locator('#diagram-after g.hop.d-removed[data-hop="cart -> payment"]').count() == 0
    removed = page.locator('#diagram-before g.hop.d-removed[data-hop="cart -> payment"] text.change')
    assert removed.text_content() == "missing: in the snapshot, not seen now"
    page.goto(f"{api}/compare?a={a}&b={flows['again']}")
    page.locator("#comparison[data-drawn]").wait_for()
    assert page.locator("#compare-verdict").inner_text().startswith("The two flows have the same hops.")
    assert page.locator("svg.diff g.hop.d-changed, svg.diff g.hop.culprit").count() == 0
    shot(page, "compare-same")


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("a=nothex&b={changed}", "422: query parameter a: 'nothex' is not 32 hex digits"),
        ("a={changed}&b={changed}", "400: a and b are both trace {changed}"),
        ("a={unknown}&b={changed}", "404: a: no span of trace {unknown} is stored"),
        ("a={healthy}&b=%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E", "422: query parameter b: '<img src=x"),
    ],
)
def test_bad_trace_ids_show_the_apis_message(api: str, lenient_page: Page, flows: dict[str, Any], query: str,
                                             says: str) -> None:
    ids = {**flows, "unknown": new_id(16)}
    lenient_page.goto(f"{api}/compare?{query.format(**ids)}")
    error = lenient_page.locator("#comparison .error-box")
    error.wait_for()
    assert error.inner_text().startswith(says.format(**ids)), error.inner_text()
    assert lenient_page.locator("main img").count() == 0
    assert lenient_page.locator("#compare-page-form input[name=a]").count() == 1, "the ids can be corrected"


def test_the_compare_page_without_two_ids_asks_for_them(api: str, page: Page, flows: dict[str, Any]) -> None:
    page.goto(f"{api}/compare?b={flows['changed']}")
    page.locator("#compare-hint").wait_for()
    assert page.locator("#compare-page-form input[name=b]").input_value() == flows["changed"]
    page.locator("#compare-page-form input[name=a]").fill(flows["healthy"])
    page.locator("#compare-page-form button").click()
    page.locator("#comparison[data-drawn]").wait_for()
    assert page.url == f"{api}/compare?a={flows['healthy']}&b={flows['changed']}"
