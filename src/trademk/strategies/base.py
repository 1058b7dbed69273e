"""The Strategy API: parameters, vectorised indicators and signals, event hooks, orders.

One class serves the fast path, the event-driven backtest and live trading:

- **Parameters** are ``Param`` class attributes (``trademk.strategies.params``);
  ``Strategy(**values)`` validates them and ``check_params`` adds rules that
  tie several together (``fast < slow``).
- **Indicators** are computed by ``indicators(bars)`` over whole arrays
  (numpy/pandas/TA-Lib) and must be causal: the value at bar t uses bars <= t.
- **Decisions** are either vectorised (``signals(bars, indicators)`` returns a
  ``Signals``; such a strategy also runs on the numba fast path) or made in the
  event hooks (``on_start``, ``on_bar``, ``on_tick``, ``on_fill``,
  ``on_stop``) through the order API: ``buy``, ``sell``, ``close``,
  ``target_position`` with market, limit or stop prices and a ``Sizing``.

An engine drives a strategy this way: ``bind(broker)``; ``prepare(bars)``
over the history it has (a backtest passes the whole history once; a live
runner passes its growing buffer again as bars arrive); ``on_start()``; then
for each bar ``set_current_bar(i)`` and ``on_bar(bars.bar(i))``; finally
``on_stop()``. ``indicator(name)`` and ``history`` only show bars up to the
current one, so a hook cannot read the future either.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from trademk.domain.fills import Fill
from trademk.domain.market import Bar, Tick
from trademk.domain.orders import OrderType
from trademk.strategies.bars import Bars
from trademk.strategies.indicators import first_valid_index
from trademk.strategies.params import Param, ParamError, ParamValue, validate_params
from trademk.strategies.signals import (
    ACTION_CLOSE,
    ACTION_LONG,
    ACTION_SHORT,
    Signals,
    Sizing,
    decide_action,
)

__all__ = ["IntentKind", "OrderIntent", "Strategy", "StrategyBroker", "StrategyError"]

FloatArray = npt.NDArray[np.float64]


class StrategyError(RuntimeError):
    """A strategy was used out of order (no broker bound, no bars prepared)."""


class IntentKind(enum.StrEnum):
    """What an order intent asks for."""

    BUY = "buy"
    SELL = "sell"
    CLOSE = "close"
    TARGET = "target"


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """A strategy's order before sizing and risk: the engine turns it into an ``OrderRequest``.

    ``sizing`` applies to BUY/SELL; ``target`` (signed units) to TARGET; CLOSE
    flattens the position. Sizes are resolved when the order is sent, at the
    price it will trade at, so all-in sizing sees the cash a preceding close
    freed. ``bar_index`` is the bar the decision was taken on.
    """

    kind: IntentKind
    sizing: Sizing | None = None
    target: float | None = None
    order_type: OrderType = OrderType.MARKET
    limit_price: float | None = None
    stop_price: float | None = None
    tag: str | None = None
    bar_index: int = -1


class StrategyBroker(Protocol):
    """What a strategy's order API talks to: the backtest driver or the live runner."""

    def submit(self, intent: OrderIntent) -> None:
        """Queue ``intent`` for execution."""
        ...

    def position(self) -> float:
        """Signed units held in the strategy's symbol."""
        ...

    def equity(self) -> float:
        """Cash plus the value of the positions, at the latest price."""
        ...

    def cash(self) -> float:
        """Cash in the account."""
        ...


def _order_type(limit: float | None, stop: float | None) -> OrderType:
    if limit is not None and stop is not None:
        return OrderType.STOP_LIMIT
    if limit is not None:
        return OrderType.LIMIT
    if stop is not None:
        return OrderType.STOP
    return OrderType.MARKET


class Strategy:
    """Base class of every strategy; see the module docstring.

    Subclasses set ``name`` (the registry key) and ``description`` and declare
    ``Param`` attributes. ``sizing`` is the size of entries (all-in unless the
    engine or the subclass says otherwise).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[Mapping[str, Param[Any]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared: dict[str, Param[Any]] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, Param):
                    declared[attr] = value
        cls.params = declared

    def __init__(self, **params: object) -> None:
        self._param_values: dict[str, ParamValue] = validate_params(
            type(self).params, params, type(self).__name__
        )
        self.check_params()
        self.sizing = Sizing.all_in()
        self._broker: StrategyBroker | None = None
        self._bars: Bars | None = None
        self._indicators: dict[str, FloatArray] = {}
        self._signals: Signals | None = None
        self.bar_index = -1

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={v!r}" for k, v in self._param_values.items())
        return f"{type(self).__name__}({values})"

    # -- parameters -----------------------------------------------------------

    @property
    def param_values(self) -> dict[str, ParamValue]:
        """The validated parameter values, defaults included."""
        return dict(self._param_values)

    def check_params(self) -> None:
        """Check rules that tie parameters together; raise ``ParamError``. Default: none."""

    @classmethod
    def params_ok(cls, **params: object) -> bool:
        """Whether ``params`` make a valid strategy (optimisation sweeps filter with it)."""
        try:
            cls(**params)
        except ParamError:
            return False
        return True

    # -- the vectorised part ------------------------------------------------------

    def indicators(self, bars: Bars) -> dict[str, FloatArray]:
        """Causal indicator arrays over ``bars``, by name. Default: none."""
        return {}

    def signals(self, bars: Bars, indicators: Mapping[str, FloatArray]) -> Signals | None:
        """Vectorised decisions over ``bars``; None for a strategy that decides in hooks."""
        return None

    @classmethod
    def has_signals(cls) -> bool:
        """True when the class decides through ``signals`` (it can run on the fast path)."""
        return cls.signals is not Strategy.signals

    @classmethod
    def uses_default_on_bar(cls) -> bool:
        """True when ``on_bar`` only acts on the signals (bars without a signal are no-ops)."""
        return cls.on_bar is Strategy.on_bar

    def warmup(self) -> int:
        """Bars before the slowest indicator has a value (``first_valid_index`` maximum)."""
        return max((first_valid_index(v) for v in self._indicators.values()), default=0)

    @property
    def first_decision_bar(self) -> int:
        """The first bar ``on_bar`` is called on: one after the warm-up, so every
        indicator has at least two values (backtesting.py's rule)."""
        return self.warmup() + 1

    # -- driving (called by an engine) ------------------------------------------

    def bind(self, broker: StrategyBroker) -> None:
        """Connect the order API to ``broker``."""
        self._broker = broker

    def prepare(self, bars: Bars) -> None:
        """Compute indicators and signals over ``bars`` (the history known so far)."""
        self._bars = bars
        computed = self.indicators(bars)
        for key, values in computed.items():
            if len(values) != len(bars):
                raise StrategyError(
                    f"indicator {key!r} of {type(self).__name__} has {len(values)} values "
                    f"for {len(bars)} bars"
                )
        self._indicators = dict(computed)
        self._signals = self.signals(bars, self._indicators)
        if self._signals is not None and len(self._signals) != len(bars):
            raise StrategyError(
                f"signals of {type(self).__name__} have {len(self._signals)} rows "
                f"for {len(bars)} bars"
            )

    def set_current_bar(self, index: int) -> None:
        """Make bar ``index`` the current one (the latest closed bar)."""
        self.bar_index = index

    def is_prepared_for(self, bars: Bars) -> bool:
        """Whether ``prepare`` last ran over exactly ``bars``."""
        return self._bars is bars

    @property
    def prepared_signals(self) -> Signals | None:
        """The signals ``prepare`` computed (None for a hook-driven strategy)."""
        return self._signals

    @property
    def history(self) -> Bars:
        """The bars up to and including the current one."""
        if self._bars is None:
            raise StrategyError(f"{type(self).__name__} has no bars: call prepare() first")
        return self._bars.upto(self.bar_index + 1)

    def indicator(self, name: str) -> FloatArray:
        """Indicator ``name`` up to and including the current bar (a view)."""
        try:
            values = self._indicators[name]
        except KeyError:
            known = ", ".join(sorted(self._indicators)) or "none"
            raise KeyError(f"no indicator {name!r} (known: {known})") from None
        return values[: self.bar_index + 1]

    @property
    def all_indicators(self) -> dict[str, FloatArray]:
        """Every indicator over the whole prepared history (for reports)."""
        return dict(self._indicators)

    # -- hooks ------------------------------------------------------------------------

    def on_start(self) -> None:
        """Called once before the first bar."""

    def on_bar(self, bar: Bar) -> None:
        """Called when bar ``bar_index`` closes. Default: act on the prepared signals."""
        signals = self._signals
        if signals is None:
            return
        i = self.bar_index
        held = self.position
        action = decide_action(
            bool(signals.long_entries[i]),
            bool(signals.short_entries[i]),
            bool(signals.long_exits[i]),
            bool(signals.short_exits[i]),
            (held > 0) - (held < 0),
            signals.reenter,
        )
        if action == ACTION_LONG:
            self.close()
            self.buy(self.sizing)
        elif action == ACTION_SHORT:
            self.close()
            self.sell(self.sizing)
        elif action == ACTION_CLOSE:
            self.close()

    def on_tick(self, tick: Tick) -> None:
        """Called on every tick when the engine feeds ticks. Default: nothing."""

    def on_fill(self, fill: Fill) -> None:
        """Called after each fill of one of this strategy's orders. Default: nothing."""

    def on_stop(self) -> None:
        """Called once after the last bar."""

    # -- account view -------------------------------------------------------------

    @property
    def broker(self) -> StrategyBroker:
        """The bound broker; ``StrategyError`` before ``bind``."""
        if self._broker is None:
            raise StrategyError(f"{type(self).__name__} is not bound to a broker")
        return self._broker

    @property
    def position(self) -> float:
        """Signed units held."""
        return self.broker.position()

    @property
    def equity(self) -> float:
        """Account equity at the latest price."""
        return self.broker.equity()

    # -- order API ------------------------------------------------------------------

    def buy(
        self,
        size: Sizing | float | None = None,
        *,
        limit: float | None = None,
        stop: float | None = None,
        tag: str | None = None,
    ) -> OrderIntent:
        """Buy ``size`` (a ``Sizing``; a number is a fraction if < 1, else units;
        None is all-in) at market, or at a ``limit``/``stop`` price."""
        return self._send(IntentKind.BUY, Sizing.parse(size), None, limit, stop, tag)

    def sell(
        self,
        size: Sizing | float | None = None,
        *,
        limit: float | None = None,
        stop: float | None = None,
        tag: str | None = None,
    ) -> OrderIntent:
        """Sell (or sell short) ``size``; see ``buy``."""
        return self._send(IntentKind.SELL, Sizing.parse(size), None, limit, stop, tag)

    def close(self, tag: str | None = None) -> OrderIntent:
        """Flatten the position at market (nothing happens when already flat)."""
        return self._send(IntentKind.CLOSE, None, None, None, None, tag)

    def target_position(
        self, units: float, *, limit: float | None = None, tag: str | None = None
    ) -> OrderIntent:
        """Trade whatever takes the position to ``units`` (signed; 0 is flat)."""
        return self._send(IntentKind.TARGET, None, float(units), limit, None, tag)

    def _send(
        self,
        kind: IntentKind,
        sizing: Sizing | None,
        target: float | None,
        limit: float | None,
        stop: float | None,
        tag: str | None,
    ) -> OrderIntent:
        intent = OrderIntent(
            kind=kind,
            sizing=sizing,
            target=target,
            order_type=_order_type(limit, stop),
            limit_price=limit,
            stop_price=stop,
            tag=tag,
            bar_index=self.bar_index,
        )
        self.broker.submit(intent)
        return intent
