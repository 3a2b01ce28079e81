"""Take docs/failed-flow.png, the README's picture of a failed flow in the dashboard.

    .venv/bin/python docs/take_screenshot.py [--fault slow@inventory]

Runs `tracebaton demo` (serving mode, a free port), opens the failed checkout of the
fault in headless Chromium (Debian's, as the dashboard tests use it), saves the page,
and stops the demo with Ctrl-C (SIGINT).
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

DOCS = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fault", default="drop-traceparent@cart")
    parser.add_argument("--out", type=Path, default=DOCS / "failed-flow.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as workdir:
        demo = subprocess.Popen([sys.executable, "-m", "tracebaton", "demo", "--api-port", "0",
                                 "--workdir", workdir], stdout=subprocess.PIPE, text=True)
        try:
            assert demo.stdout is not None
            text = ""
            for line in demo.stdout:
                text += line
                if line.startswith("serving until"):
                    break
            match = re.search(r"^dashboard: (\S+)/ ", text, re.M)
            if match is None:
                sys.exit(f"the demo did not serve:\n{text}")
            api = match.group(1)
            runs = httpx.get(api + "/api/runs", params={"limit": 100}).json()["runs"]
            run = next(r for r in runs if r["test_id"].endswith(args.fault))
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", args=["--no-sandbox"]  # root: no sandbox
                )
                page = browser.new_page(viewport={"width": 1400, "height": 900}, device_scale_factor=1)
                page.goto(f"{api}/flows/{run['run_id']}")
                page.wait_for_load_state("networkidle")
                page.evaluate("window.scrollTo(0, 0)")  # the page scrolls to the failing span
                page.screenshot(path=str(args.out), full_page=False)
                browser.close()
            print(f"{args.out}: {run['name']} · {run['test_id']}")
        finally:
            demo.send_signal(signal.SIGINT)
            demo.wait(60)
            if demo.stdout is not None:
                demo.stdout.close()


if __name__ == "__main__":
    main()
