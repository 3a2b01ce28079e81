"""Rules about ids that hold for every store: what a trace id looks like, and which stored
copies of a span are one span re-sent (OTLP clients retry a request they had no answer to)."""

from __future__ import annotations

import re

_HEX_TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")


def trace_id_bytes(trace_id: str) -> bytes:
    """The 16 bytes of a hex trace id; ValueError naming the value otherwise."""
    if not isinstance(trace_id, str) or not _HEX_TRACE_ID.match(trace_id):
        raise ValueError(f"trace id {trace_id!r} is not 32 hex digits")
    return bytes.fromhex(trace_id)


class ResentSpans:
    """Reads each span once however often it was sent.

    A copy with the same span id and the same content is a re-send and is dropped; a copy
    whose content differs is kept, so a span id reused with other data is not hidden. A
    store whose schema cannot compare content (ClickHouse keeps no span bytes) passes the
    span's row as its content, or keeps one row per span id in its query.
    """

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: set[tuple[bytes, bytes]] = set()

    def first(self, span_id: bytes, content: bytes) -> bool:
        """True the first time this span with this content is read, False for a re-send."""
        key = (span_id, content)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True
