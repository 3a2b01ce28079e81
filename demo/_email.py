"""email: the worker that drains the orders outbox. Each message is processed in a
CONSUMER span that starts a trace of its own and links to the PRODUCER span stored with
the message, as outbox relays and batch consumers do (DESIGN §4: a linked async hop).

It wakes on a datagram that orders sends after each commit, and polls as a fallback
(a lost datagram, a work directory too long for a unix socket path).
"""

from __future__ import annotations

import os
import select
import signal
import sys
import time
from pathlib import Path
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import INVALID_SPAN, Link, SpanKind, Status, StatusCode

from . import _outbox
from ._faults import FAULT_HEADER, SLOW_S, FaultHeaderError, Faults
from ._process import announce_ready, exit_when_stdin_closes
from ._telemetry import setup_tracing

SERVICE = "email"
POLL_S = 0.025
"""Without a wake-up socket: how often to look at the outbox."""
FALLBACK_POLL_S = 1.0
"""With one: a look now and then anyway, in case a datagram was dropped."""


def _process(
    tracer: trace.Tracer, db: Any, message_id: int, payload: dict[str, Any], headers: dict[str, str]
) -> None:
    try:
        faults = Faults.parse(headers.get(FAULT_HEADER))
    except FaultHeaderError:
        faults = Faults(None, frozenset())
    if faults.on("lost-message", SERVICE):
        # claimed and dropped without a trace: the bug an at-most-once relay has
        _outbox.finish(db, message_id, "lost")
        print(f"email: message {message_id} lost (fault lost-message@email)", flush=True)
        return
    stored = propagate.extract(headers)
    producer = trace.get_current_span(stored).get_span_context()
    # a new trace (no parent), keeping the message's baggage in the context
    context = trace.set_span_in_context(INVALID_SPAN, stored)
    order_id = str(payload.get("order_id", ""))
    with tracer.start_as_current_span(
        f"process {_outbox.TOPIC}",
        context=context,
        kind=SpanKind.CONSUMER,
        links=[Link(producer)] if producer.is_valid else [],
        attributes={
            "messaging.system": "outbox",
            "messaging.operation.type": "process",
            "messaging.destination.name": _outbox.TOPIC,
            "messaging.message.id": str(message_id),
            "order.id": order_id,
        },
    ) as span:
        if faults.on("slow", SERVICE):
            time.sleep(SLOW_S)
        if faults.on("format-mismatch", SERVICE):
            span.set_status(Status(StatusCode.ERROR, "message does not match the expected format"))
            _outbox.finish(db, message_id, "rejected")
            return
        _outbox.record_email(db, order_id, f"Your order {order_id} is confirmed")
        _outbox.finish(db, message_id, "done")


def run(workdir: Path, *, watch_stdin: bool) -> int:
    provider = setup_tracing(SERVICE)
    tracer = provider.get_tracer("tracebaton.demo.email")
    db = _outbox.connect(workdir)
    _outbox.release_claims(db)
    wake = _outbox.listen_for_nudges(workdir)
    # a self-pipe: SIGTERM interrupts the wait at once instead of at the next poll
    stop_read, stop_write = os.pipe()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: os.write(stop_write, b"x"))
    if watch_stdin:
        exit_when_stdin_closes()
    announce_ready(SERVICE)
    waits: list[Any] = [stop_read] + ([wake] if wake is not None else [])
    poll = FALLBACK_POLL_S if wake is not None else POLL_S
    try:
        while True:
            while messages := _outbox.claim(db):
                for message_id, payload, headers in messages:
                    _process(tracer, db, message_id, payload, headers)
            readable, _, _ = select.select(waits, [], [], poll)
            if stop_read in readable:
                return 0
            if wake is not None and wake in readable:
                while True:  # several commits may have nudged: one look serves them all
                    try:
                        wake.recv(64)
                    except BlockingIOError:
                        break
    finally:
        provider.shutdown()
        db.close()
        if wake is not None:
            wake.close()


def main(workdir: Path, *, watch_stdin: bool) -> None:
    sys.exit(run(workdir, watch_stdin=watch_stdin))
