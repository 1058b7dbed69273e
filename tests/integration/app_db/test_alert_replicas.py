"""Two API replicas: an alert changed through one is evaluated by both, and only the
holder of the alerts lease announces a firing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from trademk.domain.alerts import AlertCondition, AlertMode, AlertRule
from trademk.domain.market import Tick, TickKind
from trademk.engine.alert_engine import AlertEvent
from trademk.engine.bus import InProcessBus
from trademk.engine.clock import LiveClock
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.webhooks import DeliveryOutcome
from trademk.messaging.redis_bus import RedisEventBus
from trademk.messaging.redis_lease import RedisLease
from trademk.storage.alert_repository import AlertRepository, AlertValues
from trademk.storage.database import session_factory
from trademk.wiring.live import LiveServices

pytestmark = pytest.mark.redis


async def wait_until(predicate: Callable[[], bool], within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():
            await asyncio.sleep(0.01)


def holding(lease: RedisLease) -> Callable[[], bool]:
    return lambda: lease.held


class Replica:
    def __init__(self, live: LiveServices, prices: LatestPriceCache, bus: RedisEventBus) -> None:
        self.live = live
        self.prices = prices
        self.bus = bus

    def trade(self, price: float) -> None:
        clock = self.live.clock
        self.prices.update(
            Tick(
                symbol="BTCUSDT",
                exchange="X",
                kind=TickKind.TRADE,
                ts=clock.now_ns(),
                price=price,
                qty=1.0,
            )
        )


@pytest.fixture
async def replicas(
    migrated_engine: AsyncEngine, redis_url: str, unique_name: str
) -> AsyncIterator[list[Replica]]:
    sessions = session_factory(migrated_engine)
    async with AsyncExitStack() as stack:
        made = []
        for name in ("api-1", "api-2"):
            client = aioredis.from_url(redis_url)
            stack.push_async_callback(client.aclose)
            bus = RedisEventBus(client, InProcessBus(), prefix=f"{unique_name}:events")
            await bus.start()
            stack.push_async_callback(bus.stop)
            lease = RedisLease(client, f"{unique_name}:leases:alerts", name)
            await lease.start()
            stack.push_async_callback(lease.stop)
            prices = LatestPriceCache()
            live = LiveServices(
                LiveClock(),
                bus,
                prices,
                sessions,
                lambda: None,
                alerts_leader=holding(lease),
            )
            await live.start()
            stack.push_async_callback(live.stop)
            made.append(Replica(live, prices, bus))
        yield made


async def test_an_alert_created_through_one_replica_is_evaluated_by_both_and_fires_once(
    replicas: list[Replica], migrated_engine: AsyncEngine
) -> None:
    first, second = replicas
    repository = AlertRepository(session_factory(migrated_engine))
    rule = AlertRule("BTCUSDT", AlertCondition.ABOVE, level=100.0, mode=AlertMode.REPEATING)
    record = await repository.create(AlertValues(rule, name="btc over 100"), None)
    alert_id = str(record.id)
    first.live.alert_changed(record, alert_id)
    await wait_until(lambda: second.live.alerts.state(alert_id) is not None)

    for replica in replicas:
        replica.trade(99.0)
        replica.trade(101.0)
    leaders = [r for r in replicas if r.live.alerts.leader()]
    assert len(leaders) == 1
    counters = [r.live.alerts.counters for r in replicas]
    assert sorted((c.fired, c.fired_elsewhere) for c in counters) == [(0, 1), (1, 0)]
    await leaders[0].live.alerts.drain()
    history = await repository.history(record.id, limit=10)
    assert len(history) == 1

    await repository.delete(record.id)
    second.live.alert_changed(None, alert_id)
    await wait_until(lambda: first.live.alerts.state(alert_id) is None)


async def test_a_once_alert_spent_before_its_change_notice_is_read_back_does_not_fire_again(
    replicas: list[Replica], migrated_engine: AsyncEngine
) -> None:
    first, _ = replicas
    if not first.live.alerts.leader():
        first, _ = reversed(replicas)
    repository = AlertRepository(session_factory(migrated_engine))
    journal = HeldJournal(repository)
    first.live.alerts.journal = journal
    rule = AlertRule("BTCUSDT", AlertCondition.ABOVE, level=100.0, mode=AlertMode.ONCE)
    record = await repository.create(AlertValues(rule, name="once over 100"), None)
    alert_id = str(record.id)
    first.live.alert_changed(record, alert_id)
    first.trade(101.0)
    assert first.live.alerts.counters.fired == 1
    assert first.live.alerts.state(alert_id) is None

    # Stored still active (the firing is not recorded yet): the notice must not revive it.
    await first.live.apply_alert_change(alert_id)
    assert first.live.alerts.state(alert_id) is None
    first.trade(102.0)
    assert first.live.alerts.counters.fired == 1

    journal.release.set()
    await asyncio.wait_for(first.live.alerts.drain(), 5)
    stored = await repository.get(record.id)
    assert stored is not None and not stored.active

    # Re-armed through the API of another replica: a newer stored version, applied here.
    if migrated_engine.dialect.name == "sqlite":
        await asyncio.sleep(1.0)  # SQLite's CURRENT_TIMESTAMP counts whole seconds
    rearmed = await repository.replace(record.id, AlertValues(rule, name="once over 100"))
    assert rearmed is not None and rearmed.active
    await first.live.apply_alert_change(alert_id)
    assert first.live.alerts.state(alert_id) is not None


class HeldJournal:
    """The alert repository as the engine's journal, storing firings only once released."""

    def __init__(self, repository: AlertRepository) -> None:
        self.repository = repository
        self.release = asyncio.Event()

    async def record_trigger(self, event: AlertEvent) -> None:
        await self.release.wait()
        await self.repository.record_trigger(event)

    async def record_delivery(
        self, event_id: str, outcome: DeliveryOutcome, delivered_ns: int | None
    ) -> None:
        await self.repository.record_delivery(event_id, outcome, delivered_ns)
