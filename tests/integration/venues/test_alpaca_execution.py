"""AlpacaVenue (alpaca-py) against the local Alpaca trading fake, over real sockets: orders,
retries that never duplicate an order, reports, and a loop that never blocks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tests.contracts.execution_harness import EventLog
from tests.fakes.alpaca_trading import AlpacaTradingFake
from tests.integration.venues.alpaca_trading_support import (
    ASK,
    BY_CLIENT_ID,
    ORDERS,
    event_log,
    filled,
    fills,
    has,
    kinds,
    market_fake,
    order,
    order_calls,
    posts,
    started_venue,
    wait_until,
)
from trademk.config import ConfigError, Settings
from trademk.domain.errors import InvariantViolation, RejectedError, TransientError
from trademk.domain.order_events import OrderAccepted, OrderCanceled, OrderFilled, OrderRejected
from trademk.domain.orders import Order, OrderSide, OrderStatus, TimeInForce
from trademk.engine.clock import SimClock
from trademk.venues.alpaca.alpaca_sdk import QueryOrderStatus
from trademk.venues.alpaca.execution import AlpacaVenue


@pytest.fixture
async def fake() -> AsyncIterator[AlpacaTradingFake]:
    async with market_fake() as server:
        yield server


@pytest.fixture
async def venue(fake: AlpacaTradingFake) -> AsyncIterator[AlpacaVenue]:
    async with started_venue(fake) as started:
        yield started


@pytest.fixture
async def log(venue: AlpacaVenue) -> AsyncIterator[EventLog]:
    async with event_log(venue) as collected:
        yield collected


# -- round trips ------------------------------------------------------------------------


async def test_market_order_is_accepted_filled_and_reported(
    venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog
) -> None:
    buy = order(qty="0.25")
    await venue.submit(buy)
    events = await log.wait_for_order(buy.client_order_id, filled("0.25"), "the fill")

    accepted, fill_event = events
    at_fake = fake.order(buy.client_order_id)
    assert isinstance(accepted, OrderAccepted) and accepted.venue_order_id == at_fake.id
    assert isinstance(fill_event, OrderFilled)
    assert fill_event.fill.trade_id == at_fake.executions[0]
    assert (fill_event.fill.symbol, fill_event.fill.price, fill_event.fill.fee) == (
        "BTCUSDT",
        ASK,
        0,
    )
    report = await venue.order_report(buy.client_order_id)
    assert report is not None
    assert (report.status, report.filled_qty, report.avg_fill_price, report.symbol) == (
        OrderStatus.FILLED,
        Decimal("0.25"),
        ASK,
        "BTCUSDT",
    )
    positions = {p.symbol: p for p in await venue.position_reports()}
    assert positions["BTCUSDT"].qty == Decimal("0.25")
    assert positions["BTCUSDT"].avg_price == ASK
    account = await venue.account()
    assert account.cash == Decimal(100_000) - Decimal("0.25") * ASK


async def test_limit_order_rests_then_cancel_round_trip(
    venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog
) -> None:
    resting = order(limit="59000")
    await venue.submit(resting)
    await log.wait_for_order(resting.client_order_id, has(OrderAccepted), "the acceptance")
    assert [r.client_order_id for r in await venue.order_reports()] == [resting.client_order_id]

    await venue.cancel(resting.client_order_id)
    events = await log.wait_for_order(resting.client_order_id, has(OrderCanceled), "the cancel")

    assert kinds(events) == [OrderAccepted, OrderCanceled]
    at_fake = fake.order(resting.client_order_id)
    assert fake.requests_to("DELETE", f"{ORDERS}/{at_fake.id}")[0].status == 204
    assert at_fake.status == "canceled"
    assert await venue.order_reports() == []


async def test_cancel_of_a_filled_order_is_rejected(
    venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog
) -> None:
    buy = order()
    await venue.submit(buy)
    await log.wait_for_order(buy.client_order_id, filled("0.25"), "the fill")

    with pytest.raises(RejectedError, match="filled"):
        await venue.cancel(buy.client_order_id)
    assert fake.order(buy.client_order_id).status == "filled"


# -- what is sent -------------------------------------------------------------------------


async def test_client_order_id_is_passed_through(
    venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog
) -> None:
    buy = order(limit="59000")
    await venue.submit(buy)
    await log.wait_for_order(buy.client_order_id, has(OrderAccepted), "the acceptance")

    (sent,) = posts(fake)
    assert sent.body["client_order_id"] == buy.client_order_id
    assert fake.order(buy.client_order_id).client_order_id == buy.client_order_id
    assert sent.headers["apca-api-key-id"] == fake.api_key


@pytest.mark.parametrize(
    ("tif", "sent_tif"),
    [(TimeInForce.DAY, "gtc"), (TimeInForce.GTC, "gtc"), (TimeInForce.IOC, "ioc")],
)
async def test_crypto_is_sent_as_the_usd_pair_with_gtc_or_ioc(
    venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog, tif: TimeInForce, sent_tif: str
) -> None:
    buy = order("ETHUSDT", qty="2", limit="10", tif=tif)
    await venue.submit(buy)
    await log.wait_for_order(buy.client_order_id, has(OrderAccepted), "the acceptance")

    (sent,) = posts(fake)
    assert (sent.body["symbol"], sent.body["time_in_force"]) == ("ETH/USD", sent_tif)
    assert (sent.body["qty"], sent.body["limit_price"]) == (Decimal(2), Decimal(10))
    report = await venue.order_report(buy.client_order_id)
    assert report is not None and report.symbol == "ETHUSDT"


async def test_stock_orders_keep_their_symbol_and_day(
    venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog
) -> None:
    buy = order("AAPL", qty="10", tif=TimeInForce.DAY)
    await venue.submit(buy)
    events = await log.wait_for_order(buy.client_order_id, filled("10"), "the fill")

    (sent,) = posts(fake)
    assert (sent.body["symbol"], sent.body["time_in_force"]) == ("AAPL", "day")
    assert fills(events)[0].symbol == "AAPL"


@pytest.mark.parametrize(
    ("refused", "reason"),
    [
        (order("BNBUSDT"), "BNBUSDT is not listed on Alpaca"),
        (order(tif=TimeInForce.FOK), "gtc and ioc only"),
        (order(qty="0.1000000000000000055511151231257827"), "cannot be sent to Alpaca exactly"),
    ],
)
async def test_orders_alpaca_cannot_take_are_refused_before_any_request(
    venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog, refused: Order, reason: str
) -> None:
    before = len(fake.requests)
    await venue.submit(refused)
    events = await log.wait_for_order(refused.client_order_id, has(OrderRejected), "the reject")

    assert kinds(events) == [OrderRejected]
    assert isinstance(events[0], OrderRejected) and reason in events[0].reason
    assert len(fake.requests) == before


async def test_insufficient_buying_power_is_a_rejection_with_alpacas_reason(
    venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog
) -> None:
    too_big = order(qty="10")  # 600 100 USD against 100 000 USD
    await venue.submit(too_big)
    events = await log.wait_for_order(too_big.client_order_id, has(OrderRejected), "the reject")

    assert kinds(events) == [OrderRejected]
    assert isinstance(events[0], OrderRejected)
    assert events[0].reason == "insufficient buying power"
    assert posts(fake)[0].status == 403
    assert fake.book.orders == {}


# -- retries never duplicate an order ---------------------------------------------------------


async def test_rate_limited_submit_is_retried_into_exactly_one_order(
    venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog
) -> None:
    fake.rate_limit_next(2, retry_after=0, method="POST", path=ORDERS)
    buy = order()
    await venue.submit(buy)
    await log.wait_for_order(buy.client_order_id, filled("0.25"), "the fill")

    assert [r.status for r in posts(fake)] == [429, 429, 200]
    assert len(fake.book.orders) == 1
    assert not fake.requests_to("GET", BY_CLIENT_ID)  # a 429 is unambiguous: nothing was created


async def test_server_error_is_followed_by_a_lookup_then_one_resubmission(
    venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog
) -> None:
    fake.fail_next(1, status=500, method="POST", path=ORDERS)
    buy = order()
    await venue.submit(buy)
    await log.wait_for_order(buy.client_order_id, filled("0.25"), "the fill")

    assert order_calls(fake) == [
        ("POST", ORDERS, 500),
        ("GET", BY_CLIENT_ID, 404),
        ("POST", ORDERS, 200),
    ]
    assert len(fake.book.orders) == 1


async def test_connection_reset_after_the_order_was_created_makes_no_second_order(
    venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog
) -> None:
    fake.drop_response_next(1)
    buy = order()
    await venue.submit(buy)
    events = await log.wait_for_order(buy.client_order_id, filled("0.25"), "the fill")

    assert order_calls(fake) == [("POST", ORDERS, None), ("GET", BY_CLIENT_ID, 200)]
    assert len(fake.book.orders) == 1
    assert kinds(events) == [OrderAccepted, OrderFilled]
    report = await venue.order_report(buy.client_order_id)
    assert report is not None and report.venue_order_id == fake.order(buy.client_order_id).id


async def test_a_timed_out_submit_that_lands_late_leaves_one_order(
    fake: AlpacaTradingFake,
) -> None:
    fake.delay_next(0.6, method="POST", path=ORDERS)
    buy = order()
    async with started_venue(fake, request_timeout=0.3) as venue, event_log(venue) as log:
        await venue.submit(buy)
        await log.wait_for_order(buy.client_order_id, filled("0.25"), "the fill")
        await wait_until(lambda: posts(fake)[0].status is not None, "the late submit")

        assert sorted(r.status for r in posts(fake)) == [200, 422]  # the late one: duplicate
        assert len(fake.book.orders) == 1
        assert sum(isinstance(e, OrderFilled) for e in log.of(buy.client_order_id)) == 1


def place_at_fake(fake: AlpacaTradingFake, like: Order, qty: str) -> None:
    """Put an order under ``like``'s client_order_id at the fake, without streaming it."""
    fake.book.place(
        {"symbol": "BTC/USD", "qty": qty, "side": str(like.side), "type": "limit",
         "time_in_force": "gtc", "limit_price": str(like.limit_price),
         "client_order_id": like.client_order_id}
    )  # fmt: skip


async def test_an_id_alpaca_already_has_is_taken_not_sent_twice(
    venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog
) -> None:
    resting = order(limit="59000")
    place_at_fake(fake, resting, "0.25")  # e.g. sent by a worker that then crashed

    await venue.submit(resting)
    events = await log.wait_for_order(resting.client_order_id, has(OrderAccepted), "acceptance")

    assert order_calls(fake) == [("POST", ORDERS, 422), ("GET", BY_CLIENT_ID, 200)]
    assert posts(fake)[0].status == 422  # "client_order_id must be unique"
    assert len(fake.book.orders) == 1
    assert isinstance(events[0], OrderAccepted)
    assert events[0].venue_order_id == fake.order(resting.client_order_id).id


async def test_an_id_used_by_a_different_order_is_a_broken_invariant(
    venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog
) -> None:
    resting = order(limit="59000")
    place_at_fake(fake, resting, "0.75")

    with pytest.raises(InvariantViolation, match="different order"):
        await venue.submit(resting)
    assert fake.order(resting.client_order_id).qty == Decimal("0.75")
    assert log.of(resting.client_order_id) == []


async def test_exhausted_retries_raise_a_transient_error_and_create_nothing(
    venue: AlpacaVenue, fake: AlpacaTradingFake
) -> None:
    fake.fail_next(100, status=503, method="POST", path=ORDERS)
    with pytest.raises(TransientError):
        await venue.submit(order())

    assert len(posts(fake)) == venue.rest.max_attempts
    assert fake.book.orders == {}


# -- reports -----------------------------------------------------------------------------------


async def test_positions_map_alpaca_symbols_back_and_keep_shorts_negative(
    venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog
) -> None:
    buy, short = order(qty="0.5"), order("AAPL", OrderSide.SELL, "10", tif=TimeInForce.DAY)
    for each in (buy, short):
        await venue.submit(each)
    await log.wait_for_order(short.client_order_id, filled("10"), "the short sale")
    await log.wait_for_order(buy.client_order_id, filled("0.5"), "the buy")

    assert {p["symbol"] for p in fake.book.positions_json()} == {"BTCUSD", "AAPL"}
    positions = {p.symbol: (p.qty, p.avg_price) for p in await venue.position_reports()}
    assert positions == {
        "BTCUSDT": (Decimal("0.5"), ASK),
        "AAPL": (Decimal(-10), Decimal("190.00")),
    }
    account = await venue.account()
    assert account.cash == Decimal(100_000) - Decimal("0.5") * ASK + 10 * Decimal("190.00")
    assert account.buying_power == account.cash


async def test_listing_orders_after_a_time_reads_every_page_without_losing_ties() -> None:
    clock = SimClock(1_717_423_200_000_000_000)
    async with AlpacaTradingFake(clock=clock) as fake:
        for n in range(1_234):
            if n % 4:  # every fourth order shares its microsecond with the one before
                clock.advance(1_000)
            fake.book.place(
                {"symbol": "AAPL", "qty": "1", "side": "sell", "type": "limit",
                 "time_in_force": "day", "limit_price": "500", "client_order_id": f"p-{n}"}
            )  # fmt: skip
        async with started_venue(fake) as venue:
            listed = await venue.rest.list_orders(QueryOrderStatus.ALL, after_ns=0)
            newest = await venue.rest.list_orders(QueryOrderStatus.ALL)

    assert sorted(o.client_order_id for o in listed) == sorted(f"p-{n}" for n in range(1_234))
    assert len(newest) == 500 and newest[0].client_order_id == "p-1233"


async def test_the_event_loop_keeps_running_during_a_slow_response(
    venue: AlpacaVenue, fake: AlpacaTradingFake
) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    ticking = asyncio.create_task(ticker())
    fake.delay_next(0.5, method="GET", path="/v2/account")
    slow = asyncio.create_task(venue.account())
    try:
        await wait_until(lambda: bool(fake.requests_to("GET", "/v2/account")), "the slow call")
        ticks_at_start = ticks
        assert await venue.order_reports() == []  # another call completes meanwhile
        await asyncio.sleep(0.05)
        assert not slow.done()
        assert ticks > ticks_at_start
        assert (await slow).cash == Decimal(100_000)
    finally:
        ticking.cancel()


# -- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paper", "rest", "stream"),
    [
        (True, "https://paper-api.alpaca.markets", "wss://paper-api.alpaca.markets/stream"),
        (False, "https://api.alpaca.markets", "wss://api.alpaca.markets/stream"),
    ],
)
async def test_settings_choose_the_paper_or_live_endpoints(
    paper: bool, rest: str, stream: str
) -> None:
    settings = Settings(
        _env_file=None, alpaca_api_key="PK1", alpaca_api_secret="s3cret", alpaca_paper=paper
    )
    venue = AlpacaVenue.from_settings(settings, SimClock(0))
    try:
        assert (venue.rest.client._base_url, venue.stream._endpoint) == (rest, stream)
    finally:
        await venue.close()


async def test_settings_without_alpaca_keys_are_refused_with_what_to_set() -> None:
    with pytest.raises(ConfigError, match="ALPACA_API_KEY and ALPACA_API_SECRET"):
        AlpacaVenue.from_settings(
            Settings(_env_file=None, alpaca_api_key=None, alpaca_api_secret=None), SimClock(0)
        )
    with pytest.raises(ConfigError, match="http:// or https://"):
        AlpacaVenue(api_key="k", secret_key="s", base_url="ftp://alpaca.example")
