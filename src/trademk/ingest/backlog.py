"""The ingest backlog: batches cut but not yet written, oldest first.

Older batches sit in memory (up to ``memory_bound`` ticks), newer ones in the
spill files. Once anything is on disk, every newer batch goes to disk too
until the spill has drained, so "memory, then spill" is always the write order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

import structlog

from trademk.domain.market import Tick
from trademk.ingest.spill import SpillQueue
from trademk.ingest.stats import IngestCounters
from trademk.venues.reconnect import ExponentialBackoff

_log = structlog.get_logger(__name__)


@dataclass(slots=True)
class PendingBatch:
    """A batch with its write-order number and idempotency id."""

    seq: int
    batch_id: str
    ticks: list[Tick]
    spilled: bool = False


class Backlog:
    """Memory part plus spill part of the ordered write backlog."""

    def __init__(
        self,
        spill: SpillQueue,
        memory_bound: int,
        counters: IngestCounters,
        retry_maximum: float,
        name: str,
    ) -> None:
        self.spill = spill
        self.memory_bound = memory_bound
        self.memory: deque[PendingBatch] = deque()
        self.memory_ticks = 0
        self._counters = counters
        self._retry_maximum = retry_maximum
        self._name = name

    @property
    def pending_ticks(self) -> int:
        return self.memory_ticks + self.spill.pending_ticks

    @property
    def spilling(self) -> bool:
        """True while batches wait on disk (new batches must follow them there)."""
        return self.spill.pending_batches > 0

    def keep_in_memory(self, batch: PendingBatch) -> bool:
        """Append ``batch`` in memory if nothing is spilled and it fits (one always fits)."""
        if self.spilling:
            return False
        size = len(batch.ticks)
        if self.memory and self.memory_ticks + size > self.memory_bound:
            return False
        self.memory.append(batch)
        self.memory_ticks += size
        return True

    async def spill_batch(self, batch: PendingBatch) -> None:
        """Append a batch to the spill; retries on disk errors rather than drop it."""
        maximum = self._retry_maximum
        backoff = ExponentialBackoff(initial=min(0.05, maximum), maximum=maximum)
        while True:
            try:
                await self.spill.append(batch.seq, batch.batch_id, batch.ticks)
                break
            except OSError as err:
                self._counters.spill_errors += 1
                _log.error("ingest_spill_write_failed", pipeline=self._name, error=repr(err))
                await asyncio.sleep(backoff.next_delay())
        self._counters.spilled_batches += 1
        self._counters.spilled_ticks += len(batch.ticks)

    async def spill_memory(self) -> None:
        """Move every in-memory batch to disk (their lower seqs keep them first)."""
        while self.memory:
            batch = self.memory[0]
            await self.spill_batch(batch)
            self.memory.popleft()
            self.memory_ticks -= len(batch.ticks)

    async def head(self) -> PendingBatch | None:
        """The oldest batch, or None when the backlog is empty."""
        if self.memory:
            return self.memory[0]
        if self.spilling:
            record = await self.spill.read_head()
            if record is not None:
                return PendingBatch(record.seq, record.batch_id, record.ticks, spilled=True)
        return None

    def remove(self, batch: PendingBatch) -> None:
        """Forget ``batch`` (the head) once it is in the store."""
        if batch.spilled:
            if self.spill.head_seq == batch.seq:
                self.spill.pop_head()
        elif self.memory and self.memory[0] is batch:
            self.memory.popleft()
            self.memory_ticks -= len(batch.ticks)
