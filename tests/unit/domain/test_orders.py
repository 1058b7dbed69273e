"""Order construction, the lifecycle table, fills, order events and the error tree."""

from __future__ import annotations

from decimal import Decimal
from itertools import product
from typing import Any

import pytest

from trademk.domain.errors import (
    IllegalOrderTransition,
    InvariantViolation,
    RateLimitedError,
    RejectedError,
    TrademkError,
    TransientError,
)
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
from trademk.domain.orders import (
    EVENT_STATUS,
    ORDER_TRANSITIONS,
    TERMINAL_STATUSES,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
    can_transition,
)

D = Decimal
S = OrderStatus
CID = "cid-1"


def make_order(**overrides: Any) -> Order:
    fields: dict[str, Any] = {
        "client_order_id": CID,
        "symbol": "AAPL",
        "side": OrderSide.BUY,
        "type": OrderType.LIMIT,
        "qty": D("10"),
        "limit_price": D("100"),
        "venue": "paper",
        "created_ns": 1_000,
    }
    fields.update(overrides)
    return Order(**fields)


def fill_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "client_order_id": CID,
        "venue_order_id": "v-1",
        "trade_id": "t1",
        "symbol": "AAPL",
        "side": OrderSide.BUY,
        "qty": D(1),
        "price": D(100),
        "fee": D(0),
        "ts_ns": 5_000,
        "venue": "paper",
    }
    fields.update(overrides)
    return fields


def make_fill(
    qty: str,
    price: str = "100",
    trade_id: str = "t1",
    fee: str = "0",
    side: OrderSide = OrderSide.BUY,
    **overrides: Any,
) -> Fill:
    return Fill(
        **fill_fields(
            qty=D(qty), price=D(price), trade_id=trade_id, fee=D(fee), side=side, **overrides
        )
    )


def filled(qty: str, price: str = "100", trade_id: str = "t1", fee: str = "0") -> OrderFilled:
    return OrderFilled.of(make_fill(qty, price, trade_id, fee))


SUBMIT = OrderSubmitted(CID, 2_000)
ACCEPT = OrderAccepted(CID, 3_000, venue_order_id="v-1")

# Events that bring a fresh order (qty 10) to each status.
PATH_TO: dict[OrderStatus, list[OrderEvent]] = {
    S.INITIALIZED: [],
    S.DENIED: [OrderDenied(CID, 2_000, reason="max position size")],
    S.SUBMITTED: [SUBMIT],
    S.ACCEPTED: [SUBMIT, ACCEPT],
    S.REJECTED: [SUBMIT, OrderRejected(CID, 3_000, reason="insufficient buying power")],
    S.CANCELED: [SUBMIT, ACCEPT, OrderCanceled(CID, 4_000, reason="user")],
    S.EXPIRED: [SUBMIT, ACCEPT, OrderExpired(CID, 4_000)],
    S.PENDING_CANCEL: [SUBMIT, ACCEPT, OrderPendingCancel(CID, 4_000)],
    S.PARTIALLY_FILLED: [SUBMIT, ACCEPT, filled("1", trade_id="p1")],
    S.FILLED: [SUBMIT, ACCEPT, filled("10", trade_id="p1")],
}


def order_in(status: OrderStatus) -> Order:
    order = make_order()
    for event in PATH_TO[status]:
        order.apply(event)
    assert order.status is status
    return order


def event_leading_to(order: Order, target: OrderStatus) -> OrderEvent:
    """An event that asks ``order`` to move to ``target``."""
    simple: dict[OrderStatus, OrderEvent] = {
        S.DENIED: OrderDenied(CID, 9_000, reason="risk"),
        S.SUBMITTED: OrderSubmitted(CID, 9_000),
        S.ACCEPTED: OrderAccepted(CID, 9_000, venue_order_id="v-1"),
        S.REJECTED: OrderRejected(CID, 9_000, reason="venue"),
        S.CANCELED: OrderCanceled(CID, 9_000, reason="user"),
        S.EXPIRED: OrderExpired(CID, 9_000),
        S.PENDING_CANCEL: OrderPendingCancel(CID, 9_000),
    }
    if target in simple:
        return simple[target]
    remaining = order.qty - order.filled_qty
    if target is S.PARTIALLY_FILLED:
        return filled("1", trade_id="next")
    # FILLED: fill the rest (a filled order has nothing left, so ask for one more unit).
    return filled(str(remaining if remaining > 0 else D(1)), trade_id="next")


def snapshot(order: Order) -> tuple[object, ...]:
    return (
        order.status,
        order.filled_qty,
        order.avg_fill_price,
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


LEGAL = [(src, dst) for src, targets in ORDER_TRANSITIONS.items() for dst in sorted(targets)]
# No event leads back to INITIALIZED (see test_no_event_leads_back_to_initialized).
ILLEGAL = [
    (src, dst)
    for src, dst in product(OrderStatus, OrderStatus)
    if dst not in ORDER_TRANSITIONS[src] and dst is not S.INITIALIZED
]


# -- the lifecycle table ------------------------------------------------------


def test_table_is_exactly_the_documented_lifecycle() -> None:
    assert dict(ORDER_TRANSITIONS) == {
        S.INITIALIZED: {S.DENIED, S.SUBMITTED},
        S.SUBMITTED: {S.ACCEPTED, S.REJECTED, S.CANCELED, S.FILLED, S.PARTIALLY_FILLED},
        S.ACCEPTED: {S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.PENDING_CANCEL},
        S.PARTIALLY_FILLED: {
            S.PARTIALLY_FILLED,
            S.FILLED,
            S.CANCELED,
            S.EXPIRED,
            S.PENDING_CANCEL,
        },
        S.PENDING_CANCEL: {S.CANCELED, S.FILLED, S.PARTIALLY_FILLED},
        S.DENIED: set(),
        S.REJECTED: set(),
        S.CANCELED: set(),
        S.EXPIRED: set(),
        S.FILLED: set(),
    }
    assert {S.DENIED, S.REJECTED, S.CANCELED, S.EXPIRED, S.FILLED} == TERMINAL_STATUSES


def test_no_event_leads_back_to_initialized() -> None:
    assert S.INITIALIZED not in EVENT_STATUS.values()
    assert set(EVENT_STATUS.values()) == set(OrderStatus) - {
        S.INITIALIZED,
        S.PARTIALLY_FILLED,
        S.FILLED,
    }
    assert all(S.INITIALIZED not in targets for targets in ORDER_TRANSITIONS.values())


def test_enums_use_lowercase_string_values() -> None:
    assert [s.value for s in OrderSide] == ["buy", "sell"]
    assert [t.value for t in OrderType] == ["market", "limit", "stop", "stop_limit"]
    assert [t.value for t in TimeInForce] == ["day", "gtc", "ioc", "fok"]
    assert S.PENDING_CANCEL.value == "pending_cancel"
    assert all(s.value == s.name.lower() for s in OrderStatus)


@pytest.mark.parametrize(("src", "dst"), LEGAL, ids=[f"{a}->{b}" for a, b in LEGAL])
def test_every_legal_transition_is_applied(src: OrderStatus, dst: OrderStatus) -> None:
    order = order_in(src)
    assert can_transition(src, dst)
    assert order.apply(event_leading_to(order, dst)) is True
    assert order.status is dst
    assert order.updated_ns == 9_000 or dst in (S.PARTIALLY_FILLED, S.FILLED)


@pytest.mark.parametrize(("src", "dst"), ILLEGAL, ids=[f"{a}->{b}" for a, b in ILLEGAL])
def test_every_illegal_transition_raises_and_changes_nothing(
    src: OrderStatus, dst: OrderStatus
) -> None:
    order = order_in(src)
    before = snapshot(order)
    assert not can_transition(src, dst)
    with pytest.raises(InvariantViolation):
        order.apply(event_leading_to(order, dst))
    assert snapshot(order) == before


def test_illegal_transition_error_names_order_and_both_statuses() -> None:
    order = order_in(S.FILLED)
    with pytest.raises(IllegalOrderTransition) as caught:
        order.apply(OrderCanceled(CID, 9_000))
    error = caught.value
    assert (error.client_order_id, error.from_status, error.to_status) == (
        CID,
        S.FILLED,
        S.CANCELED,
    )
    assert CID in str(error) and "filled -> canceled" in str(error)


def test_non_fill_illegal_transitions_raise_illegal_order_transition() -> None:
    order = order_in(S.INITIALIZED)
    with pytest.raises(IllegalOrderTransition):
        order.apply(ACCEPT)
    with pytest.raises(IllegalOrderTransition):
        order.apply(filled("1"))


def test_event_of_another_order_is_refused() -> None:
    order = make_order()
    with pytest.raises(InvariantViolation, match="other"):
        order.apply(OrderSubmitted("other", 2_000))
    assert order.status is S.INITIALIZED


def test_an_object_that_is_not_an_order_event_is_refused() -> None:
    order = make_order()

    class Impostor:
        client_order_id = CID
        ts_ns = 1

    with pytest.raises(TypeError, match="not an order event: Impostor"):
        order.apply(Impostor())  # type: ignore[arg-type]
    assert order.status is S.INITIALIZED


# -- event payloads -------------------------------------------------------------


def test_submission_and_acceptance_record_times_and_venue_id() -> None:
    order = order_in(S.ACCEPTED)
    assert (order.submitted_ns, order.accepted_ns, order.updated_ns) == (2_000, 3_000, 3_000)
    assert order.venue_order_id == "v-1"
    assert order.is_open and not order.is_terminal


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (S.DENIED, "max position size"),
        (S.REJECTED, "insufficient buying power"),
        (S.CANCELED, "user"),
    ],
)
def test_denial_rejection_and_cancel_record_reason(status: OrderStatus, reason: str) -> None:
    assert order_in(status).reason == reason


def test_cancel_after_partial_fill_keeps_fill_and_records_cancel_time() -> None:
    order = order_in(S.PARTIALLY_FILLED)
    order.apply(OrderCanceled(CID, 7_000))
    assert order.status is S.CANCELED
    assert order.filled_qty == D(1)
    assert order.canceled_ns == 7_000
    assert order.leaves_qty == 0
    assert order.is_terminal and not order.is_open


@pytest.mark.parametrize("status", list(OrderStatus))
def test_open_and_terminal_flags(status: OrderStatus) -> None:
    order = order_in(status)
    assert order.is_terminal == (status in TERMINAL_STATUSES)
    assert order.is_open == (status not in TERMINAL_STATUSES and status is not S.INITIALIZED)


# -- fills ----------------------------------------------------------------------


def test_partial_then_complete_fills_give_exact_vwap_fees_and_status() -> None:
    order = order_in(S.ACCEPTED)
    assert order.apply(filled("4", "100.10", "t1", fee="0.04")) is True
    assert order.status is S.PARTIALLY_FILLED
    assert (order.filled_qty, order.leaves_qty, order.avg_fill_price) == (D(4), D(6), D("100.10"))
    order.apply(filled("6", "100.25", "t2", fee="0.06"))
    assert order.status is S.FILLED
    # (4 * 100.10 + 6 * 100.25) / 10 = (400.40 + 601.50) / 10
    assert order.avg_fill_price == D("100.19")
    assert order.filled_notional == D("1001.90")
    assert order.fees == D("0.10")
    assert order.leaves_qty == 0
    assert order.last_fill_ns == 5_000
    assert order.applied_trade_ids == {"t1", "t2"}


def test_vwap_is_computed_from_the_exact_notional() -> None:
    order = order_in(S.ACCEPTED)
    order.apply(filled("1", "1", "t1"))
    order.apply(filled("2", "2", "t2"))
    order.apply(filled("3", "3", "t3"))
    assert order.filled_notional == D(14)
    assert order.avg_fill_price == D(14) / D(6)


def test_overfill_is_refused_and_changes_nothing() -> None:
    order = order_in(S.PARTIALLY_FILLED)
    before = snapshot(order)
    with pytest.raises(InvariantViolation, match="overfill"):
        order.apply(filled("9.5", trade_id="big"))
    assert snapshot(order) == before
    assert order.apply(filled("9", trade_id="rest")) is True
    assert order.status is S.FILLED


def test_duplicate_trade_id_is_ignored_even_after_the_order_is_filled() -> None:
    order = order_in(S.ACCEPTED)
    order.apply(filled("4", trade_id="t1"))
    before = snapshot(order)
    assert order.apply(filled("4", trade_id="t1")) is False
    assert snapshot(order) == before
    order.apply(filled("6", trade_id="t2"))
    assert order.apply(filled("6", trade_id="t2")) is False
    assert order.status is S.FILLED and order.filled_qty == D(10)


def test_fill_straight_from_submitted_learns_the_venue_order_id() -> None:
    order = order_in(S.SUBMITTED)
    order.apply(filled("10"))
    assert order.status is S.FILLED
    assert order.venue_order_id == "v-1"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("symbol", "MSFT"),
        ("side", OrderSide.SELL),
        ("venue", "alpaca"),
        ("venue_order_id", "v-other"),
    ],
)
def test_fill_that_does_not_match_the_order_is_refused(field: str, value: object) -> None:
    order = order_in(S.ACCEPTED)
    before = snapshot(order)
    fill = Fill(**fill_fields(**{field: value}))
    with pytest.raises(InvariantViolation, match=field):
        order.apply(OrderFilled.of(fill))
    assert snapshot(order) == before


# -- construction ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"qty": D(0)}, "qty must be > 0"),
        ({"qty": D("-1")}, "qty must be > 0"),
        ({"qty": D("NaN")}, "finite"),
        ({"limit_price": None}, "limit order needs a limit_price"),
        ({"limit_price": D(0)}, "limit_price must be > 0"),
        ({"stop_price": D(90)}, "limit order must not have a stop_price"),
        ({"type": OrderType.MARKET}, "market order must not have a limit_price"),
        ({"type": OrderType.MARKET, "limit_price": None, "stop_price": D(1)}, "stop_price"),
        ({"type": OrderType.STOP, "limit_price": None}, "stop order needs a stop_price"),
        ({"type": OrderType.STOP, "stop_price": D(90)}, "must not have a limit_price"),
        ({"type": OrderType.STOP, "limit_price": None, "stop_price": D(-1)}, "stop_price"),
        ({"type": OrderType.STOP_LIMIT}, "stop_limit order needs a stop_price"),
        ({"type": OrderType.STOP_LIMIT, "limit_price": None, "stop_price": D(1)}, "limit_price"),
        ({"client_order_id": ""}, "client_order_id"),
        ({"symbol": " "}, "symbol"),
        ({"side": "hold"}, "hold"),
        ({"created_ns": -1}, "created_ns"),
    ],
)
def test_invalid_orders_are_refused_with_a_clear_message(
    overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_order(**overrides)


def test_float_quantities_are_refused() -> None:
    with pytest.raises(TypeError, match="qty must be a Decimal"):
        make_order(qty=1.5)


def test_valid_orders_of_every_type() -> None:
    market = make_order(type=OrderType.MARKET, limit_price=None, time_in_force="ioc")
    stop = make_order(type=OrderType.STOP, limit_price=None, stop_price=D(95))
    stop_limit = make_order(type=OrderType.STOP_LIMIT, stop_price=D(95), limit_price=D(94))
    assert market.time_in_force is TimeInForce.IOC and market.limit_price is None
    assert stop.stop_price == D(95) and stop.limit_price is None
    assert (stop_limit.stop_price, stop_limit.limit_price) == (D(95), D(94))
    assert make_order(side="sell").side is OrderSide.SELL
    fresh = make_order()
    assert fresh.status is S.INITIALIZED and fresh.updated_ns == 1_000
    assert fresh.avg_fill_price is None and fresh.time_in_force is TimeInForce.DAY


def test_signed_and_notional_helpers() -> None:
    sell = make_order(side=OrderSide.SELL, qty=D("2.5"), limit_price=D("40"))
    assert sell.signed_qty == D("-2.5")
    assert sell.limit_notional == D("100.0")
    assert sell.notional_at(D("41")) == D("102.5")
    sell.apply(SUBMIT)
    sell.apply(ACCEPT)
    sell.apply(OrderFilled.of(make_fill("1", side=OrderSide.SELL)))
    assert sell.signed_filled_qty == D(-1)
    assert sell.signed_leaves_qty == D("-1.5")
    assert sell.leaves_notional_at(D("40")) == D("60.0")
    assert make_order(type=OrderType.MARKET, limit_price=None).limit_notional is None
    assert OrderSide.BUY.sign == 1 and OrderSide.SELL.sign == -1
    assert OrderSide.BUY.opposite is OrderSide.SELL


# -- fills and events as values ---------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "error", "message"),
    [
        ({"qty": D(0)}, ValueError, "fill qty must be > 0"),
        ({"price": D("-1")}, ValueError, "fill price must be > 0"),
        ({"fee": D("-0.01")}, ValueError, "fill fee must be >= 0"),
        ({"price": 100.0}, TypeError, "fill price must be a Decimal"),
        ({"liquidity": "both"}, ValueError, "liquidity"),
        ({"trade_id": ""}, ValueError, "trade_id"),
        ({"ts_ns": -5}, ValueError, "ts_ns"),
    ],
)
def test_invalid_fills_are_refused(
    overrides: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Fill(**fill_fields(**overrides))


def test_fill_derived_values() -> None:
    buy = make_fill("2", "10.5", fee="0.1", liquidity="maker")
    sell = make_fill("2", "10.5", fee="0.1", side=OrderSide.SELL)
    assert (buy.signed_qty, sell.signed_qty) == (D(2), D(-2))
    assert buy.notional == D("21.0")
    assert buy.cash_flow == D("-21.1") and sell.cash_flow == D("20.9")
    assert Fill(**fill_fields(side="sell")).side is OrderSide.SELL


def test_events_validate_their_fields() -> None:
    with pytest.raises(ValueError, match="denial reason"):
        OrderDenied(CID, 1, reason="")
    with pytest.raises(ValueError, match="rejection reason"):
        OrderRejected(CID, 1, reason=" ")
    with pytest.raises(ValueError, match="venue_order_id"):
        OrderAccepted(CID, 1, venue_order_id="")
    with pytest.raises(ValueError, match="ts_ns"):
        OrderSubmitted(CID, -1)
    with pytest.raises(ValueError, match="carries a fill of order"):
        OrderFilled("another", 1, fill=make_fill("1"))
    with pytest.raises(AttributeError):
        SUBMIT.ts_ns = 5  # type: ignore[misc]


# -- the error tree -----------------------------------------------------------------


def test_error_tree_supports_retry_decisions() -> None:
    limited = RateLimitedError("429 from venue", retry_after=1.5)
    assert isinstance(limited, TransientError) and isinstance(limited, TrademkError)
    assert limited.retry_after == 1.5
    assert RateLimitedError().retry_after is None
    assert not isinstance(RejectedError("no"), TransientError)
    assert (
        RejectedError("venue said no", reason="insufficient funds").reason == "insufficient funds"
    )
    assert issubclass(IllegalOrderTransition, InvariantViolation)
    assert not issubclass(InvariantViolation, TransientError)
    with pytest.raises(ValueError, match="retry_after"):
        RateLimitedError(retry_after=-1)
