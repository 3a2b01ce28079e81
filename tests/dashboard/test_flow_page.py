"""The Flow page as a failed flow's reader first meets it: at its top with the verdict in view,
the hop diagram of ten services inside the page's width, and the verdict in the HTML as
served, so a `chromium --headless --screenshot` (or any reader that runs no script) shows
which flow failed and why rather than "Loading…"."""

from __future__ import annotations

import base64
import html
import itertools
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from chromium_pages import ARTIFACTS, CHROMIUM, Browser, Page, shot
from scripted_traces import (
    CHECKOUT_SPEC,
    XSS_NAME,
    ScriptedSpan,
    ScriptedTrace,
    check,
    import_spans,
    new_id,
    scripted_checkout,
)

pytest_plugins = ["chromium_pages"]  # its fixtures: api, browser, page

SERVICES = (
    "frontend", "checkout-gateway", "recommendations", "inventory-reservations", "payment-authoriser",
    "fraud-screening", "shipping-quotes", "notifications", "loyalty-points", "ledger",
)
LAST_HOP = f"{SERVICES[-2]} -> {SERVICES[-1]}"
WIDTH, HEIGHT = 1400, 1000
FAIL_BACKGROUND = (253, 236, 234)
"""style.css's --fail-bg: the failure box behind the first divergence."""


def ten_service_chain() -> ScriptedTrace:
    """frontend -> checkout-gateway -> … -> ledger: each service calls the next, the last call
    takes 20 ms."""
    t0 = time.time_ns() - 110 * 1_000_000
    root = ScriptedSpan(SERVICES[0], "POST /checkout", 2, 0, 100)
    spans = [root]
    parent = root
    for depth, callee in enumerate(SERVICES[1:], start=1):
        start, end = depth * 2, 100 - depth * 2 if depth < len(SERVICES) - 1 else depth * 2 + 20
        call = ScriptedSpan(parent.service, f"POST /{callee}", 3, start, end, parent=parent,
                            attributes={"server.address": callee, "server.port": 80})
        served = ScriptedSpan(callee, f"POST /{callee}", 2, start + 0.2, end - 0.2, parent=call)
        spans += [call, served]
        parent = served
    return ScriptedTrace(new_id(16), spans, t0)


CHAIN_SPEC: dict[str, Any] = {
    "name": "ten-services",
    "wait": {"timeout": "2s", "settle": "100ms"},
    "expect": {
        "hops": [f"{a} -> {b}" for a, b in itertools.pairwise(SERVICES)],
        "budgets": {"hops": {LAST_HOP: "5ms"}},
    },
}


@pytest.fixture(scope="module")
def chain_run(api: str) -> dict[str, Any]:
    trace = ten_service_chain()
    import_spans(api, trace)
    result = check(api, CHAIN_SPEC, trace.trace_id, test_id=XSS_NAME)
    assert not result["passed"]
    assert (result["first_divergence"] or "").startswith(LAST_HOP), result["first_divergence"]
    return result


@pytest.fixture(scope="module")
def markup_run(api: str) -> dict[str, Any]:
    """A failed checkout whose span names and test id are markup."""
    trace = scripted_checkout(span_name=XSS_NAME)
    import_spans(api, trace)
    result = check(api, CHECKOUT_SPEC, trace.trace_id, test_id=XSS_NAME)
    assert not result["passed"]
    return result


def open_flow(page: Page, api: str, run_id: str) -> None:
    page.goto(f"{api}/flows/{run_id}")
    page.locator(f'html[data-rendered="{run_id}"]').wait_for(state="attached")


def test_ten_services_fit_the_page_width(api: str, page: Page, chain_run: dict[str, Any]) -> None:
    open_flow(page, api, chain_run["run_id"])
    assert page.locator("svg.sequence g.lifeline").count() == len(SERVICES)
    panel = page.locator(".panel.diagram").bounding_box()
    svg = page.locator("#sequence").bounding_box()
    assert panel is not None
    assert svg is not None
    assert svg["x"] + svg["width"] <= WIDTH, f"the diagram ends at {svg['x'] + svg['width']} px"
    assert svg["x"] + svg["width"] <= panel["x"] + panel["width"], "the diagram runs past its panel"
    scroll = page.evaluate(
        "() => { const p = document.querySelector('.panel.diagram');"
        " return [p.scrollWidth, p.clientWidth, document.documentElement.scrollWidth, innerWidth]; }"
    )
    assert scroll[0] <= scroll[1], f"the diagram's panel scrolls sideways: {scroll}"
    assert scroll[2] <= scroll[3], f"the page scrolls sideways: {scroll}"
    overflow = page.evaluate(
        "() => { const box = document.getElementById('sequence').getBoundingClientRect();"
        " return [...document.querySelectorAll('#sequence text, #sequence rect')]"
        ".map((el) => [el.textContent, el.getBoundingClientRect()])"
        ".filter(([, r]) => r.width && (r.right > box.right + 0.5 || r.left < box.left - 0.5))"
        ".map(([text, r]) => `${text} ${r.left}..${r.right} outside ${box.left}..${box.right}`); }"
    )
    assert overflow == [], "labels cut off at the diagram's edge"
    label = page.locator(f'g.hop[data-hop="{LAST_HOP}"] text.label').text_content() or ""
    assert label.startswith(LAST_HOP)
    shot(page, "flow-ten-services")


def test_the_page_opens_at_the_top_with_the_verdict_in_view(
    api: str, page: Page, chain_run: dict[str, Any]
) -> None:
    open_flow(page, api, chain_run["run_id"])
    assert page.locator("g.hop.selected").get_attribute("data-hop") == LAST_HOP, "the culprit is selected"
    scrolled = page.evaluate("scrollY")
    selected = page.locator(".wf-row.selected").bounding_box()
    assert selected is not None
    assert selected["y"] + scrolled > HEIGHT, "the selected span is below the fold"
    assert scrolled == 0, "the page scrolled down to the selected span"
    for part in (".verdict .badge", "#flow-title", "#failure .first"):
        box = page.locator(part).bounding_box()
        assert box is not None, part
        assert box["y"] >= 0, part
        assert box["y"] + box["height"] <= HEIGHT, part
    assert page.locator("#failure .first").inner_text() == chain_run["first_divergence"]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Chromium as a person runs it from a shell (a profile of its own, so runs do not meet)."""
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", f"--user-data-dir={tmp_path / 'profile'}",
         f"--window-size={WIDTH},{HEIGHT}", *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )


def red_pixels(page: Page, png: Path) -> int:
    """Pixels of the failure box's background in the screenshot's top 400 rows, counted by the
    browser's own PNG decoder."""
    data = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
    page.goto("about:blank")
    count: int = page.evaluate(
        """async ([src, [r, g, b]]) => {
          const img = new Image(); img.src = src; await img.decode();
          const canvas = document.createElement("canvas");
          canvas.width = img.width; canvas.height = Math.min(img.height, 400);
          const context = canvas.getContext("2d"); context.drawImage(img, 0, 0);
          const d = context.getImageData(0, 0, canvas.width, canvas.height).data;
          let n = 0;
          for (let i = 0; i < d.length; i += 4) if (d[i] === r && d[i + 1] === g && d[i + 2] === b) n++;
          return n;
        }""",
        [data, list(FAIL_BACKGROUND)],
    )
    return count


def test_a_headless_screenshot_shows_the_verdict(
    api: str, browser: Browser, page: Page, tmp_path: Path, chain_run: dict[str, Any]
) -> None:
    """`--screenshot` and `--dump-dom` catch the page at its load event, while its script is
    still fetching the flow: what the server sent is what they show."""
    url = f"{api}/flows/{chain_run['run_id']}"
    divergence = html.escape(chain_run["first_divergence"], quote=False)
    dom = chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Loading…" not in dom.stdout
    assert divergence in dom.stdout
    assert '<span class="badge fail">FAILED</span><h1 id="flow-title">ten-services</h1>' in dom.stdout
    png = ARTIFACTS / "flow-headless-screenshot.png"
    png.unlink(missing_ok=True)
    done = chromium(tmp_path, f"--screenshot={png}", url)
    assert done.returncode == 0, done.stderr[-2000:]
    assert png.exists(), done.stderr[-2000:]
    assert red_pixels(page, png) > 2000, f"{png}: no failure box in the top of the screenshot"
    # The same without any script at all, which no timing can help.
    context = browser.new_context(java_script_enabled=False, viewport={"width": WIDTH, "height": HEIGHT})
    try:
        bare = context.new_page()
        bare.goto(url)
        assert bare.locator("#failure .first").inner_text() == chain_run["first_divergence"]
        assert bare.locator(".verdict .badge").inner_text() == "FAILED"
        assert bare.locator("#flow-title").is_visible()
    finally:
        context.close()


def test_the_first_response_carries_the_verdict_escaped(api: str, markup_run: dict[str, Any]) -> None:
    response = httpx.get(f"{api}/flows/{markup_run['run_id']}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy
    text = response.text
    assert XSS_NAME not in text, "markup from a test id or a span name reached the page as markup"
    assert f"test <code>{html.escape(XSS_NAME)}</code>" in text
    assert html.escape(markup_run["first_divergence"], quote=False) in text
    failed = [c for c in markup_run["checks"] if c["state"] == "fail"]
    assert failed, markup_run
    for failed_check in failed:
        message = html.escape(failed_check["message"], quote=False)
        assert f"<b>FAIL {failed_check['check']}</b><span>: {message}" in text
    assert "<script>" not in text.split("</head>", 1)[1], "no inline script in the body"
    by_trace = httpx.get(f"{api}/flows/{markup_run['trace_id']}").text
    assert '<h1 id="flow-title">checkout</h1>' in by_trace, "a trace id opens its newest run's verdict"


@pytest.mark.parametrize(
    "key",
    [
        "r" + "0" * 20,  # a run id no run has
        "0" * 32,  # a trace id no run covered
        "%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E",  # neither, and markup
        "r" + "0" * 19 + "%22",
    ],
)
def test_a_key_that_names_no_run_gets_the_page_shell(api: str, key: str) -> None:
    """The script then asks the API, whose answer says what is wrong with the key."""
    response = httpx.get(f"{api}/flows/{key}")
    assert response.status_code == 200
    assert '<p class="muted">Loading…</p>' in response.text
    assert "server-verdict" not in response.text
    assert "onerror" not in response.text
    assert httpx.get(f"{api}/healthz").status_code == 200
