"""Ingest pipeline: batching, backpressure, retries, spill and recovery."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from tests.fakes.flaky_tick_store import FlakyTickStore
from tests.unit.ingest.helpers import PipelineFactory, eventually, make_ticks, spill_files
from trademk.engine.clock import SimClock
from trademk.engine.lifecycle import ComponentState
from trademk.ingest.pipeline import IngestPipeline


async def test_cuts_batches_by_size(store: FlakyTickStore, make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(batch_size=100, flush_interval=30.0)
    await pipeline.start()
    await pipeline.put_many(make_ticks(350))
    await eventually(lambda: len(store.committed) == 3)
    assert [size for _, size in store.committed] == [100, 100, 100]
    await pipeline.stop()  # flushes the partial batch at once
    assert [size for _, size in store.committed] == [100, 100, 100, 50]


async def test_cuts_batches_by_time(store: FlakyTickStore, make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline(batch_size=1000, flush_interval=0.02)
    await pipeline.start()
    for tick in make_ticks(7):
        await pipeline.put(tick)
    await eventually(lambda: len(store.committed) == 1)
    assert store.committed[0][1] == 7
    await pipeline.put_many(make_ticks(3, first=7))
    await eventually(lambda: len(store.committed) == 2)
    assert store.committed[1][1] == 3
    assert pipeline.status()["pending"] == 0


async def test_each_batch_gets_a_unique_id(
    store: FlakyTickStore, make_pipeline: PipelineFactory
) -> None:
    pipeline = make_pipeline()
    await pipeline.start()
    await pipeline.put_many(make_ticks(95))
    await pipeline.stop()
    ids = [batch_id for batch_id, _ in store.committed]
    assert len(ids) == 10 and all(ids) and len(set(ids)) == len(ids)


async def test_put_waits_while_the_store_is_slow_and_nothing_is_dropped(
    store: FlakyTickStore, make_pipeline: PipelineFactory, spill_dir: Path
) -> None:
    pipeline = make_pipeline(queue_capacity=50, memory_bound=20, write_timeout=None)
    await pipeline.start()
    store.hang = True  # each write takes as long as the test wants
    ticks = make_ticks(300)

    async def produce() -> None:
        for tick in ticks:
            await pipeline.put(tick)

    producer = asyncio.create_task(produce())
    await eventually(lambda: pipeline.status()["queued"] == 50)
    await asyncio.sleep(0.05)
    assert not producer.done()
    # queue (50) + memory backlog (20) + the batch waiting for room (10).
    assert pipeline.status()["received"] == 80
    store.release()
    store.write_delay = 0.001
    await asyncio.wait_for(producer, 10)
    await pipeline.stop()
    assert store.rows == ticks
    assert pipeline.status()["spilled_batches"] == 0
    assert spill_files(spill_dir) == []
    assert store.max_concurrent_writes == 1


async def test_outage_retries_spills_then_writes_everything_once_in_order(
    store: FlakyTickStore, make_pipeline: PipelineFactory, spill_dir: Path
) -> None:
    pipeline = make_pipeline(memory_bound=30)
    await pipeline.start()
    assert pipeline.lifecycle.state is ComponentState.RUNNING
    store.down = True
    ticks = make_ticks(200)
    await pipeline.put_many(ticks)
    await eventually(lambda: pipeline.status()["spill_pending_ticks"] == 170)
    status = pipeline.status()
    assert status["state"] == "degraded"
    assert status["memory_ticks"] == 30
    assert status["pending"] == 200
    assert status["write_errors"] >= 1
    assert spill_files(spill_dir)
    assert store.rows == []

    store.down = False
    await eventually(lambda: pipeline.status()["pending"] == 0)
    assert pipeline.lifecycle.state is ComponentState.RUNNING
    assert store.rows == ticks
    ids = [batch_id for batch_id, _ in store.committed]
    assert len(ids) == len(set(ids)) == 20
    assert spill_files(spill_dir) == []
    status = pipeline.status()
    assert (status["written"], status["spilled_batches"], status["spilled_ticks"]) == (200, 17, 170)


async def test_new_ticks_after_an_outage_follow_the_spilled_backlog(
    store: FlakyTickStore, make_pipeline: PipelineFactory
) -> None:
    pipeline = make_pipeline(memory_bound=10)
    await pipeline.start()
    store.down = True
    first = make_ticks(60)
    await pipeline.put_many(first)
    await eventually(lambda: pipeline.status()["spill_pending_ticks"] == 50)
    store.down = False
    later = make_ticks(40, first=60)
    await pipeline.put_many(later)
    await pipeline.stop()
    assert store.rows == first + later


async def test_retry_after_a_commit_whose_ack_was_lost_does_not_duplicate(
    store: FlakyTickStore, make_pipeline: PipelineFactory
) -> None:
    pipeline = make_pipeline()
    await pipeline.start()
    store.fail_after_commit_next = 2
    ticks = make_ticks(50)
    await pipeline.put_many(ticks)
    await pipeline.stop()
    assert store.rows == ticks
    status = pipeline.status()
    assert status["already_committed_batches"] == 2
    assert status["write_errors"] == 2
    assert len(store.attempted_ids) == 7  # five batches, two of them sent twice
    assert len(set(store.attempted_ids)) == 5


async def test_hanging_write_times_out_and_is_retried(
    store: FlakyTickStore, make_pipeline: PipelineFactory
) -> None:
    pipeline = make_pipeline(write_timeout=0.02)
    await pipeline.start()
    store.hang = True
    ticks = make_ticks(30)
    await pipeline.put_many(ticks)
    await eventually(lambda: pipeline.status()["write_errors"] >= 2)
    assert pipeline.lifecycle.state is ComponentState.DEGRADED
    assert "TimeoutError" in (pipeline.status()["last_error"] or "")
    store.release()
    await eventually(lambda: pipeline.status()["pending"] == 0)
    assert store.rows == ticks
    assert pipeline.lifecycle.state is ComponentState.RUNNING


async def test_stop_with_the_store_down_spills_everything_and_loses_nothing(
    store: FlakyTickStore, clock: SimClock, make_pipeline: PipelineFactory, spill_dir: Path
) -> None:
    pipeline = make_pipeline(memory_bound=30, drain_timeout=0.1, flush_interval=30.0)
    await pipeline.start()
    store.down = True
    ticks = make_ticks(105)
    await pipeline.put_many(ticks)
    await eventually(lambda: pipeline.status()["spill_pending_ticks"] == 70)
    await pipeline.stop()  # 30 in memory and 5 still queued must reach the disk too
    status = pipeline.status()
    assert status["state"] == "stopped"
    assert status["pending"] == status["spill_pending_ticks"] == 105
    assert store.rows == []
    assert spill_files(spill_dir)

    healthy = FlakyTickStore()
    restarted = make_pipeline(store=healthy)
    await restarted.start()
    assert restarted.status()["recovered_ticks"] == 105
    await restarted.stop()
    assert healthy.rows == ticks
    assert spill_files(spill_dir) == []


async def test_restart_replays_spill_files_left_by_a_crash(
    store: FlakyTickStore, make_pipeline: PipelineFactory, spill_dir: Path, tmp_path: Path
) -> None:
    pipeline = make_pipeline(memory_bound=0, drain_timeout=0.05)
    await pipeline.start()
    store.down = True
    sent = make_ticks(40)
    await pipeline.put_many(sent)
    await eventually(lambda: pipeline.status()["spill_pending_ticks"] == 30)
    # A crash now leaves exactly what is on disk: copy it, plus a torn write.
    crashed_dir = tmp_path / "crashed"
    shutil.copytree(spill_dir, crashed_dir)
    newest = spill_files(crashed_dir)[-1]
    with newest.open("ab") as handle:
        handle.write(b"\x00\x00\x10\x00\xde\xad")  # a record header cut short
    await pipeline.stop()

    healthy = FlakyTickStore()
    restarted = make_pipeline(store=healthy, spill_dir=crashed_dir)
    await restarted.start()
    fresh = make_ticks(25, first=1000)
    await restarted.put_many(fresh)
    await restarted.stop()
    # The batch being retried in memory died with the process; the 30 spilled
    # ticks come back first, before anything the new run received.
    assert healthy.rows == sent[10:] + fresh
    assert spill_files(crashed_dir) == []


async def test_counters_and_lag_percentiles(
    store: FlakyTickStore, clock: SimClock, make_pipeline: PipelineFactory
) -> None:
    hooked: list[tuple[int, list[float]]] = []
    pipeline = make_pipeline(on_written=lambda size, lags: hooked.append((size, list(lags))))
    await pipeline.start()
    now = clock.now_ns()
    ticks = [
        tick.__class__(**{**_fields(tick), "received": now - (i + 1) * 1_000_000})
        for i, tick in enumerate(make_ticks(100))
    ]
    store.fail_next = 1
    await pipeline.put_many(ticks)
    await pipeline.stop()
    status = pipeline.status()
    assert status["received"] == 100
    assert status["written"] == 100
    assert status["batches"] == 10
    assert status["pending"] == 0
    assert status["write_errors"] == 1
    assert status["lag_p50_s"] == pytest.approx(0.050)
    assert status["lag_p95_s"] == pytest.approx(0.095)
    assert status["lag_p99_s"] == pytest.approx(0.099)
    assert [size for size, _ in hooked] == [10] * 10
    assert hooked[0][1] == pytest.approx([(i + 1) / 1000 for i in range(10)])


async def test_status_before_any_write_has_no_lag(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    status = pipeline.status()
    assert status["state"] == "ready"
    assert status["lag_p99_s"] is None
    assert status["received"] == status["written"] == status["pending"] == 0


async def test_put_after_stop_is_refused(make_pipeline: PipelineFactory) -> None:
    pipeline = make_pipeline()
    await pipeline.start()
    await pipeline.stop()
    with pytest.raises(RuntimeError, match="stopping"):
        await pipeline.put(make_ticks(1)[0])


@pytest.mark.parametrize(
    "option",
    [
        {"batch_size": 0},
        {"flush_interval": 0},
        {"queue_capacity": 0},
        {"memory_bound": -1},
        {"write_timeout": 0},
    ],
)
def test_rejects_bad_settings(option: dict[str, float], tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        IngestPipeline(FlakyTickStore(), SimClock(), spill_dir=tmp_path, **option)  # type: ignore[arg-type]


def _fields(tick: object) -> dict[str, object]:
    return {name: getattr(tick, name) for name in tick.__struct_fields__}  # type: ignore[attr-defined]
