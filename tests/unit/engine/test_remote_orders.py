"""Orders sent across processes: the strategies side's copy follows what the OMS publishes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.support.paper_chain import paper_chain
from trademk.domain.fills import Fill
from trademk.domain.market import NANOS_PER_SECOND, AssetClass, Tick, TickKind
from trademk.domain.order_events import OrderFilled
from trademk.domain.orders import Order, OrderSide, OrderStatus, OrderType
from trademk.domain.signals import OrderRequest
from trademk.engine.bus import InProcessBus
from trademk.engine.clock import SimClock
from trademk.engine.fill_relay import fill_of
from trademk.engine.oms import OrderManager, fill_payload, order_payload
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.remote_orders import RemoteOrderGateway
from trademk.engine.risk_engine import RiskEngine
from trademk.engine.signal_queue import InProcessSignalQueue
from trademk.engine.strategy_running import RunnerOptions, settle

T0 = 1_767_225_600 * NANOS_PER_SECOND  # 2026-01-01T00:00:00Z
CLASSES = {"BTCUSDT": AssetClass.CRYPTO, "AAPL": AssetClass.STOCK}
QUICK = RunnerOptions(settle_timeout=2.0, settle_poll=0.001)


def request(cid: str, **terms: object) -> OrderRequest:
    values: dict[str, object] = {
        "client_order_id": cid,
        "symbol": "BTCUSDT",
        "side": OrderSide.BUY,
        "qty": Decimal("0.5"),
        "strategy_id": "s1",
    }
    values.update(terms)
    return OrderRequest(**values)  # type: ignore[arg-type]


@dataclass
class Sides:
    """An execution side (OMS + paper venue consuming the signal queue) and the gateway."""

    clock: SimClock
    prices: LatestPriceCache
    oms: OrderManager
    risk: RiskEngine
    gateway: RemoteOrderGateway
    fills: list[tuple[Order, OrderFilled]]


@pytest.fixture
async def sides() -> AsyncIterator[Sides]:
    clock = SimClock(T0)
    prices = LatestPriceCache()
    prices.update(Tick("BTCUSDT", "X", TickKind.TRADE, T0, 100.0, 1.0))
    bus = InProcessBus()
    chain = paper_chain(clock, prices, CLASSES, events=bus)
    oms = chain.oms
    signals = InProcessSignalQueue()
    gateway = RemoteOrderGateway(signals, bus, clock, chain.venue.name, CLASSES)
    fills: list[tuple[Order, OrderFilled]] = []
    gateway.on_fill(lambda order, event: fills.append((order, event)))
    await chain.start()
    await gateway.start()

    async def execute(req: OrderRequest) -> None:
        await oms.submit(req)

    consumer = asyncio.create_task(signals.consume(execute))
    try:
        yield Sides(clock, prices, oms, chain.risk, gateway, fills)
    finally:
        consumer.cancel()
        await gateway.stop()
        await chain.stop()


async def test_a_market_order_goes_from_initialized_to_filled_and_its_fill_is_heard(
    sides: Sides,
) -> None:
    order = await sides.gateway.submit(request("m1"))
    assert order.status is OrderStatus.INITIALIZED
    assert await settle(order, QUICK)
    assert order.status is OrderStatus.FILLED
    executed = sides.oms.order("m1")
    assert executed is not None
    assert order.filled_qty == executed.filled_qty == Decimal("0.5")
    assert order.avg_fill_price == executed.avg_fill_price
    assert order.venue_order_id == executed.venue_order_id
    assert [(o.client_order_id, e.fill.qty) for o, e in sides.fills] == [("m1", Decimal("0.5"))]
    assert sides.fills[0][1].fill.strategy_id == "s1"
    assert sides.gateway.open_orders() == []


async def test_submitting_the_same_id_twice_sends_one_order(sides: Sides) -> None:
    first = await sides.gateway.submit(request("dup"))
    second = await sides.gateway.submit(request("dup"))
    assert first is second
    await settle(first, QUICK)
    assert sides.gateway.counters["submitted"] == 1
    assert sides.oms.counters["submitted"] == 1


async def test_a_denied_order_settles_with_the_risk_reason(sides: Sides) -> None:
    sides.risk.halt("maintenance")
    order = await sides.gateway.submit(request("d1"))
    assert await settle(order, QUICK)
    assert order.status is OrderStatus.DENIED
    assert order.reason is not None and "maintenance" in order.reason
    assert sides.fills == []


async def test_a_resting_limit_order_settles_once_accepted_and_fills_later(sides: Sides) -> None:
    order = await sides.gateway.submit(request("l1", type=OrderType.LIMIT, limit_price=Decimal(90)))
    assert await settle(order, QUICK)
    assert order.status is OrderStatus.ACCEPTED
    sides.prices.update(Tick("BTCUSDT", "X", TickKind.TRADE, T0 + 1, 89.0, 1.0))
    for _ in range(200):
        if order.status is OrderStatus.FILLED:
            break
        await asyncio.sleep(0.005)
    assert order.status is OrderStatus.FILLED
    assert [e.fill.client_order_id for _, e in sides.fills] == ["l1"]


# ---------------------------------------------------------------- exact payloads


@dataclass
class Wire:
    bus: InProcessBus
    gateway: RemoteOrderGateway
    signals: InProcessSignalQueue
    fills: list[tuple[Order, OrderFilled]]

    async def turn(self) -> None:
        """Let the gateway take everything published so far."""
        for _ in range(5):
            await asyncio.sleep(0)


@pytest.fixture
async def wire() -> AsyncIterator[Wire]:
    bus = InProcessBus()
    signals = InProcessSignalQueue()
    gateway = RemoteOrderGateway(signals, bus, SimClock(T0), "paper", CLASSES, keep_finished=2)
    fills: list[tuple[Order, OrderFilled]] = []
    gateway.on_fill(lambda order, event: fills.append((order, event)))
    await gateway.start()
    try:
        yield Wire(bus, gateway, signals, fills)
    finally:
        await gateway.stop()


def fill(cid: str, trade_id: str, qty: str, price: str = "100") -> Fill:
    return Fill(
        client_order_id=cid,
        venue_order_id=f"v-{cid}",
        trade_id=trade_id,
        symbol="BTCUSDT",
        side=OrderSide.BUY,
        qty=Decimal(qty),
        price=Decimal(price),
        fee=Decimal("0.01"),
        ts_ns=T0 + 5,
        venue="paper",
        strategy_id="s1",
    )


def status(order: Order, new_status: str, **fields: object) -> dict[str, object]:
    """The ``orders`` payload the OMS would publish for ``order`` in ``new_status``."""
    return {**order_payload(order), "status": new_status, **fields}


async def test_a_fill_before_submitted_applies_submitted_first_and_late_statuses_are_ignored(
    wire: Wire,
) -> None:
    order = await wire.gateway.submit(request("o1"))
    before = status(order, "submitted")
    accepted = status(order, "accepted", venue_order_id="v-o1")
    wire.bus.publish("fills", fill_payload(fill("o1", "t1", "0.2")))
    await wire.turn()
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.submitted_ns is not None
    wire.bus.publish("orders", before)
    wire.bus.publish("orders", accepted)
    await wire.turn()
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.accepted_ns is None
    assert wire.gateway.counters["ignored"] == 2
    wire.bus.publish("fills", fill_payload(fill("o1", "t2", "0.3")))
    await wire.turn()
    assert order.status is OrderStatus.FILLED
    assert [e.fill.trade_id for _, e in wire.fills] == ["t1", "t2"]


async def test_a_duplicate_fill_is_applied_and_heard_once(wire: Wire) -> None:
    order = await wire.gateway.submit(request("o2"))
    wire.bus.publish("orders", status(order, "submitted"))
    wire.bus.publish("orders", status(order, "accepted", venue_order_id="v-o2"))
    first = fill_payload(fill("o2", "t1", "0.2"))
    wire.bus.publish("fills", first)
    wire.bus.publish("fills", dict(first))
    await wire.turn()
    assert order.status is OrderStatus.PARTIALLY_FILLED
    assert order.filled_qty == Decimal("0.2")
    assert len(wire.fills) == 1
    wire.bus.publish("fills", fill_payload(fill("o2", "t2", "0.3")))
    await wire.turn()
    assert order.status is OrderStatus.FILLED
    assert [e.fill.trade_id for _, e in wire.fills] == ["t1", "t2"]


async def test_a_cancel_that_overtook_the_last_fill_waits_for_it(wire: Wire) -> None:
    order = await wire.gateway.submit(request("o3", qty=Decimal(1)))
    wire.bus.publish("orders", status(order, "submitted"))
    wire.bus.publish("orders", status(order, "accepted", venue_order_id="v-o3"))
    wire.bus.publish("orders", status(order, "canceled", filled_qty="0.4", reason="user"))
    await wire.turn()
    assert order.is_open  # the partial fill it reports has not arrived yet
    wire.bus.publish("fills", fill_payload(fill("o3", "t1", "0.4")))
    await wire.turn()
    assert order.status is OrderStatus.CANCELED
    assert order.filled_qty == Decimal("0.4")
    assert order.reason == "user"
    assert [e.fill.qty for _, e in wire.fills] == [Decimal("0.4")]


async def test_rejected_and_expired_orders_finish(wire: Wire) -> None:
    rejected = await wire.gateway.submit(request("r1"))
    expired = await wire.gateway.submit(request("x1", type=OrderType.LIMIT, limit_price=Decimal(1)))
    wire.bus.publish("orders", status(rejected, "submitted"))
    wire.bus.publish("orders", status(rejected, "rejected", reason="insufficient funds"))
    wire.bus.publish("orders", status(expired, "accepted", venue_order_id="v-x1"))
    wire.bus.publish("orders", status(expired, "expired"))
    await wire.turn()
    assert rejected.status is OrderStatus.REJECTED
    assert rejected.reason == "insufficient funds"
    assert expired.status is OrderStatus.EXPIRED
    assert expired.submitted_ns is not None  # accepted implies it was submitted
    assert wire.gateway.open_orders() == []


async def test_malformed_and_foreign_events_change_nothing_and_do_not_stop_it(wire: Wire) -> None:
    order = await wire.gateway.submit(request("o4"))
    wire.bus.publish("orders", status(order, "no-such-status"))
    wire.bus.publish("orders", {"client_order_id": "o4"})
    wire.bus.publish("fills", {"client_order_id": "o4", "qty": "x"})
    wire.bus.publish("fills", fill_payload(fill("someone-else", "t9", "1")))
    wire.bus.publish("orders", status(order, "filled", filled_qty="0.5"))  # the fill carries it
    await wire.turn()
    assert order.status is OrderStatus.SUBMITTED  # "filled" says the worker took it
    assert wire.gateway.counters["malformed"] == 3
    wire.bus.publish("fills", fill_payload(fill("o4", "t1", "0.5")))
    await wire.turn()
    assert order.status is OrderStatus.FILLED
    assert len(wire.fills) == 1


async def test_finished_orders_are_forgotten_beyond_the_bound(wire: Wire) -> None:
    orders = [await wire.gateway.submit(request(f"b{n}")) for n in range(3)]
    for n, order in enumerate(orders):
        wire.bus.publish("fills", fill_payload(fill(order.client_order_id, f"t{n}", "0.5")))
    await wire.turn()
    assert all(o.status is OrderStatus.FILLED for o in orders)
    assert wire.gateway.order("b0") is None  # keep_finished=2
    assert wire.gateway.order("b1") is orders[1]
    assert wire.gateway.order("b2") is orders[2]


async def test_a_fill_payload_reads_back_as_the_same_fill() -> None:
    original = fill("o5", "t1", "0.25", price="123.456789")
    assert fill_of(fill_payload(original)) == original
    with pytest.raises(KeyError):
        fill_of({"client_order_id": "o5"})


async def test_orders_still_open_from_an_earlier_run_are_followed() -> None:
    class Journal:
        async def open_orders(self) -> list[Order]:
            mine = request("old").to_order("paper", T0, AssetClass.CRYPTO)
            manual = request("manual", strategy_id=None).to_order("paper", T0, AssetClass.CRYPTO)
            return [mine, manual]

    bus = InProcessBus()
    gateway = RemoteOrderGateway(
        InProcessSignalQueue(), bus, SimClock(T0), "paper", CLASSES, open_orders=Journal()
    )
    heard: list[str] = []
    gateway.on_fill(lambda order, event: heard.append(event.fill.trade_id))
    await gateway.start()
    try:
        bus.publish("fills", fill_payload(fill("old", "t1", "0.5")))
        bus.publish("fills", fill_payload(fill("manual", "t2", "0.5")))
        for _ in range(5):
            await asyncio.sleep(0)
    finally:
        await gateway.stop()
    assert heard == ["t1"]
    assert gateway.order("manual") is None


class JournaledFills:
    """The trading journal's fills, as ``TradingRepository`` answers for them."""

    def __init__(self) -> None:
        self.rows: list[tuple[datetime, Fill]] = []

    def store(self, fill: Fill) -> None:
        self.rows.append(
            (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=len(self.rows)), fill)
        )

    async def fills_recorded_since(
        self, venue: str, since: datetime | None
    ) -> tuple[list[Fill], datetime | None]:
        found = [
            (at, f) for at, f in self.rows if f.venue == venue and (since is None or at >= since)
        ]
        return [f for _, f in found], max((at for at, _ in found), default=None)

    async def newest_fill_recorded(self, venue: str) -> datetime | None:
        return max((at for at, f in self.rows if f.venue == venue), default=None)


async def test_a_fill_the_bus_lost_reaches_the_strategy_from_the_journal_once() -> None:
    bus = InProcessBus()
    journal = JournaledFills()
    journal.store(fill("before", "t0", "1"))  # an earlier run's: not followed again
    gateway = RemoteOrderGateway(
        InProcessSignalQueue(), bus, SimClock(T0), "paper", CLASSES, stored_fills=journal
    )
    heard: list[str] = []
    gateway.on_fill(lambda _order, event: heard.append(event.fill.trade_id))
    await gateway.start()
    try:
        order = await gateway.submit(request("lost", qty=Decimal("0.5")))
        journal.store(fill("lost", "t1", "0.5"))  # journaled; its bus event never came
        assert order.status is OrderStatus.INITIALIZED
        await gateway.resync()
        await gateway.resync()
        assert order.status is OrderStatus.FILLED
        assert heard == ["t1"]
    finally:
        await gateway.stop()
