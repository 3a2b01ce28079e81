"""The demo shop end to end: real service processes (FastAPI + the OpenTelemetry
instrumentations, an uninstrumented gateway stub, an outbox worker) export to an embedded
collector; a healthy checkout passes the checkout spec and each fault fails it, naming the
hop it broke."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tracebaton import Collector, FlowResult
from tracebaton.assertions import Flow
from tracebaton.demo import FAULTS, SERVICES, Shop, find_oversold, load_flow_spec, start_shop

pytestmark = pytest.mark.xdist_group("heavy")  # with the other heavy tests on one xdist worker

HOPS: list[Any] = [
    "test -> frontend",
    "frontend -> auth",
    ["frontend -> cart", "frontend -> catalog"],  # concurrent: a group, any order inside
    "cart -> inventory",
    "frontend -> payment",
    "payment -> payment-gateway",  # uninstrumented: named by peer.service
    "frontend -> orders",
    "orders ~> email",  # through the outbox, in a linked trace
]

CHECKOUT: dict[str, Any] = {
    "name": "checkout",
    "wait": {"timeout": "10s"},
    "expect": {
        "hops": HOPS,
        "times": {"cart -> inventory": 1, "* -> payment": 1},
        # slack for a loaded 2-core machine: a callee's span may end a few ms after its
        # caller's on a descheduled process; the `outlive-timeout` overrun is 500 ms
        "budgets": {"hops": {"cart -> inventory": "200ms"}, "deadlines": True, "deadline_slack": "50ms"},
        "propagation": {
            "headers": {"traceparent": "valid", "x-request-id": "same"},
            "baggage": {"tenant": "acme"},
        },
    },
}

FAULTY = {**CHECKOUT, "wait": {"timeout": "2500ms"}}
"""Faults that remove a hop fail only at the timeout: keep it short."""


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    with Collector() as running:
        yield running


@pytest.fixture(scope="module")
def shop(collector: Collector, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    running = start_shop(
        lambda name: collector.sut_env(service_name=name, headers=["x-request-id"]),
        workdir=tmp_path_factory.mktemp("shop"),
    )
    try:
        # first requests pay for connection set-up and lazy imports: keep that out of budgets
        for _ in range(2):
            httpx.post(running.url + "/checkout", timeout=10).raise_for_status()
        yield running
    finally:
        pids = running.pids.values()
        running.stop()
    assert running.exit_codes == dict.fromkeys(SERVICES, 0), running.exit_codes
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], "a shop process outlived stop()"


def checkout(collector: Collector, shop: Shop, fault: str | None = None) -> tuple[Flow, httpx.Response]:
    headers = {"x-demo-fault": fault} if fault else {}
    with collector.flow("checkout", baggage={"tenant": "acme"}) as flow:
        response = httpx.post(shop.url + "/checkout", headers={**flow.headers, **headers}, timeout=10)
    return flow, response


def explain(flow: Flow, result: FlowResult, shop: Shop) -> str:
    logs = "\n".join(f"--- {name}\n{shop.log_tail(name, 8)}" for name in SERVICES)
    return f"{flow.render(result, verbosity=2)}\n{logs}"


def test_the_shop_started_every_service_on_its_own_port(shop: Shop) -> None:
    assert set(shop.ports) == {name for name, spec in SERVICES.items() if spec.listens}
    assert len(set(shop.ports.values())) == len(shop.ports)
    assert shop.url == f"http://127.0.0.1:{shop.ports['frontend']}"
    limit = 20 * max(1, 2 / (os.cpu_count() or 2))  # ~20 s on 2 cores
    assert shop.started_in < limit, f"the shop took {shop.started_in:.1f} s to start"


def test_a_healthy_checkout_passes(collector: Collector, shop: Shop) -> None:
    flow, response = checkout(collector, shop)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["order_id"].startswith("ord-")
    assert response.headers["x-request-id"] == answer["request_id"], "frontend minted one and used it"
    result = flow.check(CHECKOUT)
    assert result.passed, explain(flow, result, shop)
    assert result.waited_reason.value == "settled"
    statuses = {h.hop: (h.kind.value, h.status.value) for h in result.hops}
    assert statuses["payment -> payment-gateway"] == ("peer", "matched")
    assert statuses["orders ~> email"] == ("async", "matched")
    assert len(result.trace_ids) == 2, "the email worker's trace links into the flow"
    assert all(status == "matched" for _, status in statuses.values()), statuses


FAULT_CASES = [
    # (fault, culprit hop, the check that catches it, words in its message)
    pytest.param(
        "drop-traceparent@cart",
        "cart -> inventory",
        "connected",
        "inventory started a new trace",
    ),
    ("wrong-order@frontend", "frontend -> payment", "order", "happened before frontend -> cart"),
    ("slow@inventory", "cart -> inventory", "budgets.hops", "budget 200 ms"),
    # the failed first attempt may fail the flow before the retry's spans arrive
    ("retry@inventory", "cart -> inventory", "times|errors", "happened 2 times, expected 1|answered 503"),
    ("format-mismatch@payment", "frontend -> payment", "errors", "frontend -> payment answered 422"),
    ("expired-token@auth", "frontend -> auth", "errors", "frontend -> auth answered 401"),
    ("drop-request-id@cart", "cart -> inventory", "headers", "x-request-id missing on inventory's request"),
    ("outlive-timeout@payment", "frontend -> payment", "deadlines", "after frontend gave up"),
    ("lost-message@email", "orders ~> email", "hops", "no consumer span arrived with a link to it"),
]


@pytest.mark.parametrize(("fault", "culprit", "check", "words"), FAULT_CASES)
def test_each_fault_fails_naming_its_culprit_hop(
    collector: Collector, shop: Shop, fault: str, culprit: str, check: str, words: str
) -> None:
    flow, _ = checkout(collector, shop, fault)
    result = flow.check(FAULTY)
    assert not result.passed, explain(flow, result, shop)
    assert result.first_divergence is not None
    assert result.first_divergence.startswith(culprit), explain(flow, result, shop)
    failed = {c.check: c for c in result.checks if c.state.value == "fail"}
    caught = [(c, w) for c, w in zip(check.split("|"), words.split("|"), strict=True) if c in failed]
    assert caught, explain(flow, result, shop)
    assert all(w in failed[c].message for c, w in caught), [failed[c] for c, _ in caught]
    assert culprit in flow.render(result).splitlines()[1]


def test_a_dropped_traceparent_fails_at_the_hop_it_broke(collector: Collector, shop: Shop) -> None:
    # what holds despite the engine issue above: the flow fails and names cart -> inventory
    flow, response = checkout(collector, shop, "drop-traceparent@cart")
    assert response.status_code == 200
    result = flow.check(FAULTY)
    assert not result.passed
    assert result.first_divergence is not None
    assert result.first_divergence.startswith("cart -> inventory"), explain(flow, result, shop)


def test_an_early_error_verdict_names_the_service_not_its_address(collector: Collector, shop: Shop) -> None:
    # frontend gives up on payment after 200 ms and reports the error at once; payment's
    # own span comes 500 ms later, so the verdict is reached before it arrives
    flow, response = checkout(collector, shop, "outlive-timeout@payment")
    assert response.status_code == 504
    result = flow.check(FAULTY)
    assert not result.passed
    assert result.first_divergence is not None
    assert result.first_divergence.startswith("frontend -> payment"), result.first_divergence


def test_fault_answers_reach_the_client(collector: Collector, shop: Shop) -> None:
    for fault, status in [
        ("expired-token@auth", 401),
        ("format-mismatch@payment", 502),
        ("outlive-timeout@payment", 504),
        ("slow@catalog", 200),
        ("retry@payment-gateway", 200),
    ]:
        response = httpx.post(shop.url + "/checkout", headers={"x-demo-fault": fault}, timeout=10)
        assert response.status_code == status, (fault, response.text)


def test_a_fault_at_an_unknown_service_is_refused_not_ignored(shop: Shop) -> None:
    response = httpx.post(shop.url + "/checkout", headers={"x-demo-fault": "slow@nowhere"}, timeout=10)
    assert response.status_code == 400
    assert response.json()["error"] == (
        "unknown service 'nowhere' in x-demo-fault item 'slow@nowhere'; the shop's services: "
        "auth, catalog, inventory, payment-gateway, orders, email, cart, payment, frontend")


def test_an_unknown_fault_is_refused_not_ignored(shop: Shop) -> None:
    response = httpx.post(shop.url + "/checkout", headers={"x-demo-fault": "slowly@cart"}, timeout=10)
    assert response.status_code == 400
    assert "unknown fault 'slowly'" in response.json()["error"]
    assert set(FAULTS) == {
        "drop-traceparent", "wrong-order", "slow", "retry", "format-mismatch", "expired-token",
        "drop-request-id", "outlive-timeout", "lost-message",
    }  # fmt: skip


def test_log_tail_shows_a_service_output(shop: Shop) -> None:
    assert "POST /checkout" in shop.log_tail("frontend", 50)
    assert "tracebaton-demo: ready service=email" in shop.log_tail("email", 500)
    with pytest.raises(KeyError, match="no service 'nope'"):
        shop.log_tail("nope")


def test_two_concurrent_checkouts_of_the_last_item_oversell_it(collector: Collector, shop: Shop) -> None:
    # inventory's reservation checks the stock, writes, then sets it from what it read: with
    # the rendezvous both reservations pass the check before either writes, every time
    stock = httpx.put(shop.urls["inventory"] + "/stock/mug", json={"quantity": 1, "rendezvous": 2}, timeout=5)
    assert stock.status_code == 200, stock.text
    together = threading.Barrier(2)
    flows: dict[int, tuple[Flow, int]] = {}

    def buy(index: int) -> None:
        with collector.flow("oversell") as flow:
            together.wait(10)
            answer = httpx.post(shop.url + "/checkout", json={"items": [{"sku": "mug"}]},
                                headers=flow.headers, timeout=10)
        flows[index] = (flow, answer.status_code)

    threads = [threading.Thread(target=buy, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert [status for _, status in flows.values()] == [200, 200], "both got the last mug"
    for flow, _ in flows.values():  # per trace, nothing is wrong: only across traces it shows
        result = flow.check(load_flow_spec("oversell"))
        assert result.passed, explain(flow, result, shop)

    oversell = find_oversold(collector, "mug", since="1m")
    assert oversell.oversold
    assert oversell.oversold_by == 1
    assert set(oversell.trace_ids) == {flow.trace_id for flow, _ in flows.values()}
    assert oversell.hop == "cart -> inventory"
    assert oversell.overlaps.height == 1
    assert oversell.overlaps["overlap_ns"][0] > 0
    assert oversell.reservations["before"].to_list() == [1, 1]
    assert oversell.message.startswith("cart -> inventory: two reservations of 'mug' both saw 1 in stock")


def test_one_at_a_time_the_stock_holds(collector: Collector, shop: Shop) -> None:
    # the same shop, no forced interleaving, one checkout after the other: the second is refused
    stock = httpx.put(shop.urls["inventory"] + "/stock/tea-sencha", json={"quantity": 1}, timeout=5)
    assert stock.status_code == 200, stock.text
    answers = []
    for _ in range(2):
        with collector.flow("one at a time") as flow:
            answers.append(httpx.post(shop.url + "/checkout", json={"items": [{"sku": "tea-sencha"}]},
                                      headers=flow.headers, timeout=10))
        flow.trace()  # settled: its spans are all in
    assert [a.status_code for a in answers] == [200, 409], answers[1].text
    assert "tea-sencha: 0 in stock, 1 asked" in answers[1].text
    oversell = find_oversold(collector, "tea-sencha", since="1m")
    assert not oversell.oversold, oversell.message
    assert oversell.reservations["before"].to_list() == [1], "the refused one took nothing"
    assert oversell.message == (
        "cart -> inventory: 1 reservation of 'tea-sencha', none beyond the stock they saw"
    )
    result = oversell.result("oversell")
    assert result.passed
    assert result.first_divergence is None
    assert list(result.trace_ids) == oversell.trace_ids
