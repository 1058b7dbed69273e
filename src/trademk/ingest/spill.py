"""Durable overflow for the ingest pipeline: append-only spill segments on disk.

Each segment file starts with an 8-byte magic and holds length-prefixed
records ``[u32 length][u32 crc32][msgpack SpilledBatch]``, one per batch, each
fsynced before ``append`` returns. A crash can therefore leave at most a torn
final record in the segment being written; loading detects it by length or
checksum and ignores it (it was never acknowledged). Segments are never
appended to after a restart, and a segment is deleted once every record in it
has been written to the store.

Records carry the pipeline's batch sequence number; the queue hands them out
in sequence order whatever file they sit in.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import struct
import uuid
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec
import structlog

from trademk.domain.market import Tick

SEGMENT_MAGIC: Final = b"TMKSPIL1"
SEGMENT_SUFFIX: Final = ".spill"
_RECORD_HEADER: Final = struct.Struct(">II")
DEFAULT_SEGMENT_BYTES: Final = 64 * 1024 * 1024

_log = structlog.get_logger(__name__)


class SpilledBatch(msgspec.Struct, frozen=True):
    """One batch as stored in a spill record."""

    seq: int
    batch_id: str
    count: int
    ticks: list[Tick]


class _SpilledBatchHeader(msgspec.Struct, frozen=True):
    """The leading fields of a record, decoded without materialising the ticks."""

    seq: int
    batch_id: str
    count: int


class SpillCorruptError(RuntimeError):
    """A record that passed its checks at load time no longer reads back intact."""


@dataclass(eq=False)
class _Segment:
    path: Path
    size: int
    pending: int = 0
    fd: int | None = None


@dataclass(frozen=True, slots=True)
class _RecordRef:
    seq: int
    batch_id: str
    count: int
    segment: _Segment
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class SpillRecovery:
    """What ``SpillQueue.load`` found on disk."""

    segments: int
    batches: int
    ticks: int
    torn_records: int


class SpillQueue:
    """A FIFO of batches on disk, ordered by batch sequence number.

    Use from one event loop: one task appends, one reads and pops the head.
    File writes and reads run in worker threads; bookkeeping stays on the loop.
    """

    def __init__(
        self,
        directory: Path,
        *,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        fsync: bool = True,
    ) -> None:
        if segment_bytes <= len(SEGMENT_MAGIC):
            raise ValueError("segment_bytes is too small to hold any record")
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.fsync = fsync
        self._records: deque[_RecordRef] = deque()
        self._active: _Segment | None = None
        self._pending_ticks = 0
        self._max_seq = -1
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(SpilledBatch)
        self._header_decoder = msgspec.msgpack.Decoder(_SpilledBatchHeader)
        self._lock = asyncio.Lock()
        self._inflight: asyncio.Future[None] | None = None
        self._head_cache: SpilledBatch | None = None

    @property
    def pending_batches(self) -> int:
        return len(self._records)

    @property
    def pending_ticks(self) -> int:
        return self._pending_ticks

    @property
    def max_seq(self) -> int:
        """Highest batch sequence number seen on disk or appended; -1 if none."""
        return self._max_seq

    @property
    def head_seq(self) -> int | None:
        return self._records[0].seq if self._records else None

    # -- recovery ---------------------------------------------------------

    def load(self) -> SpillRecovery:
        """Index the segments a previous run left behind (blocking file I/O)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        refs: list[_RecordRef] = []
        segments = torn = 0
        for path in sorted(self.directory.glob(f"*{SEGMENT_SUFFIX}")):
            found, was_torn = self._scan_segment(path)
            torn += was_torn
            if found:
                segments += 1
                refs.extend(found)
            else:
                path.unlink(missing_ok=True)
        refs.sort(key=lambda ref: ref.seq)
        self._records.extend(refs)
        self._pending_ticks += sum(ref.count for ref in refs)
        if refs:
            self._max_seq = max(self._max_seq, refs[-1].seq)
        return SpillRecovery(segments, len(refs), sum(r.count for r in refs), torn)

    def _scan_segment(self, path: Path) -> tuple[list[_RecordRef], int]:
        data = path.read_bytes()
        if not data.startswith(SEGMENT_MAGIC):
            if len(data) < len(SEGMENT_MAGIC) and SEGMENT_MAGIC.startswith(data):
                return [], 1  # crashed while creating the segment
            raise SpillCorruptError(f"{path} is not a spill segment (bad magic); move it away")
        segment = _Segment(path=path, size=len(data))
        refs: list[_RecordRef] = []
        offset = len(SEGMENT_MAGIC)
        while offset < len(data):
            header = self._parse_record(data, offset)
            if header is None:
                _log.warning(
                    "ingest_spill_torn_record_ignored",
                    path=str(path),
                    offset=offset,
                    bytes_ignored=len(data) - offset,
                )
                return self._attach(segment, refs), 1
            length = header[1]
            refs.append(
                _RecordRef(
                    header[0].seq, header[0].batch_id, header[0].count, segment, offset, length
                )
            )
            offset += _RECORD_HEADER.size + length
        return self._attach(segment, refs), 0

    def _parse_record(self, data: bytes, offset: int) -> tuple[_SpilledBatchHeader, int] | None:
        if offset + _RECORD_HEADER.size > len(data):
            return None
        length, crc = _RECORD_HEADER.unpack_from(data, offset)
        start = offset + _RECORD_HEADER.size
        payload = data[start : start + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            return None
        try:
            return self._header_decoder.decode(payload), length
        except msgspec.DecodeError:
            return None

    @staticmethod
    def _attach(segment: _Segment, refs: list[_RecordRef]) -> list[_RecordRef]:
        segment.pending = len(refs)
        return refs

    # -- appending --------------------------------------------------------

    async def append(self, seq: int, batch_id: str, ticks: Sequence[Tick]) -> None:
        """Write one batch durably; returns once it is fsynced."""
        async with self._lock:
            if self._inflight is not None and not self._inflight.done():
                await asyncio.wait({self._inflight})
            payload = self._encoder.encode(SpilledBatch(seq, batch_id, len(ticks), list(ticks)))
            record = _RECORD_HEADER.pack(len(payload), zlib.crc32(payload)) + payload
            segment = self._writable_segment()
            offset = segment.size
            ref = _RecordRef(seq, batch_id, len(ticks), segment, offset, len(payload))
            future = asyncio.get_running_loop().run_in_executor(
                None, _write_all, segment.fd, record, self.fsync
            )
            self._inflight = future
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                # The thread still finishes the write; index it when it does.
                future.add_done_callback(
                    lambda fut: self._finish_detached_append(fut, ref, len(record))
                )
                raise
            self._finish_append(future, ref, len(record))

    def _finish_append(self, future: asyncio.Future[None], ref: _RecordRef, size: int) -> None:
        error = future.exception()
        segment = ref.segment
        if error is not None:
            # A partial record would hide every later one: cut it off and retire the segment.
            if segment.fd is not None:
                with contextlib.suppress(OSError):
                    os.ftruncate(segment.fd, ref.offset)
            self._retire(segment)
            raise error
        segment.size += size
        segment.pending += 1
        self._pending_ticks += ref.count
        self._max_seq = max(self._max_seq, ref.seq)
        if not self._records or ref.seq > self._records[-1].seq:
            self._records.append(ref)
        else:
            ordered = list(self._records)
            bisect.insort(ordered, ref, key=lambda r: r.seq)
            self._records = deque(ordered)
            self._head_cache = None

    def _finish_detached_append(
        self, future: asyncio.Future[None], ref: _RecordRef, size: int
    ) -> None:
        try:
            self._finish_append(future, ref, size)
        except Exception:
            _log.exception("ingest_spill_append_failed", seq=ref.seq, batch_id=ref.batch_id)

    def _writable_segment(self) -> _Segment:
        active = self._active
        if active is not None and (active.pending == 0 or active.size >= self.segment_bytes):
            self._retire(active)
            active = None
        if active is None:
            active = self._active = self._create_segment()
        return active

    def _create_segment(self) -> _Segment:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"seg-{self._max_seq + 1:020d}-{uuid.uuid4().hex[:8]}{SEGMENT_SUFFIX}"
        path = self.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            _write_all(fd, SEGMENT_MAGIC, self.fsync)
            if self.fsync:
                _fsync_directory(self.directory)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return _Segment(path=path, size=len(SEGMENT_MAGIC), fd=fd)

    def _retire(self, segment: _Segment) -> None:
        """Stop appending to ``segment``; delete it if nothing in it is pending."""
        if segment.fd is not None:
            os.close(segment.fd)
            segment.fd = None
        if self._active is segment:
            self._active = None
        if segment.pending == 0:
            segment.path.unlink(missing_ok=True)

    # -- reading ----------------------------------------------------------

    async def read_head(self) -> SpilledBatch | None:
        """The oldest pending batch (read once, then cached until popped)."""
        if not self._records:
            return None
        ref = self._records[0]
        cached = self._head_cache
        if cached is not None and cached.seq == ref.seq:
            return cached
        payload = await asyncio.to_thread(_read_payload, ref.segment.path, ref.offset, ref.length)
        try:
            batch = self._decoder.decode(payload)
        except msgspec.DecodeError as err:
            raise SpillCorruptError(f"{ref.segment.path}@{ref.offset}: {err}") from err
        if batch.seq != ref.seq or batch.batch_id != ref.batch_id:
            raise SpillCorruptError(f"{ref.segment.path}@{ref.offset}: record changed on disk")
        if self._records and self._records[0] is ref:
            self._head_cache = batch
        return batch

    def pop_head(self) -> None:
        """Forget the oldest batch (it is in the store); deletes emptied segments."""
        ref = self._records.popleft()
        self._head_cache = None
        self._pending_ticks -= ref.count
        segment = ref.segment
        segment.pending -= 1
        if segment.pending == 0 and (segment is not self._active or not self._appending()):
            self._retire(segment)

    def _appending(self) -> bool:
        inflight = self._inflight
        return self._lock.locked() or (inflight is not None and not inflight.done())

    def close(self) -> None:
        """Close the active segment (deleting it if fully written)."""
        if self._active is not None:
            self._retire(self._active)


def _write_all(fd: int | None, data: bytes, fsync: bool) -> None:
    if fd is None:
        raise RuntimeError("spill segment is closed")
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    if fsync:
        os.fsync(fd)


def _read_payload(path: Path, offset: int, length: int) -> bytes:
    with path.open("rb") as handle:
        handle.seek(offset)
        header = handle.read(_RECORD_HEADER.size)
        if len(header) != _RECORD_HEADER.size:
            raise SpillCorruptError(f"{path}@{offset}: record header missing")
        stored_length, crc = _RECORD_HEADER.unpack(header)
        payload = handle.read(length)
    if stored_length != length or len(payload) != length or zlib.crc32(payload) != crc:
        raise SpillCorruptError(f"{path}@{offset}: record failed its checksum")
    return payload


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
