"""The API asks the strategies worker: start, stop and running over the control channel.

The worker side is the service ``build_strategy_worker_service`` builds (its
runner on a remote order gateway) serving ``strategy_command_handlers`` on a
``ControlServer``; the API side is ``build_strategy_api_service`` on a
``ControlClient``. Both share one app database (a migrated SQLite file here) as
the processes of a deployment share PostgreSQL.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trademk.config import Settings
from trademk.domain.market import NANOS_PER_SECOND, AssetClass
from trademk.engine.bus import InProcessBus, MessageBus
from trademk.engine.clock import SimClock
from trademk.engine.control import ControlClient, ControlServer, NoWorkerAnswered
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.signal_queue import InProcessSignalQueue
from trademk.engine.strategy_spec import StrategyConfigError
from trademk.messaging.redis_bus import RedisEventBus
from trademk.storage import database, migrate
from trademk.storage.strategy_models import StrategyRecord
from trademk.storage.strategy_repository import StrategyRepository, StrategyValues
from trademk.wiring.strategies import StrategyService, spec_of
from trademk.wiring.strategy_hosts import RemoteAccount, RemoteStrategyHost, StrategyConflict
from trademk.wiring.strategy_processes import (
    build_strategy_api_service,
    build_strategy_worker_service,
    strategy_command_handlers,
)

T0 = 1_767_225_600 * NANOS_PER_SECOND  # 2026-01-01T00:00:00Z
CLASSES = {"BTCUSDT": AssetClass.CRYPTO}


def values(name: str = "sma", **changes: object) -> StrategyValues:
    fields: dict[str, object] = {
        "name": name,
        "strategy_class": "sma_cross",
        "symbols": ["BTCUSDT"],
        "interval": "1m",
        "capital_allocation": Decimal(1000),
        "params": {"fast": 3, "slow": 8},
    }
    fields.update(changes)
    return StrategyValues(**fields)  # type: ignore[arg-type]


@dataclass
class Deployment:
    settings: Settings
    sessions: async_sessionmaker[AsyncSession]
    repository: StrategyRepository

    def api(self, bus: MessageBus) -> AbstractAsyncContextManager[StrategyService]:
        return self._api(bus)

    @asynccontextmanager
    async def _api(self, bus: MessageBus) -> AsyncIterator[StrategyService]:
        control = ControlClient(bus, timeout=3.0, alive_for=1.0)
        await control.start()
        account = RemoteAccount(LatestPriceCache(), lambda symbol: Decimal(0))
        service = build_strategy_api_service(
            self.settings, self.sessions, str.upper, control, account
        )
        await service.start()  # nothing: the worker resumes
        try:
            yield service
        finally:
            await service.stop()
            await control.stop()

    @asynccontextmanager
    async def worker(self, bus: MessageBus) -> AsyncIterator[StrategyService]:
        service = build_strategy_worker_service(
            self.settings,
            SimClock(T0),
            self.sessions,
            LatestPriceCache(),
            str.upper,
            bus,
            InProcessSignalQueue(),
            CLASSES,
        )
        await service.start()
        server = ControlServer(
            bus,
            "strategies",
            strategy_command_handlers(service),
            service.status,
            heartbeat_interval=0.05,
        )
        await server.start()
        try:
            yield service
        finally:
            await server.stop()
            await service.stop()

    async def record(self, strategy_id: uuid.UUID) -> StrategyRecord:
        record = await self.repository.get(strategy_id)
        assert record is not None
        return record


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    engine = database.create_engine(url)
    await migrate.upgrade(engine)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, data_dir=tmp_path, database_url=url, default_strategies=False
    )
    sessions = database.session_factory(engine)
    try:
        yield Deployment(settings, sessions, StrategyRepository(sessions))
    finally:
        await engine.dispose()


async def test_the_api_starts_and_stops_a_strategy_in_the_worker(deployment: Deployment) -> None:
    bus = InProcessBus()
    stored = await deployment.repository.create(values())
    sid = str(stored.id)
    async with deployment.worker(bus) as worker, deployment.api(bus) as api:
        assert api.runner is None and not api.runs_strategies
        assert worker.runner is not None
        assert not await api.host.is_running(sid)

        started = await api.start_strategy(stored)
        assert (started.state, started.enabled) == ("running", True)
        assert worker.runner.is_running(sid)
        assert await api.host.is_running(sid)
        assert worker.status()["running"] == [sid]

        stopped = await api.stop_strategy(started)
        assert (stopped.state, stopped.enabled) == ("stopped", False)
        assert not worker.runner.is_running(sid)
        assert not await api.host.stop_strategy(sid, "again")


async def test_a_strategy_the_worker_cannot_run_is_refused_with_its_reason(
    deployment: Deployment,
) -> None:
    bus = InProcessBus()
    broken = await deployment.repository.create(values(strategy_class="no_such_class"))
    async with deployment.worker(bus) as worker, deployment.api(bus) as api:
        with pytest.raises(StrategyConfigError, match="no_such_class"):
            await api.host.start_strategy(spec_of(broken))
        with pytest.raises(StrategyConflict, match=r"could not start.*no_such_class"):
            await api.start_strategy(broken)
        assert worker.runner is not None and worker.runner.running() == []
    record = await deployment.record(broken.id)
    assert (record.state, record.enabled) == ("error", False)
    assert record.last_error is not None and "no_such_class" in record.last_error


async def test_with_no_worker_definitions_are_stored_and_the_worker_runs_them_when_it_starts(
    deployment: Deployment,
) -> None:
    bus = InProcessBus()
    async with deployment.api(bus) as api:
        api.host = RemoteStrategyHost(api.host.control, find_worker=0.2)  # type: ignore[attr-defined]
        created = await api.create(values(enabled=True))
        assert (created.state, created.enabled) == ("stopped", True)
        with pytest.raises(NoWorkerAnswered, match="trademk worker --role strategies"):
            await api.start_strategy(created)
        with pytest.raises(NoWorkerAnswered):
            await api.stop_strategy(created)
        doomed = await api.create(values("doomed"))
        assert await api.delete(doomed.id)
        async with deployment.worker(bus) as worker:
            assert worker.runner is not None
            assert worker.runner.is_running(str(created.id))
            assert await api.host.is_running(str(created.id))
            assert (await deployment.record(created.id)).state == "running"


async def test_start_stop_and_running_over_redis(
    deployment: Deployment, redis_url: str, unique_name: str
) -> None:
    api_client, worker_client = aioredis.from_url(redis_url), aioredis.from_url(redis_url)
    api_bus = RedisEventBus(api_client, prefix=unique_name, origin="api", block_ms=50)
    worker_bus = RedisEventBus(worker_client, prefix=unique_name, origin="worker", block_ms=50)
    await api_bus.start()
    await worker_bus.start()
    stored = await deployment.repository.create(values())
    sid = str(stored.id)
    try:
        async with deployment.worker(worker_bus) as worker, deployment.api(api_bus) as api:
            started = await api.start_strategy(stored)
            assert started.state == "running"
            assert worker.runner is not None and worker.runner.is_running(sid)
            assert await api.host.is_running(sid)
            stopped = await api.stop_strategy(started)
            assert (stopped.state, stopped.enabled) == ("stopped", False)
            assert not await api.host.is_running(sid)
    finally:
        await api_bus.stop()
        await worker_bus.stop()
        await api_client.aclose()
        await worker_client.aclose()
