"""Signals through risk and the paper venue, seen in orders, positions and portfolio."""

from decimal import Decimal

import pytest

from tests.support.trading_api import TradingFactory
from trademk.domain.errors import TransientError
from trademk.domain.signals import OrderRequest


async def test_signal_fills_on_paper_venue_and_shows_everywhere(
    trading_api: TradingFactory,
) -> None:
    async with trading_api(paper_fee_bps=Decimal(10)) as api:
        api.quote("BTCUSDT", bid=64_990.0, ask=65_010.0)
        response = await api.signal(symbol="btcusdt", side="buy", qty="0.01", reason="test")
        assert response.status_code == 202, response.text
        cid = response.json()["client_order_id"]
        order = await api.order_eventually(cid, "filled")
        assert Decimal(order["filled_qty"]) == Decimal("0.01")
        assert Decimal(order["filled_avg_price"]) == Decimal("65010")
        listed = (await api.get("/api/v1/trading/orders")).json()
        assert [o["client_order_id"] for o in listed] == [cid]

        positions = (await api.get("/api/v1/trading/positions")).json()
        assert [(p["symbol"], Decimal(p["qty"]), p["side"]) for p in positions] == [
            ("BTCUSDT", Decimal("0.01"), "long")
        ]
        book = (await api.get("/api/v1/trading/portfolio")).json()
        fee = Decimal("0.01") * Decimal("65010") * Decimal("0.001")
        assert Decimal(book["cash"]) == Decimal("100000") - Decimal("650.10") - fee
        assert Decimal(book["fees"]) == fee
        assert Decimal(book["equity"]) == Decimal(book["cash"]) + sum(
            Decimal(p["market_value"]) for p in book["positions"]
        )
        assert book["open_positions"] == len(positions) == 1


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"symbol": "BTCUSDT", "side": "buy", "qty": "0"}, 422, "greater than 0"),
        ({"symbol": "BTCUSDT", "side": "buy", "qty": "-1"}, 422, "greater than 0"),
        ({"symbol": "NOPEUSDT", "side": "buy", "qty": "1"}, 404, "unknown symbol"),
        ({"symbol": "BTCUSDT", "side": "buy", "qty": "1", "type": "limit"}, 422, "limit_price"),
        ({"symbol": "BTCUSDT", "side": "hold", "qty": "1"}, 422, "side"),
        ({"symbol": "AAPL", "side": "buy", "qty": "1", "type": "stop"}, 422, "stop_price"),
    ],
)
async def test_bad_signals_are_refused_and_persist_nothing(
    trading_api: TradingFactory, body: dict[str, str], status: int, message: str
) -> None:
    async with trading_api() as api:
        response = await api.signal(**body)
        assert response.status_code == status
        assert message in response.text
        await api.settled()
        assert (await api.get("/api/v1/trading/orders")).json() == []


async def test_malformed_json_is_422(trading_api: TradingFactory) -> None:
    async with trading_api() as api:
        response = await api.client.post(
            "/api/v1/trading/signal",
            content=b'{"symbol": "BTCUSDT", "side":',
            headers={**api.headers, "content-type": "application/json"},
        )
        assert response.status_code == 422
        assert "JSON" in response.text


async def test_risk_denial_is_stored_with_its_reason(trading_api: TradingFactory) -> None:
    async with trading_api() as api:
        api.quote("BTCUSDT", bid=65_000.0, ask=65_010.0)
        response = await api.signal(symbol="BTCUSDT", side="buy", qty="5")
        cid = response.json()["client_order_id"]
        await api.settled()
        order = (await api.get(f"/api/v1/trading/orders/{cid}")).json()
        assert order["status"] == "denied"
        assert order["reason"].startswith("max_order_qty")
        state = (await api.get("/api/v1/trading/state")).json()
        assert state["denials_by_rule"] == {"max_order_qty_crypto": 1}


async def test_same_client_order_id_executes_once(trading_api: TradingFactory) -> None:
    async with trading_api() as api:
        api.quote("ETHUSDT", bid=3_000.0, ask=3_001.0)
        for _ in range(3):
            response = await api.signal(
                symbol="ETHUSDT", side="buy", qty="0.1", client_order_id="my-order-1"
            )
            assert response.status_code == 202
        await api.order_eventually("my-order-1", "filled")
        orders = (await api.get("/api/v1/trading/orders")).json()
        assert [o["client_order_id"] for o in orders] == ["my-order-1"]
        positions = (await api.get("/api/v1/trading/positions")).json()
        assert Decimal(positions[0]["qty"]) == Decimal("0.1")


async def test_cancel_resting_order(trading_api: TradingFactory) -> None:
    async with trading_api() as api:
        api.quote("SOLUSDT", bid=150.0, ask=150.1)
        response = await api.signal(
            symbol="SOLUSDT", side="buy", qty="1", type="limit", limit_price="145"
        )
        cid = response.json()["client_order_id"]
        await api.order_eventually(cid, "accepted")
        canceled = await api.client.delete(f"/api/v1/trading/orders/{cid}", headers=api.headers)
        assert canceled.status_code == 202
        await api.order_eventually(cid, "canceled")
        again = await api.client.delete(f"/api/v1/trading/orders/{cid}", headers=api.headers)
        assert again.status_code == 409
        missing = await api.client.delete("/api/v1/trading/orders/nope", headers=api.headers)
        assert missing.status_code == 404


async def test_halt_cancels_open_orders_and_denies_new_ones(trading_api: TradingFactory) -> None:
    async with trading_api() as api:
        api.quote("SOLUSDT", bid=150.0, ask=150.1)
        resting = await api.signal(
            symbol="SOLUSDT", side="buy", qty="1", type="limit", limit_price="140"
        )
        cid = resting.json()["client_order_id"]
        await api.order_eventually(cid, "accepted")
        halted = await api.client.post(
            "/api/v1/trading/halt", json={"reason": "drill"}, headers=api.headers
        )
        assert halted.status_code == 200, halted.text
        assert halted.json()["state"] == "halted"
        assert halted.json()["canceled_orders"] == 1
        await api.order_eventually(cid, "canceled")

        denied = await api.signal(symbol="SOLUSDT", side="buy", qty="1")
        await api.settled()
        order = (await api.get(f"/api/v1/trading/orders/{denied.json()['client_order_id']}")).json()
        assert order["status"] == "denied"
        assert "halted" in order["reason"]

        resumed = await api.client.post("/api/v1/trading/resume", headers=api.headers)
        assert resumed.json()["state"] == "active"


async def test_a_halt_outlives_a_restart_until_an_operator_resumes(
    trading_api: TradingFactory,
) -> None:
    async with trading_api() as api:
        halted = await api.client.post(
            "/api/v1/trading/halt", json={"reason": "overnight drill"}, headers=api.headers
        )
        assert halted.status_code == 200
    async with trading_api() as api:
        state = (await api.get("/api/v1/trading/state")).json()
        assert (state["state"], state["reason"]) == ("halted", "overnight drill")
        resumed = await api.client.post("/api/v1/trading/resume", headers=api.headers)
        assert resumed.json()["state"] == "active"
    async with trading_api() as api:
        assert (await api.get("/api/v1/trading/state")).json()["state"] == "active"


async def test_risk_limits_read_change_and_validate(trading_api: TradingFactory) -> None:
    async with trading_api() as api:
        limits = (await api.get("/api/v1/risk/limits")).json()
        assert limits["max_position_size_usd"] == "10000"
        assert limits["max_order_qty_stock"] == "100"
        bad = await api.client.put(
            "/api/v1/risk/limits",
            json={"max_order_qty_stock": "-5", "no_such_limit": "1"},
            headers=api.headers,
        )
        assert bad.status_code == 422
        assert {e["loc"][-1] for e in bad.json()["detail"]} == {
            "max_order_qty_stock",
            "no_such_limit",
        }
        good = await api.client.put(
            "/api/v1/risk/limits", json={"max_order_qty_crypto": "0.5"}, headers=api.headers
        )
        assert good.status_code == 200
        assert good.json()["max_order_qty_crypto"] == "0.5"
        stored = await api.platform.risk_limits.load()
        assert stored.max_order_qty_crypto == Decimal("0.5")
        api.quote("BTCUSDT", bid=100.0, ask=100.0)
        denied = await api.signal(symbol="BTCUSDT", side="buy", qty="0.6")
        await api.settled()
        cid = denied.json()["client_order_id"]
        assert (await api.get(f"/api/v1/trading/orders/{cid}")).json()["status"] == "denied"


async def test_paper_submit_answers_with_the_venues_outcome(trading_api: TradingFactory) -> None:
    """The paper venue decides inside submit: the OMS returns the order already filled."""
    from trademk.domain.orders import OrderSide, OrderStatus
    from trademk.domain.signals import OrderRequest

    async with trading_api() as api:
        api.quote("ETHUSDT", bid=3_000.0, ask=3_001.0)
        trading = api.platform.trading
        assert trading is not None
        order = await trading.oms.submit(
            OrderRequest("direct-1", "ETHUSDT", OrderSide.BUY, Decimal("0.1"))
        )
        assert order.status is OrderStatus.FILLED
        assert order.avg_fill_price == Decimal("3001.0")
        assert trading.portfolio.qty("ETHUSDT") == Decimal("0.1")


async def test_a_signal_the_queue_cannot_take_is_a_503_and_stores_nothing(
    trading_api: TradingFactory,
) -> None:
    async with trading_api() as api:
        trading = api.platform.trading
        assert trading is not None

        async def unreachable(request: OrderRequest) -> None:
            # What RedisSignalQueue.put raises when Redis drops between auth and queueing.
            raise TransientError(f"could not queue signal {request.client_order_id!r}: refused")

        trading.signals.put = unreachable  # type: ignore[method-assign]
        response = await api.signal(
            symbol="BTCUSDT", side="buy", qty="0.01", client_order_id="no-queue"
        )
        assert response.status_code == 503, response.text
        assert "could not queue signal 'no-queue'" in response.json()["detail"]
        assert (await api.get("/api/v1/trading/orders/no-queue")).status_code == 404
