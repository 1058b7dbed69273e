"""Property tests of the order state machine over random event sequences."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from hypothesis import event, given, settings
from hypothesis import strategies as st

from trademk.domain.errors import InvariantViolation
from trademk.domain.fills import Fill
from trademk.domain.order_events import (
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderPendingCancel,
    OrderRejected,
    OrderSubmitted,
)
from trademk.domain.orders import ORDER_TRANSITIONS, Order, OrderSide, OrderStatus, OrderType

D = Decimal
S = OrderStatus
CID = "prop-1"
ORDER_QTY = D(10)

# Statuses the table allows an order to reach, found by walking it from INITIALIZED.
REACHABLE: set[OrderStatus] = set()
_queue = deque([S.INITIALIZED])
while _queue:
    _status = _queue.popleft()
    if _status not in REACHABLE:
        REACHABLE.add(_status)
        _queue.extend(ORDER_TRANSITIONS[_status])

# The status each non-fill event asks for, as the lifecycle spells it (independent
# of the module's own EVENT_STATUS mapping).
SIMPLE_EVENTS: dict[str, tuple[OrderEvent, OrderStatus]] = {
    "deny": (OrderDenied(CID, 10, reason="risk limit"), S.DENIED),
    "submit": (OrderSubmitted(CID, 20), S.SUBMITTED),
    "accept": (OrderAccepted(CID, 30, venue_order_id="V"), S.ACCEPTED),
    "reject": (OrderRejected(CID, 40, reason="venue"), S.REJECTED),
    "cancel": (OrderCanceled(CID, 50, reason="user"), S.CANCELED),
    "expire": (OrderExpired(CID, 60), S.EXPIRED),
    "pending_cancel": (OrderPendingCancel(CID, 70), S.PENDING_CANCEL),
}


@dataclass(frozen=True)
class FillStep:
    trade_id: str
    qty: Decimal
    price: Decimal


fill_steps = st.builds(
    FillStep,
    trade_id=st.sampled_from([f"t{i}" for i in range(6)]),  # small pool: replays happen
    qty=st.integers(min_value=1, max_value=40).map(lambda n: D(n) / 4),
    price=st.integers(min_value=1, max_value=10_000).map(lambda n: D(n) / 100),
)
steps = st.one_of(st.sampled_from(sorted(SIMPLE_EVENTS)), fill_steps)
# Most random sequences die early (a first "deny" is terminal), so often start
# from a submitted or accepted order to reach the deeper states.
sequences = st.builds(
    lambda prefix, rest: [*prefix, *rest],
    st.sampled_from([[], ["submit"], ["submit", "accept"]]),
    st.lists(steps, max_size=25),
)


def snapshot(order: Order) -> tuple[object, ...]:
    return (
        order.status,
        order.filled_qty,
        order.filled_notional,
        order.fees,
        order.reason,
        order.venue_order_id,
        order.submitted_ns,
        order.accepted_ns,
        order.last_fill_ns,
        order.canceled_ns,
        order.updated_ns,
        order.applied_trade_ids,
    )


def to_event(step: str | FillStep) -> OrderEvent:
    if isinstance(step, str):
        return SIMPLE_EVENTS[step][0]
    fill = Fill(
        client_order_id=CID,
        venue_order_id="V",
        trade_id=step.trade_id,
        symbol="BTCUSDT",
        side=OrderSide.BUY,
        qty=step.qty,
        price=step.price,
        fee=D("0.01"),
        ts_ns=100,
        venue="paper",
    )
    return OrderFilled.of(fill)


@settings(max_examples=300, deadline=None)
@given(sequences)
def test_random_event_sequences_follow_the_table(sequence: list[str | FillStep]) -> None:
    order = Order(
        client_order_id=CID,
        symbol="BTCUSDT",
        side=OrderSide.BUY,
        type=OrderType.MARKET,
        qty=ORDER_QTY,
        venue="paper",
        created_ns=0,
    )
    applied_trades: dict[str, FillStep] = {}
    for step in sequence:
        before = snapshot(order)
        previous = order.status
        is_replay = isinstance(step, FillStep) and step.trade_id in applied_trades
        try:
            changed = order.apply(to_event(step))
        except InvariantViolation:
            # Illegal: the table forbids the move, or the fill would overfill.
            assert snapshot(order) == before
            assert not is_replay
            if isinstance(step, str):
                assert SIMPLE_EVENTS[step][1] not in ORDER_TRANSITIONS[previous]
            else:
                would_fill = order.filled_qty + step.qty
                target = S.FILLED if would_fill == ORDER_QTY else S.PARTIALLY_FILLED
                assert would_fill > ORDER_QTY or target not in ORDER_TRANSITIONS[previous]
            continue
        if is_replay:
            assert changed is False
            assert snapshot(order) == before
            continue
        assert changed is True
        assert order.status in ORDER_TRANSITIONS[previous]
        if isinstance(step, FillStep):
            applied_trades[step.trade_id] = step
        else:
            assert order.status is SIMPLE_EVENTS[step][1]
        assert order.status in REACHABLE
        assert order.filled_qty <= ORDER_QTY
        assert order.filled_qty == sum((s.qty for s in applied_trades.values()), D(0))
        assert (order.status is S.FILLED) == (order.filled_qty == ORDER_QTY)
        assert order.leaves_qty == (0 if order.is_terminal else ORDER_QTY - order.filled_qty)
        if applied_trades:
            exact_notional = sum(
                Fraction(s.qty) * Fraction(s.price) for s in applied_trades.values()
            )
            assert Fraction(order.filled_notional) == exact_notional
            exact_avg = exact_notional / Fraction(order.filled_qty)
            assert order.avg_fill_price is not None
            assert abs(Fraction(order.avg_fill_price) - exact_avg) < Fraction(1, 10**20)
        assert order.applied_trade_ids == set(applied_trades)
    event(f"final status {order.status}")
