"""schemathesis against /openapi.json of a real server holding traces and runs: generated
requests, valid and invalid, never get a 500, and every answer matches the document.

Bounded (a few dozen examples per operation and mode) so that it runs in the default suite.
Driven through hypothesis directly: schemathesis's pytest integration does not run on this
pytest version.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from conftest import start_server
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.specs.openapi.checks import positive_data_acceptance
from scripted_traces import CHECKOUT_SPEC, check, import_spans, scripted_checkout

MAX_EXAMPLES = 25
# A flow spec's and an OTLP body's rules are more than a JSON schema says: a schema-valid
# object can still be a bad spec (answered 400 with the reason), and two schema-valid trace
# ids can be one trace, no pair to diff; a service map's window is text the route reads as a
# duration or nanoseconds, and a start after its end is no window (422 naming it); so there
# "valid data is accepted" does not hold by design.
SEMANTIC_INPUT = {"/api/check", "/api/import", "/api/diff", "/api/service-map"}


@pytest.fixture(scope="module")
def api_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    running = start_server(tmp_path_factory.mktemp("fuzz") / "store.duckdb")
    trace = scripted_checkout()
    import_spans(running.api, trace)
    check(running.api, CHECKOUT_SPEC, trace.trace_id)
    yield running.api
    assert running.stop() == 0, running.stderr
    assert "Traceback" not in running.stderr, running.stderr


def _short_waits(case: Any) -> None:
    """A generated spec may ask the server to wait minutes; the waiting is not what is tested."""
    if case.path == "/api/check" and isinstance(case.body, dict) and isinstance(case.body.get("spec"), dict):
        case.body["spec"]["wait"] = {"timeout": "1ms"}


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_no_generated_request_gets_a_server_error(api_url: str, mode: schemathesis.GenerationMode) -> None:
    # The event stream never ends by design; the API tests cover it.
    schema = schemathesis.openapi.from_url(f"{api_url}/openapi.json").exclude(path="/api/events")
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        operations += 1

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def run(case: Any) -> None:
            _short_waits(case)
            excluded = [positive_data_acceptance] if case.path in SEMANTIC_INPUT else []
            case.call_and_validate(base_url=api_url, timeout=30, excluded_checks=excluded)

        try:
            run()
        except Unsatisfiable:
            continue  # nothing to make invalid: an operation without parameters (GET /healthz)
        except Exception as error:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}:\n{error}")
    assert operations >= 10
    assert not failures, "\n\n".join(failures)
