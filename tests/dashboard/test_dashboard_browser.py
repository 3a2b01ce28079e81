"""The dashboard in a real browser (chromium_pages.py: Debian's Chromium driven by Playwright
against a real `tracebaton serve`; screenshots of every page go to build/artifacts/dashboard/)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx
import pytest
from chromium_pages import AMBER, RED, Page, shot
from conftest import SUPPORT
from scripted_traces import CHECKOUT_SPEC, XSS_NAME, check, import_spans, scripted_checkout

from tracebaton import Client
from tracebaton.assertions import FlowResult

pytest_plugins = ["chromium_pages"]  # its fixtures: api, browser, page

@pytest.fixture(scope="module")
def failed_run(api: str) -> dict[str, Any]:
    trace = scripted_checkout()
    import_spans(api, trace)
    result = check(
        api,
        CHECKOUT_SPEC,
        trace.trace_id,
        test_id="tests/test_shop.py::test_checkout",
        session_id="s-browser",
    )
    assert not result["passed"]
    return {"trace": trace, "result": result}


def test_a_failed_flow_shows_the_red_hop_the_ghost_and_the_failure_text(
    api: str, page: Page, failed_run: dict[str, Any]
) -> None:
    result = failed_run["result"]
    page.goto(f"{api}/flows/{result['run_id']}")
    failing = page.locator('g.hop.failing[data-hop="cart -> inventory"]')
    failing.wait_for()
    assert failing.locator("line").first.evaluate("el => getComputedStyle(el).stroke") == RED
    healthy = page.locator('g.hop[data-hop="frontend -> auth"]')
    assert "failing" not in (healthy.get_attribute("class") or "")
    ghost = page.locator('g.hop.ghost[data-hop="cart -> payment"]')
    assert ghost.count() == 1, "an expected hop not seen is drawn as a ghost"
    # the errors check failed first, before the hop could come: not judged, not "never seen"
    assert "not seen yet (not judged)" in (ghost.text_content() or "")
    failure = page.locator("#failure")
    assert result["first_divergence"] in failure.inner_text()
    assert "FAIL errors" in failure.inner_text()
    assert page.locator(".verdict .badge").inner_text() == "FAILED"
    budget = page.locator(
        f'.wf-row[data-span-id="{failed_run["trace"].span("cart", "POST /reserve").span_id}"] .wf-budget'
    )
    assert budget.count() == 1, "the hop's 50 ms budget is marked on its caller span"
    assert page.locator(".wf-bar.critical").count() >= 3
    shot(page, "flow-failed")


def test_a_check_s_other_violations_unfold_under_it(
    api: str, page: Page, failed_run: dict[str, Any]
) -> None:
    spec = {"name": "checkout", "wait": {"timeout": "2s", "settle": "100ms"},
            "expect": {"propagation": {"headers": {"authorization": "present"}}}}
    result = check(api, spec, failed_run["trace"].trace_id)
    headers = next(c for c in result["checks"] if c["check"] == "headers")
    assert headers["more"]
    assert headers["message"].endswith(f"(and {len(headers['more'])} more)")
    page.goto(f"{api}/flows/{result['run_id']}")
    more = page.locator("#failure details.more-violations")
    n = len(headers["more"])
    assert more.locator("summary").inner_text() == f"{n} more headers violation{'s' if n > 1 else ''}"
    assert not more.locator("li").first.is_visible(), "folded until asked"
    more.locator("summary").click()
    assert more.locator("li").all_inner_texts() == headers["more"]


@pytest.mark.parametrize(("budget", "widened"), [("140ms", True), ("10s", False)])
def test_a_budget_far_past_the_flow_waits_at_the_waterfall_s_edge_instead_of_squeezing_it(
    api: str, page: Page, failed_run: dict[str, Any], budget: str, widened: bool
) -> None:
    spec = {"name": "checkout", "wait": {"timeout": "2s", "settle": "100ms"},
            "expect": {"budgets": {"trace": budget}}}
    result = check(api, spec, failed_run["trace"].trace_id)
    page.goto(f"{api}/flows/{result['run_id']}")
    root_id = failed_run["trace"].span("frontend", "POST /checkout").span_id
    root = page.locator(f'.wf-row[data-span-id="{root_id}"]')
    tick = root.locator(".wf-budget")
    tick.wait_for()
    bar = root.locator(".wf-bar").bounding_box()
    track = root.locator(".wf-track").bounding_box()
    assert bar is not None
    assert track is not None
    # the 120 ms root spans the axis; a 140 ms budget widens it a little, a 10 s one not at all
    share = bar["width"] / track["width"]
    assert (0.75 < share < 0.95) if widened else share > 0.97, share
    beyond = "beyond" in (tick.get_attribute("class") or "")
    assert beyond is not widened
    assert ("ends past the axis" in (tick.get_attribute("title") or "")) is not widened


def test_the_link_in_a_failure_message_opens_the_recorded_verdict(
    api: str, page: Page, failed_run: dict[str, Any]
) -> None:
    trace_id = failed_run["trace"].trace_id
    page.goto(f"{api}/flows/{trace_id}")  # `see it: …/flows/<trace id>` in a TraceAssertionError
    page.locator("#failure").wait_for()
    assert failed_run["result"]["first_divergence"] in page.locator("#failure").inner_text()
    assert page.locator("#flow-title").inner_text() == "checkout"


def test_clicking_a_span_shows_its_attributes_events_and_captured_headers(
    api: str, page: Page, failed_run: dict[str, Any]
) -> None:
    trace = failed_run["trace"]
    page.goto(f"{api}/flows/{failed_run['result']['run_id']}")
    cart = trace.span("cart", "POST /cart/checkout").span_id
    page.locator(f'.wf-row[data-span-id="{cart}"]').click()
    attributes = page.locator("#detail-attributes")
    attributes.wait_for()
    assert page.locator("#detail-name").inner_text() == "POST /cart/checkout"
    row = attributes.locator("tr", has_text="cart.items")
    assert row.locator("td").nth(1).inner_text() == "3"
    assert "http.request.header.x_request_id" in page.locator("#detail-headers").inner_text()
    inventory = trace.span("inventory", "POST /reserve").span_id
    page.locator(f'.wf-row[data-span-id="{inventory}"]').click()
    page.locator("#span-details .event", has_text="stock.checked").wait_for()
    assert "available" in page.locator("#span-details .event").inner_text()
    shot(page, "flow-span-details")


def test_a_span_named_like_markup_renders_as_text(api: str, page: Page) -> None:
    trace = scripted_checkout(span_name=XSS_NAME)
    import_spans(api, trace)
    result = check(api, CHECKOUT_SPEC, trace.trace_id, test_id=XSS_NAME)
    page.goto(f"{api}/flows/{result['run_id']}")
    names = page.locator(".wf-row .span-name", has_text=XSS_NAME)
    names.first.wait_for()
    assert names.count() == 2, "caller and callee spans show the name as text"
    assert page.locator("main img").count() == 0, "no element was made from the span name"
    names.first.click()
    assert page.locator("#detail-name").inner_text() == XSS_NAME
    shot(page, "flow-markup-span-name")
    page.goto(f"{api}/flows?test_id={XSS_NAME.replace('<', '%3C').replace('>', '%3E')}")
    page.locator("#runs tbody tr").first.wait_for()
    assert XSS_NAME in page.locator("#runs tbody tr").first.inner_text()
    assert page.locator("main img").count() == 0
    shot(page, "flows-markup-test-id")


def test_a_new_run_appears_on_the_flows_page_without_a_reload(
    api: str, page: Page, failed_run: dict[str, Any]
) -> None:
    page.goto(f"{api}/flows")
    page.locator("#runs tbody tr").first.wait_for()
    page.locator("#live:not([hidden])").wait_for()
    page.evaluate("window.__same_page = true")
    trace = scripted_checkout()
    import_spans(api, trace)
    result = check(api, CHECKOUT_SPEC, trace.trace_id, test_id="tests/test_live.py::test_new_run")
    row = page.locator(f'#runs tbody tr[data-run-id="{result["run_id"]}"]')
    row.wait_for(timeout=10_000)
    assert page.evaluate("window.__same_page") is True, "the page was not reloaded"
    assert page.locator("#runs tbody tr").first.get_attribute("data-run-id") == result["run_id"], (
        "a new failed run goes on top"
    )
    assert "tests/test_live.py::test_new_run" in row.inner_text()
    shot(page, "flows-live")
    row.locator("a").click()
    page.locator("#sequence").wait_for()
    assert page.url.endswith(f"/flows/{result['run_id']}")


def test_the_flows_page_filters(api: str, page: Page, failed_run: dict[str, Any]) -> None:
    passing = scripted_checkout(inventory_fails=False)
    import_spans(api, passing)
    check(
        api,
        {"name": "healthy-checkout", "expect": {"hops": ["cart -> inventory"]}},
        passing.trace_id,
        session_id="s-browser",
    )
    page.goto(f"{api}/flows?session_id=s-browser&passed=true")
    page.locator("#runs tbody tr").first.wait_for()
    texts = page.locator("#runs tbody tr").all_inner_texts()
    assert texts
    assert all("passed" in text and "s-browser" in text for text in texts)
    page.select_option("select[name=passed]", "false")
    page.click("form.filters button")
    page.locator("#runs tbody tr .badge.fail").first.wait_for()
    assert all("FAILED" in text for text in page.locator("#runs tbody tr").all_inner_texts())
    shot(page, "flows-filtered")


def test_trace_search_and_the_trace_page_make_a_spec(
    api: str, page: Page, failed_run: dict[str, Any]
) -> None:
    trace = failed_run["trace"]
    page.goto(f"{api}/traces")
    page.fill("input[name=attrs]", "http.response.status_code=503")
    page.select_option("select[name=status]", "error")
    page.click("form.filters button")
    row = page.locator(f'#traces tbody tr[data-trace-id="{trace.trace_id}"]')
    row.wait_for()
    assert "frontend" in row.inner_text()
    shot(page, "traces-search")
    row.click()
    page.locator("#sequence").wait_for()
    assert page.locator("g.hop").count() == 3
    page.click("#make-spec")
    spec = page.locator("#spec-yaml")
    spec.wait_for()
    assert "frontend -> cart" in spec.inner_text()
    assert "cart -> inventory" in spec.inner_text()
    shot(page, "trace-page")


def judged_remotely(api: str, scenario: str, spec: dict[str, Any]) -> FlowResult:
    """Real OpenTelemetry SDK spans from another process, judged remotely by the server."""
    with Client(api) as client:
        with client.flow("checkout", test_id=f"tests/test_shop.py::test_{scenario}") as flow:
            done = subprocess.run(
                [
                    sys.executable,
                    str(SUPPORT / "flow_services.py"),
                    "--traceparent",
                    flow.headers["traceparent"],
                    "--scenario",
                    scenario,
                ],
                env={**os.environ, **client.sut_env()},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
        return flow.check(spec)


def test_a_broken_hop_is_a_cut_arrow_linking_to_the_callee_s_own_trace(api: str, page: Page) -> None:
    spec = {
        "name": "checkout",
        "expect": {"hops": ["frontend -> cart", "cart -> inventory"]},
        "wait": {"settle": "100ms"},
    }
    result = judged_remotely(api, "broken", spec)
    assert not result.passed
    run = httpx.get(f"{api}/api/runs", params={"trace_id": result.trace_id}).json()["runs"][0]
    page.goto(f"{api}/flows/{run['run_id']}")
    broken = page.locator('g.hop.broken[data-hop="frontend -> cart"]')
    broken.wait_for()
    assert broken.locator("path.cut").count() == 1, "drawn as a cut arrow"
    assert "failing" in (broken.get_attribute("class") or "")
    link = broken.locator("a.other-trace")
    href = link.get_attribute("href") or ""
    other = href.removeprefix("/traces/")
    assert other in result.trace_ids
    assert other != result.trace_id
    cart_spans = httpx.get(f"{api}/api/traces/{other}").json()["spans"]
    assert cart_spans[0]["service"] == "cart", "the link goes to the trace the callee started"
    assert page.locator('g.hop[data-hop="cart -> inventory"]:not(.ghost)').count() == 1, (
        "the stitched trace's hops are drawn too"
    )
    cut = next(h for h in result.hops if h.status.value == "broken")
    rows = page.locator(".wf-row").evaluate_all("rows => rows.map((row) => row.dataset.spanId)")
    assert rows.index(cut.callee_span_id) == rows.index(cut.caller_span_id) + 1, (
        "the waterfall hangs the callee's trace below the call, on the engine's tree"
    )
    callee_bar = page.locator(f'.wf-row[data-span-id="{cut.callee_span_id}"] .wf-bar')
    assert "stitched" in (callee_bar.get_attribute("class") or "")
    assert "critical" in (callee_bar.get_attribute("class") or ""), "the critical path follows the hand-off"
    shot(page, "flow-broken-hop")
    link.click()
    page.locator("#sequence, #no-hops").first.wait_for()
    assert page.url.endswith(f"/traces/{other}")


def test_a_wrong_order_draws_the_culprit_red_and_the_hops_it_was_compared_with_amber(
    api: str, page: Page
) -> None:
    """frontend pays before it checks the cart out: the order check names both, the verdict
    blames the payment. Only that hop is red; the cart's hops are amber and dashed."""
    hops = ["frontend -> auth", "frontend -> cart", "cart -> inventory", "frontend -> payment"]
    spec = {"name": "checkout", "expect": {"hops": hops}, "wait": {"settle": "100ms"}}
    result = judged_remotely(api, "wrong-order", spec)
    assert not result.passed
    assert (result.first_divergence or "").startswith("frontend -> payment: happened before")
    order = next(c for c in result.checks if c.check == "order")
    named = {h.hop for h in result.hops if h.caller_span_id in order.span_ids}
    assert named == {"frontend -> payment", "frontend -> cart", "cart -> inventory"}, "the check names three"
    run = httpx.get(f"{api}/api/runs", params={"trace_id": result.trace_id}).json()["runs"][0]
    page.goto(f"{api}/flows/{run['run_id']}")
    culprit = page.locator('g.hop.failing[data-hop="frontend -> payment"]')
    culprit.wait_for()
    assert page.locator("g.hop.failing").count() == 1, "one red hop: the one that broke"
    assert culprit.locator("line").first.evaluate("el => getComputedStyle(el).stroke") == RED
    for hop in ("frontend -> cart", "cart -> inventory"):
        line = page.locator(f'g.hop.implicated[data-hop="{hop}"] line').first
        assert line.evaluate("el => getComputedStyle(el).stroke") == AMBER, hop
        assert line.evaluate("el => getComputedStyle(el).strokeDasharray") not in ("none", ""), hop
    healthy = page.locator('g.hop[data-hop="frontend -> auth"]')
    assert (healthy.get_attribute("class") or "").split() == ["hop"]
    assert page.locator(".legend .l-implicated").inner_text() == "also named by a failed check"
    assert page.locator("g.hop.selected").get_attribute("data-hop") == "frontend -> payment", (
        "the page opens on the culprit"
    )
    shot(page, "flow-wrong-order")
