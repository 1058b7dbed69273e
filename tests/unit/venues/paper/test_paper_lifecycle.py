"""PaperVenue order lifecycle: idempotency, cancel, DAY expiry, start/close and the clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.unit.venues.paper.support import START_NS, PaperWorld, WorldFactory
from trademk.domain.errors import RejectedError
from trademk.domain.market import NANOS_PER_MILLI, NANOS_PER_SECOND
from trademk.domain.order_events import OrderAccepted
from trademk.domain.orders import OrderStatus, OrderType, TimeInForce
from trademk.domain.ports import ExecutionClient
from trademk.engine.clock import SimClock, datetime_to_ns
from trademk.engine.price_cache import LatestPriceCache
from trademk.venues.paper import PaperVenue

D = Decimal
LIMIT, STOP = OrderType.LIMIT, OrderType.STOP
DAY, GTC = TimeInForce.DAY, TimeInForce.GTC
MIDNIGHT = datetime_to_ns(datetime(2024, 6, 4, tzinfo=UTC))
NYSE_CLOSE = datetime_to_ns(datetime(2024, 6, 3, 20, tzinfo=UTC))


def test_paper_venue_is_an_execution_client() -> None:
    venue = PaperVenue(LatestPriceCache(), SimClock())
    assert isinstance(venue, ExecutionClient)
    assert venue.name == "paper"


# -- identity -----------------------------------------------------------------------------


async def test_a_second_submit_of_a_known_id_does_nothing(world: PaperWorld) -> None:
    world.quote("AAPL", 100.0, 100.1)
    order = await world.submit("AAPL", "buy", "5", cid="same")
    await world.venue.submit(order)
    await world.venue.submit(world.order("AAPL", "sell", "1", cid="same"))
    await world.settle()

    assert world.kinds("same") == ["OrderAccepted", "OrderFilled"]
    assert len(await world.venue.order_reports(open_only=False)) == 1
    assert world.venue.portfolio.qty("AAPL") == D(5)


async def test_a_rejected_id_stays_rejected(world: PaperWorld) -> None:
    order = await world.submit("AAPL", "buy", "1", cid="rej")  # no price yet
    world.quote("AAPL", 100.0, 100.1)
    await world.venue.submit(order)
    await world.settle()

    assert world.kinds("rej") == ["OrderRejected"]
    report = await world.venue.order_report("rej")
    assert report is not None and report.status is OrderStatus.REJECTED


async def test_the_callers_order_is_never_changed(world: PaperWorld) -> None:
    world.quote("AAPL", 100.0, 100.1)
    order = await world.submit("AAPL", "buy", "5")

    assert order.status is OrderStatus.INITIALIZED
    assert order.filled_qty == 0


async def test_venue_order_ids_come_from_the_id_factory(make_world: WorldFactory) -> None:
    counter = itertools.count(1)
    world = await make_world(id_factory=lambda: f"V{next(counter)}")
    world.quote("AAPL", 100.0, 100.1)
    order = await world.submit("AAPL", "buy", "1")

    accepted = world.of(order.client_order_id)[0]
    assert isinstance(accepted, OrderAccepted) and accepted.venue_order_id == "V1"
    assert world.fills()[0].trade_id == "V1-1"


# -- cancel -------------------------------------------------------------------------------


async def test_cancel_refuses_unknown_and_finished_orders(world: PaperWorld) -> None:
    world.quote("AAPL", 100.0, 100.1)
    filled = await world.submit("AAPL", "buy", "1")

    with pytest.raises(RejectedError, match="unknown order 'nope'"):
        await world.venue.cancel("nope")
    with pytest.raises(RejectedError, match="is filled; only open orders can be canceled"):
        await world.venue.cancel(filled.client_order_id)


async def test_a_canceled_order_no_longer_matches(world: PaperWorld) -> None:
    world.quote("AAPL", 100.0, 100.1)
    order = await world.submit("AAPL", "buy", "1", type=LIMIT, limit="99")
    await world.venue.cancel(order.client_order_id)
    world.quote("AAPL", 98.0, 98.5)
    await world.settle()

    assert world.kinds(order.client_order_id) == ["OrderAccepted", "OrderCanceled"]
    assert world.fills() == []


async def test_a_partly_filled_order_can_be_canceled(world: PaperWorld) -> None:
    world.quote("AAPL", 100.0, 100.1, ask_size=2)
    order = await world.submit("AAPL", "buy", "5")
    await world.venue.cancel(order.client_order_id)
    await world.settle()

    assert world.kinds(order.client_order_id) == [
        "OrderAccepted",
        "OrderFilled",
        "OrderCanceled",
    ]
    report = await world.venue.order_report(order.client_order_id)
    assert report is not None and (report.status, report.filled_qty) == ("canceled", D(2))


# -- DAY expiry ---------------------------------------------------------------------------


async def test_crypto_day_orders_expire_at_utc_midnight_on_the_next_tick(
    world: PaperWorld,
) -> None:
    world.quote("BTCUSDT", 60_000.0, 60_010.0)
    day = await world.submit("BTCUSDT", "buy", "0.1", type=LIMIT, limit="50000", tif=DAY)
    gtc = await world.submit("BTCUSDT", "buy", "0.1", type=LIMIT, limit="50000", tif=GTC)
    world.clock.set(MIDNIGHT - 2 * NANOS_PER_MILLI)
    world.quote("BTCUSDT", 60_000.0, 60_010.0)  # the quote's clock tick is before midnight
    await world.settle()
    assert world.kinds(day.client_order_id) == ["OrderAccepted"]

    world.quote("BTCUSDT", 40_000.0, 40_010.0)  # at midnight; would have filled both
    await world.settle()

    assert world.clock.now_ns() == MIDNIGHT
    assert world.kinds(day.client_order_id) == ["OrderAccepted", "OrderExpired"]
    assert world.of(day.client_order_id)[-1].ts_ns == MIDNIGHT
    assert world.kinds(gtc.client_order_id) == ["OrderAccepted", "OrderFilled"]


async def test_stock_day_orders_expire_at_the_nyse_close(world: PaperWorld) -> None:
    world.quote("AAPL", 100.0, 100.1)
    order = await world.submit("AAPL", "sell", "1", type=STOP, stop="90", tif=DAY)
    world.clock.set(NYSE_CLOSE - 1)
    assert world.venue.expire_due() == 0
    world.clock.set(NYSE_CLOSE)

    assert world.venue.expire_due() == 1
    await world.settle()
    assert world.kinds(order.client_order_id) == ["OrderAccepted", "OrderExpired"]
    assert await world.venue.order_reports() == []


async def test_reports_expire_what_is_due_before_answering(world: PaperWorld) -> None:
    world.quote("AAPL", 100.0, 100.1)
    order = await world.submit("AAPL", "buy", "1", type=LIMIT, limit="90", tif=DAY)
    world.clock.set(NYSE_CLOSE + 1)

    report = await world.venue.order_report(order.client_order_id)
    assert report is not None and report.status is OrderStatus.EXPIRED


async def test_the_expiry_poll_expires_orders_without_ticks(make_world: WorldFactory) -> None:
    world = await make_world(expiry_poll_interval=0.01)
    world.quote("BTCUSDT", 60_000.0, 60_010.0)
    order = await world.submit("BTCUSDT", "buy", "0.1", type=LIMIT, limit="50000", tif=DAY)
    world.clock.set(MIDNIGHT)

    await world.wait_for(lambda: world.kinds(order.client_order_id)[-1:] == ["OrderExpired"])


async def test_a_custom_day_end_is_used(make_world: WorldFactory) -> None:
    world = await make_world(day_end=lambda _symbol, placed: placed + NANOS_PER_SECOND)
    world.quote("AAPL", 100.0, 100.1)
    order = await world.submit("AAPL", "buy", "1", type=LIMIT, limit="90", tif=DAY)
    world.clock.advance(NANOS_PER_SECOND)
    world.quote("AAPL", 100.0, 100.1)
    await world.settle()

    assert world.kinds(order.client_order_id) == ["OrderAccepted", "OrderExpired"]


async def test_a_failing_day_end_leaves_no_trace(make_world: WorldFactory) -> None:
    def broken(_symbol: str, placed: int) -> int:
        return placed  # not after the order time

    world = await make_world(day_end=broken)
    world.quote("AAPL", 100.0, 100.1)
    with pytest.raises(ValueError, match="not after the order time"):
        await world.submit("AAPL", "buy", "1", type=LIMIT, limit="90", tif=DAY, cid="bad")

    assert world.events == []
    assert await world.venue.order_report("bad") is None


# -- refusals, lifecycle, clock -------------------------------------------------------------


async def test_unsupported_and_untradable_symbols_are_rejected(make_world: WorldFactory) -> None:
    world = await make_world(tradable_symbols={"AAPL", "BTCUSDT"})
    world.quote("MSFT", 400.0, 400.1)
    unknown = await world.submit("NOT A SYMBOL", "buy", "1")
    untradable = await world.submit("MSFT", "buy", "1")

    assert world.kinds(unknown.client_order_id) == ["OrderRejected"]
    assert world.reason(unknown.client_order_id).startswith("unsupported symbol 'NOT A SYMBOL'")
    assert world.reason(untradable.client_order_id) == (
        "symbol 'MSFT' is not tradable at venue 'paper'"
    )


async def test_an_order_for_another_venue_is_a_programming_error(world: PaperWorld) -> None:
    order = world.order("AAPL", "buy", "1")
    other = PaperVenue(world.prices, world.clock, name="other")
    await other.start()
    try:
        with pytest.raises(ValueError, match="is for venue 'paper', not 'other'"):
            await other.submit(order)
    finally:
        await other.close()


async def test_the_venue_must_be_started_and_cannot_restart() -> None:
    venue = PaperVenue(LatestPriceCache(), SimClock(START_NS), expiry_poll_interval=None)
    with pytest.raises(RuntimeError, match="call start"):
        await venue.cancel("x")
    await venue.start()
    await venue.close()
    with pytest.raises(RuntimeError, match="was closed"):
        await venue.start()


async def test_close_ends_the_event_stream_after_queued_events(world: PaperWorld) -> None:
    world.quote("AAPL", 100.0, 100.1)
    order = world.order("AAPL", "buy", "1")
    stream = world.venue.events()
    await world.venue.submit(order)
    await world.venue.close()

    received = [event async for event in stream]
    assert [type(e).__name__ for e in received] == ["OrderAccepted", "OrderFilled"]


async def test_after_close_ticks_no_longer_match(world: PaperWorld) -> None:
    world.quote("AAPL", 100.0, 100.1)
    order = await world.submit("AAPL", "buy", "1", type=LIMIT, limit="99")
    await world.venue.close()
    world.quote("AAPL", 98.0, 98.1)
    report = await world.venue.order_report(order.client_order_id)

    assert report is not None and report.status is OrderStatus.ACCEPTED


async def test_every_timestamp_comes_from_the_injected_clock(world: PaperWorld) -> None:
    world.quote("AAPL", 100.0, 100.1)
    order = await world.submit("AAPL", "buy", "1", type=LIMIT, limit="99")
    accepted_at = world.clock.now_ns()
    world.clock.advance(5 * NANOS_PER_SECOND)
    world.quote("AAPL", 98.0, 98.1)
    await world.settle()

    accepted, filled = world.of(order.client_order_id)
    assert accepted.ts_ns == accepted_at
    assert filled.ts_ns == world.clock.now_ns() == world.fills()[0].ts_ns
    report = await world.venue.order_report(order.client_order_id)
    assert report is not None and report.ts_ns == filled.ts_ns
