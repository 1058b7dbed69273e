"""Property tests: Position arithmetic against an independent lot-by-lot ledger.

The reference keeps every open lot as exact ``Fraction``s and implements the
average-cost method the long way: closing takes the average over all lots and
shrinks each lot pro rata. ``Position`` keeps one running cost in ``Decimal``;
the two must agree (exactly for quantities, fees and round trips, and to far
below a cent elsewhere, the only gap being Decimal's 28-digit division).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from itertools import count

from hypothesis import event, given, settings
from hypothesis import strategies as st

from trademk.domain.fills import Fill
from trademk.domain.orders import OrderSide
from trademk.domain.position import Position

D = Decimal
BUY, SELL = OrderSide.BUY, OrderSide.SELL
TOLERANCE = Fraction(1, 10**15)
_ids = count(1)


@dataclass
class Lot:
    qty: Fraction  # > 0
    price: Fraction


@dataclass
class LotLedger:
    """Average-cost bookkeeping over explicit lots, in exact rationals."""

    direction: int = 0  # +1 long, -1 short, 0 flat
    lots: list[Lot] = field(default_factory=list)
    realized: Fraction = Fraction(0)
    fees: Fraction = Fraction(0)

    @property
    def open_qty(self) -> Fraction:
        return sum((lot.qty for lot in self.lots), Fraction(0))

    @property
    def average(self) -> Fraction:
        if not self.lots:
            return Fraction(0)
        return sum((lot.qty * lot.price for lot in self.lots), Fraction(0)) / self.open_qty

    def book(self, direction: int, qty: Fraction, price: Fraction, fee: Fraction) -> None:
        self.fees += fee
        if self.direction in (0, direction):
            self.direction = direction
            self.lots.append(Lot(qty, price))
            return
        open_qty, average = self.open_qty, self.average
        closing = min(qty, open_qty)
        self.realized += (price - average) * closing * self.direction
        keep = (open_qty - closing) / open_qty
        self.lots = [Lot(lot.qty * keep, lot.price) for lot in self.lots if keep > 0]
        if not self.lots:
            self.direction = 0
        if qty > closing:
            self.direction = direction
            self.lots = [Lot(qty - closing, price)]

    def signed_qty(self) -> Fraction:
        return self.direction * self.open_qty


@dataclass(frozen=True)
class Trade:
    side: OrderSide
    qty: Decimal
    price: Decimal
    fee: Decimal


trades = st.builds(
    Trade,
    side=st.sampled_from((BUY, SELL)),
    # Up to 4 decimals for crypto-like sizes, prices with cents.
    qty=st.integers(min_value=1, max_value=200_000).map(lambda n: D(n) / 10_000),
    price=st.integers(min_value=1, max_value=10_000_000).map(lambda n: D(n) / 100),
    fee=st.integers(min_value=0, max_value=1_000).map(lambda n: D(n) / 100),
)


def to_fill(trade: Trade) -> Fill:
    n = next(_ids)
    return Fill(
        client_order_id=f"c{n}",
        venue_order_id=f"v{n}",
        trade_id=f"t{n}",
        symbol="BTCUSDT",
        side=trade.side,
        qty=trade.qty,
        price=trade.price,
        fee=trade.fee,
        ts_ns=n,
        venue="binance",
    )


def close_enough(actual: Decimal, expected: Fraction) -> bool:
    return abs(Fraction(actual) - expected) <= TOLERANCE


@settings(max_examples=200, deadline=None)
@given(st.lists(trades, min_size=1, max_size=30), st.sampled_from([None, D("0.01"), D("50000")]))
def test_position_matches_lot_ledger(sequence: list[Trade], mark: Decimal | None) -> None:
    position = Position("BTCUSDT", "binance")
    ledger = LotLedger()
    flips = 0
    for trade in sequence:
        before = position.qty
        realized_before = ledger.realized
        returned = position.apply(to_fill(trade))
        ledger.book(
            trade.side.sign, Fraction(trade.qty), Fraction(trade.price), Fraction(trade.fee)
        )
        flips += int(before * position.qty < 0)

        assert Fraction(position.qty) == ledger.signed_qty()
        assert Fraction(position.fees_paid) == ledger.fees
        assert close_enough(position.realized_pnl, ledger.realized)
        assert close_enough(returned, ledger.realized - realized_before)
        assert close_enough(position.avg_price, ledger.average)
        assert position.avg_price >= 0 and (position.avg_price == 0) == position.is_flat
        assert close_enough(position.cost_basis, ledger.signed_qty() * ledger.average)
        assert close_enough(position.net_realized_pnl, ledger.realized - ledger.fees)

    if mark is not None:
        position.mark(mark)
    last = Fraction(position.last_price) if position.last_price is not None else Fraction(0)
    expected_unrealized = (last - ledger.average) * ledger.signed_qty()
    assert close_enough(position.unrealized_pnl, expected_unrealized)
    assert Fraction(position.market_value) == ledger.signed_qty() * last
    event(f"flips: {min(flips, 3)}")


@settings(max_examples=100, deadline=None)
@given(st.lists(trades, min_size=1, max_size=15))
def test_round_trip_to_flat_realizes_exactly_the_cash_difference(sequence: list[Trade]) -> None:
    """Adding up, then closing everything in one fill, realizes proceeds minus cost exactly."""
    position = Position("BTCUSDT", "binance")
    cash = Fraction(0)
    for trade in sequence:
        same_side = Trade(BUY, trade.qty, trade.price, D(0))
        position.apply(to_fill(same_side))
        cash -= Fraction(trade.qty) * Fraction(trade.price)
    exit_price = sequence[-1].price
    position.apply(to_fill(Trade(SELL, position.qty, exit_price, D(0))))
    cash += Fraction(sum((t.qty for t in sequence), D(0))) * Fraction(exit_price)
    assert position.is_flat and position.avg_price == 0
    assert Fraction(position.realized_pnl) == cash
