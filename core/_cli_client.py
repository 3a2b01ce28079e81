"""The client commands of `tracebaton` (DESIGN §8): `check`, `spec` and `import`, all through
a server's REST API (--server, else TRACEBATON_URL, else the default URL).

Exit codes: 0 every spec passed (or the command did what it was asked), 1 a spec failed,
2 bad input — a spec that does not parse, a server that cannot be reached or refuses the
request — always with a message on stderr and never a traceback. A server that fails (5xx)
also ends in 2, with a message that says the failure is the server's, not the request's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import sys
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ._config import ENV_TOKEN, ENV_URL, server_url
from ._errors import (
    ConfigurationError,
    RemoteError,
    RequestRejectedError,
    ServerUnreachableError,
    TracebatonError,
)

if TYPE_CHECKING:
    from tracebaton.assertions import FlowSpec

_MARGIN_S = 30.0
"""Beyond a spec's own timeout, how long a check may take to come back (the server's settle)."""


def add_client_commands(commands: Any) -> None:
    server_help = f"the tracebaton API URL (default: ${ENV_URL}, else http://127.0.0.1:7357)"
    check = commands.add_parser(
        "check",
        help="judge flow specs against stored traces (exit 0 passed, 1 failed, 2 bad input)",
        description="Judge each SPEC (a .yaml/.json flow spec file) on the server, which waits for the "
        "spans up to the spec's wait.timeout and records the verdict. Exit 0 when every "
        "spec passed, 1 when one failed, 2 on bad input (a spec that does not parse, a "
        "server that cannot be reached).",
    )
    check.add_argument("specs", nargs="+", metavar="SPEC", help="flow spec files")
    check.add_argument(
        "--trace-id",
        metavar="ID",
        help="judge this trace (32 hex digits); without it each spec's find: section locates its trace",
    )
    check.add_argument("--server", metavar="URL", help=server_help)
    check.add_argument(
        "--junit", metavar="FILE", help="also write JUnit XML: one testsuite per spec, one testcase per check"
    )
    check.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text for people (default); json: one JSON array of results on stdout",
    )
    spec = commands.add_parser(
        "spec",
        help="print the flow spec a stored trace satisfies",
        description="Print, as YAML, the spec that the trace satisfies: its hops in order, how often "
        "each happened, and budgets with headroom. Save it and edit it.",
    )
    spec.add_argument("trace_id", metavar="TRACE_ID")
    spec.add_argument("--name", default="flow", help="the spec's name (default: flow)")
    spec.add_argument("--server", metavar="URL", help=server_help)
    load = commands.add_parser(
        "import",
        help="store spans from an OTLP/JSON or JSON Lines file",
        description="Send FILE (OTLP/JSON, or JSON Lines as the OpenTelemetry file exporter writes: one "
        "export request per line; - reads stdin) to the server's store. All or nothing: a "
        "bad line stores nothing and names the line.",
    )
    load.add_argument("file", metavar="FILE")
    load.add_argument("--server", metavar="URL", help=server_help)


class _Api:
    def __init__(self, url: str) -> None:
        import httpx

        token = os.environ.get(ENV_TOKEN)
        self.url = url
        self._http = httpx.Client(
            base_url=url,
            timeout=httpx.Timeout(30.0),
            headers={"authorization": f"Bearer {token}"} if token else {},
        )

    def call(self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, timeout=timeout or 30.0, **kwargs)
        except httpx.TransportError as error:
            raise ServerUnreachableError(
                self.url,
                error,
                timed_out=isinstance(error, httpx.TimeoutException),
                fix=f"start it with `tracebaton serve`, or point --server or {ENV_URL} at it",
            ) from error
        return RemoteError.json_of(f"{self.url}{path.split('?')[0]}", response.status_code, response.text,
                                   setting=f"--server or {ENV_URL}")

    def close(self) -> None:
        self._http.close()


def _junit(results: list[tuple[str, dict[str, Any]]]) -> bytes:
    suites = ET.Element("testsuites", name="tracebaton check")
    for source, result in results:
        checks = result.get("checks", [])
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=str(result.get("name", source)),
            file=source,
            tests=str(len(checks)),
            failures=str(sum(1 for c in checks if c.get("state") == "fail")),
            skipped=str(sum(1 for c in checks if c.get("state") == "pending")),
            errors="0",
            time=f"{result.get('waited_ms', 0) / 1000:.3f}",
        )
        properties = ET.SubElement(suite, "properties")
        for key in ("trace_id", "run_id", "first_divergence"):
            if result.get(key):
                ET.SubElement(properties, "property", name=key, value=str(result[key]))
        for check in checks:
            case = ET.SubElement(
                suite, "testcase", name=str(check.get("check")), classname=str(result.get("name", source))
            )
            if check.get("state") == "fail":
                failure = ET.SubElement(
                    case, "failure", message=str(check.get("message", ""))[:1000], type="TraceAssertion"
                )
                failure.text = str(check.get("message", ""))
            elif check.get("state") == "pending":
                ET.SubElement(case, "skipped", message="undecided when the check stopped waiting")
    written: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
    return written


@contextlib.contextmanager
def unseen_services_warned(url: str, specs: list[FlowSpec]) -> Iterator[None]:
    """A service the store never saw makes its check wait the whole timeout: said on stderr
    while the check still waits after WARN_OF_UNSEEN_AFTER_S, as the engine says it, not
    only in the verdict after the wait (a check that is done by then needs no warning)."""
    from tracebaton.assertions import WARN_OF_UNSEEN_AFTER_S

    timer = threading.Timer(WARN_OF_UNSEEN_AFTER_S, _warn_of_unseen_services, (url, specs))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _warn_of_unseen_services(url: str, specs: list[FlowSpec]) -> None:
    from tracebaton.assertions import unseen_services_warning

    api = _Api(url)  # a client of its own: the check's is busy waiting for the verdict
    try:
        services = set(api.call("GET", "/jaeger/api/services").get("data") or ())
    except TracebatonError:
        return  # the check itself says what is wrong with the server
    finally:
        api.close()
    for spec in specs:
        warning = unseen_services_warning(spec, services)
        if warning:
            print(f"tracebaton: {warning}", file=sys.stderr, flush=True)


def load_spec_file(source: str) -> FlowSpec:
    """The flow spec in file `source`, as a server will judge it: a `ConfigurationError`
    naming the file for anything the server would refuse, before anything is sent or run."""
    from tracebaton.assertions import parse_flow_spec, server_wait_problem

    if os.path.isdir(source):
        raise ConfigurationError(f"{source}: is a folder; give the path of a .yaml or .json spec in it")
    if not os.path.isfile(source):
        raise ConfigurationError(f"{source}: no such flow spec file; give the path of a .yaml or .json spec")
    try:
        # a path is read as a file only with a spec suffix; other names are read here as YAML
        spec = parse_flow_spec(
            source if source.endswith((".yaml", ".yml", ".json")) else pathlib.Path(source).read_bytes())
    except OSError as error:
        raise ConfigurationError(f"{source}: cannot read it ({error.strerror}); give a readable spec file") \
            from None
    too_long = server_wait_problem(spec.wait)
    if too_long is not None:
        raise ConfigurationError(f"{source}: {too_long}")
    return spec


def trace_id_argument(text: str, what: str) -> str:
    """A trace id given on the command line, lower-cased; what a trace id is, the collector
    says (`trace_id_bytes`), and this names the argument and where to copy one from."""
    from tracebaton.collector import trace_id_bytes

    try:
        return trace_id_bytes(text).hex()
    except ValueError:
        raise ConfigurationError(
            f"{what} {text!r} is not 32 hex digits; copy it from a traceparent header (its second "
            "field), a failure message, or the dashboard's Traces page") from None


def run_check(args: argparse.Namespace) -> int:
    from tracebaton.assertions import FlowResult, flow_spec_to_dict, render_verdict

    if args.trace_id is not None:
        args.trace_id = trace_id_argument(args.trace_id, "--trace-id")
    # Every spec is read before anything is judged: a typo in the third file is reported at
    # once, not after the first two waited out their timeouts.
    specs = []
    for source in args.specs:
        spec = load_spec_file(source)
        if args.trace_id is None and spec.find is None:
            raise ConfigurationError(
                f"{source}: the spec has no find: section to locate its trace; add one, or pass --trace-id"
            )
        specs.append((source, spec))
    api = _Api(server_url(args.server))
    session = f"cli-{uuid.uuid4().hex[:12]}"
    results: list[tuple[str, dict[str, Any]]] = []
    try:
        with unseen_services_warned(api.url, [spec for _, spec in specs]):
            for source, spec in specs:
                body = {
                    "spec": flow_spec_to_dict(spec),
                    "trace_id": args.trace_id,
                    "test_id": source,
                    "session_id": session,
                }
                timeout = spec.wait.timeout_ns / 1e9 + _MARGIN_S
                results.append((source, api.call("POST", "/api/check", json=body, timeout=timeout)))
    finally:
        api.close()
    if args.junit:
        try:
            with open(args.junit, "wb") as handle:
                handle.write(_junit(results))
        except OSError as error:
            raise ConfigurationError(f"--junit {args.junit}: cannot write it ({error.strerror})") from None
    if args.format == "json":
        print(json.dumps([result for _, result in results], indent=2))
    else:
        for source, result in results:
            if len(results) > 1:  # one spec needs no name: its culprit hop stays on line 2
                print(f"== {source}")
            print(render_verdict(FlowResult.from_json(result), dashboard_url=api.url))
            print()
        failed = sum(1 for _, r in results if not r.get("passed"))
        print(
            f"{len(results)} spec{'s' if len(results) != 1 else ''}: "
            f"{len(results) - failed} passed, {failed} failed"
        )
    return 0 if all(result.get("passed") for _, result in results) else 1


def run_spec(args: argparse.Namespace) -> int:
    import urllib.parse

    trace_id = trace_id_argument(args.trace_id, "TRACE_ID")
    name = args.name.strip()
    if not name or len(name) > 200:
        raise ConfigurationError(
            f"--name {args.name[:80]!r} is {'empty' if not name else 'over 200 characters'}; name the flow "
            "as its tests call it, e.g. --name checkout")
    api = _Api(server_url(args.server))
    try:
        answer = api.call("GET", f"/api/traces/{trace_id.lower()}/spec?name={urllib.parse.quote(name)}")
    finally:
        api.close()
    sys.stdout.write(answer["yaml"])
    return 0


def run_import(args: argparse.Namespace) -> int:
    try:
        if args.file == "-":
            body = sys.stdin.buffer.read()
        else:
            with open(args.file, "rb") as handle:
                body = handle.read()
    except OSError as error:
        raise ConfigurationError(
            f"{args.file}: cannot read it ({error.strerror}); give an OTLP/JSON or JSON Lines file"
        ) from None
    api = _Api(server_url(args.server))
    try:
        answer = api.call(
            "POST", "/api/import", content=body, timeout=120.0, headers={"content-type": "application/json"}
        )
    except RequestRejectedError as error:
        if error.status != 400:
            raise
        # What is wrong is in the file: said of the file, not of the HTTP request that carried it.
        source = "stdin" if args.file == "-" else args.file
        raise ConfigurationError(f"{source}: {error.detail}") from None
    finally:
        api.close()
    line = (
        f"imported {answer['accepted_spans']} spans from {answer['requests']} request"
        f"{'s' if answer['requests'] != 1 else ''} into {api.url}"
    )
    if answer.get("rejected_spans"):
        line += f"; rejected {answer['rejected_spans']}: {answer.get('message', '')}"
    print(line)
    return 0
