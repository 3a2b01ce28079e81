"""The ingest log's records: whole ones replay in order, a torn or foreign tail is dropped
with a warning naming the segment and the byte, never fatal."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tracebaton.collector import JSON, PROTOBUF
from tracebaton.collector._ingest_log import IngestLog, LogPosition, encode_record


def _log_with(directory: Path, *records: bytes) -> IngestLog:
    ingest_log = IngestLog(directory)
    ingest_log.open()
    for record in records:
        ingest_log.append(record)
    ingest_log.close(delete=False)
    return IngestLog(directory)


def _replayed(ingest_log: IngestLog) -> list[tuple[bytes, str, int]]:
    """(body, content type, arrival ns) of every whole record left, oldest first."""
    return [(r.body, r.content_type, r.arrival_ns) for r in ingest_log.records()]


def test_records_replay_in_order_across_segments(tmp_path: Path) -> None:
    ingest_log = IngestLog(tmp_path)
    ingest_log.open()
    ingest_log.append(encode_record(b"one", PROTOBUF, 1))
    kept = ingest_log.rotate()
    ingest_log.append(encode_record(b"{}", JSON, 2) + encode_record(b"three", PROTOBUF, 3))
    ingest_log.close(delete=False)
    assert _replayed(IngestLog(tmp_path)) == [(b"one", PROTOBUF, 1), (b"{}", JSON, 2),
                                                  (b"three", PROTOBUF, 3)]
    IngestLog(tmp_path).delete_before(kept)
    assert _replayed(IngestLog(tmp_path)) == [(b"{}", JSON, 2), (b"three", PROTOBUF, 3)]


def test_records_are_named_by_segment_and_place_and_a_reopened_log_never_reuses_a_name(
        tmp_path: Path) -> None:
    ingest_log = IngestLog(tmp_path)
    ingest_log.open()
    assert ingest_log.position == LogPosition(1, 0)
    ingest_log.append(encode_record(b"one", PROTOBUF, 1) + encode_record(b"two", PROTOBUF, 2), 2)
    assert ingest_log.position == LogPosition(1, 2)
    ingest_log.rotate()
    ingest_log.append(encode_record(b"three", PROTOBUF, 3))
    ingest_log.close(delete=False)
    assert [r.position for r in IngestLog(tmp_path).records()] == [(1, 0), (1, 1), (2, 0)]
    ingest_log.close(delete=True)  # a clean stop: the file may still name segment 2
    reopened = IngestLog(tmp_path)
    reopened.open(after_segment=2)
    assert reopened.position == LogPosition(3, 0)


@pytest.mark.parametrize(("tail", "what"), [
    (encode_record(b"cut short", PROTOBUF, 2)[:10], "a header cut short"),
    (encode_record(b"cut short", PROTOBUF, 2)[:-3], "a body cut short or changed"),
    (encode_record(b"flipped", PROTOBUF, 2).replace(b"flipped", b"flapped"), "a body cut short or changed"),
    (b"GARBAGE-GARBAGE-GARBAGE-GARBAGE", "no record header"),
])
def test_a_torn_tail_is_dropped_and_said(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                         tail: bytes, what: str) -> None:
    whole = encode_record(b"whole", PROTOBUF, 1)
    ingest_log = _log_with(tmp_path, whole + tail)
    with caplog.at_level(logging.WARNING, "tracebaton.collector"):
        assert _replayed(ingest_log) == [(b"whole", PROTOBUF, 1)]
    assert ingest_log.torn_records == 1
    assert f"{what} at byte {len(whole)}" in caplog.text
    assert "000001.log" in caplog.text


def test_a_clean_close_leaves_nothing(tmp_path: Path) -> None:
    directory = tmp_path / "store.duckdb.ingest"
    ingest_log = IngestLog(directory)
    ingest_log.open()
    ingest_log.append(encode_record(b"x", PROTOBUF, 1))
    ingest_log.close(delete=True)
    assert not directory.exists()
