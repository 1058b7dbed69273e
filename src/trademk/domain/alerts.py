"""Price alerts: rules and their evaluation, tick by tick.

An :class:`AlertRule` says what to watch on one symbol:

- ``ABOVE``: the price is at or above ``level``;
- ``BELOW``: the price is at or below ``level``;
- ``CROSSING``: the price moved through ``level`` in either direction (from
  below to at-or-above, or from at-or-above to below) since the previous tick;
- ``PERCENT_MOVE``: the price moved by at least ``percent`` % within the last
  ``window_ns``, up from the window's low or down from its high.

A ``ONCE`` alert fires the first time its condition holds and is then spent.
A ``REPEATING`` alert disarms when it fires and re-arms once its condition is
false again (a ``CROSSING`` alert fires on every crossing: each is an event of
its own); with a ``cooldown_ns`` it also stays quiet for that long after each
firing, and fires then if its condition still holds.

:class:`AlertState` holds one alert's evaluation state; ``evaluate(price,
ts_ns)`` is called with every price of the alert's symbol. Time is the tick's
own timestamp, never a wall clock, so evaluation is deterministic.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Final

NANOS_PER_SECOND: Final = 1_000_000_000
PERCENT_WINDOW_SLOTS: Final = 60
"""Buckets in a percent-move window: the window edge is exact to 1/60 of its length."""
MAX_WINDOW_NS: Final = 7 * 86_400 * NANOS_PER_SECOND
MAX_PERCENT: Final = 1_000.0
_EMPTY_SLOT: Final = -(2**62)


class AlertRuleError(ValueError):
    """An alert rule whose parameters do not make sense; the message says which."""


class AlertCondition(enum.StrEnum):
    ABOVE = "above"
    BELOW = "below"
    CROSSING = "crossing"
    PERCENT_MOVE = "percent_move"


class AlertMode(enum.StrEnum):
    ONCE = "once"
    REPEATING = "repeating"


_LEVEL_CONDITIONS: Final = frozenset(
    {AlertCondition.ABOVE, AlertCondition.BELOW, AlertCondition.CROSSING}
)


def _positive_finite(name: str, value: float | None) -> float:
    if value is None:
        raise AlertRuleError(f"{name} is required")
    if not math.isfinite(value) or value <= 0:
        raise AlertRuleError(f"{name} must be a positive number, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class AlertRule:
    """What one alert watches. Validated on construction (AlertRuleError)."""

    symbol: str
    condition: AlertCondition
    level: float | None = None
    percent: float | None = None
    window_ns: int | None = None
    mode: AlertMode = AlertMode.ONCE
    cooldown_ns: int = 0

    def __post_init__(self) -> None:
        if not self.symbol or not self.symbol.strip():
            raise AlertRuleError("symbol is required")
        if self.cooldown_ns < 0:
            raise AlertRuleError(f"cooldown must not be negative, got {self.cooldown_ns} ns")
        if self.condition in _LEVEL_CONDITIONS:
            self._check_level_rule()
        else:
            self._check_percent_rule()

    def _check_level_rule(self) -> None:
        _positive_finite("level", self.level)
        if self.percent is not None or self.window_ns is not None:
            raise AlertRuleError(
                f"{self.condition.value} alerts take a level, not percent or window"
            )

    def _check_percent_rule(self) -> None:
        percent = _positive_finite("percent", self.percent)
        if percent > MAX_PERCENT:
            raise AlertRuleError(f"percent must be at most {MAX_PERCENT:g}, got {percent:g}")
        if self.window_ns is None:
            raise AlertRuleError("window is required for percent_move alerts")
        if not 0 < self.window_ns <= MAX_WINDOW_NS:
            raise AlertRuleError("window must be longer than 0 and at most 7 days")
        if self.level is not None:
            raise AlertRuleError("percent_move alerts take percent and window, not a level")


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as the engine knows it: its id, rule, name and webhook."""

    id: str
    rule: AlertRule
    name: str = ""
    webhook_url: str | None = None


@dataclass(frozen=True, slots=True)
class AlertTriggered:
    """An alert fired at ``price`` at ``ts_ns``.

    ``reference_price`` is the level (level rules) or the window's low/high the
    move is measured from (percent moves); ``change_pct`` is that move, signed.
    """

    alert_id: str
    symbol: str
    condition: AlertCondition
    price: float
    ts_ns: int
    message: str
    reference_price: float | None = None
    change_pct: float | None = None
    spent: bool = False


class PercentWindow:
    """Low and high of recent prices, kept in a fixed ring of time buckets.

    Memory is bounded by ``slots`` whatever the tick rate; a bucket counts
    while it started within the window, so the window's edge is exact to one
    bucket (``window_ns / slots``).
    """

    __slots__ = ("_bucket_ns", "_highs", "_indexes", "_lows", "_newest", "slots")

    def __init__(self, window_ns: int, slots: int = PERCENT_WINDOW_SLOTS) -> None:
        if window_ns <= 0 or slots <= 0:
            raise ValueError("a percent window needs a positive length and slot count")
        self.slots = slots
        self._bucket_ns = max(1, -(-window_ns // slots))
        self._indexes: list[int] = [_EMPTY_SLOT] * slots
        self._lows: list[float] = [0.0] * slots
        self._highs: list[float] = [0.0] * slots
        self._newest = _EMPTY_SLOT

    def add(self, price: float, ts_ns: int) -> None:
        """Record a price; ones older than the whole ring are ignored."""
        index = ts_ns // self._bucket_ns
        if index <= self._newest - self.slots:
            return
        self._newest = max(self._newest, index)
        slot = index % self.slots
        if self._indexes[slot] != index:
            self._indexes[slot] = index
            self._lows[slot] = self._highs[slot] = price
        elif price < self._lows[slot]:
            self._lows[slot] = price
        elif price > self._highs[slot]:
            self._highs[slot] = price

    def low_high(self) -> tuple[float, float] | None:
        """The lowest and highest price of the window, or None when it is empty."""
        oldest = self._newest - self.slots
        low = math.inf
        high = -math.inf
        for slot, index in enumerate(self._indexes):
            if index > oldest:
                low = min(low, self._lows[slot])
                high = max(high, self._highs[slot])
        return None if low == math.inf else (low, high)


class AlertState:
    """One alert's evaluation state: armed or not, last price, last firing, window."""

    __slots__ = ("_window", "alert", "armed", "fired", "last_fired_ns", "last_price")

    def __init__(self, alert: Alert, *, window_slots: int = PERCENT_WINDOW_SLOTS) -> None:
        self.alert = alert
        self.armed = True
        self.fired = 0
        self.last_fired_ns: int | None = None
        self.last_price: float | None = None
        rule = alert.rule
        self._window = (
            PercentWindow(rule.window_ns, window_slots)
            if rule.condition is AlertCondition.PERCENT_MOVE and rule.window_ns is not None
            else None
        )

    @property
    def spent(self) -> bool:
        """A ONCE alert that has fired never fires again."""
        return self.alert.rule.mode is AlertMode.ONCE and self.fired > 0

    def evaluate(self, price: float, ts_ns: int) -> AlertTriggered | None:
        """Feed one price; the trigger if the alert fires on it."""
        if self.spent or not math.isfinite(price):
            return None
        hit = self._condition(price, ts_ns)
        self.last_price = price
        if hit is None:
            self.armed = True
            return None
        if not self.armed or self._cooling(ts_ns):
            return None
        # Every crossing is an event of its own; a level that stays reached is not.
        self.armed = self.alert.rule.condition is AlertCondition.CROSSING
        self.fired += 1
        self.last_fired_ns = ts_ns
        reference, change = hit
        rule = self.alert.rule
        return AlertTriggered(
            alert_id=self.alert.id,
            symbol=rule.symbol,
            condition=rule.condition,
            price=price,
            ts_ns=ts_ns,
            message=describe(rule, price, change),
            reference_price=reference,
            change_pct=change,
            spent=rule.mode is AlertMode.ONCE,
        )

    def _cooling(self, ts_ns: int) -> bool:
        cooldown = self.alert.rule.cooldown_ns
        return (
            cooldown > 0
            and self.last_fired_ns is not None
            and ts_ns - self.last_fired_ns < cooldown
        )

    def _condition(self, price: float, ts_ns: int) -> tuple[float, float | None] | None:
        """(reference price, signed change %) when the condition holds on this price."""
        rule = self.alert.rule
        if self._window is not None:
            return self._percent_move(price, ts_ns, rule.percent or 0.0)
        level = rule.level or 0.0
        if rule.condition is AlertCondition.ABOVE:
            return (level, None) if price >= level else None
        if rule.condition is AlertCondition.BELOW:
            return (level, None) if price <= level else None
        previous = self.last_price
        if previous is not None and (previous >= level) != (price >= level):
            return level, None
        return None

    def _percent_move(
        self, price: float, ts_ns: int, percent: float
    ) -> tuple[float, float | None] | None:
        assert self._window is not None
        self._window.add(price, ts_ns)
        extremes = self._window.low_high()
        if extremes is None:
            return None
        low, high = extremes
        up = (price - low) / low * 100.0 if low > 0 else 0.0
        down = (price - high) / high * 100.0 if high > 0 else 0.0
        if up >= percent and up >= -down:
            return low, up
        if -down >= percent:
            return high, down
        return None


def describe(rule: AlertRule, price: float, change_pct: float | None) -> str:
    """A one-line human description of a firing."""
    if rule.condition is AlertCondition.PERCENT_MOVE:
        window_s = (rule.window_ns or 0) / NANOS_PER_SECOND
        return (
            f"{rule.symbol} moved {change_pct or 0.0:+.2f}% within {window_s:g}s "
            f"(threshold {rule.percent:g}%), now {price:g}"
        )
    if rule.condition is AlertCondition.CROSSING:
        direction = "up" if price >= (rule.level or 0.0) else "down"
        return f"{rule.symbol} crossed {direction} through {rule.level:g}, now {price:g}"
    relation = "at or above" if rule.condition is AlertCondition.ABOVE else "at or below"
    return f"{rule.symbol} is {relation} {rule.level:g}: {price:g}"
