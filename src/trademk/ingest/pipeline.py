"""Loss-free ingestion: bounded queue → batches → TickStore, with retry and spill.

Data path::

    put()/put_many() ─► queue (bounded, backpressure) ─► batcher ─► backlog ─► writer ─► store
                                                                      │
                                                   memory (≤ memory_bound) then spill files

* Producers wait while the queue is full; nothing is ever dropped.
* The batcher cuts a batch at ``batch_size`` ticks or ``flush_interval``
  seconds after the first tick, whichever comes first, and gives it a uuid.
* The writer writes the backlog strictly in order with ``store.write(batch,
  batch_id)``. Writes are idempotent by id, so a batch whose commit outcome is
  unknown (error after commit, timeout) is simply retried, with backoff.
* While the store is healthy the backlog in memory is bounded by
  ``memory_bound`` and a full backlog stops the batcher, which backs up the
  queue and so the producers. While the store fails (DEGRADED), batches past
  ``memory_bound`` are spilled to disk instead; once anything is on disk, newer
  batches follow it there until the spill has drained, which keeps the order
  and keeps producers flowing during catch-up.
* ``start()`` recovers spill files a previous run left; they are written
  before anything this run receives. ``stop()`` drains for up to
  ``drain_timeout`` seconds and spills whatever the store did not take.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import structlog

from trademk.domain.market import NANOS_PER_SECOND, Tick
from trademk.domain.ports import TickStore
from trademk.engine.clock import Clock
from trademk.engine.lifecycle import ComponentState, Lifecycle
from trademk.ingest.backlog import Backlog, PendingBatch
from trademk.ingest.spill import SpillQueue
from trademk.ingest.stats import IngestCounters, LagWindow
from trademk.venues.reconnect import ExponentialBackoff

WrittenHook = Callable[[int, Sequence[float]], None]

DEFAULT_BATCH_SIZE: Final = 5000
DEFAULT_QUEUE_CAPACITY: Final = 200_000
DEFAULT_MEMORY_BOUND: Final = 1_000_000

_log = structlog.get_logger(__name__)


class IngestPipeline:
    """Batches ticks into a :class:`TickStore` without losing any (see module doc).

    The caller owns the store (starts and closes it). ``on_written(size,
    lags_s)`` is called after each committed batch with the receive→durable
    lag of each tick that carries a ``received`` stamp, in seconds.
    """

    def __init__(
        self,
        store: TickStore,
        clock: Clock,
        *,
        spill_dir: Path,
        batch_size: int = DEFAULT_BATCH_SIZE,
        flush_interval: float = 0.1,
        queue_capacity: int = DEFAULT_QUEUE_CAPACITY,
        memory_bound: int = DEFAULT_MEMORY_BOUND,
        retry_backoff: ExponentialBackoff | None = None,
        write_timeout: float | None = 30.0,
        drain_timeout: float = 5.0,
        lag_window: int = 10_000,
        on_written: WrittenHook | None = None,
        spill_fsync: bool = True,
        name: str = "ingest",
    ) -> None:
        _validate(batch_size, flush_interval, queue_capacity, memory_bound, drain_timeout)
        if write_timeout is not None and write_timeout <= 0:
            raise ValueError("write_timeout must be positive or None")
        self.name = name
        self._store = store
        self._clock = clock
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._queue_capacity = queue_capacity
        self._backoff = retry_backoff or ExponentialBackoff(initial=0.1, maximum=5.0)
        self._write_timeout = write_timeout
        self._drain_timeout = drain_timeout
        self._on_written = on_written
        self._spill = SpillQueue(Path(spill_dir), fsync=spill_fsync)
        self.lifecycle = Lifecycle(name)
        self.counters = IngestCounters()
        self._backlog = Backlog(
            self._spill, memory_bound, self.counters, self._backoff.maximum, name
        )
        self._queue: deque[Tick] = deque()
        self._lags = LagWindow(lag_window)
        self._next_seq = 0
        self._wakeup = asyncio.Event()  # batcher: ticks arrived / batch full / stopping
        self._not_full = asyncio.Event()  # producers: room in the queue
        self._room = asyncio.Event()  # batcher: room in the backlog or state changed
        self._backlog_changed = asyncio.Event()  # writer: something to write
        self._give_up_event = asyncio.Event()
        self._stopping = False
        self._give_up = False
        self._batcher_done = False
        self._batcher_task: asyncio.Task[None] | None = None
        self._writer_task: asyncio.Task[None] | None = None
        self._outage_started_ns: int | None = None
        self._spill_logged = False  # one "spilling" log line per outage

    # -- producer API -----------------------------------------------------

    async def put(self, tick: Tick) -> None:
        """Enqueue one tick, waiting while the queue is full."""
        self._check_accepting()
        while len(self._queue) >= self._queue_capacity:
            await self._wait_for_queue_room()
        self._queue.append(tick)
        self.counters.received += 1
        size = len(self._queue)
        if size == 1 or size >= self._batch_size:
            self._wakeup.set()

    async def put_many(self, ticks: Iterable[Tick]) -> None:
        """Enqueue ticks in order, waiting whenever the queue is full."""
        self._check_accepting()
        items = ticks if isinstance(ticks, Sequence) else list(ticks)
        index = 0
        while index < len(items):
            while len(self._queue) >= self._queue_capacity:
                await self._wait_for_queue_room()
            room = self._queue_capacity - len(self._queue)
            chunk = items[index : index + room]
            self._queue.extend(chunk)
            index += len(chunk)
            self.counters.received += len(chunk)
            self._wakeup.set()

    def _check_accepting(self) -> None:
        if self._stopping or self.lifecycle.state is ComponentState.STOPPED:
            raise RuntimeError(f"{self.name}: the pipeline is stopping; no more ticks accepted")

    async def _wait_for_queue_room(self) -> None:
        task = self._batcher_task
        if task is not None and task.done():
            raise RuntimeError(f"{self.name}: the batcher has stopped; cannot accept ticks")
        self._not_full.clear()
        await self._not_full.wait()
        self._check_accepting()

    # -- lifecycle --------------------------------------------------------

    async def start(self) -> None:
        """Recover spill files from a previous run, then start batching and writing."""
        if self._batcher_task is not None or self.lifecycle.state is ComponentState.STOPPED:
            raise RuntimeError(f"{self.name}: start() may be called once")
        recovery = await asyncio.to_thread(self._spill.load)
        self._next_seq = self._spill.max_seq + 1
        self.counters.recovered_batches = recovery.batches
        self.counters.recovered_ticks = recovery.ticks
        if recovery.batches or recovery.torn_records:
            _log.info(
                "ingest_spill_recovered",
                pipeline=self.name,
                batches=recovery.batches,
                ticks=recovery.ticks,
                segments=recovery.segments,
                torn_records=recovery.torn_records,
            )
        self.lifecycle.to(ComponentState.RUNNING)
        self._batcher_task = asyncio.create_task(self._batch_loop(), name=f"{self.name}-batcher")
        self._writer_task = asyncio.create_task(self._write_loop(), name=f"{self.name}-writer")
        for task in (self._batcher_task, self._writer_task):
            task.add_done_callback(self._on_task_done)

    async def stop(self) -> None:
        """Drain the queue and backlog into the store; spill what it will not take.

        Re-raises, after spilling, an unexpected error that ended a worker task.
        """
        if self.lifecycle.state is ComponentState.STOPPED:
            return
        self._stopping = True
        self._wakeup.set()
        tasks = [t for t in (self._batcher_task, self._writer_task) if t is not None]
        try:
            if self._batcher_task is not None and self._writer_task is not None:
                await self._drain(self._batcher_task, self._writer_task)
            await self._backlog.spill_memory()
        finally:
            self._spill.close()
            self.lifecycle.to(ComponentState.STOPPED, "stopped")
            self._not_full.set()
        _log.info("ingest_stopped", pipeline=self.name, **self._summary())
        for task in tasks:
            if not task.cancelled() and task.exception() is not None:
                raise RuntimeError(f"{self.name}: {task.get_name()} failed") from task.exception()

    async def _drain(self, batcher: asyncio.Task[None], writer: asyncio.Task[None]) -> None:
        _, unfinished = await asyncio.wait({batcher, writer}, timeout=self._drain_timeout)
        if unfinished:
            self._give_up = True
            self._give_up_event.set()
            self._room.set()
            writer.cancel()
            # With _give_up set the batcher spills whatever the queue still holds.
            await asyncio.wait({writer, batcher})

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        _log.error(
            "ingest_task_failed",
            pipeline=self.name,
            task=task.get_name(),
            error=repr(task.exception()),
        )
        # Wake anyone waiting on the failed task so they notice instead of hanging.
        self._not_full.set()
        self._room.set()
        self._backlog_changed.set()

    # -- batching ---------------------------------------------------------

    async def _batch_loop(self) -> None:
        try:
            while True:
                ticks = await self._next_batch_ticks()
                if ticks is None:
                    return
                batch = PendingBatch(self._next_seq, str(uuid.uuid4()), ticks)
                self._next_seq += 1
                await self._admit(batch)
        finally:
            self._batcher_done = True
            self._backlog_changed.set()

    async def _next_batch_ticks(self) -> list[Tick] | None:
        while not self._queue:
            if self._stopping:
                return None
            self._wakeup.clear()
            await self._wakeup.wait()
        if len(self._queue) < self._batch_size and not self._stopping:
            await self._wait_for_full_batch()
        take = min(self._batch_size, len(self._queue))
        popleft = self._queue.popleft
        ticks = [popleft() for _ in range(take)]
        self._not_full.set()
        return ticks

    async def _wait_for_full_batch(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._flush_interval
        while len(self._queue) < self._batch_size and not self._stopping:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except TimeoutError:
                return

    async def _admit(self, batch: PendingBatch) -> None:
        """Put a new batch at the end of the backlog: memory, spill, or wait for room."""
        while True:
            if self._backlog.keep_in_memory(batch):
                self._backlog_changed.set()
                return
            if self._backlog.spilling or self._store_failing() or self._give_up:
                await self._backlog.spill_batch(batch)
                self._log_spilling()
                self._backlog_changed.set()
                return
            self._room.clear()
            await self._room.wait()

    def _store_failing(self) -> bool:
        return self.lifecycle.state is ComponentState.DEGRADED

    def _log_spilling(self) -> None:
        if not self._spill_logged:
            self._spill_logged = True
            _log.warning(
                "ingest_spilling_to_disk",
                pipeline=self.name,
                directory=str(self._spill.directory),
                memory_ticks=self._backlog.memory_ticks,
            )

    # -- writing ----------------------------------------------------------

    async def _write_loop(self) -> None:
        while not self._give_up:
            batch = await self._backlog.head()
            if batch is None:
                if self._batcher_done:
                    return
                self._backlog_changed.clear()
                await self._backlog_changed.wait()
                continue
            if await self._attempt(batch):
                self._commit(batch)
            else:
                await self._pause_before_retry()

    async def _attempt(self, batch: PendingBatch) -> bool:
        try:
            async with asyncio.timeout(self._write_timeout):
                written = await self._store.write(batch.ticks, batch.batch_id)
        except Exception as err:
            self._on_write_failed(err)
            return False
        if written == 0:
            self.counters.already_committed_batches += 1
        return True

    def _commit(self, batch: PendingBatch) -> None:
        self._backlog.remove(batch)
        size = len(batch.ticks)
        self.counters.written += size
        self.counters.batches += 1
        now = self._clock.now_ns()
        lags = [(now - t.received) / NANOS_PER_SECOND for t in batch.ticks if t.received > 0]
        self._lags.extend(lags)
        if self._store_failing():
            self._end_outage()
        self._backoff.reset()
        self._room.set()
        if self._on_written is not None:
            try:
                self._on_written(size, lags)
            except Exception:
                _log.exception("ingest_on_written_hook_failed", pipeline=self.name)

    def _on_write_failed(self, err: BaseException) -> None:
        self.counters.write_errors += 1
        self.counters.last_error = repr(err)
        if not self._store_failing():
            self._outage_started_ns = self._clock.now_ns()
            self.lifecycle.to(ComponentState.DEGRADED, f"store write failed: {err!r}")
            _log.warning("ingest_store_outage_started", pipeline=self.name, error=repr(err))
            self._room.set()

    def _end_outage(self) -> None:
        started = self._outage_started_ns
        duration = (self._clock.now_ns() - started) / NANOS_PER_SECOND if started else None
        self.lifecycle.to(ComponentState.RUNNING, "store writes succeed again")
        _log.info(
            "ingest_store_outage_ended",
            pipeline=self.name,
            duration_s=duration,
            write_errors=self.counters.write_errors,
            spilled_batches=self.counters.spilled_batches,
            backlog_ticks=self._backlog.pending_ticks,
        )
        self._outage_started_ns = None
        self._spill_logged = False

    async def _pause_before_retry(self) -> None:
        delay = self._backoff.next_delay()
        try:
            await asyncio.wait_for(self._give_up_event.wait(), delay)
        except TimeoutError:
            return

    # -- reporting --------------------------------------------------------

    @property
    def pending(self) -> int:
        """Ticks accepted but not yet durable: queued, in memory, or spilled."""
        return len(self._queue) + self._backlog.pending_ticks

    def lag_percentiles(self) -> dict[str, float | None]:
        """p50/p95/p99 receive→durable lag (seconds) over the recent window."""
        return self._lags.percentiles()

    def status(self) -> dict[str, Any]:
        """Counters, backlog sizes, lifecycle state and lag percentiles."""
        return {
            "name": self.name,
            "state": str(self.lifecycle.state),
            "reason": self.lifecycle.reason,
            **self._summary(),
            **self.lag_percentiles(),
        }

    def _summary(self) -> dict[str, Any]:
        c = self.counters
        return {
            "received": c.received,
            "written": c.written,
            "pending": self.pending,
            "queued": len(self._queue),
            "memory_batches": len(self._backlog.memory),
            "memory_ticks": self._backlog.memory_ticks,
            "spill_pending_batches": self._spill.pending_batches,
            "spill_pending_ticks": self._spill.pending_ticks,
            "spilled_batches": c.spilled_batches,
            "spilled_ticks": c.spilled_ticks,
            "spill_errors": c.spill_errors,
            "recovered_batches": c.recovered_batches,
            "recovered_ticks": c.recovered_ticks,
            "write_errors": c.write_errors,
            "batches": c.batches,
            "already_committed_batches": c.already_committed_batches,
            "last_error": c.last_error,
        }


def _validate(
    batch_size: int,
    flush_interval: float,
    queue_capacity: int,
    memory_bound: int,
    drain_timeout: float,
) -> None:
    if batch_size <= 0:
        raise ValueError("batch_size must be positive")
    if flush_interval <= 0:
        raise ValueError("flush_interval must be positive")
    if queue_capacity <= 0:
        raise ValueError("queue_capacity must be positive")
    if memory_bound < 0:
        raise ValueError("memory_bound must be >= 0")
    if drain_timeout < 0:
        raise ValueError("drain_timeout must be >= 0")
