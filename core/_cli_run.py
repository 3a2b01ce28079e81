"""`tracebaton run SPEC -- COMMAND...`: a flow for testers whose requests come from curl,
Newman or any other program, which has no OpenTelemetry context to send.

`run` opens the flow's root span on a `tracebaton serve` (service `test`, as `flow()` does in
a test), gives the command its context as TRACEPARENT, TRACESTATE and BAGGAGE, runs it, and
judges the spec on that trace. Exit codes: those of `check` (0 passed, 1 failed, 2 bad input:
a spec that does not parse, no command, a server that cannot be reached), and 3 when the
command itself failed: the flow is then not judged, since what it should have sent may never
have been sent, and the command's last output says why.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shlex
import signal
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from ._cli_client import _Api, _junit, load_spec_file, unseen_services_warned
from ._config import ENV_INGEST_TOKEN, ENV_TOKEN, ENV_URL, server_url
from ._errors import ConfigurationError

if TYPE_CHECKING:
    from tracebaton.assertions import Flow

COMMAND_FAILED = 3
"""The exit code when the command exits non-zero: not a verdict on the flow."""
TAIL_LINES = 20
"""How much of a failed command's output the message repeats."""
CONTEXT_VARIABLES = {"TRACEPARENT": "traceparent", "TRACESTATE": "tracestate", "BAGGAGE": "baggage"}
"""What the command's environment gets, from the flow root's W3C headers."""


def add_run_command(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="open a flow, run a command in it (curl, newman…), judge the spec "
             "(exit 0 passed, 1 failed, 2 bad input, 3 the command failed)",
        description="Open the flow's root span (service `test`) on the server, run COMMAND with its "
        "W3C context in the environment as TRACEPARENT, TRACESTATE and BAGGAGE (send them: "
        "curl -H \"traceparent: $TRACEPARENT\"), then judge SPEC on that trace. The command's "
        "output goes to stderr; stdout holds the verdict. Exit 0 when the spec passed, 1 when it "
        "failed, 2 on bad input (a spec that does not parse, no command, a server that cannot be "
        "reached), 3 when the command exited non-zero (the flow is not judged).",
        usage="tracebaton run SPEC [--server URL] [--baggage KEY=VALUE] [--format text|json] "
              "[--junit FILE] -- COMMAND [ARG...]",
    )
    run.add_argument("spec", metavar="SPEC", help="a flow spec file (.yaml/.json)")
    # REMAINDER: the command's own options (curl -X POST) are never read as run's
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="COMMAND",
                     help="the program to run and its arguments, after --")
    run.add_argument("--server", metavar="URL",
                     help=f"the tracebaton API URL (default: ${ENV_URL}, else http://127.0.0.1:7357)")
    run.add_argument("--baggage", action="append", default=[], metavar="KEY=VALUE",
                     help="a baggage entry the flow carries (repeat for more); specs check them "
                          "under propagation.baggage")
    run.add_argument("--junit", metavar="FILE",
                     help="also write JUnit XML: one testsuite, one testcase per check")
    run.add_argument("--format", choices=("text", "json"), default="text",
                     help="text for people (default); json: a JSON array of the one result on stdout")
    run.set_defaults(run_parser=run)


def _command(args: argparse.Namespace) -> list[str]:
    """The command after SPEC, and run's options written between SPEC and `--` applied to
    `args`: argparse hands everything after SPEC to the command, options included."""
    argv = list(args.argv)
    if not argv or not argv[0].startswith("-"):
        return argv  # `SPEC -- COMMAND` (argparse drops that --) or `SPEC COMMAND`
    if "--" not in argv:
        return []  # options, and no command after them
    cut = argv.index("--")
    parser: argparse.ArgumentParser = args.run_parser
    late = parser.parse_args([*argv[:cut], args.spec])
    for name, value in vars(late).items():
        if name == "baggage":
            args.baggage = [*args.baggage, *value]
        elif name not in ("spec", "argv", "run_parser") and value != parser.get_default(name):
            setattr(args, name, value)
    return argv[cut + 1:]


def _baggage(entries: list[str]) -> dict[str, str]:
    baggage: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigurationError(
                f"--baggage {entry!r} is not KEY=VALUE; write e.g. --baggage tenant=acme")
        if key in baggage:
            raise ConfigurationError(
                f"--baggage {key} is given twice ({baggage[key]!r}, then {value.strip()!r}); "
                "give each key once")
        baggage[key] = value.strip()
    return baggage


class _Outcome:
    """How the command ended, and the last lines it printed."""

    def __init__(self, code: int, tail: list[str]) -> None:
        self.code = code
        self.tail = tail

    @property
    def how(self) -> str:
        if self.code < 0:
            try:
                return f"was killed by {signal.Signals(-self.code).name}"
            except ValueError:
                return f"was killed by signal {-self.code}"
        return f"exited {self.code}"


def _run_command(command: list[str], flow: Flow) -> _Outcome:
    """Run it with the flow's context in its environment; its output is passed on to stderr
    as it comes (stdout is the verdict's) and its tail kept for a failure message."""
    context = {variable: flow.headers.get(header, "") for variable, header in CONTEXT_VARIABLES.items()}
    try:
        process = subprocess.Popen(command, env={**os.environ, **context}, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
    except OSError as error:  # nothing ran: the input is what is wrong
        raise ConfigurationError(
            f"COMMAND `{shlex.join(command)}` cannot be started ({error.strerror}); give a program on "
            "PATH or its path, e.g. -- curl … or -- sh -c '…'") from None
    tail: collections.deque[bytes] = collections.deque(maxlen=TAIL_LINES)
    try:
        assert process.stdout is not None
        for line in iter(process.stdout.readline, b""):
            sys.stderr.buffer.write(line)
            sys.stderr.buffer.flush()
            tail.append(line)
        code = process.wait()
    finally:
        if process.poll() is None:  # interrupted: the command must not outlive the run
            process.terminate()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
    return _Outcome(code, [line.decode(errors="replace").rstrip("\r\n") for line in tail])


def _write_junit(path: str, report: bytes) -> None:
    try:
        with open(path, "wb") as handle:
            handle.write(report)
    except OSError as error:
        raise ConfigurationError(f"--junit {path}: cannot write it ({error.strerror})") from None


def _junit_command_failed(source: str, name: str, message: str, tail: list[str]) -> bytes:
    """One testsuite whose one testcase, the command, is an error: CI shows why nothing was judged."""
    suites = ET.Element("testsuites", name="tracebaton run")
    suite = ET.SubElement(suites, "testsuite", name=name, file=source, tests="1", failures="0",
                          errors="1", skipped="0")
    case = ET.SubElement(suite, "testcase", name="command", classname=name)
    ET.SubElement(case, "error", message=message[:1000], type="CommandFailed").text = "\n".join(tail)
    written: bytes = ET.tostring(suites, encoding="utf-8", xml_declaration=True)
    return written


def run_run(args: argparse.Namespace) -> int:
    from tracebaton.assertions import Client

    command = _command(args)
    if not command and not os.path.exists(args.spec):  # `run -- curl …`: argparse took curl as SPEC
        raise ConfigurationError(
            f"no SPEC before the command ({args.spec!r} was read as the spec, and it is no file); write "
            f"tracebaton run SPEC -- COMMAND, e.g. tracebaton run checkout.yaml -- {shlex.quote(args.spec)}")
    spec = load_spec_file(args.spec)
    if not command:
        raise ConfigurationError(
            "no COMMAND to run in the flow; give it after --, e.g. tracebaton run "
            f"{shlex.quote(args.spec)} -- curl -H \"traceparent: $TRACEPARENT\" http://127.0.0.1:8000/")
    baggage = _baggage(args.baggage)
    url = server_url(args.server)
    # asked before the command runs: against no server it would send requests nobody judges
    probe = _Api(url)
    try:
        health = probe.call("GET", "/healthz")
    finally:
        probe.close()
    otlp = health.get("otlp_http") if isinstance(health, dict) else None
    session = f"cli-{uuid.uuid4().hex[:12]}"
    with Client(url, token=os.environ.get(ENV_TOKEN), ingest_token=os.environ.get(ENV_INGEST_TOKEN),
                otlp_http_endpoint=otlp if isinstance(otlp, str) else None) as client:
        flow = client.flow(spec.name, baggage=baggage, test_id=args.spec, session_id=session)
        with flow:
            outcome = _run_command(command, flow)
        if outcome.code != 0:
            message = (f"the command `{shlex.join(command)}` {outcome.how}, so flow {spec.name!r} "
                       f"was not judged (its root span is stored: trace {flow.trace_id}); fix what it "
                       "reports and run again")
            if args.junit:
                _write_junit(args.junit, _junit_command_failed(args.spec, spec.name, message, outcome.tail))
            shown = "\n".join(f"    {line}" for line in outcome.tail) or "    (it printed nothing)"
            print(f"tracebaton run: {message}. Its last output:\n{shown}", file=sys.stderr)
            return COMMAND_FAILED
        with unseen_services_warned(url, [spec]):  # as `check` says it
            result = flow.check(spec)
        rendered = flow.render(result) if args.format == "text" else ""
    if args.junit:
        _write_junit(args.junit, _junit([(args.spec, result.to_json())]))
    if args.format == "json":
        print(json.dumps([result.to_json()], indent=2))
    else:
        print(rendered)
    return 0 if result.passed else 1
