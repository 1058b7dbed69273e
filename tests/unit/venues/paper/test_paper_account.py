"""PaperVenue's account: buying power, the short-selling rule, positions and account reports."""

from __future__ import annotations

from decimal import Decimal

from tests.unit.venues.paper.support import PaperWorld, WorldFactory
from trademk.domain.order_events import OrderRejected
from trademk.domain.orders import OrderType
from trademk.venues.paper import BpsFee

D = Decimal
LIMIT = OrderType.LIMIT


def rejection(world: PaperWorld, cid: str) -> str:
    (event,) = world.of(cid)
    assert isinstance(event, OrderRejected)
    return event.reason


async def test_a_buy_needs_cash_for_notional_and_fee(make_world: WorldFactory) -> None:
    world = await make_world(starting_cash=D(10_000), fee_model=BpsFee(D(10)))
    world.quote("AAPL", 99.0, 100.0)
    too_big = await world.submit("AAPL", "buy", "100")  # 10 000 + 10 fee
    fits = await world.submit("AAPL", "buy", "99")

    assert rejection(world, too_big.client_order_id) == (
        "insufficient buying power: buy 100 AAPL needs 10010.00 USD, available 10000.00 USD"
    )
    assert world.kinds(fits.client_order_id) == ["OrderAccepted", "OrderFilled"]
    assert world.venue.portfolio.cash == D(10_000) - D(9900) - D("9.9")


async def test_resting_orders_hold_their_buying_power(make_world: WorldFactory) -> None:
    world = await make_world(starting_cash=D(10_000))
    world.quote("AAPL", 99.0, 100.0)
    resting = await world.submit("AAPL", "buy", "60", type=LIMIT, limit="95")
    second = await world.submit("AAPL", "buy", "50", type=LIMIT, limit="95")
    assert world.kinds(resting.client_order_id) == ["OrderAccepted"]
    assert world.kinds(second.client_order_id) == ["OrderRejected"]
    assert (await world.venue.account()).buying_power == D(10_000) - D(5700)

    await world.venue.cancel(resting.client_order_id)
    again = await world.submit("AAPL", "buy", "50", type=LIMIT, limit="95")
    assert world.kinds(again.client_order_id) == ["OrderAccepted"]


async def test_selling_what_is_held_needs_no_buying_power(make_world: WorldFactory) -> None:
    world = await make_world(starting_cash=D(10_000), allow_short=False)
    world.quote("AAPL", 99.0, 100.0)
    await world.submit("AAPL", "buy", "100")
    world.quote("AAPL", 49.0, 50.0)  # the position lost half its value
    sale = await world.submit("AAPL", "sell", "100")

    assert world.kinds(sale.client_order_id) == ["OrderAccepted", "OrderFilled"]
    assert world.venue.portfolio.qty("AAPL") == 0


async def test_short_selling_can_be_disabled(make_world: WorldFactory) -> None:
    world = await make_world(allow_short=False)
    world.quote("AAPL", 99.0, 100.0)
    await world.submit("AAPL", "buy", "5")
    resting_sale = await world.submit("AAPL", "sell", "3", type=LIMIT, limit="120")
    oversell = await world.submit("AAPL", "sell", "3")  # only 2 left unsold

    assert world.kinds(resting_sale.client_order_id) == ["OrderAccepted"]
    assert rejection(world, oversell.client_order_id) == (
        "short selling is disabled: selling 3 AAPL would open a short position of 1"
    )
    assert world.venue.portfolio.qty("AAPL") == D(5)


async def test_a_short_sale_needs_equity_for_its_notional(make_world: WorldFactory) -> None:
    world = await make_world(starting_cash=D(10_000))
    world.quote("AAPL", 100.0, 101.0)
    short = await world.submit("AAPL", "sell", "60")
    too_much = await world.submit("AAPL", "sell", "50")  # 6000 short + 5000 > 10 000

    assert world.kinds(short.client_order_id) == ["OrderAccepted", "OrderFilled"]
    assert rejection(world, too_much.client_order_id).startswith("insufficient buying power")
    assert world.venue.portfolio.qty("AAPL") == D(-60)
    # Short proceeds sit in cash but cannot be spent again: gross exposure counts.
    account = await world.venue.account()
    assert account.cash == D(16_000)
    assert account.equity == D(16_000) - D(60) * D("100.5")
    assert account.buying_power == account.equity - D(60) * D("100.5")


async def test_positions_and_account_follow_the_fills(world: PaperWorld) -> None:
    world.quote("BTCUSDT", 60_000.0, 60_010.0)
    world.quote("AAPL", 190.0, 190.1)
    await world.submit("BTCUSDT", "buy", "0.5")
    await world.submit("BTCUSDT", "sell", "0.2")
    await world.submit("AAPL", "sell", "10")
    world.trade("BTCUSDT", 61_000.0)
    world.trade("AAPL", 189.0)

    positions = {p.symbol: p for p in await world.venue.position_reports()}
    assert (positions["BTCUSDT"].qty, positions["BTCUSDT"].avg_price) == (D("0.3"), D(60_010))
    assert (positions["AAPL"].qty, positions["AAPL"].avg_price) == (D(-10), D(190))
    account = await world.venue.account()
    cash = D(100_000) - D("0.5") * 60_010 + D("0.2") * 60_000 + 10 * D(190)
    assert account.cash == cash
    assert account.equity == cash + D("0.3") * 61_000 - 10 * D(189)
    assert account.currency == "USD"


async def test_a_flat_position_is_not_reported(world: PaperWorld) -> None:
    world.quote("AAPL", 100.0, 100.0)
    await world.submit("AAPL", "buy", "3")
    await world.submit("AAPL", "sell", "3")

    assert await world.venue.position_reports() == []
    assert world.venue.portfolio.realized_pnl == 0
