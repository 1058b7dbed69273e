"""AlpacaVenue's trade_updates handling against the local fake: mapping, duplicates, and
catching up after a dropped or silent stream, with every fill counted exactly once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tests.contracts.execution_harness import EventLog
from tests.fakes.alpaca_trading import AlpacaTradingFake
from tests.integration.venues.alpaca_trading_support import (
    ASK,
    event_log,
    filled,
    fills,
    has,
    kinds,
    market_fake,
    order,
    started_venue,
    stream_barrier,
    wait_until,
)
from trademk.domain.order_events import (
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderPendingCancel,
    OrderRejected,
)
from trademk.domain.orders import OrderStatus
from trademk.venues.alpaca.alpaca_sdk import MarketOrderRequest, TradingClient
from trademk.venues.alpaca.alpaca_sdk import OrderSide as SdkSide
from trademk.venues.alpaca.alpaca_sdk import TimeInForce as SdkTimeInForce
from trademk.venues.alpaca.execution import AlpacaVenue
from trademk.venues.alpaca.order_sync import synthesised_trade_id


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


# -- the trade_updates stream --------------------------------------------------------------


async def test_fills_missed_while_the_stream_was_down_are_emitted_once(
    venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog
) -> None:
    resting = order(qty="1", limit="59000")
    await venue.submit(resting)
    await log.wait_for_order(resting.client_order_id, has(OrderAccepted), "the acceptance")

    await fake.drop_stream()
    await fake.fill(resting.client_order_id, Decimal("0.4"), Decimal("58990"))  # nobody hears it
    events = await log.wait_for_order(resting.client_order_id, filled("0.4"), "the caught-up fill")
    at_fake = fake.order(resting.client_order_id)
    (missed,) = fills(events)
    assert missed.trade_id == synthesised_trade_id(at_fake.id, Decimal("0.4"))
    assert missed.price == Decimal("58990")
    assert venue.status()["reconnects"] >= 1

    await fake.fill(resting.client_order_id, Decimal("0.6"), Decimal("58980"))
    events = await log.wait_for_order(resting.client_order_id, filled("1"), "the live fill")
    await fake.replay(3)  # Alpaca repeating itself changes nothing
    await stream_barrier(venue, fake, log)

    events = log.of(resting.client_order_id)
    assert [f.trade_id for f in fills(events)] == [missed.trade_id, at_fake.executions[-1]]
    assert kinds(events) == [OrderAccepted, OrderFilled, OrderFilled]
    report = await venue.order_report(resting.client_order_id)
    assert report is not None and report.status is OrderStatus.FILLED
    assert report.avg_fill_price == (Decimal("0.4") * 58990 + Decimal("0.6") * 58980)


async def test_a_silent_stream_is_replaced_and_what_happened_meanwhile_is_caught_up(
    venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog
) -> None:
    resting = order(limit="59000")
    await venue.submit(resting)
    await log.wait_for_order(resting.client_order_id, has(OrderAccepted), "the acceptance")

    fake.silence_stream()
    await fake.end_order(resting.client_order_id, "canceled")  # streamed into the void
    events = await log.wait_for_order(resting.client_order_id, has(OrderCanceled), "the cancel")

    assert kinds(events) == [OrderAccepted, OrderCanceled]
    assert fake.listening_connections == 1
    assert venue.status()["reconnects"] >= 1


async def test_orders_placed_elsewhere_while_disconnected_are_reported(
    venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog
) -> None:
    await fake.drop_stream()
    other = fake.book.place(
        {"symbol": "AAPL", "qty": "3", "side": "buy", "type": "market", "time_in_force": "day"}
    )
    await fake.release(other.client_order_id)
    events = await log.wait_for_order(other.client_order_id, filled("3"), "the caught-up fill")

    assert kinds(events) == [OrderAccepted, OrderFilled]
    assert fills(events)[0].symbol == "AAPL"


async def test_trade_update_events_map_to_order_events(
    venue: AlpacaVenue, fake: AlpacaTradingFake, log: EventLog
) -> None:
    fake.hold_new_orders = True
    fake.book.emit_pending_cancel = True
    rejected, expired, done, canceled = (order(limit="59000") for _ in range(4))
    for each in (rejected, expired, done, canceled):
        await venue.submit(each)

    await fake.end_order(rejected.client_order_id, "rejected")
    for each in (expired, done, canceled):
        await fake.release(each.client_order_id)
    await fake.end_order(expired.client_order_id, "expired")
    await fake.end_order(done.client_order_id, "done_for_day")
    await fake.cancel(canceled.client_order_id)  # from the dashboard: pending, then done
    await log.wait_for_order(canceled.client_order_id, has(OrderCanceled), "the cancel")
    await log.wait_for_order(done.client_order_id, has(OrderExpired), "done for day")

    assert kinds(log.of(rejected.client_order_id)) == [OrderRejected]
    assert kinds(log.of(expired.client_order_id)) == [OrderAccepted, OrderExpired]
    assert kinds(log.of(done.client_order_id)) == [OrderAccepted, OrderExpired]
    assert kinds(log.of(canceled.client_order_id)) == [
        OrderAccepted,
        OrderPendingCancel,
        OrderCanceled,
    ]


async def test_open_orders_found_at_start_are_not_announced_again(
    fake: AlpacaTradingFake,
) -> None:
    earlier = fake.book.place(
        {"symbol": "BTC/USD", "qty": "1", "side": "buy", "type": "limit",
         "time_in_force": "gtc", "limit_price": "59000"}
    )  # fmt: skip
    fake.book.activate(earlier)
    async with started_venue(fake) as venue, event_log(venue) as log:
        assert [r.client_order_id for r in await venue.order_reports()] == [earlier.client_order_id]
        await fake.fill(earlier.client_order_id, Decimal("0.5"), Decimal("59000"))
        events = await log.wait_for_order(earlier.client_order_id, filled("0.5"), "the fill")

    assert kinds(events) == [OrderFilled]
    assert fills(events)[0].trade_id == earlier.executions[0]


async def test_the_secret_never_reaches_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    secret = "k9Secr3t"  # short: websockets elides the middle of long frames, not the end
    caplog.set_level(logging.DEBUG)
    async with AlpacaTradingFake(secret_key=secret) as fake, started_venue(fake) as venue:
        await fake.drop_stream()  # a reconnect authenticates again
        await wait_until(lambda: fake.listening_connections == 1, "the reconnection")
        await venue.account()

    assert len([c for c in fake.stream_connections if c.authenticated]) == 2
    assert any(r.levelno == logging.DEBUG for r in caplog.records)  # DEBUG was captured
    assert secret not in caplog.text


async def test_the_fake_speaks_the_shapes_alpaca_py_models_expect(fake: AlpacaTradingFake) -> None:
    """The fake's payloads validate against alpaca-py's own pydantic models (raw_data=False)."""
    # Imported here, after trademk's alpaca_sdk imported alpaca.trading with its upstream
    # websockets.legacy deprecation warning silenced.
    from alpaca.trading.models import Order as SdkOrder
    from alpaca.trading.models import TradeUpdate

    client = TradingClient(fake.api_key, fake.secret_key, url_override=fake.base_url)
    request = MarketOrderRequest(
        symbol="BTC/USD", qty=0.5, side=SdkSide.BUY, time_in_force=SdkTimeInForce.GTC
    )
    placed = await asyncio.to_thread(client.submit_order, request)
    positions = await asyncio.to_thread(client.get_all_positions)
    account = await asyncio.to_thread(client.get_account)

    assert isinstance(placed, SdkOrder) and placed.symbol == "BTC/USD"
    assert [(p.symbol, p.qty) for p in positions] == [("BTCUSD", "0.5")]
    assert account.cash is not None
    assert Decimal(account.cash) == Decimal(100_000) - Decimal("0.5") * ASK
    for message in fake.published:
        update = TradeUpdate(**message["data"])
        assert update.order.client_order_id == placed.client_order_id
    assert [m["data"]["event"] for m in fake.published] == ["new", "fill"]
