from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from trademk.config import DEFAULT_CRYPTO_SYMBOLS, DEFAULT_STOCK_SYMBOLS
from trademk.domain.universe import STABLECOINS
from trademk.storage.database import session_factory, transaction
from trademk.storage.models import ConfigEntry, Symbol
from trademk.storage.seed import RISK_DEFAULTS, seed_defaults


async def test_seed_is_idempotent_and_complete(migrated_engine: AsyncEngine) -> None:
    sessions = session_factory(migrated_engine)
    first = await seed_defaults(sessions, DEFAULT_CRYPTO_SYMBOLS, DEFAULT_STOCK_SYMBOLS)
    second = await seed_defaults(sessions, DEFAULT_CRYPTO_SYMBOLS, DEFAULT_STOCK_SYMBOLS)
    assert first == {"symbols": 30, "risk_limits": len(RISK_DEFAULTS)}
    assert second == {"symbols": 0, "risk_limits": 0}
    async with sessions() as session:
        by_type = dict(
            (
                await session.execute(
                    select(Symbol.asset_type, func.count()).group_by(Symbol.asset_type)
                )
            ).all()
        )
        assert by_type == {"crypto": 15, "stock": 15}
        limits = {
            row.key: row.value
            for row in (
                await session.scalars(select(ConfigEntry).where(ConfigEntry.scope == "risk"))
            )
        }
    assert limits == {
        "max_position_size_usd": "10000",
        "max_order_qty_crypto": "1.0",
        "max_order_qty_stock": "100",
        "max_order_notional_usd": "5000",
        "max_open_orders": "50",
        "max_open_orders_per_symbol": "10",
        "max_daily_loss_usd": "1000",
        "max_orders_per_second": "5",
        "max_orders_per_minute": "60",
        "max_price_deviation_pct": "10",
        "enforce_market_hours": "true",
    }


def test_default_universe_has_no_stablecoin_or_delisted_pair() -> None:
    bases = {ticker.removesuffix("USDT") for ticker in DEFAULT_CRYPTO_SYMBOLS}
    assert not bases & STABLECOINS
    assert "MATIC" not in bases
    assert all(ticker.endswith("USDT") for ticker in DEFAULT_CRYPTO_SYMBOLS)


async def test_seed_keeps_values_a_user_changed(migrated_engine: AsyncEngine) -> None:
    sessions = session_factory(migrated_engine)
    await seed_defaults(sessions, ["BTCUSDT"], ["AAPL"])
    async with transaction(sessions) as session:
        row = await session.scalar(
            select(ConfigEntry).where(ConfigEntry.key == "max_order_qty_stock")
        )
        assert row is not None
        row.value = "5"
    await seed_defaults(sessions, ["BTCUSDT"], ["AAPL"])
    async with sessions() as session:
        value = await session.scalar(
            select(ConfigEntry.value).where(ConfigEntry.key == "max_order_qty_stock")
        )
    assert value == "5"
