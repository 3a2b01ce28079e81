"""`tracebaton demo`: tracebaton and the demo shop in one command. It drives a healthy
checkout and one checkout per fault, judges each against the flow specs in `flows/`, adds a
race that only a check across traces reveals, prints what it found, and serves the
dashboard on the store until Ctrl-C (`--check-only`: exits after the table, for CI).

Uses tracebaton's public API only: `Collector`, `flow()`, `find()` and the demo shop.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import re
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ._faults import FAULT_HEADER
from ._race import find_oversold
from ._shop import SERVICES, Shop, start_shop

if TYPE_CHECKING:
    import httpx

    from tracebaton import Collector
    from tracebaton.assertions import Flow, FlowSpec

DEFAULT_API_PORT = 7357
RACE_SKU = "mug"
_HOP = re.compile(r"^([^\s:]+ [-~]> [^\s:]+)")


@dataclasses.dataclass(frozen=True)
class DemoCase:
    """One row of the demo's table: what it sends, and what tracebaton must say about it."""

    flow: str
    """The row's label: the flow and, for a faulty checkout, its fault."""
    fault: str | None
    """`x-demo-fault` of the checkout, e.g. `slow@inventory`."""
    expect_pass: bool
    culprit: str | None = None
    """The hop a failure must name first."""


CASES: tuple[DemoCase, ...] = (
    DemoCase("checkout", None, True),
    DemoCase("checkout + drop-traceparent@cart", "drop-traceparent@cart", False, "cart -> inventory"),
    DemoCase("checkout + wrong-order@frontend", "wrong-order@frontend", False, "frontend -> payment"),
    DemoCase("checkout + slow@inventory", "slow@inventory", False, "cart -> inventory"),
    DemoCase("checkout + retry@inventory", "retry@inventory", False, "cart -> inventory"),
    DemoCase("checkout + format-mismatch@payment", "format-mismatch@payment", False, "frontend -> payment"),
    DemoCase("checkout + expired-token@auth", "expired-token@auth", False, "frontend -> auth"),
    DemoCase("checkout + drop-request-id@cart", "drop-request-id@cart", False, "cart -> inventory"),
    DemoCase("checkout + outlive-timeout@payment", "outlive-timeout@payment", False, "frontend -> payment"),
    DemoCase("checkout + lost-message@email", "lost-message@email", False, "orders ~> email"),
)
"""The healthy checkout and every fault of the shop (DESIGN §9), judged by flows/checkout.yaml."""

RACE_CASES: tuple[DemoCase, ...] = (
    DemoCase("oversell: checkout A of the last mug", None, True),
    DemoCase("oversell: checkout B of the last mug", None, True),
    DemoCase("oversell: A and B across traces", None, False, "cart -> inventory"),
)
"""Two concurrent checkouts of the last item: each passes flows/oversell.yaml on its own;
the check across both traces (`find_oversold`) fails."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    case: DemoCase
    passed: bool
    culprit: str | None
    said: str | None
    """What tracebaton said first: the first divergence, or the cross-trace finding."""
    trace_id: str | None = None

    @property
    def matched(self) -> bool:
        if self.passed != self.case.expect_pass:
            return False
        return self.case.expect_pass or self.culprit == self.case.culprit


def load_flow_spec(name: str) -> FlowSpec:
    """A spec shipped in `tracebaton/demo/flows/` (package data), e.g. `checkout`."""
    from tracebaton.assertions import parse_flow_spec

    text = importlib.resources.files(__package__).joinpath("flows", f"{name}.yaml").read_text("utf-8")
    return parse_flow_spec(text)


def culprit_of(first_divergence: str | None) -> str | None:
    """`cart -> inventory: took 412 ms, budget 200 ms` -> `cart -> inventory`."""
    match = _HOP.match(first_divergence or "")
    return match.group(1) if match else None


class _Progress:
    """A progress bar on a terminal, one line per step anywhere else (a CI log)."""

    WIDTH = 24

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.tty = stream.isatty()

    def step(self, label: str) -> None:
        self.done += 1
        if self.tty:
            filled = self.WIDTH * (self.done - 1) // self.total
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            self.stream.write(f"\r\033[K[{bar}] {self.done}/{self.total} {label}")
        else:
            self.stream.write(f"[{self.done:>2}/{self.total}] {label}\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty and self.done <= self.total:
            self.stream.write(f"\r\033[K[{'#' * self.WIDTH}] {self.total}/{self.total} done\n")
            self.stream.flush()
        self.done = self.total + 1

    def close(self) -> None:
        """End the bar's line when the run stops early (Ctrl-C, an error)."""
        if self.tty and self.done <= self.total:
            self.stream.write("\n")
            self.stream.flush()
        self.done = self.total + 1


class _Run:
    def __init__(self, collector: Collector, shop: Shop, http: httpx.Client) -> None:
        self.collector = collector
        self.shop = shop
        self.http = http
        self.session_id = "demo-" + uuid.uuid4().hex[:8]

    def checkout(self, flow_name: str, test_id: str, *, fault: str | None = None,
                 body: dict[str, Any] | None = None) -> tuple[Flow, int]:
        flow = self.collector.flow(
            flow_name, baggage={"tenant": "acme"}, test_id=test_id, session_id=self.session_id
        )
        with flow:
            headers = {**flow.headers, **({FAULT_HEADER: fault} if fault else {})}
            response = self.http.post(self.shop.url + "/checkout", headers=headers, json=body)
        return flow, response.status_code

    def case(self, case: DemoCase, spec: FlowSpec) -> Outcome:
        flow, _ = self.checkout(spec.name, f"tracebaton demo: {case.flow}", fault=case.fault)
        result = flow.check(spec)
        return Outcome(case, result.passed, culprit_of(result.first_divergence), result.first_divergence,
                       flow.trace_id)

    def race(self, spec: FlowSpec) -> list[Outcome]:
        """Two checkouts of the last mug at once. Inventory is told to let its next two
        reservations of it meet between check and write: the interleaving that oversells,
        every time rather than now and then."""
        stock = self.http.put(
            f"{self.shop.urls['inventory']}/stock/{RACE_SKU}", json={"quantity": 1, "rendezvous": 2}
        )
        stock.raise_for_status()
        started = time.monotonic()
        together = threading.Barrier(2)
        sent: list[tuple[Flow, int] | BaseException] = [RuntimeError("not sent")] * 2

        def one(index: int, case: DemoCase) -> None:
            try:
                with self.collector.flow(spec.name, test_id=f"tracebaton demo: {case.flow}",
                                         session_id=self.session_id) as flow:
                    together.wait(10)
                    response = self.http.post(
                        self.shop.url + "/checkout", headers=flow.headers,
                        json={"items": [{"sku": RACE_SKU, "quantity": 1}]},
                    )
                sent[index] = (flow, response.status_code)
            except BaseException as error:  # re-raised below, in the demo's thread
                together.abort()
                sent[index] = error

        threads = [threading.Thread(target=one, args=(i, c), name=f"demo-race-{i}")
                   for i, c in enumerate(RACE_CASES[:2])]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        outcomes = []
        for case, item in zip(RACE_CASES[:2], sent, strict=True):
            if isinstance(item, BaseException):
                raise item
            flow, status = item
            result = flow.check(spec)
            said = result.first_divergence or f"answered {status}; every check of this trace passed"
            outcomes.append(Outcome(case, result.passed, culprit_of(result.first_divergence), said,
                                    flow.trace_id))
        # the two traces together: found by what inventory recorded, judged with polars
        oversell = find_oversold(self.collector, RACE_SKU, since=f"{time.monotonic() - started + 5:.0f}s")
        # Recorded like the other rows' verdicts: the dashboard lists every row of the table.
        self.collector.store.record_run(
            oversell.result(spec.name).to_json(), test_id=f"tracebaton demo: {RACE_CASES[2].flow}",
            session_id=self.session_id,
        )
        outcomes.append(Outcome(RACE_CASES[2], not oversell.oversold, oversell.hop if oversell.oversold
                                else None, oversell.message, next(iter(oversell.trace_ids), None)))
        return outcomes


def render_table(outcomes: list[Outcome]) -> str:
    """The demo's table: flow, expected verdict, verdict, culprit hop, and whether it matched."""
    header = ("flow", "expected", "verdict", "culprit hop", "matched")
    rows = [header] + [
        (
            o.case.flow,
            "pass" if o.case.expect_pass else "fail",
            "pass" if o.passed else "fail",
            o.culprit or "-",
            "as expected" if o.matched else "UNEXPECTED"
            + ("" if o.passed != o.case.expect_pass else f" (expected {o.case.culprit})"),
        )
        for o in outcomes
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths[:-1]) + "  " + "-" * len("as expected"))
    return "\n".join(lines)


def _start_collector(db: Path, api_port: int | None) -> Collector:
    from tracebaton import Collector, ConfigurationError

    if api_port is not None:
        return Collector(str(db), api_port=api_port).start()
    try:
        return Collector(str(db), api_port=DEFAULT_API_PORT).start()
    except ConfigurationError:  # taken (a `tracebaton serve`, another demo): any free port
        return Collector(str(db), api_port=0).start()


def _wait_for_a_signal() -> None:
    stop = threading.Event()
    previous = {signum: signal.signal(signum, lambda *_: stop.set())
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(3600):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_demo(
    *,
    check_only: bool = False,
    api_port: int | None = None,
    workdir: str | Path | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run the demo; returns the exit code: 0 when every verdict matched its expectation.

    `api_port`: the dashboard's port (default 7357, or a free one when that is taken);
    `workdir`: where the store and the shop's logs go (default: a temporary directory,
    removed at exit). Without `check_only` it serves the dashboard until SIGINT/SIGTERM.
    """
    import httpx

    out = out or sys.stdout
    err = err or sys.stderr
    began = time.monotonic()
    temporary = None if workdir is not None else tempfile.TemporaryDirectory(prefix="tracebaton-demo-")
    root = Path(workdir if workdir is not None else temporary.name)  # type: ignore[union-attr]
    root.mkdir(parents=True, exist_ok=True)
    # SIGTERM ends a run the way Ctrl-C does: through the finally below, which stops the shop
    previous_term = signal.signal(signal.SIGTERM, signal.default_int_handler)
    progress = _Progress(2 + len(CASES) + 1, err)
    collector: Collector | None = None
    shop: Shop | None = None
    try:
        progress.step("starting tracebaton")
        collector = _start_collector(root / "demo.duckdb", 0 if check_only and api_port is None else api_port)
        progress.step(f"starting the shop ({len(SERVICES)} processes)")
        running = collector
        shop = start_shop(
            lambda name: running.sut_env(service_name=name, headers=["x-request-id"]), workdir=root / "shop"
        )
        shop_started = shop.started_in
        with httpx.Client(timeout=10) as http:
            for _ in range(2):  # connection set-up and lazy imports stay out of the budgets
                http.post(shop.url + "/checkout").raise_for_status()
            run = _Run(collector, shop, http)
            checkout = load_flow_spec("checkout")
            outcomes = []
            for case in CASES:
                progress.step(case.flow)
                outcomes.append(run.case(case, checkout))
            progress.step("oversell: two checkouts of the last mug at once")
            outcomes += run.race(load_flow_spec("oversell"))
        progress.finish()
        matched = sum(o.matched for o in outcomes)
        print(render_table(outcomes), file=out)
        print(f"\n{matched} of {len(outcomes)} verdicts as expected; ran in {time.monotonic() - began:.1f} s "
              f"(shop started in {shop_started:.1f} s)", file=out)
        print("\nwhat tracebaton said:", file=out)
        for outcome in outcomes:
            if outcome.said and not outcome.passed:
                print(f"  {outcome.case.flow}\n      {outcome.said}", file=out)
        code = 0 if matched == len(outcomes) else 1
        if check_only:
            out.flush()
            return code
        url = collector.addresses.api_url
        failed = next((o for o in outcomes if not o.passed and o.trace_id), None)
        print(f"\ndashboard: {url}/  (the demo's runs, failed first)", file=out)
        if failed is not None:
            print(f"a failed flow: {url}/flows/{failed.trace_id}  ({failed.case.flow})", file=out)
        print(f"store and shop logs: {root}" + (" (removed at exit)" if temporary else ""), file=out)
        print("serving until Ctrl-C", file=out, flush=True)
        _wait_for_a_signal()
        print("tracebaton demo: stopped", file=out, flush=True)
        return code
    finally:
        progress.close()
        signal.signal(signal.SIGTERM, previous_term)
        if shop is not None:
            shop.stop()
        if collector is not None:
            collector.shutdown()
        if temporary is not None:
            temporary.cleanup()
