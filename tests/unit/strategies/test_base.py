from __future__ import annotations

import numpy as np
import pytest

from trademk.domain.orders import OrderType
from trademk.strategies import (
    Bars,
    IntentKind,
    OrderIntent,
    Signals,
    Sizing,
    Strategy,
    StrategyError,
    get_strategy,
    register_strategy,
    strategy_names,
)
from trademk.strategies.registry import describe_strategies


class RecordingBroker:
    """A StrategyBroker that records intents and holds a settable position."""

    def __init__(self, position: float = 0.0) -> None:
        self.intents: list[OrderIntent] = []
        self.held = position

    def submit(self, intent: OrderIntent) -> None:
        self.intents.append(intent)

    def position(self) -> float:
        return self.held

    def equity(self) -> float:
        return 1_000.0

    def cash(self) -> float:
        return 1_000.0


def make_bars(closes: list[float]) -> Bars:
    n = len(closes)
    return Bars.from_arrays(np.arange(n) * 60_000_000_000, closes, closes, closes, closes)


class Scripted(Strategy):
    """Signals given by the test."""

    name = "scripted_test"

    def __init__(self, signals: Signals) -> None:
        super().__init__()
        self.scripted = signals

    def indicators(self, bars: Bars) -> dict[str, np.ndarray]:
        return {"close": np.asarray(bars.close)}

    def signals(self, bars: Bars, indicators: dict) -> Signals:
        return self.scripted


def test_order_api_emits_intents_with_type_and_bar() -> None:
    strategy = Strategy()
    broker = RecordingBroker()
    strategy.bind(broker)
    strategy.set_current_bar(4)
    strategy.buy()
    strategy.sell(0.5, limit=99.0)
    strategy.buy(10, stop=101.0, tag="breakout")
    strategy.buy(5, limit=102.0, stop=101.0)
    strategy.close()
    strategy.target_position(-3)
    kinds = [(i.kind, i.order_type) for i in broker.intents]
    assert kinds == [
        (IntentKind.BUY, OrderType.MARKET),
        (IntentKind.SELL, OrderType.LIMIT),
        (IntentKind.BUY, OrderType.STOP),
        (IntentKind.BUY, OrderType.STOP_LIMIT),
        (IntentKind.CLOSE, OrderType.MARKET),
        (IntentKind.TARGET, OrderType.MARKET),
    ]
    assert broker.intents[0].sizing == Sizing.all_in()
    assert broker.intents[1].sizing == Sizing.fraction(0.5)
    assert broker.intents[2].sizing == Sizing.units(10) and broker.intents[2].tag == "breakout"
    assert broker.intents[5].target == -3.0
    assert all(i.bar_index == 4 for i in broker.intents)


def test_using_the_order_api_unbound_is_an_error() -> None:
    with pytest.raises(StrategyError, match="not bound"):
        Strategy().buy()


def test_indicator_and_history_stop_at_the_current_bar() -> None:
    strategy = get_strategy("sma_cross")(fast=2, slow=3)
    strategy.prepare(make_bars([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    strategy.set_current_bar(3)
    assert len(strategy.indicator("sma_fast")) == 4
    assert strategy.history.close.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert strategy.warmup() == 2 and strategy.first_decision_bar == 3
    with pytest.raises(KeyError, match="known: sma_fast, sma_slow"):
        strategy.indicator("rsi")


def test_default_on_bar_acts_on_the_signals_given_the_position() -> None:
    signals = Signals.build(
        3, long_entries=[True, False, False], short_entries=[False, True, False],
        long_exits=[False, False, True],
    )  # fmt: skip
    strategy = Scripted(signals)
    broker = RecordingBroker()
    strategy.bind(broker)
    strategy.prepare(make_bars([1.0, 2.0, 3.0]))
    strategy.set_current_bar(0)
    strategy.on_bar(make_bars([1.0]).bar(0))
    assert [i.kind for i in broker.intents] == [IntentKind.CLOSE, IntentKind.BUY]
    broker.intents.clear()
    broker.held = 5.0
    strategy.set_current_bar(1)
    strategy.on_bar(make_bars([1.0]).bar(0))
    assert [i.kind for i in broker.intents] == [IntentKind.CLOSE, IntentKind.SELL]
    broker.intents.clear()
    strategy.set_current_bar(2)
    strategy.on_bar(make_bars([1.0]).bar(0))
    assert [i.kind for i in broker.intents] == [IntentKind.CLOSE]


def test_mismatched_indicator_length_is_reported() -> None:
    class Broken(Strategy):
        def indicators(self, bars: Bars) -> dict[str, np.ndarray]:
            return {"short": np.zeros(1)}

    with pytest.raises(StrategyError, match="indicator 'short'"):
        Broken().prepare(make_bars([1.0, 2.0]))


def test_registry_lists_builtins_and_refuses_clashes() -> None:
    assert {"sma_cross", "rsi_reversion", "donchian_breakout", "momentum"} <= set(strategy_names())
    with pytest.raises(KeyError, match="unknown strategy 'nope'"):
        get_strategy("nope")

    class Clash(Strategy):
        name = "sma_cross"

    with pytest.raises(ValueError, match="already registered"):
        register_strategy(Clash)
    described = {d["name"]: d for d in describe_strategies()}
    assert [p["name"] for p in described["sma_cross"]["params"]] == ["fast", "slow", "allow_short"]
    assert described["sma_cross"]["signals"] is True
    assert Strategy.has_signals() is False and Scripted.has_signals() is True
