"""`tracebaton check --trace-id ID` for a trace of which no span ever arrived: one failure that
says so, which services did export lately, and how to point one here — not a check per
rule saying the flow never settled. Golden: this text is what a person reads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import start_server
from scripted_traces import import_spans, new_id, scripted_checkout


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    running = start_server(tmp_path_factory.mktemp("cli-unknown") / "store.duckdb")
    yield running.api
    assert running.stop() == 0, running.stderr


def check(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TRACEBATON_")}
    done = subprocess.run([sys.executable, "-m", "tracebaton", "check", *args], capture_output=True,
                          text=True, timeout=120, check=False, env=environment)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def test_check_of_a_trace_never_stored_says_no_span_of_it_arrived_and_what_did(
    api: str, tmp_path: Path
) -> None:
    import_spans(api, scripted_checkout())  # frontend, auth, cart and inventory exported just now
    spec = tmp_path / "checkout.yaml"
    spec.write_text("name: checkout\nwait: {timeout: 300ms}\nexpect:\n  hops: [frontend -> cart]\n")
    trace_id = new_id(16)
    done = check(str(spec), "--trace-id", trace_id, "--server", api)
    assert done.returncode == 1, done.stderr
    shown = re.sub(r"waited \d+(\.\d+)? m?s", "waited …", done.stdout)
    assert shown == f"""\
flow 'checkout' FAILED · trace {trace_id} · waited … (timeout)
no span of trace {trace_id} arrived in 300 ms
  FAIL    hops: no span of trace {trace_id} arrived in 300 ms
          in the last 60 s, spans of other traces came from auth, cart, frontend, inventory: is the trace id right, and does the service that starts the trace export here?
          a service exports here with OTEL_EXPORTER_OTLP_ENDPOINT=http://HOST:PORT (the http= address `tracebaton serve` prints) and OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf; tracebaton.sut_env() returns both
hops (- expected, + actual):
- frontend -> cart   [missing]
see it: {api}/flows/{trace_id}

1 spec: 0 passed, 1 failed
"""  # noqa: E501

    as_json = check(str(spec), "--trace-id", trace_id, "--server", api, "--format", "json")
    [result] = json.loads(as_json.stdout)
    assert result["first_divergence"] == f"no span of trace {trace_id} arrived in 300 ms"
    assert [c["check"] for c in result["checks"] if c["state"] == "fail"] == ["hops"], "one failure"
