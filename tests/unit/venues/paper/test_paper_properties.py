"""Property tests: over random quotes, trades, orders, cancels and time, the paper account
stays consistent with the fills it reported.

Checked after every step:

- cash == starting cash - sum(signed qty * price) - sum(fees) over the emitted fills;
- equity == starting cash + realized + unrealized - fees (partial closes divide, so
  within a tolerance far below a cent);
- an independent portfolio built from the emitted fills has the venue's positions;
- each order's events replay legally onto a fresh order and agree with its report;
- no fill is worse than its order's limit; with shorting off no position goes short.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import event as note
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.venues.paper.support import DAY_END, START_NS
from trademk.domain.market import NANOS_PER_SECOND, Tick, TickKind
from trademk.domain.order_events import (
    OrderAccepted,
    OrderEvent,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
)
from trademk.domain.orders import Order, OrderSide, OrderType, TimeInForce
from trademk.domain.portfolio import Portfolio
from trademk.engine.clock import SimClock
from trademk.engine.price_cache import LatestPriceCache
from trademk.venues.paper import NO_FEE, BpsFee, PaperVenue, PerShareFee
from trademk.venues.paper.fees import FeeModel

D = Decimal
SYMBOLS = ("AAPL", "BTCUSDT")
TOLERANCE = D("1e-9")
STARTING_CASH = D(50_000)


@dataclass(frozen=True)
class Quote:
    symbol: str
    bid_cents: int
    spread_cents: int
    bid_size: float | None
    ask_size: float | None


@dataclass(frozen=True)
class Trade:
    symbol: str
    price_cents: int
    qty: float


@dataclass(frozen=True)
class Submit:
    symbol: str
    side: OrderSide
    qty_tenths: int
    type: OrderType
    limit_cents: int
    stop_cents: int
    tif: TimeInForce


@dataclass(frozen=True)
class Cancel:
    pick: int


@dataclass(frozen=True)
class Advance:
    seconds: int


sizes = st.one_of(st.none(), st.integers(1, 200).map(lambda n: n / 10))
# Prices on a coarse grid near 100, so orders, quotes and prints cross often.
cents = st.integers(-20, 20).map(lambda n: 10_000 + 10 * n)
quotes = st.builds(Quote, st.sampled_from(SYMBOLS), cents, st.integers(0, 60), sizes, sizes)
trades = st.builds(
    Trade, st.sampled_from(SYMBOLS), cents, st.integers(0, 300).map(lambda n: n / 10)
)
submits = st.builds(
    Submit,
    st.sampled_from(SYMBOLS),
    st.sampled_from(OrderSide),
    st.integers(1, 600),
    st.sampled_from(OrderType),
    cents,
    cents,
    st.sampled_from([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.DAY, TimeInForce.IOC,
                     TimeInForce.FOK]),
)  # fmt: skip
actions = st.one_of(
    quotes,
    quotes,
    trades,
    submits,
    submits,
    submits,
    st.builds(Cancel, st.integers(0, 10_000)),
    st.builds(Advance, st.sampled_from([1, 60, 3_600, 6 * 3_600, 86_400])),
)
OPENING_QUOTES = [Quote(symbol, 10_000, 10, 50.0, 50.0) for symbol in SYMBOLS]
fee_models = st.sampled_from(
    [NO_FEE, BpsFee(D("7.5")), PerShareFee(D("0.013"), minimum=D("1"), max_bps=D("50"))]
)


class Scenario:
    """Drives one venue through actions and records every event it emits."""

    def __init__(self, fee_model: FeeModel, slippage_bps: Decimal, allow_short: bool) -> None:
        self.clock = SimClock(START_NS)
        self.prices = LatestPriceCache()
        self.venue = PaperVenue(
            self.prices,
            self.clock,
            starting_cash=STARTING_CASH,
            fee_model=fee_model,
            slippage_bps=slippage_bps,
            allow_short=allow_short,
            day_end=DAY_END,
            expiry_poll_interval=None,
        )
        self.allow_short = allow_short
        self.events: list[OrderEvent] = []
        self.orders: dict[str, Order] = {}

    async def record(self) -> None:
        async for event in self.venue.events():
            self.events.append(event)

    async def step(self, action: object) -> None:
        self.clock.advance(1_000)
        match action:
            case Quote(symbol, bid, spread, bid_size, ask_size):
                self.tick(symbol, (bid + spread / 2) / 100, bid / 100, (bid + spread) / 100,
                          bid_size, ask_size)  # fmt: skip
            case Trade(symbol, price, qty):
                self.prices.update(
                    Tick(symbol, "P", TickKind.TRADE, self.clock.now_ns(), price / 100, qty)
                )
            case Submit():
                await self.submit(action)
            case Cancel(pick):
                open_ids = [cid for cid, o in self.orders.items() if self.is_open(cid)]
                if open_ids:
                    await self.venue.cancel(open_ids[pick % len(open_ids)])
            case Advance(seconds):
                self.clock.advance(seconds * NANOS_PER_SECOND)
                self.venue.expire_due()
        for _ in range(3):
            await asyncio.sleep(0)

    def tick(
        self,
        symbol: str,
        mid: float,
        bid: float,
        ask: float,
        bid_size: float | None,
        ask_size: float | None,
    ) -> None:
        self.prices.update(
            Tick(symbol, "P", TickKind.QUOTE, self.clock.now_ns(), mid, 0.0, bid, bid_size,
                 ask, ask_size)
        )  # fmt: skip

    async def submit(self, action: Submit) -> None:
        needs_limit = action.type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_stop = action.type in (OrderType.STOP, OrderType.STOP_LIMIT)
        order = Order(
            client_order_id=f"p{len(self.orders)}",
            symbol=action.symbol,
            side=action.side,
            type=action.type,
            qty=D(action.qty_tenths) / 10,
            venue="paper",
            created_ns=self.clock.now_ns(),
            limit_price=D(action.limit_cents) / 100 if needs_limit else None,
            stop_price=D(action.stop_cents) / 100 if needs_stop else None,
            time_in_force=action.tif,
        )
        self.orders[order.client_order_id] = order
        await self.venue.submit(order)

    def is_open(self, cid: str) -> bool:
        events = [e for e in self.events if e.client_order_id == cid]
        return replay(self.orders[cid], events).is_open

    async def check(self) -> None:
        assert self.prices.listener_errors == 0, "matching raised inside the tick listener"
        fills = [e.fill for e in self.events if isinstance(e, OrderFilled)]
        portfolio = self.venue.portfolio
        account = await self.venue.account()

        spent = sum((f.signed_qty * f.price + f.fee for f in fills), D(0))
        assert account.cash == portfolio.cash == STARTING_CASH - spent
        identity = STARTING_CASH + portfolio.total_pnl
        assert abs(account.equity - identity) < TOLERANCE
        assert portfolio.fees == sum((f.fee for f in fills), D(0))

        independent = Portfolio(STARTING_CASH)
        for fill in fills:
            independent.apply(fill)
        reported = {p.symbol: p.qty for p in await self.venue.position_reports()}
        assert reported == {p.symbol: p.qty for p in independent.open_positions()}
        if not self.allow_short:
            assert all(qty > 0 for qty in reported.values())

    async def check_orders(self) -> None:
        by_order: dict[str, list[OrderEvent]] = {cid: [] for cid in self.orders}
        for event in self.events:
            by_order[event.client_order_id].append(event)
        for cid, order in self.orders.items():
            await self.check_order(order, by_order[cid])

    async def check_order(self, order: Order, events: list[OrderEvent]) -> None:
        assert events, f"{order.client_order_id} got no event"
        assert isinstance(events[0], OrderAccepted | OrderRejected)
        replayed = replay(order, events)
        report = await self.venue.order_report(order.client_order_id)
        assert report is not None
        assert (report.status, report.filled_qty) == (replayed.status, replayed.filled_qty)
        for event in events:
            if isinstance(event, OrderFilled) and order.limit_price is not None:
                price = event.fill.price
                if order.side is OrderSide.BUY:
                    assert price <= order.limit_price
                else:
                    assert price >= order.limit_price


def replay(order: Order, events: list[OrderEvent]) -> Order:
    """A fresh copy of ``order`` with ``events`` applied (raises on an illegal sequence)."""
    copy = Order(
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
    copy.apply(OrderSubmitted(order.client_order_id, order.created_ns))
    for event in events:
        copy.apply(event)
    return copy


async def run(
    steps: list[object], fee_model: FeeModel, slippage_bps: Decimal, allow_short: bool
) -> None:
    scenario = Scenario(fee_model, slippage_bps, allow_short)
    await scenario.venue.start()
    recorder = asyncio.create_task(scenario.record())
    try:
        for opening in OPENING_QUOTES:
            await scenario.step(opening)
        for action in steps:
            await scenario.step(action)
            await scenario.check()
        await scenario.check_orders()
        fills = sum(isinstance(e, OrderFilled) for e in scenario.events)
        note(f"fills: {'none' if fills == 0 else '1-4' if fills < 5 else '5+'}")
        kinds = {type(e).__name__ for e in scenario.events}
        for kind in sorted(kinds - {"OrderAccepted", "OrderFilled"}):
            note(f"saw {kind}")
    finally:
        await scenario.venue.close()
        await asyncio.wait_for(recorder, 1.0)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(actions, min_size=10, max_size=60),
    fee_model=fee_models,
    slippage_bps=st.sampled_from([D(0), D("2.5")]),
    allow_short=st.booleans(),
)
def test_the_account_matches_the_fills_it_reported(
    steps: list[object], fee_model: FeeModel, slippage_bps: Decimal, allow_short: bool
) -> None:
    asyncio.run(run(steps, fee_model, slippage_bps, allow_short))
