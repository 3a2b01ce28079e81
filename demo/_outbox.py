"""The transactional outbox between orders and the email worker: one sqlite file in the
shop's work directory. An order and its outbox row commit together, so a message exists
exactly when its order does; the worker claims rows and processes them later.

The row keeps the headers of the PRODUCER span's context (traceparent, tracestate,
baggage) and the request's x-request-id and x-demo-fault, as a message broker would.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

DB_NAME = "shop.sqlite3"
WAKE_NAME = "outbox.wake"
TOPIC = "order-confirmation"
_MAX_UNIX_PATH = 100
"""sun_path holds 108 bytes on Linux, 104 on macOS; a longer work directory falls back to polling."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY, created_at REAL NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, payload TEXT NOT NULL,
    headers TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending',
    created_at REAL NOT NULL, claimed_at REAL, done_at REAL);
CREATE INDEX IF NOT EXISTS outbox_by_state ON outbox (state, id);
CREATE TABLE IF NOT EXISTS emails (
    id INTEGER PRIMARY KEY AUTOINCREMENT, order_id TEXT NOT NULL, subject TEXT NOT NULL,
    sent_at REAL NOT NULL);
"""


def connect(workdir: Path) -> sqlite3.Connection:
    # autocommit mode: transactions are the explicit BEGIN IMMEDIATE ... COMMIT below
    db = sqlite3.connect(workdir / DB_NAME, isolation_level=None, check_same_thread=False, timeout=10)
    db.execute("PRAGMA busy_timeout = 10000")
    # WAL: the worker's reads never block an order's write, and the reverse
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.executescript(_SCHEMA)
    return db


def write_order(db: sqlite3.Connection, order_id: str, body: Any, headers: dict[str, str]) -> int:
    """The order and its outbox message, in one transaction; returns the message id."""
    now = time.time()
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(
            "INSERT INTO orders (id, created_at, body) VALUES (?, ?, ?)", (order_id, now, json.dumps(body))
        )
        cursor = db.execute(
            "INSERT INTO outbox (topic, payload, headers, created_at) VALUES (?, ?, ?, ?)",
            (TOPIC, json.dumps({"order_id": order_id, **body}), json.dumps(headers), now),
        )
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return int(cursor.lastrowid or 0)


def claim(db: sqlite3.Connection, limit: int = 16) -> list[tuple[int, dict[str, Any], dict[str, str]]]:
    """Pending messages, oldest first, marked claimed: (id, payload, headers)."""
    rows = db.execute(
        "UPDATE outbox SET state = 'claimed', claimed_at = ? WHERE id IN "
        "(SELECT id FROM outbox WHERE state = 'pending' ORDER BY id LIMIT ?) "
        "RETURNING id, payload, headers",
        (time.time(), limit),
    ).fetchall()
    return sorted((int(i), json.loads(p), json.loads(h)) for i, p, h in rows)


def finish(db: sqlite3.Connection, message_id: int, state: str) -> None:
    db.execute("UPDATE outbox SET state = ?, done_at = ? WHERE id = ?", (state, time.time(), message_id))


def release_claims(db: sqlite3.Connection) -> None:
    """Messages a previous worker claimed and never finished go back to pending (one worker)."""
    db.execute("UPDATE outbox SET state = 'pending', claimed_at = NULL WHERE state = 'claimed'")


def record_email(db: sqlite3.Connection, order_id: str, subject: str) -> None:
    db.execute(
        "INSERT INTO emails (order_id, subject, sent_at) VALUES (?, ?, ?)", (order_id, subject, time.time())
    )


def wake_address(workdir: Path) -> str | None:
    path = str(workdir / WAKE_NAME)
    return path if len(path.encode()) <= _MAX_UNIX_PATH else None


def nudge(workdir: Path) -> None:
    """Wake the worker now rather than at its next poll. Best effort: a worker that is not
    listening still finds the row when it next looks."""
    address = wake_address(workdir)
    if address is None:
        return
    with (
        contextlib.suppress(OSError),
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock,
    ):
        sock.setblocking(False)
        sock.sendto(b"!", address)


def listen_for_nudges(workdir: Path) -> socket.socket | None:
    address = wake_address(workdir)
    if address is None:
        return None
    with contextlib.suppress(FileNotFoundError):
        Path(address).unlink()  # a previous worker's
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.setblocking(False)
    return sock
