"""The ExecutionClient contract: every venue in ``HARNESSES`` passes exactly these tests.

The rules are listed in ``execution_harness.py``. Tests use crypto unless the
asset class is the point; crypto orders are GTC and stock orders DAY, as the
OMS sends them.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest

from tests.contracts.execution_harness import HARNESSES, EventLog, VenueHarness, load_harness
from trademk.domain.errors import RejectedError
from trademk.domain.fills import Fill
from trademk.domain.instruments import asset_class_of
from trademk.domain.market import AssetClass
from trademk.domain.order_events import (
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
)
from trademk.domain.orders import Order, OrderSide, OrderStatus, OrderType, TimeInForce
from trademk.domain.portfolio import Portfolio
from trademk.domain.venue_reports import PositionReport

CRYPTO_BID = Decimal("60000")
CRYPTO_ASK = Decimal("60010")
STOCK_BID = Decimal("190.00")
STOCK_ASK = Decimal("190.05")
CRYPTO_QTY = Decimal("0.25")
STOCK_QTY = Decimal("10")
MAX_FEE_FRACTION = Decimal("0.01")
LIMIT = OrderType.LIMIT


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[VenueHarness]:
    async with load_harness(request.param)() as venue_harness:
        yield venue_harness


@pytest.fixture
async def log(harness: VenueHarness) -> AsyncIterator[EventLog]:
    event_log = EventLog(harness.venue, harness.event_timeout)
    yield event_log
    await event_log.close()


# -- helpers ------------------------------------------------------------------------


def make_order(
    harness: VenueHarness,
    symbol: str,
    side: OrderSide,
    qty: Decimal,
    *,
    type: OrderType = OrderType.MARKET,
    limit_price: Decimal | None = None,
    tif: TimeInForce | None = None,
    client_order_id: str | None = None,
) -> Order:
    if tif is None:
        crypto = asset_class_of(symbol) is AssetClass.CRYPTO
        tif = TimeInForce.GTC if crypto else TimeInForce.DAY
    return Order(
        client_order_id=client_order_id or f"ct-{uuid.uuid4().hex[:16]}",
        symbol=symbol,
        side=side,
        type=type,
        qty=qty,
        venue=harness.venue.name,
        created_ns=1,
        limit_price=limit_price,
        time_in_force=tif,
    )


def fills_of(events: list[OrderEvent]) -> list[Fill]:
    return [e.fill for e in events if isinstance(e, OrderFilled)]


def filled(qty: Decimal) -> Callable[[list[OrderEvent]], bool]:
    return lambda events: sum((f.qty for f in fills_of(events)), Decimal(0)) == qty


def has(event_type: type) -> Callable[[list[OrderEvent]], bool]:
    return lambda events: any(isinstance(e, event_type) for e in events)


async def crypto_market(harness: VenueHarness) -> str:
    symbol = harness.crypto_symbol
    await harness.set_market(symbol, bid=CRYPTO_BID, ask=CRYPTO_ASK, last=CRYPTO_BID)
    return symbol


async def market_for(harness: VenueHarness, kind: str) -> tuple[str, Decimal, Decimal, Decimal]:
    """(symbol, bid, ask, qty) of a market set up for ``kind`` (crypto or stock)."""
    if kind == "crypto":
        return await crypto_market(harness), CRYPTO_BID, CRYPTO_ASK, CRYPTO_QTY
    symbol = harness.stock_symbol
    await harness.set_market(symbol, bid=STOCK_BID, ask=STOCK_ASK, last=STOCK_BID)
    return symbol, STOCK_BID, STOCK_ASK, STOCK_QTY


async def barrier(harness: VenueHarness, log: EventLog, symbol: str) -> None:
    """Submit a far-away resting order and wait for its acceptance: every event the
    venue produced before it has been received."""
    order = make_order(
        harness,
        symbol,
        OrderSide.BUY,
        CRYPTO_QTY,
        type=OrderType.LIMIT,
        limit_price=(CRYPTO_BID / 2).quantize(Decimal(1)),
    )
    await harness.venue.submit(order)
    await log.wait_for_order(order.client_order_id, has(OrderAccepted), "the barrier order")


def position_qty(reports: list[PositionReport], symbol: str) -> Decimal:
    return sum((r.qty for r in reports if r.symbol == symbol), Decimal(0))


# -- market orders --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["crypto", "stock"])
async def test_market_buy_is_accepted_then_filled_and_booked(
    harness: VenueHarness, log: EventLog, kind: str
) -> None:
    venue = harness.venue
    symbol, bid, ask, qty = await market_for(harness, kind)
    cash_before = (await venue.account()).cash
    order = make_order(harness, symbol, OrderSide.BUY, qty)

    await venue.submit(order)
    events = await log.wait_for_order(order.client_order_id, filled(qty), "the market buy fill")

    accepted = events[0]
    assert isinstance(accepted, OrderAccepted) and accepted.venue_order_id
    assert all(isinstance(e, OrderFilled) for e in events[1:])
    fills = fills_of(events)
    assert len({f.trade_id for f in fills}) == len(fills)
    for fill in fills:
        assert (fill.client_order_id, fill.symbol, fill.side) == (
            order.client_order_id,
            symbol,
            OrderSide.BUY,
        )
        assert fill.venue_order_id == accepted.venue_order_id
        assert bid <= fill.price <= ask
        assert 0 <= fill.fee <= fill.notional * MAX_FEE_FRACTION
    notional = sum((f.notional for f in fills), Decimal(0))
    fees = sum((f.fee for f in fills), Decimal(0))

    report = await venue.order_report(order.client_order_id)
    assert report is not None
    assert (report.status, report.filled_qty) == (OrderStatus.FILLED, qty)
    assert report.avg_fill_price == notional / qty
    assert report.venue_order_id == accepted.venue_order_id
    assert position_qty(await venue.position_reports(), symbol) == qty
    assert cash_before - (await venue.account()).cash == notional + fees


async def test_market_sell_closes_the_position(harness: VenueHarness, log: EventLog) -> None:
    venue = harness.venue
    symbol = await crypto_market(harness)
    cash_before = (await venue.account()).cash
    buy = make_order(harness, symbol, OrderSide.BUY, CRYPTO_QTY)
    await venue.submit(buy)
    await log.wait_for_order(buy.client_order_id, filled(CRYPTO_QTY), "the buy fill")

    sell = make_order(harness, symbol, OrderSide.SELL, CRYPTO_QTY)
    await venue.submit(sell)
    sell_events = await log.wait_for_order(
        sell.client_order_id, filled(CRYPTO_QTY), "the sell fill"
    )

    assert all(CRYPTO_BID <= f.price <= CRYPTO_ASK for f in fills_of(sell_events))
    assert position_qty(await venue.position_reports(), symbol) == 0
    cash_flow = sum((f.cash_flow for f in fills_of(log.events)), Decimal(0))
    assert (await venue.account()).cash == cash_before + cash_flow
    assert cash_flow < 0  # the spread and fees were paid


# -- limit orders ---------------------------------------------------------------------


async def test_limit_below_market_rests_until_canceled(
    harness: VenueHarness, log: EventLog
) -> None:
    venue = harness.venue
    symbol = await crypto_market(harness)
    order = make_order(
        harness,
        symbol,
        OrderSide.BUY,
        CRYPTO_QTY,
        type=OrderType.LIMIT,
        limit_price=CRYPTO_BID - 500,
    )
    await venue.submit(order)
    await log.wait_for_order(order.client_order_id, has(OrderAccepted), "the acceptance")

    open_reports = {r.client_order_id: r for r in await venue.order_reports(open_only=True)}
    resting = open_reports[order.client_order_id]
    assert resting.status is OrderStatus.ACCEPTED
    assert (resting.filled_qty, resting.limit_price) == (Decimal(0), CRYPTO_BID - 500)

    await venue.cancel(order.client_order_id)
    events = await log.wait_for_order(order.client_order_id, has(OrderCanceled), "the cancel")

    assert [type(e) for e in events] == [OrderAccepted, OrderCanceled]
    assert order.client_order_id not in {
        r.client_order_id for r in await venue.order_reports(open_only=True)
    }
    report = await venue.order_report(order.client_order_id)
    assert report is not None and report.status is OrderStatus.CANCELED
    assert position_qty(await venue.position_reports(), symbol) == 0


@pytest.mark.parametrize("side", [OrderSide.BUY, OrderSide.SELL])
async def test_resting_limit_fills_when_the_market_moves_through_it(
    harness: VenueHarness, log: EventLog, side: OrderSide
) -> None:
    venue = harness.venue
    symbol = await crypto_market(harness)
    if side is OrderSide.SELL:  # hold something to sell, so no shorting is involved
        buy = make_order(harness, symbol, OrderSide.BUY, CRYPTO_QTY)
        await venue.submit(buy)
        await log.wait_for_order(buy.client_order_id, filled(CRYPTO_QTY), "the setup buy")
    limit = CRYPTO_BID - 500 if side is OrderSide.BUY else CRYPTO_ASK + 500
    order = make_order(harness, symbol, side, CRYPTO_QTY, type=OrderType.LIMIT, limit_price=limit)
    await venue.submit(order)
    await log.wait_for_order(order.client_order_id, has(OrderAccepted), "the acceptance")
    assert not fills_of(log.of(order.client_order_id))

    if side is OrderSide.BUY:
        await harness.set_market(symbol, bid=limit - 20, ask=limit - 10)
    else:
        await harness.set_market(symbol, bid=limit + 10, ask=limit + 20)
    events = await log.wait_for_order(order.client_order_id, filled(CRYPTO_QTY), "the fill")

    for fill in fills_of(events):
        assert fill.price <= limit if side is OrderSide.BUY else fill.price >= limit
    report = await venue.order_report(order.client_order_id)
    assert report is not None and report.status is OrderStatus.FILLED
    expected = CRYPTO_QTY if side is OrderSide.BUY else Decimal(0)
    assert position_qty(await venue.position_reports(), symbol) == expected


async def test_ioc_that_cannot_fill_is_canceled(harness: VenueHarness, log: EventLog) -> None:
    venue = harness.venue
    symbol = await crypto_market(harness)
    order = make_order(
        harness,
        symbol,
        OrderSide.BUY,
        CRYPTO_QTY,
        type=OrderType.LIMIT,
        limit_price=CRYPTO_BID - 500,
        tif=TimeInForce.IOC,
    )
    await venue.submit(order)
    events = await log.wait_for_order(order.client_order_id, has(OrderCanceled), "the cancel")

    assert not fills_of(events)
    assert not any(isinstance(e, OrderRejected) for e in events)
    report = await venue.order_report(order.client_order_id)
    assert report is not None and report.status is OrderStatus.CANCELED
    assert report.filled_qty == 0


async def test_partial_fills_when_the_quote_is_smaller_than_the_order(
    harness: VenueHarness, log: EventLog
) -> None:
    if not harness.supports_partial_fills:
        pytest.skip("this venue fills orders whole")
    venue = harness.venue
    symbol = harness.crypto_symbol
    await harness.set_market(
        symbol, bid=CRYPTO_BID, ask=CRYPTO_ASK, bid_size=Decimal(1), ask_size=Decimal("0.1")
    )
    order = make_order(harness, symbol, OrderSide.BUY, CRYPTO_QTY)
    await venue.submit(order)
    events = await log.wait_for_order(order.client_order_id, has(OrderFilled), "a first fill")

    assert fills_of(events)[0].qty == Decimal("0.1")
    report = await venue.order_report(order.client_order_id)
    assert report is not None and report.status is OrderStatus.PARTIALLY_FILLED
    assert report.filled_qty == Decimal("0.1")

    await harness.set_market(symbol, bid=CRYPTO_BID, ask=CRYPTO_ASK, ask_size=Decimal(5))
    events = await log.wait_for_order(order.client_order_id, filled(CRYPTO_QTY), "the rest")
    assert len(fills_of(events)) >= 2
    assert position_qty(await venue.position_reports(), symbol) == CRYPTO_QTY


# -- identity and refusals ----------------------------------------------------------------


async def test_submitting_the_same_client_order_id_twice_makes_one_order(
    harness: VenueHarness, log: EventLog
) -> None:
    venue = harness.venue
    symbol = await crypto_market(harness)
    order = make_order(harness, symbol, OrderSide.BUY, CRYPTO_QTY)
    retry = make_order(
        harness, symbol, OrderSide.BUY, CRYPTO_QTY, client_order_id=order.client_order_id
    )

    await venue.submit(order)
    await venue.submit(order)
    await venue.submit(retry)
    await log.wait_for_order(order.client_order_id, filled(CRYPTO_QTY), "the fill")
    await barrier(harness, log, symbol)

    events = log.of(order.client_order_id)
    assert sum(isinstance(e, OrderAccepted) for e in events) == 1
    assert sum((f.qty for f in fills_of(events)), Decimal(0)) == CRYPTO_QTY
    reports = [
        r
        for r in await venue.order_reports(open_only=False)
        if r.client_order_id == order.client_order_id
    ]
    assert len(reports) == 1
    assert position_qty(await venue.position_reports(), symbol) == CRYPTO_QTY


async def test_cancel_of_an_unknown_order_raises_rejected(harness: VenueHarness) -> None:
    with pytest.raises(RejectedError) as raised:
        await harness.venue.cancel(f"ct-unknown-{uuid.uuid4().hex}")
    assert raised.value.reason


async def test_order_for_an_unsupported_symbol_is_rejected_with_a_reason(
    harness: VenueHarness, log: EventLog
) -> None:
    venue = harness.venue
    order = make_order(
        harness, harness.unsupported_symbol, OrderSide.BUY, Decimal(1), tif=TimeInForce.GTC
    )
    await venue.submit(order)
    events = await log.wait_for_order(order.client_order_id, has(OrderRejected), "the reject")

    assert [type(e) for e in events] == [OrderRejected]
    rejected = events[0]
    assert isinstance(rejected, OrderRejected) and rejected.reason.strip()
    report = await venue.order_report(order.client_order_id)
    assert report is None or report.status is OrderStatus.REJECTED
    assert position_qty(await venue.position_reports(), harness.unsupported_symbol) == 0


async def test_every_event_names_its_order(harness: VenueHarness, log: EventLog) -> None:
    venue = harness.venue
    symbol = await crypto_market(harness)
    market = make_order(harness, symbol, OrderSide.BUY, CRYPTO_QTY)
    resting = make_order(
        harness,
        symbol,
        OrderSide.BUY,
        CRYPTO_QTY,
        type=OrderType.LIMIT,
        limit_price=CRYPTO_BID - 500,
    )
    await venue.submit(market)
    await venue.submit(resting)
    await log.wait_for_order(resting.client_order_id, has(OrderAccepted), "the acceptance")
    await venue.cancel(resting.client_order_id)
    await log.wait_for_order(resting.client_order_id, has(OrderCanceled), "the cancel")
    await log.wait_for_order(market.client_order_id, filled(CRYPTO_QTY), "the fill")

    ours = {market.client_order_id, resting.client_order_id}
    assert {e.client_order_id for e in log.events} == ours
    for cid in ours:
        assert isinstance(log.of(cid)[0], OrderAccepted)
    for event in log.events:
        if isinstance(event, OrderFilled):
            assert event.fill.client_order_id == event.client_order_id == market.client_order_id


# -- reports agree with events ------------------------------------------------------------


def replay(order: Order, events: list[OrderEvent]) -> Order:
    """A fresh copy of ``order`` with the venue's events applied, as the OMS would."""
    copy = make_order_like(order)
    copy.apply(OrderSubmitted(copy.client_order_id, 1))
    for event in events:
        copy.apply(event)
    return copy


def make_order_like(order: Order) -> Order:
    return Order(
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        qty=order.qty,
        venue=order.venue,
        created_ns=order.created_ns,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        time_in_force=order.time_in_force,
    )


async def test_fresh_reports_agree_with_the_events(harness: VenueHarness, log: EventLog) -> None:
    venue = harness.venue
    crypto = await crypto_market(harness)
    stock, _, _, stock_qty = await market_for(harness, "stock")
    starting_cash = (await venue.account()).cash
    buy_crypto = make_order(harness, crypto, OrderSide.BUY, CRYPTO_QTY)
    buy_stock = make_order(harness, stock, OrderSide.BUY, stock_qty)
    sell_half = make_order(harness, crypto, OrderSide.SELL, CRYPTO_QTY / 2)
    kept_open = make_order(
        harness, crypto, OrderSide.BUY, CRYPTO_QTY, type=LIMIT, limit_price=CRYPTO_BID - 700
    )
    canceled = make_order(
        harness, crypto, OrderSide.SELL, CRYPTO_QTY / 4, type=LIMIT, limit_price=CRYPTO_ASK + 700
    )
    orders = [buy_crypto, buy_stock, kept_open, canceled]
    for order in orders:
        await venue.submit(order)
    await log.wait_for_order(buy_crypto.client_order_id, filled(CRYPTO_QTY), "the crypto fill")
    await log.wait_for_order(buy_stock.client_order_id, filled(stock_qty), "the stock fill")
    await venue.submit(sell_half)
    orders.append(sell_half)
    await log.wait_for_order(sell_half.client_order_id, filled(CRYPTO_QTY / 2), "the sale")
    await log.wait_for_order(canceled.client_order_id, has(OrderAccepted), "the acceptance")
    await venue.cancel(canceled.client_order_id)
    await log.wait_for_order(canceled.client_order_id, has(OrderCanceled), "the cancel")
    await log.wait_for_order(kept_open.client_order_id, has(OrderAccepted), "the acceptance")

    # What the events say, rebuilt the way the OMS does it.
    replayed = {o.client_order_id: replay(o, log.of(o.client_order_id)) for o in orders}
    portfolio = Portfolio(starting_cash)
    for fill in fills_of(log.events):
        portfolio.apply(fill)

    all_reports = {r.client_order_id: r for r in await venue.order_reports(open_only=False)}
    for cid, order in replayed.items():
        report = all_reports[cid]
        assert (report.status, report.filled_qty, report.avg_fill_price) == (
            order.status,
            order.filled_qty,
            order.avg_fill_price,
        ), cid
        assert (report.symbol, report.side, report.qty) == (order.symbol, order.side, order.qty)
    open_ids = {r.client_order_id for r in await venue.order_reports(open_only=True)}
    assert open_ids == {cid for cid, order in replayed.items() if order.is_open}
    assert open_ids == {kept_open.client_order_id}

    positions = {r.symbol: r for r in await venue.position_reports()}
    expected = {p.symbol: p for p in portfolio.open_positions()}
    assert positions.keys() == expected.keys() == {crypto, stock}
    for symbol, position in expected.items():
        assert positions[symbol].qty == position.qty
        assert positions[symbol].avg_price == position.avg_price
    assert (await venue.account()).cash == portfolio.cash
