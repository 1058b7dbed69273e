"""RiskEngine: every rule denies with its reason and approves just inside its limit."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import count
from zoneinfo import ZoneInfo

import pytest

from trademk.domain.calendar import NyseCalendar
from trademk.domain.fills import Fill
from trademk.domain.market import NANOS_PER_SECOND, AssetClass, Tick, TickKind
from trademk.domain.order_events import OrderAccepted, OrderSubmitted
from trademk.domain.orders import Order, OrderSide, OrderType
from trademk.domain.portfolio import Portfolio
from trademk.domain.risk import RiskLimits, RiskRule, TradingState
from trademk.engine.clock import SimClock, datetime_to_ns
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.risk_engine import RiskEngine, RollingWindowCounter, TradingStateChange

D = Decimal
BUY, SELL = OrderSide.BUY, OrderSide.SELL
NEW_YORK = ZoneInfo("America/New_York")
UNIVERSE = {
    "AAPL": AssetClass.STOCK,
    "MSFT": AssetClass.STOCK,
    "BTCUSDT": AssetClass.CRYPTO,
    "ETHUSDT": AssetClass.CRYPTO,
}
_ids = count(1)


def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    return datetime_to_ns(datetime(year, month, day, hour, minute, tzinfo=UTC))


def et(year: int, month: int, day: int, hour: int, minute: int = 0) -> int:
    return datetime_to_ns(datetime(year, month, day, hour, minute, tzinfo=NEW_YORK))


SESSION_OPEN = utc(2025, 6, 3, 15)  # Tuesday 11:00 New York


def make_order(
    symbol: str = "AAPL",
    side: OrderSide = BUY,
    qty: str = "10",
    type: OrderType = OrderType.MARKET,
    limit: str | None = None,
    stop: str | None = None,
) -> Order:
    return Order(
        client_order_id=f"o{next(_ids)}",
        symbol=symbol,
        side=side,
        type=type,
        qty=D(qty),
        venue="paper",
        created_ns=1,
        limit_price=None if limit is None else D(limit),
        stop_price=None if stop is None else D(stop),
    )


def working(symbol: str, side: OrderSide, qty: str) -> Order:
    """An order accepted by the venue and still open."""
    order = make_order(symbol, side, qty)
    order.apply(OrderSubmitted(order.client_order_id, 2))
    order.apply(OrderAccepted(order.client_order_id, 3, f"v-{order.client_order_id}"))
    return order


def fill(symbol: str, side: OrderSide, qty: str, price: str) -> Fill:
    n = next(_ids)
    return Fill(
        client_order_id=f"f{n}",
        venue_order_id=f"v{n}",
        trade_id=f"t{n}",
        symbol=symbol,
        side=side,
        qty=D(qty),
        price=D(price),
        fee=D(0),
        ts_ns=1,
        venue="paper",
    )


@dataclasses.dataclass
class Rig:
    engine: RiskEngine
    clock: SimClock
    prices: LatestPriceCache
    portfolio: Portfolio
    open_orders: list[Order]

    def trade(self, symbol: str, price: str) -> None:
        self.prices.update(Tick(symbol, "X", TickKind.TRADE, 1, float(price), 1.0))

    def quote(self, symbol: str, bid: str, ask: str) -> None:
        b, a = float(bid), float(ask)
        self.prices.update(
            Tick(
                symbol, "X", TickKind.QUOTE, 1, (b + a) / 2, bid=b, bid_size=1.0, ask=a, ask_size=1
            )
        )

    def hold(self, symbol: str, qty: str, price: str) -> None:
        side = BUY if D(qty) > 0 else SELL
        self.portfolio.apply(fill(symbol, side, str(abs(D(qty))), price))

    def check(self, order: Order) -> tuple[RiskRule | None, str]:
        decision = self.engine.check(order)
        return decision.rule, decision.reason


@pytest.fixture(scope="module")
def calendar() -> NyseCalendar:
    return NyseCalendar(today=date(2025, 6, 1))


def build(
    calendar: NyseCalendar,
    now_ns: int = SESSION_OPEN,
    on_state_change: Callable[[TradingStateChange], None] | None = None,
    **limits: object,
) -> Rig:
    clock = SimClock(now_ns)
    prices = LatestPriceCache()
    portfolio = Portfolio(D("100000"))
    open_orders: list[Order] = []
    engine = RiskEngine(
        limits=RiskLimits.from_mapping(limits),
        prices=prices,
        portfolio=portfolio,
        clock=clock,
        calendar=calendar,
        asset_classes=UNIVERSE,
        open_orders=lambda: open_orders,
        on_state_change=on_state_change,
    )
    rig = Rig(engine, clock, prices, portfolio, open_orders)
    for symbol, price in (("AAPL", "100"), ("MSFT", "400"), ("BTCUSDT", "1000")):
        rig.trade(symbol, price)
    return rig


@pytest.fixture
def rig(calendar: NyseCalendar) -> Iterator[Rig]:
    yield build(calendar)


# -- order quantity -----------------------------------------------------------------


def test_stock_order_over_the_share_limit_is_denied(rig: Rig) -> None:
    assert rig.check(make_order("AAPL", qty="150", type=OrderType.LIMIT, limit="10")) == (
        RiskRule.MAX_ORDER_QTY_STOCK,
        "max_order_qty_stock: 150 shares exceeds the limit of 100",
    )


def test_stock_order_at_the_share_limit_is_approved(calendar: NyseCalendar) -> None:
    rig = build(calendar, max_order_notional_usd="20000", max_position_size_usd="20000")
    assert rig.engine.check(make_order("AAPL", qty="100")).approved


def test_crypto_order_over_the_coin_limit_is_denied(rig: Rig) -> None:
    assert rig.check(make_order("BTCUSDT", qty="1.5")) == (
        RiskRule.MAX_ORDER_QTY_CRYPTO,
        "max_order_qty_crypto: 1.5 BTCUSDT exceeds the limit of 1",
    )


def test_crypto_order_at_the_coin_limit_is_approved(rig: Rig) -> None:
    assert rig.engine.check(make_order("BTCUSDT", qty="1.0")).approved


# -- order notional -------------------------------------------------------------------


def test_limit_order_is_valued_at_its_limit_price(rig: Rig) -> None:
    assert rig.engine.check(make_order(qty="50", type=OrderType.LIMIT, limit="100")).approved
    rule, reason = rig.check(make_order(qty="50", type=OrderType.LIMIT, limit="100.02"))
    assert rule is RiskRule.MAX_ORDER_NOTIONAL
    assert reason == (
        "max_order_notional_usd: order value 5,001.00 USD (50 AAPL at 100.02) exceeds "
        "the limit of 5,000.00 USD"
    )


def test_market_order_is_valued_at_the_side_of_the_book_it_takes(rig: Rig) -> None:
    rig.quote("AAPL", "99", "101")  # last trade 100: 50 x 100 would be exactly 5000
    assert rig.check(make_order(side=BUY, qty="50"))[0] is RiskRule.MAX_ORDER_NOTIONAL
    assert rig.engine.check(make_order(side=SELL, qty="50")).approved  # 50 x 99 at the bid


def test_market_order_without_a_quote_is_valued_at_the_last_trade(rig: Rig) -> None:
    assert rig.engine.check(make_order(qty="50")).approved
    assert rig.check(make_order(qty="50.01"))[0] is RiskRule.MAX_ORDER_NOTIONAL


def test_stop_order_is_valued_at_its_stop_price_when_above_the_market(rig: Rig) -> None:
    assert rig.engine.check(make_order(qty="45", type=OrderType.STOP, stop="109")).approved
    rule, _ = rig.check(make_order(qty="46", type=OrderType.STOP, stop="109"))
    assert rule is RiskRule.MAX_ORDER_NOTIONAL  # 46 x 109 = 5014 > 5000, at 100 it would pass


def test_order_without_any_market_price_is_denied_not_guessed(rig: Rig) -> None:
    expected = (
        RiskRule.MARKET_PRICE,
        "market_price: no market price for ETHUSDT; cannot value the order",
    )
    assert rig.check(make_order("ETHUSDT", qty="0.1")) == expected
    limit_order = make_order("ETHUSDT", qty="0.1", type=OrderType.LIMIT, limit="2000")
    assert rig.check(limit_order) == expected


def test_quote_midpoint_prices_a_symbol_that_has_not_traded(rig: Rig) -> None:
    rig.quote("ETHUSDT", "1999", "2001")
    assert rig.engine.check(make_order("ETHUSDT", SELL, "0.5")).approved


# -- position size ---------------------------------------------------------------------


def test_projected_position_counts_the_holding_and_open_orders_on_the_same_side(
    rig: Rig,
) -> None:
    rig.hold("AAPL", "90", "100")
    rig.open_orders.append(working("AAPL", BUY, "5"))
    rig.open_orders.append(working("AAPL", SELL, "50"))  # other side: not counted
    assert rig.engine.check(make_order(qty="5")).approved  # 90 + 5 + 5 = 100 -> 10,000 USD
    rule, reason = rig.check(make_order(qty="6"))
    assert rule is RiskRule.MAX_POSITION_SIZE
    assert reason == (
        "max_position_size_usd: AAPL position would reach 101 worth 10,100.00 USD at 100, "
        "over the limit of 10,000.00 USD"
    )


def test_short_positions_are_limited_too(rig: Rig) -> None:
    rig.hold("AAPL", "-95", "100")
    assert rig.engine.check(make_order(side=SELL, qty="5")).approved
    assert rig.check(make_order(side=SELL, qty="6"))[0] is RiskRule.MAX_POSITION_SIZE


def test_reducing_a_position_over_the_limit_is_allowed(rig: Rig) -> None:
    rig.hold("AAPL", "150", "100")
    assert rig.engine.check(make_order(side=SELL, qty="10")).approved
    assert rig.check(make_order(side=BUY, qty="1"))[0] is RiskRule.MAX_POSITION_SIZE


# -- open orders -------------------------------------------------------------------------


def test_open_order_limit_counts_every_symbol(calendar: NyseCalendar) -> None:
    rig = build(calendar, max_open_orders="3", max_open_orders_per_symbol="none")
    rig.open_orders.extend([working("MSFT", BUY, "1"), working("BTCUSDT", SELL, "0.1")])
    assert rig.engine.check(make_order(qty="1")).approved
    rig.open_orders.append(working("AAPL", BUY, "1"))
    assert rig.check(make_order(qty="1")) == (
        RiskRule.MAX_OPEN_ORDERS,
        "max_open_orders: 3 orders are already open; the limit is 3",
    )


def test_per_symbol_open_order_limit_leaves_other_symbols_free(calendar: NyseCalendar) -> None:
    rig = build(calendar, max_open_orders="10", max_open_orders_per_symbol="2")
    rig.open_orders.append(working("AAPL", BUY, "1"))
    assert rig.engine.check(make_order("AAPL", qty="1")).approved
    rig.open_orders.append(working("AAPL", SELL, "1"))
    assert rig.check(make_order("AAPL", qty="1")) == (
        RiskRule.MAX_OPEN_ORDERS_PER_SYMBOL,
        "max_open_orders_per_symbol: 2 AAPL orders are already open; the limit is 2",
    )
    assert rig.engine.check(make_order("MSFT", qty="1")).approved


def test_the_order_being_checked_does_not_count_as_open(calendar: NyseCalendar) -> None:
    rig = build(calendar, max_open_orders="1")
    order = working("AAPL", BUY, "1")
    rig.open_orders.append(order)
    assert rig.engine.check(order).approved


# -- price band ------------------------------------------------------------------------------


def test_limit_price_inside_the_band_is_approved_and_outside_denied(rig: Rig) -> None:
    assert rig.engine.check(make_order(qty="1", type=OrderType.LIMIT, limit="110")).approved
    assert rig.engine.check(make_order(qty="1", type=OrderType.LIMIT, limit="90")).approved
    assert rig.check(make_order(qty="1", type=OrderType.LIMIT, limit="110.01")) == (
        RiskRule.MAX_PRICE_DEVIATION,
        "max_price_deviation_pct: AAPL limit price 110.01 is 10.01% away from the last "
        "price 100; the limit is 10%",
    )


def test_stop_price_outside_the_band_is_denied(rig: Rig) -> None:
    assert rig.engine.check(make_order(side=SELL, qty="1", type=OrderType.STOP, stop="90")).approved
    rule, reason = rig.check(make_order(side=SELL, qty="1", type=OrderType.STOP, stop="89.9"))
    assert rule is RiskRule.MAX_PRICE_DEVIATION
    assert "stop price 89.9 is 10.10% away" in reason


# -- market hours --------------------------------------------------------------------------------

CLOSED_TIMES = {
    "saturday": utc(2025, 6, 7, 15),
    "christmas": utc(2025, 12, 25, 15),
    "after the early close": et(2025, 11, 28, 14),
    "friday before the DST change at 13:45 UTC": utc(2026, 3, 6, 13, 45),
}


@pytest.mark.parametrize("moment", CLOSED_TIMES.values(), ids=CLOSED_TIMES.keys())
def test_stock_orders_outside_nyse_sessions_are_denied(calendar: NyseCalendar, moment: int) -> None:
    rig = build(calendar, now_ns=moment)
    rule, reason = rig.check(make_order("AAPL", qty="1"))
    assert rule is RiskRule.MARKET_HOURS
    assert reason.startswith("market_hours: AAPL: NYSE is closed (next open ")


@pytest.mark.parametrize("moment", CLOSED_TIMES.values(), ids=CLOSED_TIMES.keys())
def test_crypto_orders_are_allowed_at_the_same_times(calendar: NyseCalendar, moment: int) -> None:
    rig = build(calendar, now_ns=moment)
    assert rig.engine.check(make_order("BTCUSDT", qty="0.1")).approved


def test_same_utc_time_is_open_after_the_march_dst_change(calendar: NyseCalendar) -> None:
    # 13:45 UTC: before the 14:30 UTC open on Friday 2026-03-06 (EST), inside the
    # 13:30 UTC open on Monday 2026-03-09 (EDT).
    before = build(calendar, now_ns=utc(2026, 3, 6, 13, 45))
    assert before.check(make_order(qty="1")) == (
        RiskRule.MARKET_HOURS,
        "market_hours: AAPL: NYSE is closed (next open 2026-03-06 14:30 UTC)",
    )
    after = build(calendar, now_ns=utc(2026, 3, 9, 13, 45))
    assert after.engine.check(make_order(qty="1")).approved


def test_closed_reason_names_the_next_open_after_a_holiday(calendar: NyseCalendar) -> None:
    rig = build(calendar, now_ns=utc(2026, 11, 26, 15))  # Thanksgiving
    assert rig.check(make_order(qty="1")) == (
        RiskRule.MARKET_HOURS,
        "market_hours: AAPL: NYSE is closed (next open 2026-11-27 14:30 UTC)",
    )


def test_early_close_day_is_open_before_the_early_close(calendar: NyseCalendar) -> None:
    rig = build(calendar, now_ns=et(2025, 11, 28, 12, 59))
    assert rig.engine.check(make_order(qty="1")).approved


def test_market_hours_can_be_switched_off(calendar: NyseCalendar) -> None:
    rig = build(calendar, now_ns=CLOSED_TIMES["saturday"], enforce_market_hours="false")
    assert rig.engine.check(make_order(qty="1")).approved


def test_time_beyond_the_calendar_range_is_denied(calendar: NyseCalendar) -> None:
    rig = build(calendar, now_ns=utc(2030, 6, 4, 15))
    rule, reason = rig.check(make_order(qty="1"))
    assert rule is RiskRule.MARKET_HOURS
    assert "cannot tell whether NYSE is open" in reason


# -- trading state -----------------------------------------------------------------------------


def test_reducing_allows_a_sell_that_shrinks_a_long(rig: Rig) -> None:
    rig.hold("AAPL", "10", "100")
    rig.engine.reduce_only("end of strategy")
    assert rig.engine.state is TradingState.REDUCING
    assert rig.engine.state_reason == "end of strategy"
    assert rig.engine.check(make_order(side=SELL, qty="4")).approved
    assert rig.engine.check(make_order(side=SELL, qty="10")).approved  # to flat


def test_reducing_denies_a_buy_and_a_flip(rig: Rig) -> None:
    rig.hold("AAPL", "10", "100")
    rig.engine.reduce_only("end of strategy")
    assert rig.check(make_order(side=BUY, qty="1")) == (
        RiskRule.REDUCE_ONLY,
        "reduce_only: trading is reduce-only (end of strategy); buying 1 AAPL would not "
        "reduce the position of 10",
    )
    rule, reason = rig.check(make_order(side=SELL, qty="11"))
    assert rule is RiskRule.REDUCE_ONLY
    assert "would flip the position of 10" in reason


def test_reducing_counts_open_orders_that_already_reduce(rig: Rig) -> None:
    rig.hold("AAPL", "10", "100")
    rig.open_orders.append(working("AAPL", SELL, "8"))
    rig.engine.reduce_only("risk review")
    assert rig.engine.check(make_order(side=SELL, qty="2")).approved
    assert rig.check(make_order(side=SELL, qty="3"))[0] is RiskRule.REDUCE_ONLY


def test_reducing_denies_any_order_in_a_flat_symbol(rig: Rig) -> None:
    rig.engine.reduce_only("risk review")
    assert rig.check(make_order("MSFT", SELL, "1"))[0] is RiskRule.REDUCE_ONLY


def test_halted_denies_everything_until_resumed(rig: Rig) -> None:
    rig.hold("AAPL", "10", "100")
    rig.engine.halt("venue outage")
    assert rig.engine.state == "halted"
    for order in (make_order(side=SELL, qty="1"), make_order("BTCUSDT", qty="0.1")):
        assert rig.check(order) == (
            RiskRule.TRADING_HALTED,
            "trading_halted: trading is halted (venue outage)",
        )
    rig.engine.resume("outage over")
    assert rig.engine.state is TradingState.ACTIVE
    assert rig.engine.check(make_order(side=SELL, qty="1")).approved
    states = [(c.state, c.reason) for c in rig.engine.state_history]
    assert states == [
        (TradingState.ACTIVE, "started"),
        (TradingState.HALTED, "venue outage"),
        (TradingState.ACTIVE, "outage over"),
    ]


def test_state_changes_need_a_reason(rig: Rig) -> None:
    with pytest.raises(ValueError, match="halt reason"):
        rig.engine.halt("  ")
    assert rig.engine.state is TradingState.ACTIVE


def test_state_listener_hears_every_change_and_cannot_break_checks(
    calendar: NyseCalendar,
) -> None:
    heard: list[TradingStateChange] = []

    def listener(change: TradingStateChange) -> None:
        heard.append(change)
        raise RuntimeError("listener bug")

    rig = build(calendar, on_state_change=listener)
    rig.engine.halt("drill")
    rig.engine.resume()
    assert [(c.state, c.reason, c.ts_ns) for c in heard] == [
        (TradingState.HALTED, "drill", SESSION_OPEN),
        (TradingState.ACTIVE, "resumed by operator", SESSION_OPEN),
    ]


def test_unknown_symbol_is_denied(rig: Rig) -> None:
    rig.trade("TSLA", "250")
    assert rig.check(make_order("TSLA", qty="1")) == (
        RiskRule.UNKNOWN_SYMBOL,
        "unknown_symbol: unknown symbol 'TSLA'",
    )


def test_without_a_universe_symbols_are_classified_by_name(calendar: NyseCalendar) -> None:
    rig = build(calendar, now_ns=CLOSED_TIMES["saturday"])
    rig.engine.set_universe(None)
    rig.trade("SOLUSDT", "150")
    rig.trade("TSLA", "250")
    assert rig.engine.check(make_order("SOLUSDT", qty="1")).approved
    assert rig.check(make_order("TSLA", qty="1"))[0] is RiskRule.MARKET_HOURS  # a stock
    assert rig.check(make_order("not a symbol", qty="1"))[0] is RiskRule.UNKNOWN_SYMBOL


# -- daily loss ---------------------------------------------------------------------------------


def test_daily_loss_within_the_limit_is_allowed(rig: Rig) -> None:
    rig.hold("AAPL", "100", "100")
    rig.portfolio.mark("AAPL", D("100"))
    assert rig.engine.check(make_order(side=SELL, qty="1")).approved  # snapshots the day
    rig.portfolio.mark("AAPL", D("90"))  # loss of exactly 1000
    assert rig.engine.daily_pnl() == D("-1000")
    assert rig.engine.check(make_order(side=SELL, qty="1")).approved
    assert rig.engine.state is TradingState.ACTIVE


def test_daily_loss_breach_halts_trading(rig: Rig) -> None:
    rig.hold("AAPL", "100", "100")
    rig.portfolio.mark("AAPL", D("100"))
    assert rig.engine.check(make_order(side=SELL, qty="1")).approved
    rig.portfolio.mark("AAPL", D("89.99"))
    breach = (
        RiskRule.MAX_DAILY_LOSS,
        "max_daily_loss_usd: loss of 1,001.00 USD since 2025-06-03 00:00 UTC exceeds the "
        "limit of 1,000.00 USD",
    )
    assert rig.check(make_order(side=SELL, qty="1")) == breach
    assert rig.engine.state is TradingState.HALTED
    assert rig.engine.state_reason == breach[1]
    rig.portfolio.mark("AAPL", D("100"))  # recovering does not lift the halt
    assert rig.check(make_order("BTCUSDT", qty="0.1"))[0] is RiskRule.TRADING_HALTED


def test_reduce_only_after_a_breach_lets_the_book_shrink(rig: Rig) -> None:
    rig.hold("AAPL", "100", "100")
    rig.portfolio.mark("AAPL", D("100"))
    rig.engine.daily_pnl()
    rig.portfolio.mark("AAPL", D("80"))
    assert rig.check(make_order(side=SELL, qty="1"))[0] is RiskRule.MAX_DAILY_LOSS
    rig.engine.reduce_only("flatten after the loss")
    assert rig.engine.check(make_order(side=SELL, qty="10")).approved
    rig.engine.resume()
    assert rig.check(make_order(side=SELL, qty="1"))[0] is RiskRule.MAX_DAILY_LOSS


def test_the_day_start_equity_is_taken_at_the_first_check_of_each_utc_day(rig: Rig) -> None:
    rig.hold("BTCUSDT", "1", "1000")
    rig.portfolio.mark("BTCUSDT", D("1000"))
    rig.engine.check(make_order("BTCUSDT", qty="0.1"))
    start = rig.engine.day_start_equity
    rig.portfolio.mark("BTCUSDT", D("200"))  # 800 lost today: within the limit
    assert rig.engine.daily_pnl() == D("-800")
    rig.clock.set(utc(2025, 6, 4, 0, 0))
    rig.engine.check(make_order("BTCUSDT", SELL, "0.1"))
    assert rig.engine.day_start_equity == start - D("800")
    rig.portfolio.mark("BTCUSDT", D("1"))  # another 199 lost: within the new day's limit
    assert rig.engine.check(make_order("BTCUSDT", SELL, "0.1")).approved


# -- order rate ----------------------------------------------------------------------------------


def test_per_second_rate_denies_the_extra_order_and_recovers(calendar: NyseCalendar) -> None:
    rig = build(calendar, max_orders_per_second="3", max_orders_per_minute="100")
    for _ in range(3):
        assert rig.engine.check(make_order(qty="1")).approved
    assert rig.check(make_order(qty="1")) == (
        RiskRule.MAX_ORDERS_PER_SECOND,
        "max_orders_per_second: 3 orders were sent in the last second; the limit is 3",
    )
    rig.clock.advance(NANOS_PER_SECOND - 1)
    assert rig.check(make_order(qty="1"))[0] is RiskRule.MAX_ORDERS_PER_SECOND
    rig.clock.advance(1)
    assert rig.engine.check(make_order(qty="1")).approved


def test_per_minute_rate_is_a_rolling_window(calendar: NyseCalendar) -> None:
    rig = build(calendar, max_orders_per_second="10", max_orders_per_minute="4")
    for _ in range(4):
        assert rig.engine.check(make_order(qty="1")).approved
        rig.clock.advance(10 * NANOS_PER_SECOND)
    assert rig.check(make_order(qty="1"))[0] is RiskRule.MAX_ORDERS_PER_MINUTE
    rig.clock.advance(20 * NANOS_PER_SECOND)  # the first order is now a minute old
    assert rig.engine.check(make_order(qty="1")).approved
    assert rig.check(make_order(qty="1"))[0] is RiskRule.MAX_ORDERS_PER_MINUTE


def test_denied_orders_do_not_use_up_the_rate(calendar: NyseCalendar) -> None:
    rig = build(calendar, max_orders_per_second="1")
    for _ in range(5):
        assert rig.check(make_order(qty="500"))[0] is RiskRule.MAX_ORDER_QTY_STOCK
    assert rig.engine.check(make_order(qty="1")).approved


def test_rolling_window_counter_forgets_events_older_than_the_window() -> None:
    counter = RollingWindowCounter(limit=2, window_ns=100)
    counter.record(0)
    counter.record(50)
    assert counter.count(99) == 2
    assert counter.count(100) == 1
    assert counter.count(150) == 0
    with pytest.raises(ValueError):
        RollingWindowCounter(limit=0, window_ns=100)


# -- limits and counters ----------------------------------------------------------------------


def test_updated_limits_apply_to_the_next_check(rig: Rig) -> None:
    rig.trade("AAPL", "10")
    assert rig.check(make_order(qty="150", type=OrderType.LIMIT, limit="10"))[0] is (
        RiskRule.MAX_ORDER_QTY_STOCK
    )
    rig.engine.update_limits(RiskLimits(max_order_qty_stock=D("200")))
    assert rig.engine.limits.max_order_qty_stock == D("200")
    assert rig.engine.check(make_order(qty="150", type=OrderType.LIMIT, limit="10")).approved


def test_lowering_the_rate_limit_counts_orders_already_sent(calendar: NyseCalendar) -> None:
    rig = build(calendar, max_orders_per_second="5")
    for _ in range(3):
        assert rig.engine.check(make_order(qty="1")).approved
    rig.engine.update_limits(RiskLimits(max_orders_per_second=3))
    assert rig.check(make_order(qty="1"))[0] is RiskRule.MAX_ORDERS_PER_SECOND


def test_counters_record_approvals_and_denials_by_rule(rig: Rig) -> None:
    rig.engine.check(make_order(qty="1"))
    rig.engine.check(make_order(qty="500"))
    rig.engine.check(make_order(qty="500"))
    rig.engine.check(make_order("TSLA", qty="1"))
    counts = rig.engine.denials_by_rule
    assert rig.engine.approved_count == 1
    assert counts["max_order_qty_stock"] == 2
    assert counts["unknown_symbol"] == 1
    assert set(counts) == {str(rule) for rule in RiskRule}
    assert sum(counts.values()) == 3
    counts["unknown_symbol"] = 99  # a copy: the engine's counters are not exposed for writing
    assert rig.engine.denials_by_rule["unknown_symbol"] == 1
