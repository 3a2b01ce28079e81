"""Dashboard speed on a large store, in headless Chromium (Debian's, at /usr/bin/chromium).

    python benchmarks/bench_dashboard.py [--spans 1000000] [--rounds 7]

Builds a store of `--spans` spans with SQL (tests/support/big_store.py), starts `tracebaton
serve` on it, imports one 500-span flow and judges it, then reports medians over `--rounds`:

- Flow page of the 500-span flow: time from navigation to the page drawn (sequence diagram and
  waterfall), and to interactive: a click on a span has shown its attributes. Target: < 1 s.
- Traces page: `GET /api/traces` over HTTP (the default listing and three searches), and the
  page in the browser from navigation to its table drawn. Target: < 200 ms.

Each browser round uses a fresh context (no cache).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "support")]

from big_store import build_big_store  # noqa: E402
from conftest import start_server  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from scripted_traces import check, import_spans, scripted_large_trace  # noqa: E402

SEARCHES: dict[str, dict[str, Any]] = {
    "default listing": {"limit": 100},
    "service + status": {"service": "svc-3", "status": "error", "limit": 100},
    "span name": {"name": "GET /items/7", "limit": 100},
    "attribute": {"attr.order.id": "B-17", "limit": 100},
}


def median_ms(samples: list[float]) -> str:
    low, high = min(samples) * 1000, max(samples) * 1000
    return f"{statistics.median(samples) * 1000:7.1f} ms (min {low:.1f}, max {high:.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.duckdb"
        built = build_big_store(path, args.spans)
        print(f"store: {args.spans} spans built with SQL in {built:.1f} s")
        server = start_server(path)
        try:
            api = server.api
            flow = scripted_large_trace(500)
            import_spans(api, flow)
            run = check(api, {"name": "big", "expect": {"hops": ["frontend -> service-1"]}}, flow.trace_id)
            print(f"flow: 500 spans, run {run['run_id']}")

            print("\nGET /api/traces over HTTP, median of", args.rounds)
            with httpx.Client(base_url=api, timeout=60) as client:
                for label, params in SEARCHES.items():
                    client.get("/api/traces", params=params)  # warm: first query plans and caches
                    samples = []
                    for _ in range(args.rounds):
                        started = time.perf_counter()
                        assert client.get("/api/traces", params=params).status_code == 200
                        samples.append(time.perf_counter() - started)
                    print(f"  {label:18} {median_ms(samples)}")

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium", args=["--no-sandbox"]
                )
                drawn, interactive, traces_page = [], [], []
                drawn_in_page, traces_in_page = [], []
                mark = "(performance.getEntriesByName('{}').at(-1) || {{startTime: NaN}}).startTime / 1000"
                row = flow.span("service-3", "POST /step/3").span_id
                for _ in range(args.rounds):
                    context = browser.new_context(viewport={"width": 1400, "height": 1000})
                    page = context.new_page()
                    started = time.perf_counter()
                    page.goto(f"{api}/flows/{run['run_id']}")
                    page.wait_for_selector(f"html[data-rendered='{run['run_id']}']")
                    drawn.append(time.perf_counter() - started)
                    drawn_in_page.append(page.evaluate(mark.format("tracebaton:flow-rendered")))
                    page.click(f'.wf-row[data-span-id="{row}"]')
                    page.wait_for_selector("#detail-attributes")
                    interactive.append(time.perf_counter() - started)
                    assert page.locator(".wf-row").count() == 400, (
                        "500 spans, the 100 `http send` ones folded"
                    )
                    started = time.perf_counter()
                    page.goto(f"{api}/traces")
                    page.wait_for_selector("#traces tbody tr")
                    traces_page.append(time.perf_counter() - started)
                    page.wait_for_function(f"{mark.format('tracebaton:traces-rendered')} >= 0")
                    traces_in_page.append(page.evaluate(mark.format("tracebaton:traces-rendered")))
                    context.close()
                browser.close()
            print(f"\nFlow page, 500-span flow, headless Chromium, median of {args.rounds}:")
            print(f"  drawn, in the page {median_ms(drawn_in_page)}   (navigation start to drawn)")
            print(f"  drawn, wall clock  {median_ms(drawn)}   (as Playwright sees it, its overhead included)")
            print(f"  interactive        {median_ms(interactive)}   (wall clock until a click on a span "
                  "has shown its attributes)")
            print(f"\nTraces page in the browser, default listing, median of {args.rounds}:")
            print(f"  drawn, in the page {median_ms(traces_in_page)}   (navigation start to table drawn)")
            print(f"  drawn, wall clock  {median_ms(traces_page)}")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
