"""StrategyRepository on SQLite and PostgreSQL: instances, state, fills, the default set."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from trademk.domain.fills import Fill
from trademk.domain.orders import OrderSide
from trademk.storage.database import session_factory
from trademk.storage.strategy_repository import (
    StrategyNameTaken,
    StrategyRepository,
    StrategyValues,
)
from trademk.storage.trading_repository import TradingRepository

T0 = 1_767_225_600_000_000_000


def values(name: str = "sma-btc", **changes: object) -> StrategyValues:
    base = StrategyValues(
        name=name,
        strategy_class="sma_cross",
        symbols=["BTCUSDT", "ETHUSDT"],
        interval="5m",
        capital_allocation=Decimal("1234.56789"),
        params={"fast": 3, "slow": 8, "allow_short": False},
        sizing="fraction:0.5",
    )
    return StrategyValues(**{**base.columns(), **changes})


def fill(n: int, strategy_id: str | None) -> Fill:
    return Fill(
        client_order_id=f"c{n}",
        venue_order_id=f"v{n}",
        trade_id=f"t{n}",
        symbol="BTCUSDT",
        side=OrderSide.BUY,
        qty=Decimal("0.5"),
        price=Decimal("100.25"),
        fee=Decimal("0.01"),
        ts_ns=T0 + n,
        venue="paper",
        strategy_id=strategy_id,
    )


async def test_a_strategy_round_trips_with_exact_money_and_json_fields(
    migrated_engine: AsyncEngine,
) -> None:
    repository = StrategyRepository(session_factory(migrated_engine))
    created = await repository.create(values())
    stored = await repository.get(created.id)
    assert stored is not None
    assert stored.capital_allocation == Decimal("1234.56789")
    assert stored.symbols == ["BTCUSDT", "ETHUSDT"]
    assert stored.params == {"fast": 3, "slow": 8, "allow_short": False}
    assert (stored.state, stored.enabled, stored.mode, stored.last_error) == (
        "stopped",
        False,
        "paper",
        None,
    )
    await repository.set_state(created.id, "error", error="boom", enabled=False)
    failed = await repository.get(created.id)
    assert failed is not None
    assert (failed.state, failed.last_error) == ("error", "boom")
    assert failed.updated_at >= stored.updated_at


async def test_names_are_unique_on_create_and_replace(migrated_engine: AsyncEngine) -> None:
    repository = StrategyRepository(session_factory(migrated_engine))
    await repository.create(values("first"))
    second = await repository.create(values("second"))
    with pytest.raises(StrategyNameTaken, match="'first' already exists"):
        await repository.create(values("first"))
    with pytest.raises(StrategyNameTaken):
        await repository.replace(second.id, values("first"))
    renamed = await repository.replace(second.id, values("third", interval="1h"))
    assert renamed is not None
    assert (renamed.name, renamed.interval) == ("third", "1h")
    assert [r.name for r in await repository.find()] == ["first", "third"]


async def test_fills_are_grouped_by_strategy(migrated_engine: AsyncEngine) -> None:
    sessions = session_factory(migrated_engine)
    await TradingRepository(sessions).save(
        fills=[fill(1, "a"), fill(2, "b"), fill(3, "a"), fill(4, None)]
    )
    repository = StrategyRepository(sessions)
    grouped = await repository.fills_by_strategy(["a", "b", "c"])
    assert {k: [f.trade_id for f in v] for k, v in grouped.items()} == {
        "a": ["t1", "t3"],
        "b": ["t2"],
    }
    assert (await repository.strategy_fills("a"))[0].price == Decimal("100.25")


async def test_the_default_set_is_seeded_once_even_when_two_processes_race(
    migrated_engine: AsyncEngine,
) -> None:
    defaults = [values("default-a", enabled=True), values("default-b", enabled=True)]
    first = StrategyRepository(session_factory(migrated_engine))
    second = StrategyRepository(session_factory(migrated_engine))
    added = await asyncio.gather(first.seed_once(defaults), second.seed_once(defaults))
    assert sorted(added) == [0, 2]
    deleted = (await first.find())[0]
    await first.delete(deleted.id)
    assert await first.seed_once(defaults) == 0
    assert [r.name for r in await first.find()] == ["default-b"]
