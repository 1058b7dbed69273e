"""Spill segments: durable FIFO order, rotation, torn records and cleanup."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.ingest.helpers import make_ticks, spill_files
from trademk.ingest.spill import SEGMENT_MAGIC, SpillCorruptError, SpillQueue


async def drain(queue: SpillQueue) -> list[tuple[int, str, int]]:
    out = []
    while (batch := await queue.read_head()) is not None:
        assert batch.count == len(batch.ticks)
        out.append((batch.seq, batch.batch_id, batch.ticks[0].seq or 0))
        queue.pop_head()
    return out


async def test_batches_come_back_in_sequence_order_and_files_are_deleted(tmp_path: Path) -> None:
    queue = SpillQueue(tmp_path)
    queue.load()
    for seq in range(5):
        await queue.append(seq, f"id{seq}", make_ticks(3, first=seq * 3))
    assert (queue.pending_batches, queue.pending_ticks, queue.max_seq) == (5, 15, 4)
    assert len(spill_files(tmp_path)) == 1
    assert await drain(queue) == [(s, f"id{s}", s * 3) for s in range(5)]
    assert queue.pending_ticks == 0
    assert spill_files(tmp_path) == []


async def test_reopened_queue_sees_every_acknowledged_batch(tmp_path: Path) -> None:
    first = SpillQueue(tmp_path)
    first.load()
    ticks = make_ticks(4)
    await first.append(7, "a", ticks)
    await first.append(8, "b", make_ticks(2, first=4))
    first.close()

    second = SpillQueue(tmp_path)
    recovery = second.load()
    assert (recovery.batches, recovery.ticks, recovery.torn_records) == (2, 6, 0)
    assert second.max_seq == 8
    head = await second.read_head()
    assert head is not None and head.ticks == ticks and head.batch_id == "a"


async def test_torn_final_record_is_ignored(tmp_path: Path) -> None:
    queue = SpillQueue(tmp_path)
    queue.load()
    await queue.append(0, "kept", make_ticks(2))
    await queue.append(1, "torn", make_ticks(2, first=2))
    queue.close()
    segment = spill_files(tmp_path)[0]
    data = segment.read_bytes()
    segment.write_bytes(data[:-5])  # the crash cut the last record short

    reopened = SpillQueue(tmp_path)
    recovery = reopened.load()
    assert (recovery.batches, recovery.torn_records) == (1, 1)
    assert [b[1] for b in await drain(reopened)] == ["kept"]
    assert spill_files(tmp_path) == []


async def test_corrupted_record_stops_the_scan_of_its_segment(tmp_path: Path) -> None:
    queue = SpillQueue(tmp_path)
    queue.load()
    await queue.append(0, "good", make_ticks(2))
    await queue.append(1, "bad", make_ticks(2, first=2))
    queue.close()
    segment = spill_files(tmp_path)[0]
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF  # flip bits inside the last payload: its checksum no longer matches
    segment.write_bytes(bytes(data))

    reopened = SpillQueue(tmp_path)
    assert reopened.load().batches == 1
    assert [b[1] for b in await drain(reopened)] == ["good"]


async def test_segments_rotate_by_size_and_each_is_deleted_once_drained(tmp_path: Path) -> None:
    queue = SpillQueue(tmp_path, segment_bytes=64)  # smaller than one record
    queue.load()
    for seq in range(6):
        await queue.append(seq, f"id{seq}", make_ticks(5, first=seq * 5))
    segments = spill_files(tmp_path)
    assert len(segments) == 6
    await queue.read_head()
    queue.pop_head()
    assert spill_files(tmp_path) == segments[1:]
    assert [b[0] for b in await drain(queue)] == [1, 2, 3, 4, 5]
    assert spill_files(tmp_path) == []


async def test_an_older_batch_appended_late_is_served_first(tmp_path: Path) -> None:
    queue = SpillQueue(tmp_path)
    queue.load()
    await queue.append(5, "newer", make_ticks(1))
    await queue.append(2, "older", make_ticks(1))
    queue.close()
    reopened = SpillQueue(tmp_path)
    reopened.load()
    assert [b[1] for b in await drain(reopened)] == ["older", "newer"]


def test_foreign_file_with_the_spill_suffix_is_refused(tmp_path: Path) -> None:
    (tmp_path / "x.spill").write_bytes(b"not a spill segment at all")
    with pytest.raises(SpillCorruptError, match="bad magic"):
        SpillQueue(tmp_path).load()


def test_empty_or_half_created_segments_are_removed(tmp_path: Path) -> None:
    (tmp_path / "a.spill").write_bytes(b"")
    (tmp_path / "b.spill").write_bytes(SEGMENT_MAGIC[:3])
    (tmp_path / "c.spill").write_bytes(SEGMENT_MAGIC)
    recovery = SpillQueue(tmp_path).load()
    assert recovery.batches == 0
    assert spill_files(tmp_path) == []
