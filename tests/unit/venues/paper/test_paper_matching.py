"""PaperVenue matching: prices, slippage, fees, partial fills, stops, IOC/FOK, trade prints."""

from __future__ import annotations

from decimal import Decimal

from tests.unit.venues.paper.support import PaperWorld, WorldFactory
from trademk.domain.order_events import OrderCanceled
from trademk.domain.orders import OrderType, TimeInForce
from trademk.venues.paper import BpsFee, PerShareFee

D = Decimal
LIMIT, STOP, STOP_LIMIT = OrderType.LIMIT, OrderType.STOP, OrderType.STOP_LIMIT


# -- market orders --------------------------------------------------------------------------


async def test_market_orders_take_the_opposite_quote(world: PaperWorld) -> None:
    world.quote("AAPL", 190.0, 190.05)
    buy = await world.submit("AAPL", "buy", "10")
    await world.submit("AAPL", "sell", "4")

    assert world.kinds(buy.client_order_id) == ["OrderAccepted", "OrderFilled"]
    assert [f.price for f in world.fills()] == [D("190.05"), D("190.0")]
    assert all(f.liquidity == "taker" for f in world.fills())
    assert world.venue.portfolio.qty("AAPL") == D(6)


async def test_without_a_quote_a_market_order_fills_at_the_last_trade(world: PaperWorld) -> None:
    world.trade("BTCUSDT", 60_000.5, qty=0.01)
    order = await world.submit("BTCUSDT", "buy", "1.5")

    fills = [(f.qty, f.price) for f in world.fills(order.client_order_id)]
    assert fills == [(D("1.5"), D("60000.5"))]


async def test_market_order_without_any_price_is_rejected(world: PaperWorld) -> None:
    order = await world.submit("ETHUSDT", "buy", "1")

    assert world.kinds(order.client_order_id) == ["OrderRejected"]
    assert world.reason(order.client_order_id) == "no market price for ETHUSDT"


async def test_slippage_worsens_market_fills_in_bps(make_world: WorldFactory) -> None:
    world = await make_world(slippage_bps=D("10"))
    world.quote("AAPL", 100.0, 100.1)
    await world.submit("AAPL", "buy", "1")
    await world.submit("AAPL", "sell", "1")

    assert [f.price for f in world.fills()] == [D("100.1") * D("1.001"), D("100.0") * D("0.999")]


async def test_slippage_never_takes_a_limit_order_past_its_limit(
    make_world: WorldFactory,
) -> None:
    world = await make_world(slippage_bps=D("100"))
    world.quote("AAPL", 100.0, 100.1)
    order = await world.submit("AAPL", "buy", "1", type=LIMIT, limit="100.5")

    assert [f.price for f in world.fills(order.client_order_id)] == [D("100.5")]


async def test_bps_fees_are_charged_on_every_fill(make_world: WorldFactory) -> None:
    world = await make_world(fee_model=BpsFee(D("10")))
    world.quote("AAPL", 100.0, 100.0)
    await world.submit("AAPL", "buy", "3")

    (fill,) = world.fills()
    assert fill.fee == D("0.3")
    assert world.venue.portfolio.cash == D(100_000) - D(300) - D("0.3")


async def test_per_share_fees_respect_the_minimum_per_fill(make_world: WorldFactory) -> None:
    world = await make_world(fee_model=PerShareFee(D("0.01"), minimum=D("1")))
    world.quote("AAPL", 100.0, 100.0, ask_size=30)
    order = await world.submit("AAPL", "buy", "250")
    world.quote("AAPL", 100.0, 100.0, ask_size=1000)
    await world.settle()

    assert [(f.qty, f.fee) for f in world.fills(order.client_order_id)] == [
        (D(30), D(1)),
        (D(220), D("2.20")),
    ]


# -- partial fills ------------------------------------------------------------------------------


async def test_a_small_quote_fills_part_and_the_rest_keeps_working(world: PaperWorld) -> None:
    world.quote("BTCUSDT", 60_000.0, 60_010.0, ask_size=0.4)
    order = await world.submit("BTCUSDT", "buy", "1")
    report = await world.venue.order_report(order.client_order_id)
    assert report is not None and (report.status, report.filled_qty) == (
        "partially_filled",
        D("0.4"),
    )

    world.quote("BTCUSDT", 60_020.0, 60_030.0, ask_size=0.5)
    world.quote("BTCUSDT", 60_040.0, 60_050.0, ask_size=5)
    await world.settle()

    assert [(f.qty, f.price) for f in world.fills(order.client_order_id)] == [
        (D("0.4"), D("60010.0")),
        (D("0.5"), D("60030.0")),
        (D("0.1"), D("60050.0")),
    ]
    assert len({f.trade_id for f in world.fills()}) == 3
    report = await world.venue.order_report(order.client_order_id)
    assert report is not None and report.status == "filled"


async def test_resting_orders_share_one_quote_in_time_priority(world: PaperWorld) -> None:
    world.quote("AAPL", 100.0, 101.0)
    first = await world.submit("AAPL", "buy", "5", type=LIMIT, limit="100.5")
    second = await world.submit("AAPL", "buy", "5", type=LIMIT, limit="100.5")
    world.quote("AAPL", 99.0, 100.0, ask_size=7)
    await world.settle()

    assert [f.qty for f in world.fills(first.client_order_id)] == [D(5)]
    assert [f.qty for f in world.fills(second.client_order_id)] == [D(2)]


async def test_ioc_fills_what_is_there_and_cancels_the_rest(world: PaperWorld) -> None:
    world.quote("AAPL", 100.0, 100.1, ask_size=3)
    order = await world.submit("AAPL", "buy", "10", type=LIMIT, limit="101", tif=TimeInForce.IOC)

    assert world.kinds(order.client_order_id) == ["OrderAccepted", "OrderFilled", "OrderCanceled"]
    assert world.fills()[0].qty == D(3)
    world.quote("AAPL", 100.0, 100.1, ask_size=100)
    await world.settle()
    assert len(world.fills()) == 1


async def test_fok_fills_everything_at_once_or_nothing(world: PaperWorld) -> None:
    world.quote("AAPL", 100.0, 100.1, ask_size=5)
    too_big = await world.submit("AAPL", "buy", "6", tif=TimeInForce.FOK)
    fits = await world.submit("AAPL", "buy", "5", tif=TimeInForce.FOK)

    assert world.kinds(too_big.client_order_id) == ["OrderAccepted", "OrderCanceled"]
    canceled = world.of(too_big.client_order_id)[-1]
    assert isinstance(canceled, OrderCanceled) and canceled.reason.startswith("FOK")
    assert [f.qty for f in world.fills(fits.client_order_id)] == [D(5)]


# -- limit orders -------------------------------------------------------------------------------


async def test_marketable_limit_gets_the_quote_and_resting_limit_gets_its_limit(
    world: PaperWorld,
) -> None:
    world.quote("AAPL", 100.0, 100.2)
    marketable = await world.submit("AAPL", "buy", "1", type=LIMIT, limit="101")
    resting = await world.submit("AAPL", "buy", "1", type=LIMIT, limit="99.5")
    assert world.kinds(resting.client_order_id) == ["OrderAccepted"]

    world.quote("AAPL", 98.0, 98.5)  # gaps through the resting limit
    await world.settle()

    assert [(f.price, f.liquidity) for f in world.fills(marketable.client_order_id)] == [
        (D("100.2"), "taker")
    ]
    assert [(f.price, f.liquidity) for f in world.fills(resting.client_order_id)] == [
        (D("99.5"), "maker")
    ]


async def test_a_limit_placed_before_any_price_fills_when_the_market_arrives(
    world: PaperWorld,
) -> None:
    order = await world.submit("SOLUSDT", "sell", "3", type=LIMIT, limit="150")
    world.quote("SOLUSDT", 149.0, 149.5)
    await world.settle()
    assert world.fills(order.client_order_id) == []
    world.quote("SOLUSDT", 150.0, 150.5, bid_size=10)
    await world.settle()

    assert [(f.qty, f.price) for f in world.fills(order.client_order_id)] == [(D(3), D(150))]


async def test_trade_prints_fill_resting_limits_only_strictly_through(world: PaperWorld) -> None:
    world.quote("AAPL", 100.0, 100.2)
    order = await world.submit("AAPL", "buy", "10", type=LIMIT, limit="99.5")
    world.trade("AAPL", 99.5, qty=50)  # at the limit: queue position unknown, no fill
    await world.settle()
    assert world.fills() == []

    world.trade("AAPL", 99.4, qty=4)  # through: fills up to the print size, at the limit
    world.trade("AAPL", 99.3)  # no size reported: fills the rest
    await world.settle()

    assert [(f.qty, f.price) for f in world.fills(order.client_order_id)] == [
        (D(4), D("99.5")),
        (D(6), D("99.5")),
    ]


async def test_trade_prints_can_be_ignored(make_world: WorldFactory) -> None:
    world = await make_world(fill_on_trade_prints=False)
    world.quote("AAPL", 100.0, 100.2)
    await world.submit("AAPL", "buy", "10", type=LIMIT, limit="99.5")
    world.trade("AAPL", 90.0, qty=100)
    await world.settle()

    assert world.fills() == []


# -- stops --------------------------------------------------------------------------------------


async def test_buy_stop_triggers_on_a_trade_at_the_stop_and_takes_the_ask(
    world: PaperWorld,
) -> None:
    world.quote("AAPL", 100.0, 100.1)
    world.trade("AAPL", 100.0)
    order = await world.submit("AAPL", "buy", "2", type=STOP, stop="101")
    world.trade("AAPL", 100.9)
    await world.settle()
    assert world.kinds(order.client_order_id) == ["OrderAccepted"]

    world.quote("AAPL", 100.9, 101.05)
    world.trade("AAPL", 101.0)
    await world.settle()

    assert [(f.qty, f.price) for f in world.fills(order.client_order_id)] == [(D(2), D("101.05"))]


async def test_sell_stop_triggers_on_the_quote_mid_while_there_are_no_trades(
    world: PaperWorld,
) -> None:
    world.quote("ETHUSDT", 3000.0, 3001.0)
    order = await world.submit("ETHUSDT", "sell", "1", type=STOP, stop="2990")
    world.quote("ETHUSDT", 2990.0, 2991.0)  # mid 2990.5: not yet
    await world.settle()
    assert world.fills() == []

    world.quote("ETHUSDT", 2989.0, 2990.0)  # mid 2989.5
    await world.settle()

    assert [f.price for f in world.fills(order.client_order_id)] == [D("2989.0")]


async def test_stop_limit_becomes_a_resting_limit_when_triggered(world: PaperWorld) -> None:
    world.quote("AAPL", 100.0, 100.1)
    world.trade("AAPL", 100.0)
    order = await world.submit("AAPL", "buy", "1", type=STOP_LIMIT, stop="101", limit="101.2")
    world.quote("AAPL", 101.4, 101.5)
    world.trade("AAPL", 101.5)  # triggers, but the ask is above the limit: rests
    await world.settle()
    assert world.fills() == []
    open_ids = [r.client_order_id for r in await world.venue.order_reports()]
    assert open_ids == [order.client_order_id]

    world.quote("AAPL", 101.0, 101.1)
    await world.settle()

    assert [(f.price, f.liquidity) for f in world.fills(order.client_order_id)] == [
        (D("101.2"), "maker")
    ]


async def test_a_stop_already_reached_at_submission_triggers_at_once(world: PaperWorld) -> None:
    world.quote("AAPL", 100.0, 100.1)
    world.trade("AAPL", 100.0)
    order = await world.submit("AAPL", "sell", "1", type=STOP, stop="100.5")

    assert world.kinds(order.client_order_id) == ["OrderAccepted", "OrderFilled"]
    assert world.fills()[0].price == D("100.0")


async def test_stop_orders_refuse_ioc_and_fok(world: PaperWorld) -> None:
    world.quote("AAPL", 100.0, 100.1)
    order = await world.submit("AAPL", "buy", "1", type=STOP, stop="101", tif=TimeInForce.IOC)

    assert world.kinds(order.client_order_id) == ["OrderRejected"]
    assert "not supported" in world.reason(order.client_order_id)
