"""The properties of test_fuzz_otlp.py for a million inputs: minutes, so marked slow.

Run with `make test-slow`, or
`pytest -m slow tests/collector/test_fuzz_otlp_long.py -s -p no:cacheprovider`. The total
is TRACEBATON_FUZZ_EXAMPLES (default 1,000,000), shared out as

* 40% the OTLP/JSON decoder on bytes: arbitrary bytes, nesting past every limit,
  request-shaped JSON, and byte-level mutants of each;
* 30% the OTLP/JSON decoder on structured JSON: request-shaped documents wrong in places,
  valid requests, and mutants of both with nodes replaced, dropped, renamed or wrapped;
* 30% the protobuf path in process: `ExportTraceServiceRequest.FromString` on arbitrary
  bytes, valid requests and their byte-level mutants, and for whatever parses the store's
  ingest (a `duckdb::memory:` store, fresh for every Hypothesis run) and reads.

Hypothesis draws each example (a base input and a seed); the seed makes `MUTANTS` more
inputs from the base with a seeded random.Random, which costs far less than drawing them
(a drawn request costs about 10 ms). Every input goes through the same check as in the
short run, and every input is counted: each test asserts its share was reached and prints
(with -s) and records (junitxml property) its count, rate and peak memory. A failure
names the failing input itself, base or mutant, as a bytes literal.

Measured on 2 cores (150,000 inputs): about 1,200 inputs/s in each part, so a million
takes about 14 minutes; TRACEBATON_FUZZ_EXAMPLES=2000 checks the machinery in seconds.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import test_fuzz_otlp as fuzz
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracebaton.collector import open_store

pytestmark = pytest.mark.slow

TOTAL = int(os.environ.get("TRACEBATON_FUZZ_EXAMPLES", "1000000"))
TARGETS = {"json_bytes": TOTAL * 4 // 10, "json_structured": TOTAL * 3 // 10}
TARGETS["protobuf"] = TOTAL - sum(TARGETS.values())
#: Inputs made from each drawn example besides the example itself.
MUTANTS = {"json_bytes": 7, "json_structured": 15, "protobuf": 15}
#: Examples per Hypothesis run: its bookkeeping of what it tried grows with the run.
CHUNK_EXAMPLES = 2000
#: One input taking this long is a hang (the short run's per-example deadline is 5 s).
HANG_S = 10.0
#: Peak resident memory of the whole run (Hypothesis included): about 350 MiB is usual.
MAX_RSS_MIB = 2048

seeds = st.integers(0, 2**64 - 1)
json_byte_bases = st.one_of(
    st.binary(max_size=512), fuzz.deep_json, fuzz.json_bodies(fuzz.json_junk), fuzz.json_bodies(),
)
json_documents = st.one_of(fuzz.json_documents, fuzz.json_junk,
                           st.builds(fuzz.valid_json_document, fuzz.export_requests(max_spans=2)))
protobuf_bases = st.one_of(
    st.binary(max_size=512),
    st.builds(lambda request: request.SerializeToString(), fuzz.export_requests(max_spans=2)),
    st.builds(lambda request: request.SerializeToString(), fuzz.export_requests(max_spans=2)),
)


class Tally:
    """Inputs checked in one phase, and how long the slowest took."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.inputs = 0
        self.examples = 0
        self.slowest_s = 0.0
        self.started = time.perf_counter()
        self.extra: dict[str, int] = {}

    def check(self, inputs: Iterator[bytes], check: Callable[[bytes], Any], origin: str) -> None:
        self.examples += 1
        for index, body in enumerate(inputs):
            began = time.perf_counter()
            try:
                check(body)
            except Exception as error:
                raise AssertionError(
                    f"{self.name}: input {index} of {origin} ({type(error).__name__}): {body!r}") from error
            elapsed = time.perf_counter() - began
            self.slowest_s = max(self.slowest_s, elapsed)
            assert elapsed < HANG_S, f"{self.name}: {elapsed:.1f} s for one input: {body!r}"
            self.inputs += 1

    def report(self, record_property: Callable[[str, object], None]) -> str:
        elapsed = time.perf_counter() - self.started
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        extra = "".join(f", {key} {value:,}" for key, value in self.extra.items())
        line = (f"fuzz {self.name}: {self.inputs:,} inputs ({self.examples:,} drawn examples{extra}) "
                f"in {elapsed:.1f} s = {self.inputs / elapsed:,.0f} inputs/s; slowest input "
                f"{self.slowest_s * 1000:.1f} ms; peak RSS {peak_mib:,.0f} MiB")
        for key, value in (("inputs", self.inputs), ("examples", self.examples),
                           ("seconds", round(elapsed, 1)), ("peak_rss_mib", round(peak_mib))):
            record_property(f"fuzz_{self.name}_{key}", value)
        RUN_TOTALS[self.name] = self.inputs
        assert peak_mib < MAX_RSS_MIB, line
        return line


RUN_TOTALS: dict[str, int] = {}


@pytest.fixture(scope="module", autouse=True)
def _grand_total() -> Iterator[None]:
    yield
    print(f"\nfuzz total: {sum(RUN_TOTALS.values()):,} inputs ({RUN_TOTALS})")


def run_until(tally: Tally, target: int, per_example: int, run_chunk: Callable[[int], None]) -> None:
    """Hypothesis runs of at most CHUNK_EXAMPLES examples until `target` inputs were checked."""
    while tally.inputs < target:
        before = tally.inputs
        examples = min(CHUNK_EXAMPLES, -(-(target - tally.inputs) // per_example))
        run_chunk(examples)
        assert tally.inputs > before, f"{tally.name}: a Hypothesis run generated nothing"


def long_settings(examples: int) -> settings:
    return settings(fuzz.FUZZ, max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))


def test_json_decoder_on_a_million_bytes(record_property: Callable[[str, object], None]) -> None:
    name = "json_bytes"
    tally = Tally(name)
    mutants = MUTANTS[name]

    def run_chunk(examples: int) -> None:
        @long_settings(examples)
        @given(body=json_byte_bases, seed=seeds)
        def run(body: bytes, seed: int) -> None:
            inputs = (body if i == 0 else fuzz.mutate_bytes(body, fuzz.RandomChoices(seed + i),
                                                            fuzz.JSON_TOKENS)
                      for i in range(mutants + 1))
            tally.check(inputs, fuzz.decode_or_reject, f"seed {seed}")

        run()

    run_until(tally, TARGETS[name], mutants + 1, run_chunk)
    print("\n" + tally.report(record_property))
    assert tally.inputs >= TARGETS[name]


def test_json_decoder_on_a_million_structures(record_property: Callable[[str, object], None]) -> None:
    name = "json_structured"
    tally = Tally(name)
    mutants = MUTANTS[name]

    def bodies(document: Any, seed: int) -> Iterator[bytes]:
        yield fuzz.dump_json(document, fuzz.RandomChoices(seed))
        for i in range(1, mutants + 1):
            choose = fuzz.RandomChoices(seed + i)
            wrong = document
            for _ in range(choose.integer(1, 3)):
                wrong = fuzz.mutate_document(wrong, choose)
            yield fuzz.dump_json(wrong, choose)

    def run_chunk(examples: int) -> None:
        @long_settings(examples)
        @given(document=json_documents, seed=seeds)
        def run(document: Any, seed: int) -> None:
            tally.check(bodies(document, seed), fuzz.decode_or_reject, f"seed {seed}")

        run()

    run_until(tally, TARGETS[name], mutants + 1, run_chunk)
    print("\n" + tally.report(record_property))
    assert tally.inputs >= TARGETS[name]


def test_protobuf_path_on_a_million_bodies(record_property: Callable[[str, object], None]) -> None:
    name = "protobuf"
    tally = Tally(name)
    mutants = MUTANTS[name]
    parsed = [0]

    def run_chunk(examples: int) -> None:
        store = open_store("duckdb::memory:").start()  # fresh for each run: memory stays bounded
        try:
            def check(body: bytes) -> None:
                parsed[0] += fuzz.check_protobuf_body(store, body)

            @long_settings(examples)
            @given(body=protobuf_bases, seed=seeds)
            def run(body: bytes, seed: int) -> None:
                inputs = (body if i == 0 else fuzz.mutate_bytes(body, fuzz.RandomChoices(seed + i),
                                                                fuzz.PROTOBUF_TOKENS)
                          for i in range(mutants + 1))
                tally.check(inputs, check, f"seed {seed}")

            run()
        finally:
            store.shutdown()

    run_until(tally, TARGETS[name], mutants + 1, run_chunk)
    tally.extra["parsed and stored"] = parsed[0]
    print("\n" + tally.report(record_property))
    assert tally.inputs >= TARGETS[name]
    assert parsed[0] > 0, "no input parsed: the store path was never exercised"
