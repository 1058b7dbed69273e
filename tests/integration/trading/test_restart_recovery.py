"""A restart is a recovery: positions, cash and open orders come back, nothing twice."""

from decimal import Decimal

from sqlalchemy import func, select

from tests.support.trading_api import TradingFactory
from trademk.storage.models import FillRecord, OrderRecord


async def _count(api, model) -> int:  # type: ignore[no-untyped-def]
    async with api.platform.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)))


async def test_restart_restores_positions_and_open_orders(
    trading_api: TradingFactory,
) -> None:
    async with trading_api() as api:
        api.quote("BTCUSDT", bid=65_000.0, ask=65_010.0)
        bought = await api.signal(symbol="BTCUSDT", side="buy", qty="0.01")
        await api.order_eventually(bought.json()["client_order_id"], "filled")
        resting = await api.signal(
            symbol="BTCUSDT", side="buy", qty="0.02", type="limit", limit_price="64000"
        )
        resting_id = resting.json()["client_order_id"]
        await api.order_eventually(resting_id, "accepted")
        cash_before = Decimal((await api.get("/api/v1/trading/portfolio")).json()["cash"])

    async with trading_api() as api:
        trading = api.platform.trading
        assert trading is not None and trading.reconciliation is not None
        assert trading.reconciliation.clean, trading.reconciliation.discrepancies
        assert trading.reconciliation.resubmitted == []  # the paper venue restored it
        assert trading.reconciliation.checked == 1
        assert (await api.get("/api/v1/trading/state")).json()["state"] == "active"
        positions = (await api.get("/api/v1/trading/positions")).json()
        assert [(p["symbol"], Decimal(p["qty"])) for p in positions] == [
            ("BTCUSDT", Decimal("0.01"))
        ]
        book = (await api.get("/api/v1/trading/portfolio")).json()
        assert Decimal(book["cash"]) == cash_before
        venue_positions = await trading.oms.venue.position_reports()
        assert [(p.symbol, p.qty) for p in venue_positions] == [("BTCUSDT", Decimal("0.01"))]

        api.quote("BTCUSDT", bid=63_900.0, ask=63_950.0)
        filled = await api.order_eventually(resting_id, "filled")
        assert Decimal(filled["filled_avg_price"]) == Decimal(
            "64000"
        )  # a resting limit fills at its price
        assert await _count(api, OrderRecord) == 2
        assert await _count(api, FillRecord) == 2
        positions = (await api.get("/api/v1/trading/positions")).json()
        assert Decimal(positions[0]["qty"]) == Decimal("0.03")
