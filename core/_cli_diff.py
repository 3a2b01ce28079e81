"""`tracebaton diff TRACE_A TRACE_B` (DESIGN §8): the hop diff of two stored flows, the one a
failed `flow.assert_snapshot()` prints, with the first trace in the snapshot's place.

Exit codes: 0 the two flows have the same hops, 1 they differ, 2 bad input (an id that is
no trace id, a trace the server does not hold, a server that cannot be reached)."""

from __future__ import annotations

import argparse
import json
import urllib.parse
from typing import Any

from ._cli_client import _Api, trace_id_argument
from ._config import ENV_URL, server_url


def add_diff_command(commands: Any) -> None:
    diff = commands.add_parser(
        "diff",
        help="the hop diff of two stored flows (exit 0 the same, 1 different, 2 bad input)",
        description="Print the hop diff of the flow of TRACE_B against the flow of TRACE_A, as a failed "
        "flow.assert_snapshot() prints it against its snapshot: `-` A, `+` B, `!` a hop of both whose "
        "kind, count, order, propagation, answer, captured headers or baggage changed, or that "
        "exceeded the budget a snapshot of A would give it. The second line names the first changed "
        "hop. Exit 0 when the hops are the same, 1 when they differ, 2 on bad input.",
    )
    diff.add_argument("trace_a", metavar="TRACE_A", help="the flow read as the snapshot (32 hex digits)")
    diff.add_argument("trace_b", metavar="TRACE_B", help="the flow compared with it")
    diff.add_argument("--server", metavar="URL",
                      help=f"the tracebaton API URL (default: ${ENV_URL}, else http://127.0.0.1:7357)")
    diff.add_argument("--format", choices=("text", "json"), default="text",
                      help="text for people (default); json: the API's answer, rows and text")
    diff.add_argument("-v", "--verbose", action="store_true", help="every hop, unchanged runs included")


def run_diff(args: argparse.Namespace) -> int:
    from tracebaton.assertions import ShapeDiff, render_trace_diff

    a, b = trace_id_argument(args.trace_a, "TRACE_A"), trace_id_argument(args.trace_b, "TRACE_B")
    api = _Api(server_url(args.server))
    try:
        answer = api.call("GET", f"/api/diff?{urllib.parse.urlencode({'a': a, 'b': b})}")
    finally:
        api.close()
    diff = ShapeDiff.from_json(answer["diff"])
    if args.format == "json":
        print(json.dumps(answer, indent=2))
    else:
        # rendered here from the rows, by the one renderer: the same text at any verbosity
        print(render_trace_diff(diff, a, b, full=args.verbose))
    return 0 if diff.same else 1
