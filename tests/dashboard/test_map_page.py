"""The Map page, the "open in Jaeger" links and keyboard navigation in a real browser
(chromium_pages.py), against a `tracebaton serve --jaeger-ui-url …` holding scripted
checkouts imported through the API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from chromium_pages import Page, shot
from conftest import start_server
from scripted_traces import check, import_spans, scripted_checkout

pytest_plugins = ["chromium_pages"]  # its fixtures: browser, page (api is this module's own)

JAEGER = "http://jaeger.example:16686"
SPEC = {"name": "checkout", "expect": {"hops": ["frontend -> auth", "frontend -> cart", "cart -> inventory"]}}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    running = start_server(tmp_path_factory.mktemp("map") / "store.duckdb", "--jaeger-ui-url", JAEGER + "/")
    yield running.api
    assert running.stop() == 0, running.stderr
    assert "Traceback" not in running.stderr, running.stderr


@pytest.fixture(scope="module")
def shop(api: str) -> dict[str, Any]:
    """Three checkouts, the last with inventory failing; each judged once, so Flows lists them."""
    traces = [scripted_checkout(inventory_fails=fails) for fails in (False, False, True)]
    runs = []
    for trace in traces:
        import_spans(api, trace)
        runs.append(check(api, SPEC, trace.trace_id))
    return {"trace_ids": [t.trace_id for t in traces], "runs": runs}


def test_the_map_draws_every_hop_with_the_apis_numbers(api: str, page: Page, shop: dict[str, Any]) -> None:
    expected = httpx.get(f"{api}/api/service-map", params={"window": "15m"}, timeout=30).json()
    hops = {link["hop"] for link in expected["links"]}
    assert hops >= {"frontend -> auth", "frontend -> cart", "cart -> inventory"}
    page.goto(f"{api}/map?window=15m")
    page.wait_for_selector("#map-hops tbody tr")
    assert page.locator("nav a.current").inner_text() == "Map"
    rows = page.locator("#map-hops tbody tr")
    assert rows.count() == len(expected["links"])
    inventory = page.locator('#map-hops tr[data-hop="cart -> inventory"] td')
    assert inventory.all_inner_texts()[:4] == ["cart -> inventory", "3", "1", "33.3%"]
    # drawn: a box per service, layered by call depth, an edge per hop, the failing one red
    svg = page.locator("#map-svg")
    assert svg.locator("g.map-node").count() == len(expected["services"])
    x = {name: float(svg.locator(f'g.map-node[data-service="{name}"] rect').get_attribute("x") or "nan")
         for name in ("frontend", "cart", "inventory")}
    assert x["frontend"] < x["cart"] < x["inventory"], x
    assert svg.locator("g.map-edge").count() == len(expected["links"])
    edge = 'g.map-edge[data-hop="{}"]'.format
    assert "failing" in (svg.locator(edge("cart -> inventory")).get_attribute("class") or "")
    assert "failing" not in (svg.locator(edge("frontend -> auth")).get_attribute("class") or "")
    label = svg.locator('g.map-edge[data-hop="cart -> inventory"] text').text_content() or ""
    assert re.match(r"^3 · 33\.3% err(p50 \S+ ms · p99 \S+ ms)$", label), label
    status = page.locator("#map-status").inner_text()
    assert re.match(r"^\d+ hops? between \d+ services over \d+ traces$", status), status
    shot(page, "service-map")

    # a custom window an hour back holds none of them
    page.select_option("#map-window", "custom")
    page.fill("#map-start", "2020-01-01T10:00")
    page.fill("#map-end", "2020-01-01T11:00")
    page.click("form.filters button")
    page.locator("#map-status", has_text="No hop in this window").wait_for()
    assert page.locator("#map-hops tbody tr").count() == 0
    assert "start_unix_nano=" in page.url


@pytest.mark.parametrize(("query", "says"), [
    ("window=soon", "422: query parameter window: 'soon' is not a duration"),
    ("start_unix_nano=2000&end_unix_nano=1000", "422: start_unix_nano 2000 is not before end_unix_nano 1000"),
])
def test_a_bad_window_shows_the_apis_message(api: str, lenient_page: Page, query: str, says: str) -> None:
    lenient_page.goto(f"{api}/map?{query}")  # a link as someone wrote it: the API judges it as is
    lenient_page.wait_for_selector("#map-status .error-box")
    assert says in lenient_page.locator("#map-status").inner_text()


def test_every_trace_link_offers_jaeger(api: str, page: Page, shop: dict[str, Any]) -> None:
    trace_id = shop["trace_ids"][0]
    page.goto(f"{api}/traces")
    link = page.locator(f'tr[data-trace-id="{trace_id}"] a.jaeger-link')
    link.wait_for(state="visible")
    assert link.get_attribute("href") == f"{JAEGER}/trace/{trace_id}"
    assert link.get_attribute("target") == "_blank"
    page.goto(f"{api}/flows")
    flow_link = page.locator(f'a.jaeger-link[href="{JAEGER}/trace/{shop["trace_ids"][2]}"]')
    flow_link.wait_for(state="visible")
    page.goto(f"{api}/traces/{trace_id}")
    header = page.locator(".meta a.jaeger-link")
    header.wait_for(state="visible")
    assert header.get_attribute("href") == f"{JAEGER}/trace/{trace_id}"
    other = shop["trace_ids"][1]
    page.goto(f"{api}/compare?a={trace_id}&b={other}")
    page.locator(f'a.jaeger-link[href="{JAEGER}/trace/{other}"]').wait_for(state="visible")
    assert page.locator(f'a.jaeger-link[href="{JAEGER}/trace/{trace_id}"]').count() == 1


def test_keys_move_through_the_traces_list_and_enter_opens(
    api: str, page: Page, shop: dict[str, Any]
) -> None:
    page.goto(f"{api}/traces")
    page.wait_for_selector("#traces tbody tr")
    ids = page.locator("#traces tbody tr").evaluate_all("rows => rows.map((r) => r.dataset.traceId)")
    page.keyboard.press("j")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("k")
    page.keyboard.press("j")
    selected = page.locator("#traces tbody tr.kb-selected")
    assert selected.count() == 1
    assert selected.get_attribute("data-trace-id") == ids[1]
    assert selected.get_attribute("aria-selected") == "true"
    assert page.evaluate("document.activeElement.dataset.traceId") == ids[1], "focus follows the selection"
    shot(page, "traces-keyboard")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/traces/{ids[1]}")


def test_keys_on_the_flows_list_and_the_flow_page(api: str, page: Page, shop: dict[str, Any]) -> None:
    page.goto(f"{api}/flows")
    page.wait_for_selector("#runs tbody tr")
    page.keyboard.press("j")
    first = page.locator("#runs tbody tr.kb-selected")
    run_id = first.get_attribute("data-run-id")
    assert run_id == page.locator("#runs tbody tr").first.get_attribute("data-run-id")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/flows/{run_id}")
    page.wait_for_selector(f'html[data-rendered="{run_id}"]', state="attached")

    # spans: j/k; the details follow
    page.keyboard.press("Escape")
    assert page.locator("#span-details").inner_text().startswith("Details closed")
    assert page.locator(".wf-row.selected").count() == 0
    page.keyboard.press("j")
    first_span = page.locator(".wf-row").first.get_attribute("data-span-id")
    assert page.locator(".wf-row.selected").get_attribute("data-span-id") == first_span
    page.keyboard.press("ArrowDown")
    second_span = page.locator(".wf-row").nth(1).get_attribute("data-span-id")
    assert page.locator(".wf-row.selected").get_attribute("data-span-id") == second_span
    assert page.evaluate("document.activeElement.dataset.spanId") == second_span
    second_name = page.locator(".wf-row").nth(1).locator(".span-name").inner_text()
    assert page.locator("#detail-name").inner_text() == second_name

    # hops: n/p, each selecting its callee's span
    hops = page.locator("#sequence g[data-hop]").evaluate_all("gs => gs.map((g) => g.dataset.hop)")
    page.keyboard.press("n")
    page.keyboard.press("n")
    page.keyboard.press("p")
    page.keyboard.press("ArrowRight")
    assert page.locator("#sequence g.selected").get_attribute("data-hop") == hops[1]
    assert page.locator("#detail-name").count() == 1
    shot(page, "flow-keyboard")

    # Esc closes the details; ? lists the keys, Esc closes that
    page.keyboard.press("Escape")
    assert page.locator("#detail-name").count() == 0
    page.keyboard.press("?")
    dialog = page.locator("dialog#keys-help")
    dialog.wait_for(state="visible")
    text = dialog.inner_text()
    for words in ("next span", "next hop", "close the span's details", "show or hide these keys"):
        assert words in text
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")


def test_keys_are_not_taken_from_a_filter_being_typed_in(api: str, page: Page, shop: dict[str, Any]) -> None:
    page.goto(f"{api}/traces")
    page.wait_for_selector("#traces tbody tr")
    page.click("input[name=service]")
    page.keyboard.type("jk?")
    assert page.locator("input[name=service]").input_value() == "jk?"
    assert page.locator("#traces tbody tr.kb-selected").count() == 0
    assert not page.locator("dialog#keys-help").is_visible()
