"""Arrival notifications: who is waiting for which trace, woken by each commit.

Every commit gets a sequence number. A reader notes the sequence before it reads and
waits for a commit *after* it, so spans that land between its read and its wait are
never missed, and there is no polling interval anywhere.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable


class ArrivalBoard:
    def __init__(self, remembered_traces: int = 200_000) -> None:
        self._cond = threading.Condition()
        self._sequence = 0
        self._last_commit: OrderedDict[bytes, int] = OrderedDict()
        self._remembered = remembered_traces
        # Commits up to here may have touched traces no longer remembered.
        self._forgotten_through = 0
        self._closed = False

    @property
    def sequence(self) -> int:
        """The sequence number of the latest commit."""
        with self._cond:
            return self._sequence

    def publish(self, trace_ids: Iterable[bytes]) -> int:
        with self._cond:
            self._sequence += 1
            seq = self._sequence
            last = self._last_commit
            for trace_id in trace_ids:
                last[trace_id] = seq
                last.move_to_end(trace_id)
            while len(last) > self._remembered:
                _, old_seq = last.popitem(last=False)
                self._forgotten_through = max(self._forgotten_through, old_seq)
            self._cond.notify_all()
            return seq

    def _touched_after(self, trace_ids: frozenset[bytes] | None, after: int) -> bool:
        if trace_ids is None:
            return self._sequence > after
        for trace_id in trace_ids:
            seq = self._last_commit.get(trace_id)
            if seq is not None:
                if seq > after:
                    return True
            elif self._forgotten_through > after:
                return True  # it may have been touched and forgotten: wake, the reader re-reads
        return False

    def wait(self, trace_ids: frozenset[bytes] | None, until: float, after: int) -> int | None:
        """Block until a commit after `after` touches one of `trace_ids` (None: any trace).

        `until` is a `time.monotonic()` deadline. Returns the latest commit sequence, or
        None when the deadline passed first or the board was closed.
        """
        with self._cond:
            while not self._touched_after(trace_ids, after):
                if self._closed:
                    return None
                remaining = until - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._sequence

    def close(self) -> None:
        """At shutdown: every waiter returns None, and later waits return at once."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
