"""Jaeger UI itself, built from jaegertracing/jaeger-ui, served by `tracebaton serve --jaeger-ui`
and driven in Chromium: search a service, open a trace, see its spans, with a token (the
dashboard's login cookie carries the UI's API calls) and no page error or policy violation.

Runs when a built bundle is on this machine: TRACEBATON_TEST_JAEGER_UI_DIR, else build/jaeger-ui
(the README's "Jaeger UI" section says how to build one). Screenshots go to
build/artifacts/jaeger-ui/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, start_server
from scripted_traces import import_spans, scripted_checkout

BUNDLE = Path(os.environ.get("TRACEBATON_TEST_JAEGER_UI_DIR") or REPO / "build" / "jaeger-ui")
ARTIFACTS = REPO / "build" / "artifacts" / "jaeger-ui"
TOKEN = "jaeger-ui-s3cret"

if not (BUNDLE / "index.html").is_file():
    pytest.skip(
        f"no built Jaeger UI at {BUNDLE}: build jaeger-ui and copy packages/jaeger-ui/build there, or set "
        "TRACEBATON_TEST_JAEGER_UI_DIR (CI has no bundle)", allow_module_level=True,
    )

from chromium_pages import Page  # noqa: E402  (after the skip: it needs Chromium too)

pytest_plugins = ["chromium_pages"]  # its fixtures: browser, page (which fails on any console error)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    running = start_server(tmp_path_factory.mktemp("jaeger-ui") / "store.duckdb", "--token", TOKEN,
                           "--jaeger-ui", str(BUNDLE))
    yield running.api
    assert running.stop() == 0, running.stderr
    assert "Traceback" not in running.stderr, running.stderr


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_jaeger_ui_searches_a_service_opens_a_trace_and_shows_its_spans(api: str, page: Page) -> None:
    trace = scripted_checkout()
    import_spans(api, trace, authorization=f"Bearer {TOKEN}")
    calls: list[str] = []
    page.on("request", lambda request: calls.append(request.url.removeprefix(api)))
    page.goto(f"{api}/login?token={TOKEN}")  # once, as a person signs in to the dashboard
    page.goto(f"{api}/jaeger/search")
    page.get_by_text("Service (4)").wait_for()
    page.get_by_test_id("service").click()
    page.keyboard.type("frontend")
    page.keyboard.press("Enter")
    # "Operation" until Jaeger UI took OpenTelemetry's word (mid-2026), "Span Name" since
    page.get_by_text(re.compile(r"^(Span Name|Operation) \([1-9]")).wait_for()
    page.get_by_role("button", name="Find Traces").click()
    row = page.get_by_text("frontend: POST /checkout")
    row.wait_for()
    shot(page, "search")
    searched = [c for c in calls if c.startswith("/jaeger/api/v3/trace-summaries?")]
    assert searched, calls
    assert "query.serviceName=frontend" in searched[-1]
    row.click()
    page.wait_for_url(re.compile(rf"/jaeger/trace/{trace.trace_id}"))
    page.get_by_text("Total Spans").wait_for()
    # a row: its child count (when it has children), service, span name, tags
    rows = [" ".join(text.split()) for text in page.locator(".span-name-wrapper").all_inner_texts()]
    for row_text in ("frontend POST /checkout", "auth POST /verify", "cart POST /cart/checkout",
                     "inventory POST /reserve"):
        assert any(row_text in r for r in rows), (row_text, rows)
    assert len(rows) == len(trace.spans)
    assert f"/jaeger/api/traces/{trace.trace_id}" in calls
    shot(page, "trace")
    page.goto(f"{api}/jaeger/search")  # every service at once, which tracebaton declares it can search
    page.get_by_test_id("service").click()
    page.get_by_title("All Services").click()
    page.get_by_role("button", name="Find Traces").click()
    page.get_by_text("frontend: POST /checkout").wait_for()
    searched = [c for c in calls if c.startswith("/jaeger/api/v3/trace-summaries?")]
    assert "query.serviceName" not in searched[-1]
    page.goto(f"{api}/jaeger/dependencies")
    page.locator(".DependencyGraph--graphWrapper svg, .DependencyGraph--graphWrapper canvas").first.wait_for()
    page.get_by_text("frontend").first.wait_for()
    assert any(c.startswith("/jaeger/api/dependencies?") for c in calls), calls
    shot(page, "dependencies")
