"""The append-only log of acknowledged requests: what makes an acknowledgement durable.

A request is acknowledged once its raw body is written here (a write that reached the
operating system survives a crash of the process) and its spans are in the in-memory head;
the DuckDB file catches up in large batches in the background. The log is a directory of
numbered segments: a flush rotates to a new segment first, and once the flushed spans are
committed to the file, every segment before the new one is deleted. At start, whatever
segments remain are replayed into the file.

A record is named by its position, (segment, index in the segment); the writer stores in
the file, with every commit, how far the file has caught up with the log, so that a replay
skips what the file holds already. A record is a header (magic, content type, arrival
time, body length, CRC-32 of the body) and the body. A crash can leave the last record of
a segment torn; replay detects it by its length or checksum and drops it: such a record
was never acknowledged, since the acknowledgement waits for the whole write.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from tracebaton import whole_number

from ._protocol import JSON, PROTOBUF

log = logging.getLogger("tracebaton.collector")

_HEADER = struct.Struct("<4scqII")  # magic, content type, arrival (unix ns), length, CRC-32
_MAGIC = b"TBL1"
_KINDS = {PROTOBUF: b"p", JSON: b"j"}
_CONTENT_TYPES = {kind: content_type for content_type, kind in _KINDS.items()}
_SUFFIX = ".log"


class LogPosition(NamedTuple):
    """Where a record is in the log: segment numbers only grow, also across restarts."""

    segment: int
    record: int


class LoggedRecord(NamedTuple):
    body: bytes
    content_type: str
    arrival_ns: int
    position: LogPosition


def encode_record(body: bytes, content_type: str, arrival_ns: int) -> bytes:
    return _HEADER.pack(_MAGIC, _KINDS[content_type], arrival_ns, len(body), zlib.crc32(body)) + body


class IngestLog:
    """Segments `000001.log`, `000002.log`, ... in one directory; one writing thread."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._fd = -1
        self._segment = 0
        self._records = 0  # in the segment appended to
        self.torn_records = 0

    def _segments(self) -> list[tuple[int, Path]]:
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            number = whole_number(path.stem)
            if path.suffix == _SUFFIX and number is not None:
                found.append((number, path))
        return sorted(found)

    def records(self) -> Iterator[LoggedRecord]:
        """Every whole record left, oldest first, with its position."""
        for number, path in self._segments():
            data = path.read_bytes()
            offset = index = 0
            while offset < len(data):
                header = data[offset:offset + _HEADER.size]
                if len(header) < _HEADER.size:
                    self._torn(path, offset, "a header cut short")
                    break
                magic, kind, arrival, length, crc = _HEADER.unpack(header)
                body = data[offset + _HEADER.size:offset + _HEADER.size + length]
                if magic != _MAGIC or kind not in _CONTENT_TYPES:
                    self._torn(path, offset, "no record header")
                    break
                if len(body) < length or zlib.crc32(body) != crc:
                    self._torn(path, offset, "a body cut short or changed")
                    break
                yield LoggedRecord(body, _CONTENT_TYPES[kind], arrival, LogPosition(number, index))
                offset += _HEADER.size + length
                index += 1
            self._segment = max(self._segment, number)

    def _torn(self, path: Path, offset: int, what: str) -> None:
        self.torn_records += 1
        log.warning("ingest log %s: %s at byte %d (a write the crash cut off, never acknowledged); "
                    "dropped it and what follows in that segment", path, what, offset)

    def open(self, *, after_segment: int = 0) -> None:
        """Start a fresh segment after the ones there and after `after_segment` (call after
        `replay`; the file may name segments a clean stop deleted, and positions must not
        be reused)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        last = self._segments()
        self._segment = max([self._segment, after_segment, *(n for n, _ in last)])
        self.rotate()

    @property
    def position(self) -> LogPosition:
        """Where the next record appended goes."""
        return LogPosition(self._segment, self._records)

    def append(self, data: bytes, records: int = 1) -> None:
        """Write `records` records; returns once the operating system has them (no fsync:
        DESIGN §3)."""
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._records += records

    def rotate(self) -> int:
        """Continue in a new segment; returns the number of the first segment kept."""
        self._segment += 1
        self._records = 0
        fd = os.open(self.directory / f"{self._segment:06d}{_SUFFIX}",
                     os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        old, self._fd = self._fd, fd
        if old >= 0:
            os.close(old)
        return self._segment

    def delete_before(self, segment: int) -> None:
        """Drop the segments before `segment`: their records are committed to the file."""
        for number, path in self._segments():
            if number < segment:
                path.unlink(missing_ok=True)

    def close(self, *, delete: bool) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if delete:  # a clean stop leaves nothing beside the file
            self.delete_before(self._segment + 1)
            with contextlib.suppress(OSError):
                self.directory.rmdir()
