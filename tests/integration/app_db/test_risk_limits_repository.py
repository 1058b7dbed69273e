"""RiskLimitsRepository on SQLite and PostgreSQL: configs rows in scope "risk"."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from trademk.domain.risk import RISK_LIMIT_NAMES, RiskLimits, RiskLimitsError
from trademk.storage.database import session_factory, transaction
from trademk.storage.models import ConfigEntry
from trademk.storage.risk_limits_repository import RiskLimitsRepository
from trademk.storage.seed import RISK_DEFAULTS

CUSTOM = RiskLimits(
    max_order_qty_crypto=Decimal("0.25"),
    max_order_qty_stock=Decimal("40"),
    max_order_notional_usd=Decimal("2500.50"),
    max_position_size_usd=Decimal("7500"),
    max_open_orders=12,
    max_open_orders_per_symbol=None,
    max_daily_loss_usd=Decimal("333.33"),
    max_orders_per_second=2,
    max_orders_per_minute=30,
    max_price_deviation_pct=Decimal("2.5"),
    enforce_market_hours=False,
)


async def risk_rows(engine: AsyncEngine) -> dict[str, object]:
    async with session_factory(engine)() as session:
        rows = await session.execute(
            select(ConfigEntry.key, ConfigEntry.value).where(ConfigEntry.scope == "risk")
        )
        return {key: value for key, value in rows}


async def put_row(engine: AsyncEngine, key: str, value: object, scope: str = "risk") -> None:
    async with transaction(session_factory(engine)) as session:
        session.add(ConfigEntry(key=key, value=value, scope=scope))


async def test_empty_table_loads_the_defaults(migrated_engine: AsyncEngine) -> None:
    repository = RiskLimitsRepository(session_factory(migrated_engine))
    assert await repository.load() == RiskLimits()


async def test_seeded_defaults_load_as_the_default_limits(migrated_engine: AsyncEngine) -> None:
    repository = RiskLimitsRepository(session_factory(migrated_engine))
    assert await repository.seed_defaults() == len(RISK_DEFAULTS)
    assert await repository.seed_defaults() == 0
    assert await repository.load() == RiskLimits()
    rows = await risk_rows(migrated_engine)
    assert rows["max_position_size_usd"] == "10000"
    assert rows["max_order_qty_crypto"] == "1.0"
    assert rows["max_order_qty_stock"] == "100"


async def test_saved_limits_load_back_and_are_stored_as_text(migrated_engine: AsyncEngine) -> None:
    repository = RiskLimitsRepository(session_factory(migrated_engine))
    await repository.save(CUSTOM)
    assert await repository.load() == CUSTOM
    rows = await risk_rows(migrated_engine)
    assert rows == CUSTOM.to_mapping()
    assert rows["max_order_notional_usd"] == "2500.50"
    assert rows["enforce_market_hours"] == "false"
    assert rows["max_open_orders_per_symbol"] == "none"


async def test_saving_again_updates_rows_in_place(migrated_engine: AsyncEngine) -> None:
    repository = RiskLimitsRepository(session_factory(migrated_engine))
    await repository.save(CUSTOM)
    await repository.save(RiskLimits(max_open_orders=3))
    assert (await repository.load()).max_open_orders == 3
    async with session_factory(migrated_engine)() as session:
        count = await session.scalar(
            select(func.count()).select_from(ConfigEntry).where(ConfigEntry.scope == "risk")
        )
        description = await session.scalar(
            select(ConfigEntry.description).where(ConfigEntry.key == "max_open_orders")
        )
    assert count == len(RISK_LIMIT_NAMES)
    assert description == "Most orders open at once, all symbols together"


async def test_unknown_keys_and_other_scopes_are_ignored(migrated_engine: AsyncEngine) -> None:
    await put_row(migrated_engine, "max_leverage", "3")
    await put_row(migrated_engine, "max_open_orders", "not a number", scope="global")
    await put_row(migrated_engine, "max_open_orders", "7")
    repository = RiskLimitsRepository(session_factory(migrated_engine))
    limits = await repository.load()
    assert limits == RiskLimits(max_open_orders=7)
    await repository.save(limits)
    rows = await risk_rows(migrated_engine)
    assert rows["max_leverage"] == "3"  # a row saving does not own is left alone


async def test_numbers_written_by_hand_as_json_are_read(migrated_engine: AsyncEngine) -> None:
    await put_row(migrated_engine, "max_open_orders", 9)
    await put_row(migrated_engine, "enforce_market_hours", False)
    limits = await RiskLimitsRepository(session_factory(migrated_engine)).load()
    assert limits.max_open_orders == 9
    assert limits.enforce_market_hours is False


async def test_an_invalid_stored_value_is_reported_by_field(migrated_engine: AsyncEngine) -> None:
    await put_row(migrated_engine, "max_position_size_usd", "-100")
    repository = RiskLimitsRepository(session_factory(migrated_engine))
    with pytest.raises(RiskLimitsError) as caught:
        await repository.load()
    assert caught.value.errors == {"max_position_size_usd": "must be greater than 0, got -100"}
    assert "stored risk limits" in str(caught.value)
