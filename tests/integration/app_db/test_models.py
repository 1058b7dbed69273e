import asyncio
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from trademk.storage.database import session_factory, transaction
from trademk.storage.models import ConfigEntry, OrderRecord, PositionRecord, Symbol, User


def _order(**overrides: object) -> OrderRecord:
    fields: dict[str, object] = {
        "client_order_id": f"coid-{uuid.uuid4().hex}",
        "venue": "paper",
        "symbol": "BTCUSDT",
        "side": "buy",
        "type": "limit",
        "time_in_force": "gtc",
        "qty": Decimal("0.12345678"),
        "price": Decimal("64123.45678901"),
        "status": "initialized",
    }
    fields.update(overrides)
    return OrderRecord(**fields)


async def test_every_model_round_trips(migrated_engine: AsyncEngine) -> None:
    sessions = session_factory(migrated_engine)
    submitted = datetime(2026, 3, 8, 6, 59, 59, 123456, tzinfo=UTC)
    async with transaction(sessions) as session:
        session.add_all(
            [
                User(email="a@example.com", password_hash="x", role="admin", is_superuser=True),
                Symbol(
                    ticker="BTCUSDT",
                    name="Bitcoin",
                    exchange="BINANCE",
                    asset_type="crypto",
                    metadata_json={"alpaca_symbol": "BTC/USD"},
                ),
                ConfigEntry(key="max_order_qty_stock", value="100", scope="risk"),
                _order(client_order_id="c-1", submitted_at=submitted),
                PositionRecord(
                    symbol="BTCUSDT", venue="paper", qty=Decimal("-0.5"), avg_price=Decimal("1.1")
                ),
            ]
        )
    async with sessions() as session:
        user = await session.scalar(select(User))
        assert user is not None and user.role == "admin" and user.is_active and user.is_superuser
        assert isinstance(user.id, uuid.UUID)
        assert user.created_at.tzinfo is not None
        symbol = await session.scalar(select(Symbol))
        assert symbol is not None and symbol.metadata_json == {"alpaca_symbol": "BTC/USD"}
        config = await session.scalar(select(ConfigEntry))
        assert config is not None and (config.key, config.scope, config.value) == (
            "max_order_qty_stock",
            "risk",
            "100",
        )
        order = await session.scalar(
            select(OrderRecord).where(OrderRecord.client_order_id == "c-1")
        )
        assert order is not None
        assert order.qty == Decimal("0.12345678")
        assert order.price == Decimal("64123.45678901")
        assert order.filled_qty == Decimal(0)
        assert order.submitted_at == submitted
        position = await session.scalar(select(PositionRecord))
        assert position is not None and position.qty == Decimal("-0.5")


async def test_money_is_exact_beyond_float_precision(migrated_engine: AsyncEngine) -> None:
    sessions = session_factory(migrated_engine)
    amount = Decimal("12345678901234.123456789012")
    async with transaction(sessions) as session:
        session.add(_order(client_order_id="exact", qty=amount, price=Decimal("0.1")))
    async with sessions() as session:
        order = await session.scalar(
            select(OrderRecord).where(OrderRecord.client_order_id == "exact")
        )
        assert order is not None
        assert order.qty == amount
        assert order.qty + order.price == amount + Decimal("0.1")  # type: ignore[operator]


UNIQUE_PAIRS = {
    "users.email": lambda: User(email="dup@example.com", password_hash="x"),
    "configs.key+scope": lambda: ConfigEntry(key="k", value="1", scope="risk"),
    "positions.symbol+venue": lambda: PositionRecord(symbol="AAPL", venue="paper"),
    "orders.client_order_id": lambda: _order(client_order_id="same"),
}


@pytest.mark.parametrize("constraint", list(UNIQUE_PAIRS))
async def test_unique_constraints(migrated_engine: AsyncEngine, constraint: str) -> None:
    sessions = session_factory(migrated_engine)
    async with transaction(sessions) as session:
        session.add(UNIQUE_PAIRS[constraint]())
    with pytest.raises(IntegrityError):
        async with transaction(sessions) as session:
            session.add(UNIQUE_PAIRS[constraint]())


async def test_same_config_key_allowed_in_different_scopes(migrated_engine: AsyncEngine) -> None:
    sessions = session_factory(migrated_engine)
    async with transaction(sessions) as session:
        session.add_all(
            [
                ConfigEntry(key="k", value="1", scope="risk"),
                ConfigEntry(key="k", value="1", scope="ui"),
            ]
        )
    async with sessions() as session:
        assert len((await session.scalars(select(ConfigEntry))).all()) == 2


async def test_naive_datetimes_are_refused(migrated_engine: AsyncEngine) -> None:
    sessions = session_factory(migrated_engine)
    with pytest.raises(Exception, match="naive datetime"):
        async with transaction(sessions) as session:
            session.add(_order(submitted_at=datetime(2026, 1, 1)))


async def test_orm_update_moves_updated_at(migrated_engine: AsyncEngine) -> None:
    sessions = session_factory(migrated_engine)
    async with transaction(sessions) as session:
        order = _order()
        session.add(order)
    created = order.updated_at
    await asyncio.sleep(1.1)  # SQLite's CURRENT_TIMESTAMP has one-second resolution
    async with transaction(sessions) as session:
        loaded = await session.get(OrderRecord, order.id)
        assert loaded is not None
        loaded.status = "submitted"
    assert loaded.updated_at > created


async def test_raw_sql_update_moves_updated_at_through_trigger(
    migrated_engine: AsyncEngine,
) -> None:
    sessions = session_factory(migrated_engine)
    async with transaction(sessions) as session:
        symbol = Symbol(ticker="ETHUSDT", name="Ethereum", exchange="BINANCE", asset_type="crypto")
        session.add(symbol)
    before = symbol.updated_at
    await asyncio.sleep(0.05)
    async with migrated_engine.begin() as conn:
        await conn.execute(text("UPDATE symbols SET name = 'Ether' WHERE ticker = 'ETHUSDT'"))
    async with sessions() as session:
        reloaded = await session.scalar(select(Symbol).where(Symbol.ticker == "ETHUSDT"))
        assert reloaded is not None and reloaded.name == "Ether"
        assert reloaded.updated_at > before
        assert reloaded.created_at == symbol.created_at
