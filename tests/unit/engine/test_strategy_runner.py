"""The live strategy runner: bars → strategy → risk → OMS → paper venue → fills back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from tests.support.paper_chain import paper_chain
from trademk.backtest.event_support import InMemoryJournal
from trademk.domain.fills import Fill
from trademk.domain.market import NANOS_PER_SECOND, AssetClass, Bar, Tick, TickKind
from trademk.domain.orders import Order, OrderStatus
from trademk.engine.bus import InProcessBus, Subscription
from trademk.engine.clock import SimClock
from trademk.engine.journal_writer import JournalWriter
from trademk.engine.oms import OrderManager
from trademk.engine.price_cache import LatestPriceCache
from trademk.engine.strategy_legs import strategy_order_id
from trademk.engine.strategy_runner import RunnerOptions, StrategyRunner, StrategyState
from trademk.engine.strategy_spec import StrategyConfigError, StrategySpec
from trademk.strategies import Param, Sizing, Strategy
from trademk.strategies.sma_cross import SmaCross

T0 = 1_767_225_600 * NANOS_PER_SECOND  # 2026-01-01T00:00:00Z
MINUTE = 60 * NANOS_PER_SECOND


class Scripted(Strategy):
    """Does one action per decision bar: ``buy``, ``sell``, ``close`` or ``-``."""

    actions = Param("", doc="comma-separated actions, one per decision bar")
    fail_on_fill = Param(False, doc="raise in on_fill")

    def on_start(self) -> None:
        self.decided: list[Bar] = []

    def on_bar(self, bar: Bar) -> None:
        steps = self.actions.split(",")
        action = steps[len(self.decided)] if len(self.decided) < len(steps) else "-"
        self.decided.append(bar)
        if action == "buy":
            self.buy(Sizing.units(1))
        elif action == "sell":
            self.sell(Sizing.units(1))
        elif action == "close":
            self.close()
        elif action == "boom":
            raise RuntimeError("the strategy broke")

    def on_fill(self, fill: Fill) -> None:
        if self.fail_on_fill:
            raise ValueError("cannot handle fills")


class BrokenStart(Strategy):
    """Raises while starting."""

    def on_start(self) -> None:
        raise LookupError("no such thing")


STRATEGIES: dict[str, type[Strategy]] = {
    "scripted": Scripted,
    "sma_cross": SmaCross,
    "broken_start": BrokenStart,
}


def resolve(name: str) -> type[Strategy]:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r}") from None


async def drain(subscription: Subscription) -> list[Mapping[str, Any]]:
    """The payloads waiting in ``subscription``."""
    return [(await subscription.get())[1] for _ in range(subscription.pending())]


@dataclass
class Latencies:
    seen: list[float] = field(default_factory=list)

    def observe_tick_to_order(self, seconds: float) -> None:
        self.seen.append(seconds)


@dataclass
class Env:
    clock: SimClock
    prices: LatestPriceCache
    oms: OrderManager
    journal: InMemoryJournal
    writer: JournalWriter
    bus: InProcessBus
    runner: StrategyRunner
    latencies: Latencies
    states: list[tuple[str, StrategyState, str | None]]

    async def trade(self, symbol: str, ts: int, price: float, received: int = 0) -> None:
        self.clock.set(max(ts, self.clock.now_ns()))
        self.prices.update(Tick(symbol, "X", TickKind.TRADE, ts, price, 1.0, received=received))
        await self.runner.idle()

    async def minutes(self, symbol: str, prices: list[float], start: int = T0) -> None:
        """One trade per minute at each price (each closes the previous minute's bar)."""
        for k, price in enumerate(prices):
            await self.trade(symbol, start + k * MINUTE + NANOS_PER_SECOND, price)

    async def orders(self) -> list[Order]:
        await self.writer.flush()
        every = [await self.journal.order(cid) for cid in await self.journal.client_order_ids()]
        return sorted((o for o in every if o is not None), key=lambda o: o.created_ns)


def spec(
    sid: str = "s1",
    strategy_class: str = "scripted",
    symbols: tuple[str, ...] = ("BTCUSDT",),
    interval: str = "1m",
    capital: str = "1000",
    **params: Any,
) -> StrategySpec:
    return StrategySpec(
        strategy_id=sid,
        name=f"name-{sid}",
        strategy_class=strategy_class,
        symbols=symbols,
        interval=interval,
        capital=Decimal(capital),
        params=params,
    )


async def make_env(journal: InMemoryJournal | None = None) -> tuple[Env, Any]:
    clock = SimClock(T0)
    prices = LatestPriceCache()
    journal = journal or InMemoryJournal()
    classes = {"BTCUSDT": AssetClass.CRYPTO, "ETHUSDT": AssetClass.CRYPTO}
    chain = paper_chain(clock, prices, classes, journal=journal)
    oms = chain.oms
    await chain.start()
    states: list[tuple[str, StrategyState, str | None]] = []

    async def on_state(sid: str, state: StrategyState, error: str | None) -> None:
        states.append((sid, state, error))

    bus = InProcessBus()
    latencies = Latencies()
    runner = StrategyRunner(
        oms,
        prices,
        clock,
        bus,
        on_state=on_state,
        metrics=latencies,
        options=RunnerOptions(close_interval=3600),
        resolve=resolve,
    )
    await runner.start()

    async def close() -> None:
        await runner.stop()
        await chain.stop()

    return Env(clock, prices, oms, journal, chain.writer, bus, runner, latencies, states), close


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    made, close = await make_env()
    try:
        yield made
    finally:
        await close()


async def test_bars_become_orders_tagged_with_the_strategy_and_fills_come_back(env: Env) -> None:
    events = env.bus.subscribe("strategies")
    running = await env.runner.start_strategy(spec(actions="buy,-,sell"))
    await env.minutes("BTCUSDT", [100.0, 101.0, 102.0, 103.0, 104.0, 105.0])
    orders = await env.orders()
    # Bar 0 is the warm-up; decisions on bars 1 and 3 execute at the next trades.
    assert [(o.side.value, o.qty, o.strategy_id, o.status) for o in orders] == [
        ("buy", Decimal(1), "s1", OrderStatus.FILLED),
        ("sell", Decimal(1), "s1", OrderStatus.FILLED),
    ]
    assert [o.avg_fill_price for o in orders] == [Decimal("102.0"), Decimal("104.0")]
    assert [o.client_order_id for o in orders] == [
        strategy_order_id("s1", "BTCUSDT", T0 + MINUTE, 1),
        strategy_order_id("s1", "BTCUSDT", T0 + 3 * MINUTE, 1),
    ]
    assert orders[0].client_order_id == f"s1-BTCUSDT-{(T0 + MINUTE) // NANOS_PER_SECOND}-1"
    assert running.book.qty("BTCUSDT") == 0
    assert running.book.performance().realized_pnl == Decimal(2)
    kinds = [payload["kind"] for payload in await drain(events)]
    assert kinds == ["started", "order", "order"]


async def test_entries_are_sized_against_the_strategys_capital_not_the_account(env: Env) -> None:
    await env.runner.start_strategy(
        StrategySpec("s2", "all-in", "sma_cross", ("BTCUSDT",), "1m", Decimal("1000"),
                     {"fast": 1, "slow": 2, "allow_short": False})
    )  # fmt: skip
    await env.minutes("BTCUSDT", [100.0, 90.0, 110.0, 120.0])
    (order,) = await env.orders()
    assert order.strategy_id == "s2"
    # all-in at 120 with 1000 of capital: 8.3333 units (lot 0.0001), not 100000 / 120.
    assert order.qty == Decimal("8.3333")


async def test_several_symbols_share_the_capital_equally(env: Env) -> None:
    params = {"fast": 1, "slow": 2, "allow_short": False}
    await env.runner.start_strategy(
        StrategySpec("s1", "pair", "sma_cross", ("BTCUSDT", "ETHUSDT"), "1m", Decimal("1000"),
                     params)
    )  # fmt: skip
    for k, price in enumerate([100.0, 90.0, 110.0, 120.0]):
        await env.trade("BTCUSDT", T0 + k * MINUTE + 1, price)
        await env.trade("ETHUSDT", T0 + k * MINUTE + 2, price / 10)
    orders = await env.orders()
    assert {o.symbol: o.qty for o in orders} == {
        "BTCUSDT": Decimal("4.1666"),
        "ETHUSDT": Decimal("41.6666"),
    }


async def test_multiples_of_a_minute_are_resampled_and_aligned_to_utc(env: Env) -> None:
    running = await env.runner.start_strategy(spec(interval="5m", actions="buy"))
    # One trade a minute from 00:02 to 00:16: 5m bars at 00:00 (partial, the warm-up),
    # 00:05 and 00:10; the first decision is on 00:05.
    await env.minutes("BTCUSDT", [100.0 + k for k in range(15)], start=T0 + 2 * MINUTE)
    strategy = running.legs["BTCUSDT"].strategy
    assert isinstance(strategy, Scripted)
    decided = strategy.decided
    assert [(b.interval, b.ts) for b in decided] == [
        ("5m", T0 + 5 * MINUTE),
        ("5m", T0 + 10 * MINUTE),
    ]
    assert (decided[0].open, decided[0].close) == (103.0, 107.0)
    (order,) = await env.orders()
    assert order.client_order_id == strategy_order_id("s1", "BTCUSDT", T0 + 5 * MINUTE, 1)


async def test_a_raising_strategy_is_stopped_with_its_error_and_others_go_on(env: Env) -> None:
    events = env.bus.subscribe("strategies")
    await env.runner.start_strategy(spec("bad", actions="-,boom"))
    await env.runner.start_strategy(spec("good", actions="-,-,buy"))
    await env.minutes("BTCUSDT", [100.0, 101.0, 102.0, 103.0, 104.0, 105.0])
    assert not env.runner.is_running("bad")
    assert env.runner.is_running("good")
    assert ("bad", StrategyState.ERROR, "RuntimeError: the strategy broke") in env.states
    assert [(o.strategy_id, o.side.value) for o in await env.orders()] == [("good", "buy")]
    errors = [p for p in await drain(events) if p["kind"] == "error"]
    assert [(e["strategy_id"], e["error"]) for e in errors] == [
        ("bad", "RuntimeError: the strategy broke")
    ]


async def test_a_strategy_whose_on_fill_raises_is_stopped(env: Env) -> None:
    await env.runner.start_strategy(spec(actions="buy", fail_on_fill=True))
    await env.minutes("BTCUSDT", [100.0, 101.0, 102.0, 103.0])
    assert not env.runner.is_running("s1")
    assert env.states[-1] == ("s1", StrategyState.ERROR, "ValueError: cannot handle fills")


async def test_client_order_ids_are_deterministic_so_a_restart_never_submits_twice() -> None:
    journal = InMemoryJournal()
    prices = [100.0, 101.0, 102.0, 103.0, 104.0, 105.0]
    first, close_first = await make_env(journal)
    await first.runner.start_strategy(spec(actions="buy,-,sell"))
    await first.minutes("BTCUSDT", prices)
    ids = [o.client_order_id for o in await first.orders()]
    await close_first()
    # A restart over the same journal deciding again on the same bars submits nothing new.
    second, close_second = await make_env(journal)
    try:
        await second.runner.start_strategy(spec(actions="buy,-,sell"))
        await second.minutes("BTCUSDT", prices)
        assert [o.client_order_id for o in await second.orders()] == ids
        assert second.oms.counters["submitted"] == 0
    finally:
        await close_second()


async def test_stop_runs_on_stop_and_no_more_bars_reach_the_strategy(env: Env) -> None:
    running = await env.runner.start_strategy(spec(actions="-,-,-"))
    await env.minutes("BTCUSDT", [100.0, 101.0, 102.0])
    assert await env.runner.stop_strategy("s1")
    assert not await env.runner.stop_strategy("s1")
    await env.minutes("BTCUSDT", [103.0, 104.0], start=T0 + 3 * MINUTE)
    strategy = running.legs["BTCUSDT"].strategy
    assert isinstance(strategy, Scripted)
    assert len(strategy.decided) == 1
    assert env.states[-1] == ("s1", StrategyState.STOPPED, None)


async def test_tick_to_order_latency_is_measured_from_the_closing_ticks_receipt(env: Env) -> None:
    await env.runner.start_strategy(spec(actions="buy"))
    await env.trade("BTCUSDT", T0 + 1, 100.0)
    await env.trade("BTCUSDT", T0 + MINUTE + 1, 101.0)
    env.clock.set(T0 + 2 * MINUTE + 250_000_000)
    # The tick closing bar 1 was received 250 ms before the (simulated) now.
    await env.trade("BTCUSDT", T0 + 2 * MINUTE, 102.0, received=T0 + 2 * MINUTE)
    assert env.latencies.seen == [pytest.approx(0.25)]


async def test_stored_bars_warm_a_strategy_up_before_live_bars_arrive(env: Env) -> None:
    class Store:
        async def bars(
            self,
            symbol: str,
            interval: str,
            start: int | None = None,
            end: int | None = None,
            limit: int = 1000,
            exchange: str | None = None,
        ) -> list[Bar]:
            closes = [100.0, 100.0, 90.0, 80.0]  # falling: the fast SMA is below the slow
            return [
                Bar(symbol, "X", interval, T0 + k * MINUTE, c, c, c, c, 1.0, c)
                for k, c in enumerate(closes)
            ]

    env.clock.set(T0 + 4 * MINUTE + 1)
    env.runner.history = Store()
    await env.runner.start_strategy(
        StrategySpec("s1", "warm", "sma_cross", ("BTCUSDT",), "1m", Decimal("1000"),
                     {"fast": 1, "slow": 3, "allow_short": False})
    )  # fmt: skip
    # The first live bar crosses up at once: no warm-up wait.
    await env.minutes("BTCUSDT", [120.0, 121.0], start=T0 + 4 * MINUTE)
    (order,) = await env.orders()
    # The entry is the second intent of the bar (a close of nothing comes first).
    assert order.client_order_id == strategy_order_id("s1", "BTCUSDT", T0 + 4 * MINUTE, 2)


async def test_an_unknown_strategy_or_bad_parameter_is_refused_with_a_clear_message(
    env: Env,
) -> None:
    with pytest.raises(StrategyConfigError, match="unknown strategy 'nope'"):
        await env.runner.start_strategy(spec(strategy_class="nope"))
    with pytest.raises(StrategyConfigError, match="'slow' must be <= 100000"):
        await env.runner.start_strategy(spec(strategy_class="sma_cross", slow=10**6))
    with pytest.raises(StrategyConfigError, match="unsupported interval '2m'"):
        await env.runner.start_strategy(spec(interval="2m"))
    with pytest.raises(StrategyConfigError, match="failed to start: LookupError: no such thing"):
        await env.runner.start_strategy(spec(strategy_class="broken_start"))
    assert env.runner.running() == []
