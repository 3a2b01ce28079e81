"""Run one service of the demo shop, or the whole shop.

    python -m tracebaton.demo SERVICE [--host H] [--port N] [--url NAME=URL ...] [--workdir DIR]
                                      [--watch-stdin]
    python -m tracebaton.demo shop [--otlp-endpoint URL] [--workdir DIR]

A service listens on 127.0.0.1:N (0 picks a free port; `--host 0.0.0.0` in a container) and prints
`tracebaton-demo: ready service=NAME url=http://127.0.0.1:PORT` once it accepts requests.
Its telemetry is configured from the OTEL_* environment (`tracebaton.sut_env()`).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from pathlib import Path

from . import DemoExtraMissing, require_demo_extra
from ._shop import SERVICES, start_shop


def _exit_without_the_extra() -> None:
    """One line and exit 2, not an ImportError's traceback, where an instrumentation is missing."""
    try:
        require_demo_extra()
    except DemoExtraMissing as error:
        print(f"python -m tracebaton.demo: error: {error}", file=sys.stderr)
        sys.exit(2)


def _url(text: str) -> tuple[str, str]:
    name, sep, url = text.partition("=")
    if not sep or not name or not url.startswith("http"):
        raise argparse.ArgumentTypeError(f"expected NAME=http://HOST:PORT, got {text!r}")
    return name, url


def _run_service(args: argparse.Namespace) -> None:
    name: str = args.service
    spec = SERVICES[name]
    urls = dict(args.url)
    if missing := [dep for dep in spec.calls if dep not in urls]:
        sys.exit(f"{name} calls {', '.join(missing)}: pass --url NAME=URL for each")
    if spec.needs_workdir and args.workdir is None:
        sys.exit(f"{name} keeps its outbox in a directory: pass --workdir DIR")
    # imported per service: the gateway must not load OpenTelemetry at all, and each
    # process pays only for what it runs
    if name == "payment-gateway":
        from . import _gateway

        _gateway.main(args.port, host=args.host, watch_stdin=args.watch_stdin)
    elif name == "email":
        from . import _email

        _email.main(args.workdir, watch_stdin=args.watch_stdin)
    else:
        _exit_without_the_extra()
        from ._service import Service

        service = Service.create(name, urls, mint_request_id=name == "frontend")
        if name == "frontend":
            from . import _frontend

            _frontend.build(service, args.workdir)
        elif name == "orders":
            from . import _orders

            _orders.build(service, args.workdir)
        else:
            from ._backends import BUILDERS

            BUILDERS[name](service, args.workdir)
        service.serve(args.port, host=args.host, watch_stdin=args.watch_stdin)


def _run_shop(args: argparse.Namespace) -> None:
    from tracebaton import sut_env

    _exit_without_the_extra()

    endpoint = args.otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "http://127.0.0.1:4318"
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="tracebaton-shop-"))
    workdir.mkdir(parents=True, exist_ok=True)
    shop = start_shop(
        lambda name: sut_env(endpoint, service_name=name, headers=["x-request-id"]), workdir=workdir
    )
    try:
        print(f"shop ready: {shop.url}/checkout (spans to {endpoint}; logs in {workdir}/logs)", flush=True)
        for name, port in sorted(shop.ports.items()):
            print(f"  {name:16} 127.0.0.1:{port}", flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # out through the finally below
        while True:
            signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        shop.stop()


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m tracebaton.demo` (deploy/compose.yaml runs each service so)."""
    parser = argparse.ArgumentParser(prog="python -m tracebaton.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("service", choices=[*SERVICES, "shop"], help="a service, or `shop` for all of them")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
    parser.add_argument(
        "--url",
        type=_url,
        action="append",
        default=[],
        metavar="NAME=URL",
        help="where a service this one calls listens",
    )
    parser.add_argument("--workdir", type=Path, help="directory of the outbox database (orders, email)")
    parser.add_argument(
        "--watch-stdin", action="store_true", help="exit when stdin closes (the starter went away)"
    )
    parser.add_argument(
        "--otlp-endpoint", help="shop: OTLP/HTTP endpoint (default $OTEL_EXPORTER_OTLP_ENDPOINT)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.service == "shop":
        _run_shop(args)
    else:
        _run_service(args)


if __name__ == "__main__":
    main()
