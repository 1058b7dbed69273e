"""OrderSynchronizer: Alpaca order news → domain events, each exactly once."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from trademk.domain.order_events import (
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderFilled,
    OrderPendingCancel,
    OrderRejected,
    OrderSubmitted,
)
from trademk.domain.orders import Order, OrderSide, OrderStatus, OrderType, TimeInForce
from trademk.venues.alpaca.order_sync import OrderSynchronizer, synthesised_trade_id
from trademk.venues.alpaca.trading_schemas import (
    AlpacaOrder,
    TradeUpdate,
    parse_order,
    parse_trade_update,
)

CID, OID = "c-1", "9c1f3a52-0000-4000-8000-00000000000a"
T0 = "2024-06-03T14:00:00.000000Z"
T0_NS = 1_717_423_200_000_000_000


def ours(qty: str = "1") -> Order:
    return Order(
        client_order_id=CID,
        symbol="BTCUSDT",
        side=OrderSide.BUY,
        type=OrderType.LIMIT,
        qty=Decimal(qty),
        venue="alpaca",
        created_ns=1,
        limit_price=Decimal(70000),
        time_in_force=TimeInForce.GTC,
        strategy_id="s-1",
    )


def snapshot(
    status: str = "new", filled: str = "0", avg: str | None = None, qty: str = "1", **extra: Any
) -> AlpacaOrder:
    return parse_order(
        {
            "id": OID, "client_order_id": CID, "symbol": "BTC/USD", "asset_class": "crypto",
            "side": "buy", "type": "limit", "time_in_force": "gtc", "qty": qty,
            "limit_price": "70000", "status": status, "filled_qty": filled,
            "filled_avg_price": avg, "created_at": T0, "updated_at": T0, "submitted_at": T0,
            **extra,
        }
    )  # fmt: skip


def update(event: str, order: AlpacaOrder, **fill: str) -> TradeUpdate:
    data: dict[str, Any] = {
        "event": event,
        "order": {f: getattr(order, f) for f in order.__struct_fields__},
        "timestamp": "2024-06-03T14:00:01.000000001Z",
        **fill,
    }
    return parse_trade_update({"stream": "trade_updates", "data": data})


def tracking() -> OrderSynchronizer:
    sync = OrderSynchronizer("alpaca")
    sync.track(ours())
    return sync


def kinds(events: list[OrderEvent]) -> list[type]:
    return [type(e) for e in events]


def fills_of(events: list[OrderEvent]) -> list[tuple[str, Decimal, Decimal]]:
    return [
        (e.fill.trade_id, e.fill.qty, e.fill.price) for e in events if isinstance(e, OrderFilled)
    ]


def test_a_repeated_new_is_dropped() -> None:
    sync = tracking()
    first = sync.on_trade_update(update("new", snapshot()))

    assert kinds(first) == [OrderAccepted]
    assert isinstance(first[0], OrderAccepted) and first[0].venue_order_id == OID
    assert sync.on_trade_update(update("new", snapshot())) == []
    assert sync.on_snapshot(snapshot()) == []
    assert sync.duplicates == 2


def test_a_fill_update_becomes_a_fill_with_alpacas_execution_id() -> None:
    sync = tracking()
    sync.on_trade_update(update("new", snapshot()))
    done = snapshot("filled", "1", "69990.5")
    events = sync.on_trade_update(
        update("fill", done, execution_id="ex-1", price="69990.5", qty="1")
    )

    (event,) = events
    assert isinstance(event, OrderFilled)
    fill = event.fill
    assert (fill.trade_id, fill.qty, fill.price, fill.fee) == ("ex-1", 1, Decimal("69990.5"), 0)
    assert (fill.symbol, fill.side, fill.venue, fill.strategy_id) == (
        "BTCUSDT",
        OrderSide.BUY,
        "alpaca",
        "s-1",
    )
    assert (fill.venue_order_id, fill.ts_ns) == (OID, T0_NS + 1_000_000_001)
    assert sync.on_trade_update(update("fill", done, execution_id="ex-1", price="1", qty="1")) == []


def test_missed_fills_are_synthesised_once_and_later_real_fills_add_only_what_is_new() -> None:
    sync = tracking()
    sync.on_trade_update(update("new", snapshot()))
    # Two fills (0.25 @ 100, 0.25 @ 200) happened while we were not listening.
    caught_up = sync.on_snapshot(snapshot("partially_filled", "0.5", "150"))
    assert fills_of(caught_up) == [(synthesised_trade_id(OID, Decimal("0.5")), Decimal("0.5"), 150)]
    assert synthesised_trade_id(OID, Decimal("0.50")) == f"alpaca-sync-{OID}-0.5"

    # Late copies of those two fills add nothing; the next one is emitted as it is.
    late = snapshot("partially_filled", "0.25", "100")
    assert (
        sync.on_trade_update(
            update("partial_fill", late, execution_id="a", price="100", qty="0.25")
        )
        == []
    )
    now = snapshot("partially_filled", "0.75", "150")
    fresh = sync.on_trade_update(
        update("partial_fill", now, execution_id="c", price="150", qty="0.25")
    )
    assert fills_of(fresh) == [("c", Decimal("0.25"), Decimal(150))]
    assert sync.synthesised_fills == 1


def test_an_update_after_a_gap_emits_the_gap_then_its_own_execution() -> None:
    sync = tracking()
    sync.on_trade_update(update("new", snapshot()))
    # 0.4 @ 100 was missed; this update reports 0.6 @ 110 on top of it.
    done = snapshot("filled", "1", "106")
    events = sync.on_trade_update(update("fill", done, execution_id="x", price="110", qty="0.6"))

    assert fills_of(events) == [
        (synthesised_trade_id(OID, Decimal("0.4")), Decimal("0.4"), Decimal(100)),
        ("x", Decimal("0.6"), Decimal(110)),
    ]


def test_an_execution_partly_covered_by_a_catch_up_is_synthesised_for_the_rest_only() -> None:
    sync = tracking()
    sync.on_snapshot(snapshot("partially_filled", "0.3", "100"))
    events = sync.on_trade_update(
        update("partial_fill", snapshot("partially_filled", "0.5", "100"), execution_id="y",
               price="100", qty="0.5")
    )  # fmt: skip
    assert fills_of(events) == [(synthesised_trade_id(OID, Decimal("0.5")), Decimal("0.2"), 100)]


def test_fills_without_any_price_wait_for_one() -> None:
    sync = tracking()
    assert kinds(sync.on_snapshot(snapshot("partially_filled", "0.5", None))) == [OrderAccepted]
    assert fills_of(sync.on_snapshot(snapshot("partially_filled", "0.5", "10"))) == [
        (synthesised_trade_id(OID, Decimal("0.5")), Decimal("0.5"), Decimal(10))
    ]


def test_an_expiry_of_an_unacknowledged_order_acknowledges_it_first() -> None:
    sync = tracking()
    events = sync.on_trade_update(update("expired", snapshot("expired")))
    assert kinds(events) == [OrderAccepted, OrderExpired]
    assert sync.on_trade_update(update("done_for_day", snapshot("done_for_day"))) == []


def test_a_rejection_is_a_rejection_only_before_acceptance() -> None:
    early = tracking()
    (rejected,) = early.on_trade_update(update("rejected", snapshot("rejected")))
    assert isinstance(rejected, OrderRejected) and rejected.reason == "rejected by Alpaca"

    late = tracking()
    late.on_trade_update(update("new", snapshot()))
    (canceled,) = late.on_trade_update(update("rejected", snapshot("rejected")))
    assert isinstance(canceled, OrderCanceled) and "rejected" in canceled.reason


def test_cancel_news_follows_the_lifecycle_and_late_news_is_dropped() -> None:
    sync = tracking()
    sync.on_trade_update(update("new", snapshot()))
    assert kinds(sync.on_trade_update(update("pending_cancel", snapshot("pending_cancel")))) == [
        OrderPendingCancel
    ]
    (canceled,) = sync.on_trade_update(update("canceled", snapshot("canceled")))
    assert isinstance(canceled, OrderCanceled) and canceled.reason == "canceled at Alpaca"
    assert sync.on_trade_update(update("pending_cancel", snapshot("pending_cancel"))) == []
    assert sync.on_snapshot(snapshot("canceled", "0.5", "10")) == []  # fills after the end


def test_a_replaced_order_is_canceled_naming_its_replacement() -> None:
    sync = tracking()
    sync.on_trade_update(update("new", snapshot()))
    (event,) = sync.on_trade_update(update("replaced", snapshot("replaced", replaced_by="o-2")))
    assert isinstance(event, OrderCanceled) and event.reason == "replaced by Alpaca order o-2"


def test_a_seeded_order_reports_only_what_happens_after() -> None:
    sync = OrderSynchronizer("alpaca")
    sync.seed(snapshot("partially_filled", "0.5", "100"))
    events = sync.on_trade_update(
        update("fill", snapshot("filled", "1", "105"), execution_id="z", price="110", qty="0.5")
    )
    assert fills_of(events) == [("z", Decimal("0.5"), Decimal(110))]
    assert events[0].client_order_id == CID


def test_an_order_we_did_not_place_is_adopted_under_our_symbol() -> None:
    sync = OrderSynchronizer("alpaca")
    events = sync.on_trade_update(
        update("fill", snapshot("filled", "1", "105"), execution_id="w", price="105", qty="1")
    )
    assert kinds(events) == [OrderAccepted, OrderFilled]
    assert isinstance(events[1], OrderFilled) and events[1].fill.symbol == "BTCUSDT"


def test_finished_orders_are_forgotten_beyond_the_limit() -> None:
    sync = OrderSynchronizer("alpaca", max_finished=1)
    sync.track(ours())
    sync.on_snapshot(snapshot("canceled"))
    assert sync.get(CID) is not None
    other = parse_order({**{f: getattr(snapshot(), f) for f in AlpacaOrder.__struct_fields__},
                         "id": "o-2", "client_order_id": "c-2", "status": "canceled"})  # fmt: skip
    sync.on_snapshot(other)
    assert sync.get(CID) is None and sync.get("c-2") is not None


# -- exactly once, whatever is lost or repeated ---------------------------------------------

fill_sizes = st.lists(
    st.tuples(st.integers(1, 40), st.integers(1, 10_000)), min_size=1, max_size=6
)  # (qty in hundredths, price in cents)
deliveries = st.lists(st.tuples(st.integers(0, 2), st.booleans()), min_size=6, max_size=6)


@settings(max_examples=200, deadline=None)
@given(fills=fill_sizes, plan=deliveries, new_seen=st.booleans(), replay_all=st.booleans())
def test_every_fill_counts_exactly_once_however_news_is_lost_or_repeated(
    fills: list[tuple[int, int]],
    plan: list[tuple[int, bool]],
    new_seen: bool,
    replay_all: bool,
) -> None:
    qtys = [Decimal(q) / 100 for q, _ in fills]
    prices = [Decimal(p) / 100 for _, p in fills]
    total = sum(qtys, Decimal(0))
    sync = OrderSynchronizer("alpaca")
    sync.track(ours(str(total)))

    def state(k: int) -> AlpacaOrder:
        filled = sum(qtys[:k], Decimal(0))
        notional = sum((q * p for q, p in zip(qtys[:k], prices[:k], strict=True)), Decimal(0))
        status = "new" if k == 0 else "filled" if k == len(qtys) else "partially_filled"
        avg = str(notional / filled) if filled else None
        return snapshot(status, str(filled), avg, qty=str(total))

    updates = [update("new", state(0))] + [
        update("fill" if k == len(qtys) else "partial_fill", state(k),
               execution_id=f"ex-{k}", price=str(prices[k - 1]), qty=str(qtys[k - 1]))
        for k in range(1, len(qtys) + 1)
    ]  # fmt: skip
    emitted: list[OrderEvent] = []
    if new_seen:
        emitted += sync.on_trade_update(updates[0])
    for k, (times, catch_up) in enumerate(plan[: len(qtys)], start=1):
        for _ in range(times):
            emitted += sync.on_trade_update(updates[k])
        if catch_up:
            emitted += sync.on_snapshot(state(k))
    emitted += sync.on_snapshot(state(len(qtys)))  # the catch-up after a reconnect
    if replay_all:
        for each in updates:
            emitted += sync.on_trade_update(each)

    order = ours(str(total))
    order.apply(OrderSubmitted(CID, 1))
    for event in emitted:
        assert order.apply(event), f"{event} was a duplicate"
    exact = sum((q * p for q, p in zip(qtys, prices, strict=True)), Decimal(0)) / total
    assert order.status is OrderStatus.FILLED
    assert order.filled_qty == total
    assert order.avg_fill_price is not None
    assert abs(order.avg_fill_price - exact) <= exact * Decimal("1e-20")
    trade_ids = [trade_id for trade_id, _, _ in fills_of(emitted)]
    assert len(trade_ids) == len(set(trade_ids))
