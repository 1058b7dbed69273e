"""Idempotent seed data: the symbol universe and the default risk limits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trademk.domain.market import AssetClass
from trademk.domain.risk import RiskLimits
from trademk.domain.universe import Instrument, instrument_for
from trademk.storage.database import transaction
from trademk.storage.models import ConfigEntry, Symbol

RISK_SCOPE = "risk"


@dataclass(frozen=True, slots=True)
class ConfigDefault:
    key: str
    value: str
    description: str


_RISK_DESCRIPTIONS: dict[str, str] = {
    "max_position_size_usd": "Largest position notional per symbol (USD)",
    "max_order_qty_crypto": "Largest quantity of one crypto order",
    "max_order_qty_stock": "Largest quantity of one stock order (shares)",
    "max_order_notional_usd": "Largest value of one order (USD)",
    "max_open_orders": "Most orders open at once, all symbols together",
    "max_open_orders_per_symbol": "Most orders open at once per symbol (none: no limit)",
    "max_daily_loss_usd": "Loss since the UTC day start that halts trading (USD)",
    "max_orders_per_second": "Most orders sent in any rolling second",
    "max_orders_per_minute": "Most orders sent in any rolling minute",
    "max_price_deviation_pct": "Furthest a limit or stop price may be from the last price (%)",
    "enforce_market_hours": "Stocks trade only inside NYSE sessions",
}
# The values are RiskLimits' own defaults, so the domain type is their one source.
RISK_DEFAULTS: tuple[ConfigDefault, ...] = tuple(
    ConfigDefault(key, value, _RISK_DESCRIPTIONS[key])
    for key, value in RiskLimits().to_mapping().items()
)


def universe(crypto: Iterable[str], stocks: Iterable[str]) -> list[Instrument]:
    """Instruments for the configured tickers, crypto first."""
    return [instrument_for(t, AssetClass.CRYPTO) for t in crypto] + [
        instrument_for(t, AssetClass.STOCK) for t in stocks
    ]


async def seed_symbols(session: AsyncSession, instruments: Iterable[Instrument]) -> int:
    """Insert missing symbols and reactivate configured ones; returns how many were added."""
    wanted = {instrument.ticker: instrument for instrument in instruments}
    existing = {
        row.ticker: row
        for row in (await session.scalars(select(Symbol).where(Symbol.ticker.in_(wanted)))).all()
    }
    for ticker, row in existing.items():
        if not row.is_active:
            row.is_active = True
        wanted.pop(ticker)
    for instrument in wanted.values():
        session.add(
            Symbol(
                ticker=instrument.ticker,
                name=instrument.name,
                exchange=instrument.exchange,
                asset_type=str(instrument.asset_class),
                is_active=True,
                metadata_json={"alpaca_symbol": instrument.alpaca_symbol},
            )
        )
    return len(wanted)


async def seed_config(session: AsyncSession, scope: str, defaults: Iterable[ConfigDefault]) -> int:
    """Insert config defaults that are missing; never overwrite a value a user set."""
    present = set(
        (await session.scalars(select(ConfigEntry.key).where(ConfigEntry.scope == scope))).all()
    )
    added = 0
    for default in defaults:
        if default.key not in present:
            session.add(
                ConfigEntry(
                    key=default.key,
                    value=default.value,
                    scope=scope,
                    description=default.description,
                )
            )
            added += 1
    return added


async def seed_defaults(
    sessions: async_sessionmaker[AsyncSession], crypto: Iterable[str], stocks: Iterable[str]
) -> dict[str, int]:
    """Seed everything the platform needs to start; safe to run on every start.

    Two processes seeding at once may collide on a unique key; the loser's
    second pass finds the rows there and adds nothing.
    """
    instruments = universe(crypto, stocks)
    for attempt in range(2):
        try:
            async with transaction(sessions) as session:
                symbols = await seed_symbols(session, instruments)
                risk = await seed_config(session, RISK_SCOPE, RISK_DEFAULTS)
        except IntegrityError:
            if attempt:
                raise
            continue
        break
    return {"symbols": symbols, "risk_limits": risk}
