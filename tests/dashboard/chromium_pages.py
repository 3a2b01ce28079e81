"""What every dashboard test module shares (`pytest_plugins = ["chromium_pages"]` for its
fixtures `api`, `browser`, `page`): Debian's Chromium driven by Playwright against a real
`tracebaton serve`; screenshots go to build/artifacts/dashboard/.

Chromium comes from the system (`apt-get install chromium`; .ci/run installs it): Playwright's
own browser download is not used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from conftest import REPO, start_server

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO / "build" / "artifacts" / "dashboard"
RED = "rgb(198, 40, 40)"
AMBER = "rgb(178, 106, 0)"

if not os.path.exists(CHROMIUM):
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: CI must install it (apt-get install -y chromium)")
    pytest.skip(
        f"no {CHROMIUM}: apt-get install -y chromium to run the browser tests", allow_module_level=True
    )

from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, sync_playwright  # noqa: E402  (after the skip above)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    running = start_server(tmp_path_factory.mktemp("dashboard") / "store.duckdb")
    yield running.api
    assert running.stop() == 0, running.stderr
    assert "Traceback" not in running.stderr, running.stderr


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def _watched_page(browser: Browser, *, expect_failed_loads: bool) -> Iterator[Page]:
    """A page whose script errors, console errors and dialogs fail the test; with
    `expect_failed_loads`, the browser's own console line for a 4xx answer is expected."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))

    def console(m: ConsoleMessage) -> None:
        if m.type == "error" and not (expect_failed_loads and "Failed to load resource" in m.text):
            problems.append(f"console {m.type}: {m.text}")

    def dialog_opened(dialog: Dialog) -> None:  # an alert() from span data would land here
        problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    opened.on("console", console)
    opened.on("dialog", dialog_opened)
    yield opened
    context.close()
    assert not problems, problems


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    yield from _watched_page(browser, expect_failed_loads=False)


@pytest.fixture
def lenient_page(browser: Browser) -> Iterator[Page]:
    """A page that asks for what is answered 4xx; script errors still fail the test."""
    yield from _watched_page(browser, expect_failed_loads=True)


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
