"""Fixtures for ingest pipeline tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.flaky_tick_store import FlakyTickStore
from tests.unit.ingest.helpers import START_NS, PipelineFactory
from trademk.engine.clock import SimClock
from trademk.ingest.pipeline import IngestPipeline
from trademk.venues.reconnect import ExponentialBackoff


@pytest.fixture
def store() -> FlakyTickStore:
    return FlakyTickStore()


@pytest.fixture
def clock() -> SimClock:
    return SimClock(START_NS)


@pytest.fixture
def spill_dir(tmp_path: Path) -> Path:
    return tmp_path / "spill"


@pytest.fixture
async def make_pipeline(
    store: FlakyTickStore, clock: SimClock, spill_dir: Path
) -> AsyncIterator[PipelineFactory]:
    """Builds pipelines with fast timings; stops any still running at teardown."""
    created: list[IngestPipeline] = []

    def factory(**overrides: object) -> IngestPipeline:
        options: dict[str, object] = {
            "spill_dir": spill_dir,
            "batch_size": 10,
            "flush_interval": 0.01,
            "queue_capacity": 1000,
            "memory_bound": 1000,
            "retry_backoff": ExponentialBackoff(initial=0.002, maximum=0.01),
            "write_timeout": 1.0,
            "drain_timeout": 2.0,
        }
        options.update(overrides)
        target_store = options.pop("store", store)
        pipeline = IngestPipeline(target_store, clock, **options)  # type: ignore[arg-type]
        created.append(pipeline)
        return pipeline

    yield factory
    for pipeline in created:
        await pipeline.stop()
