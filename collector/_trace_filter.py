"""Which trace ids the DuckDB file may hold that memory does not: a read's way to skip the file.

A check reads the traces it judges every round, and they are nearly always ones that just
arrived, still in memory (the head, and the flushed batches it keeps for a while). A query
of the file costs milliseconds; the filter says in a microsecond that the file holds nothing
of a trace that memory does not also hold, so the read is answered from memory alone.

It is a Bloom filter, grown as a chain of filters each twice the last (a scalable Bloom
filter), so it never refuses an id: it may say "maybe" for an id never added (a needless
query, about 1 % of the time), never "no" for one added. Every trace id that leaves memory
for the file alone is added before it leaves; the file's ids at start are added by a scan,
and until that scan is done every read asks the file. Ids are never removed: a trace that
retention pruned costs one empty query.

Written here rather than taken from a package: about forty lines, on the read path of
every check, with nothing to configure.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

_BITS_PER_ID = 10
_HASHES = 4  # with 10 bits an id: about 1.2 % false "maybe"
_FIRST_CAPACITY = 1 << 16


class _Filter:
    __slots__ = ("bits", "capacity", "count", "size")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = capacity * _BITS_PER_ID
        self.bits = bytearray(self.size // 8 + 1)
        self.count = 0

    def positions(self, key: bytes) -> list[int]:
        # Two halves of one 64-bit hash, combined as Kirsch and Mitzenmacher show is enough.
        h = hash(key) & 0xFFFF_FFFF_FFFF_FFFF
        low, high = h & 0xFFFF_FFFF, (h >> 32) | 1
        return [(low + i * high) % self.size for i in range(_HASHES)]

    def add(self, key: bytes) -> None:
        for p in self.positions(key):
            self.bits[p >> 3] |= 1 << (p & 7)
        self.count += 1

    def __contains__(self, key: bytes) -> bool:
        bits = self.bits
        return all(bits[p >> 3] & (1 << (p & 7)) for p in self.positions(key))


class TraceIdFilter:
    """Trace ids that may be in the file but not in memory; `ready` once the file's ids at
    start are in (until then `may_hold` says yes to everything)."""

    def __init__(self) -> None:
        self._filters = [_Filter(_FIRST_CAPACITY)]
        self._lock = threading.Lock()
        self.ready = False

    def add(self, keys: Iterable[bytes]) -> None:
        with self._lock:
            for key in keys:
                current = self._filters[-1]
                if current.count >= current.capacity:
                    current = _Filter(current.capacity * 2)
                    self._filters.append(current)
                current.add(key)

    def may_hold(self, key: bytes) -> bool:
        if not self.ready:
            return True
        return any(key in f for f in self._filters)
