"""Property tests: the risk engine against an independent statement of every limit.

``violated_rules`` below restates each limit from its definition, in exact
decimal arithmetic, without the engine's code. For random limits, orders,
positions, open orders and prices, the engine must approve exactly when no
limit is violated, and a denial must name one of the violated rules and start
its reason with that rule's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from itertools import count

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from trademk.domain.calendar import NyseCalendar
from trademk.domain.market import NANOS_PER_SECOND, AssetClass, Tick, TickKind
from trademk.domain.order_events import OrderAccepted, OrderSubmitted
from trademk.domain.orders import Order, OrderSide, OrderType
from trademk.domain.risk import RiskLimits, RiskLimitsError, RiskRule, TradingState
from trademk.engine.clock import SimClock, datetime_to_ns
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.risk_engine import RiskEngine

D = Decimal
SYMBOLS = {"AAPL": AssetClass.STOCK, "BTCUSDT": AssetClass.CRYPTO, "ETHUSDT": AssetClass.CRYPTO}
OPEN_TIME = datetime_to_ns(datetime(2025, 6, 3, 15, 0, tzinfo=UTC))  # Tuesday, in session
CLOSED_TIME = datetime_to_ns(datetime(2025, 6, 7, 15, 0, tzinfo=UTC))  # Saturday
PRICE_TYPES = (OrderType.LIMIT, OrderType.STOP_LIMIT)
_ids = count(1)


@pytest.fixture(scope="module")
def calendar() -> NyseCalendar:
    return NyseCalendar(today=date(2025, 6, 1))


@dataclass
class Book:
    """A portfolio view: positions and equity set directly by the test."""

    positions: dict[str, Decimal] = field(default_factory=dict)
    equity: Decimal = field(default_factory=lambda: D("100000"))

    def qty(self, symbol: str) -> Decimal:
        return self.positions.get(symbol, D(0))


@dataclass(frozen=True)
class Scenario:
    limits: RiskLimits
    symbol: str
    side: OrderSide
    type: OrderType
    qty: Decimal
    limit_price: Decimal | None
    stop_price: Decimal | None
    last_trade: Decimal | None
    quote: tuple[Decimal, Decimal] | None
    position: Decimal
    open_orders: tuple[tuple[str, OrderSide, Decimal], ...]
    state: TradingState
    market_open: bool
    prior_orders: int
    day_loss: Decimal


def quarters(lo: int, hi: int) -> st.SearchStrategy[Decimal]:
    """Prices that are multiples of 0.25: exact as floats, so the cache holds them exactly."""
    return st.integers(lo * 4, hi * 4).map(lambda n: D(n) / 4)


def decimals(lo: str, hi: str, places: int) -> st.SearchStrategy[Decimal]:
    return st.decimals(D(lo), D(hi), places=places, allow_nan=False, allow_infinity=False)


limits_strategy = st.builds(
    RiskLimits,
    max_order_qty_crypto=decimals("0.1", "20", 2),
    max_order_qty_stock=decimals("1", "300", 0),
    max_order_notional_usd=decimals("100", "60000", 2),
    max_position_size_usd=decimals("100", "120000", 2),
    max_open_orders=st.integers(1, 8),
    max_open_orders_per_symbol=st.none() | st.integers(1, 4),
    max_daily_loss_usd=decimals("1", "3000", 2),
    max_orders_per_second=st.integers(1, 4),
    max_orders_per_minute=st.integers(1, 6),
    max_price_deviation_pct=decimals("0.5", "40", 1),
    enforce_market_hours=st.booleans(),
)


def near(reference: Decimal | None) -> st.SearchStrategy[Decimal]:
    """A price within about 12% of ``reference`` (or anywhere when there is none)."""
    if reference is None:
        return decimals("0.25", "1000", 2)
    return st.integers(-12, 12).map(lambda pct: max(D("0.01"), reference * (100 + pct) / 100))


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    limits = draw(limits_strategy)
    symbol = draw(st.sampled_from(["AAPL", "BTCUSDT"]))
    side = draw(st.sampled_from(OrderSide))
    order_type = draw(st.sampled_from(OrderType))
    last_trade = draw(quarters(1, 1000) | quarters(1, 1000) | st.none())
    quote = draw(
        st.none()
        | st.tuples(quarters(1, 1000), st.integers(1, 40)).map(lambda t: (t[0], t[0] + D(t[1]) / 4))
    )
    reference = last_trade if last_trade is not None else (None if quote is None else quote[0])
    needs_limit = order_type in PRICE_TYPES
    needs_stop = order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
    qty_hi = "2" if symbol == "BTCUSDT" else "40"
    return Scenario(
        limits=limits,
        symbol=symbol,
        side=side,
        type=order_type,
        qty=draw(decimals("0.01", qty_hi, 2)),
        limit_price=draw(near(reference)) if needs_limit else None,
        stop_price=draw(near(reference)) if needs_stop else None,
        last_trade=last_trade,
        quote=quote,
        position=draw(decimals("-60", "60", 1) | st.just(D(0))),
        open_orders=tuple(
            draw(
                st.lists(
                    st.tuples(
                        st.sampled_from(["AAPL", "BTCUSDT", "ETHUSDT"]),
                        st.sampled_from(OrderSide),
                        decimals("0.1", "60", 1),
                    ),
                    max_size=4,
                )
            )
        ),
        state=draw(st.sampled_from([TradingState.ACTIVE] * 3 + [TradingState.REDUCING])),
        market_open=draw(st.sampled_from([True, True, False])),
        prior_orders=draw(st.integers(0, 5)),
        day_loss=draw(st.just(D(0)) | decimals("0", "1200", 2)),
    )


def violated_rules(s: Scenario, prior_approved: int) -> set[str]:
    """Every rule the order breaks, from the definitions of the limits."""
    lim = s.limits
    broken: set[str] = set()
    signed = s.qty if s.side is OrderSide.BUY else -s.qty
    pending = sum(
        (
            q if side is OrderSide.BUY else -q
            for sym, side, q in s.open_orders
            if sym == s.symbol and side is s.side
        ),
        D(0),
    )
    if s.day_loss > lim.max_daily_loss_usd and s.state is TradingState.ACTIVE:
        broken.add("max_daily_loss_usd")
    if s.state is TradingState.REDUCING:
        shrinks = s.position != 0 and (s.position > 0) != (signed > 0)
        if not (shrinks and abs(pending + signed) <= abs(s.position)):
            broken.add("reduce_only")
    stock = SYMBOLS[s.symbol] is AssetClass.STOCK
    if stock and lim.enforce_market_hours and not s.market_open:
        broken.add("market_hours")
    if s.qty > (lim.max_order_qty_stock if stock else lim.max_order_qty_crypto):
        broken.add("max_order_qty_stock" if stock else "max_order_qty_crypto")
    last = (
        s.last_trade
        if s.last_trade is not None
        else (None if s.quote is None else (s.quote[0] + s.quote[1]) / 2)
    )
    if last is None:
        broken.add("market_price")
    else:
        for price in (s.limit_price, s.stop_price):
            if price is not None and abs(price - last) / last * 100 > lim.max_price_deviation_pct:
                broken.add("max_price_deviation_pct")
        if s.limit_price is not None:
            value_at = s.limit_price
        else:
            book_side = None if s.quote is None else s.quote[1 if s.side is OrderSide.BUY else 0]
            value_at = book_side if book_side is not None else last
            if s.type is OrderType.STOP:
                assert s.stop_price is not None
                value_at = max(value_at, s.stop_price)
        if s.qty * value_at > lim.max_order_notional_usd:
            broken.add("max_order_notional_usd")
        before = s.position + pending
        after = before + signed
        if abs(after) > abs(before) and abs(after) * value_at > lim.max_position_size_usd:
            broken.add("max_position_size_usd")
    if len(s.open_orders) >= lim.max_open_orders:
        broken.add("max_open_orders")
    same_symbol = sum(1 for sym, _, _ in s.open_orders if sym == s.symbol)
    per_symbol = lim.max_open_orders_per_symbol
    if per_symbol is not None and same_symbol >= per_symbol:
        broken.add("max_open_orders_per_symbol")
    if prior_approved >= lim.max_orders_per_second:
        broken.add("max_orders_per_second")
    if prior_approved >= lim.max_orders_per_minute:
        broken.add("max_orders_per_minute")
    return broken


def open_order(symbol: str, side: OrderSide, qty: Decimal) -> Order:
    order = Order(
        client_order_id=f"w{next(_ids)}",
        symbol=symbol,
        side=side,
        type=OrderType.MARKET,
        qty=qty,
        venue="paper",
        created_ns=1,
    )
    order.apply(OrderSubmitted(order.client_order_id, 2))
    order.apply(OrderAccepted(order.client_order_id, 3, f"v{order.client_order_id}"))
    return order


def engine_for(s: Scenario, calendar: NyseCalendar) -> tuple[RiskEngine, Book, int]:
    """The engine set up as ``s`` says; returns it, its book and how many prior orders passed."""
    prices = LatestPriceCache()
    if s.last_trade is not None:
        prices.update(Tick(s.symbol, "X", TickKind.TRADE, 1, float(s.last_trade), 1.0))
    if s.quote is not None:
        bid, ask = float(s.quote[0]), float(s.quote[1])
        prices.update(Tick(s.symbol, "X", TickKind.QUOTE, 1, (bid + ask) / 2, bid=bid, ask=ask))
    prices.update(Tick("ETHUSDT", "X", TickKind.TRADE, 1, 1.0, 1.0))
    book = Book(positions={s.symbol: s.position})
    orders = [open_order(*spec) for spec in s.open_orders]
    roomy = RiskLimits(max_orders_per_second=10, max_orders_per_minute=10)
    engine = RiskEngine(
        limits=roomy,
        prices=prices,
        portfolio=book,
        clock=SimClock(OPEN_TIME if s.market_open else CLOSED_TIME),
        calendar=calendar,
        asset_classes=SYMBOLS,
        open_orders=lambda: orders,
    )
    # Earlier orders fill the rate windows (under roomy limits every one passes).
    prior = [
        engine.check(
            Order(
                client_order_id=f"p{next(_ids)}",
                symbol="ETHUSDT",
                side=OrderSide.BUY,
                type=OrderType.MARKET,
                qty=D("0.01"),
                venue="paper",
                created_ns=1,
            )
        )
        for _ in range(s.prior_orders)
    ]
    assert engine.daily_pnl() == 0  # takes the day's starting equity
    book.equity -= s.day_loss
    engine.update_limits(s.limits)
    if s.state is TradingState.REDUCING:
        engine.reduce_only("property test")
    return engine, book, sum(1 for decision in prior if decision.approved)


@settings(max_examples=400, deadline=None)
@given(s=scenarios())
def test_engine_approves_exactly_the_orders_that_break_no_limit(
    calendar: NyseCalendar, s: Scenario
) -> None:
    engine, _, prior_approved = engine_for(s, calendar)
    assert prior_approved == s.prior_orders
    order = Order(
        client_order_id=f"o{next(_ids)}",
        symbol=s.symbol,
        side=s.side,
        type=s.type,
        qty=s.qty,
        venue="paper",
        created_ns=1,
        limit_price=s.limit_price,
        stop_price=s.stop_price,
    )
    decision = engine.check(order)
    broken = violated_rules(s, prior_approved)
    event("approved" if decision.approved else f"denied by {decision.rule}")
    assert decision.approved == (not broken), (decision, broken)
    if not decision.approved:
        assert isinstance(decision.rule, RiskRule)
        assert decision.rule in broken
        assert decision.reason.startswith(f"{decision.rule}: ")
        assert len(decision.reason) > len(f"{decision.rule}: ")
        assert engine.denials_by_rule[str(decision.rule)] == 1


@settings(max_examples=150, deadline=None)
@given(
    limit=st.integers(1, 5),
    gaps_ms=st.lists(st.integers(0, 700), min_size=1, max_size=40),
)
def test_no_rolling_second_ever_holds_more_approved_orders_than_the_limit(
    calendar: NyseCalendar, limit: int, gaps_ms: list[int]
) -> None:
    clock = SimClock(OPEN_TIME)
    prices = LatestPriceCache()
    prices.update(Tick("BTCUSDT", "X", TickKind.TRADE, 1, 100.0, 1.0))
    engine = RiskEngine(
        limits=RiskLimits(max_orders_per_second=limit, max_orders_per_minute=1000),
        prices=prices,
        portfolio=Book(),
        clock=clock,
        calendar=calendar,
        asset_classes=SYMBOLS,
        open_orders=list,
    )
    approved: list[int] = []
    for gap in gaps_ms:
        clock.advance(gap * 1_000_000)
        now = clock.now_ns()
        in_window = sum(1 for ts in approved if ts > now - NANOS_PER_SECOND)
        order = Order(
            client_order_id=f"r{next(_ids)}",
            symbol="BTCUSDT",
            side=OrderSide.BUY,
            type=OrderType.MARKET,
            qty=D("0.01"),
            venue="paper",
            created_ns=1,
        )
        decision = engine.check(order)
        assert decision.approved == (in_window < limit)
        if decision.approved:
            approved.append(now)
        else:
            assert decision.rule is RiskRule.MAX_ORDERS_PER_SECOND


text_values = st.one_of(
    st.text(max_size=8),
    st.integers(-5, 10**6).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["true", "false", "none", "1.0", "0", "-1", "1e3", " 7 "]),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from([*RiskLimits().to_mapping(), "bogus"]), text_values))
def test_from_mapping_either_parses_or_names_every_bad_field(values: dict[str, str]) -> None:
    try:
        limits = RiskLimits.from_mapping(values)
    except RiskLimitsError as err:
        assert err.errors
        assert set(err.errors) <= set(values)
        for name in err.errors:
            assert f"{name}: " in str(err)
    else:
        assert "bogus" not in values
        assert RiskLimits.from_mapping(limits.to_mapping()) == limits


@settings(max_examples=200, deadline=None)
@given(limits_strategy)
def test_limits_survive_their_text_form(limits: RiskLimits) -> None:
    assert RiskLimits.from_mapping(limits.to_mapping()) == limits
