"""Vectorised decisions (``Signals``), what they mean bar by bar, and order sizing.

``decide_action`` and ``order_units`` are plain scalar functions: the event
path calls them from Python and the fast path compiles the very same functions
with numba, so both paths decide and size identically.

Meaning of the signal columns at bar ``t`` (a decision taken once bar ``t``
closed, executed by the fill model: next bar's open by default):

1. ``long_entries[t]``: close any open position, then buy. Ignored while
   already long unless ``reenter`` is set (then the long is closed and
   reopened, as backtesting.py's SmaCross example does).
2. else ``short_entries[t]``: the same, short.
3. else ``long_exits[t]`` closes a long and ``short_exits[t]`` closes a short.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "ACTION_CLOSE",
    "ACTION_LONG",
    "ACTION_NONE",
    "ACTION_SHORT",
    "ALL_IN_FRACTION",
    "Signals",
    "Sizing",
    "decide_action",
    "order_units",
]

BoolArray = npt.NDArray[np.bool_]

ACTION_NONE: Final = 0
ACTION_LONG: Final = 1
ACTION_SHORT: Final = 2
ACTION_CLOSE: Final = 3

SIZE_ALL_IN: Final = 0
SIZE_FRACTION: Final = 1
SIZE_UNITS: Final = 2
SIZE_CASH: Final = 3

ALL_IN_FRACTION: Final = 1.0 - sys.float_info.epsilon
"""The equity fraction an all-in order uses: backtesting.py's default ``size``."""

_KIND_CODES_ALL: Final = {
    "all_in": SIZE_ALL_IN,
    "fraction": SIZE_FRACTION,
    "units": SIZE_UNITS,
    "cash": SIZE_CASH,
}


def _bool_column(values: npt.ArrayLike | None, n: int, name: str) -> BoolArray:
    if values is None:
        return np.zeros(n, dtype=np.bool_)
    array = np.asarray(values)
    if array.shape != (n,):
        raise ValueError(f"signal column {name!r} has shape {array.shape}, expected ({n},)")
    return np.ascontiguousarray(array, dtype=np.bool_)


@dataclass(frozen=True, slots=True, eq=False)
class Signals:
    """Four boolean columns over the whole history; see the module docstring."""

    long_entries: BoolArray
    long_exits: BoolArray
    short_entries: BoolArray
    short_exits: BoolArray
    reenter: bool = False

    @classmethod
    def build(
        cls,
        n: int,
        *,
        long_entries: npt.ArrayLike | None = None,
        long_exits: npt.ArrayLike | None = None,
        short_entries: npt.ArrayLike | None = None,
        short_exits: npt.ArrayLike | None = None,
        allow_short: bool = True,
        reenter: bool = False,
    ) -> Signals:
        """Columns of length ``n`` (missing ones all False).

        With ``allow_short=False`` a short entry only closes a long: it becomes
        a long exit, and no short is ever opened.
        """
        le = _bool_column(long_entries, n, "long_entries")
        lx = _bool_column(long_exits, n, "long_exits")
        se = _bool_column(short_entries, n, "short_entries")
        sx = _bool_column(short_exits, n, "short_exits")
        if not allow_short:
            lx = lx | se
            se = np.zeros(n, dtype=np.bool_)
            sx = np.zeros(n, dtype=np.bool_)
        return cls(le, lx, se, sx, reenter)

    def __len__(self) -> int:
        return len(self.long_entries)

    def active_bars(self) -> npt.NDArray[np.int64]:
        """Indices of the bars where any column is set (where a decision can happen)."""
        any_set = self.long_entries | self.long_exits | self.short_entries | self.short_exits
        return np.flatnonzero(any_set).astype(np.int64)


def decide_action(
    long_entry: bool,
    short_entry: bool,
    long_exit: bool,
    short_exit: bool,
    position_sign: int,
    reenter: bool,
) -> int:
    """The action (``ACTION_*``) the signals at one bar call for, given the position's sign."""
    if long_entry:
        if position_sign > 0 and not reenter:
            return ACTION_NONE
        return ACTION_LONG
    if short_entry:
        if position_sign < 0 and not reenter:
            return ACTION_NONE
        return ACTION_SHORT
    if (position_sign > 0 and long_exit) or (position_sign < 0 and short_exit):
        return ACTION_CLOSE
    return ACTION_NONE


def order_units(
    kind: int, value: float, available: float, price: float, commission: float, lot: float
) -> float:
    """How many units an order of sizing ``kind``/``value`` gets at ``price``; 0 if none.

    ``available`` is the buying power (equity not tied up in positions). The
    price per unit includes the commission, computed as backtesting.py does
    (``price + fraction * price * commission / fraction``), and the count is
    rounded down to a multiple of ``lot``. A fixed number of units that does not
    fit in ``available`` gets 0 (the order is dropped).
    """
    if kind == SIZE_UNITS:
        per_unit = price + (value * price * commission) / value
        return value if value * per_unit <= available else 0.0
    fraction = value
    if kind == SIZE_ALL_IN:
        fraction = ALL_IN_FRACTION
    elif kind == SIZE_CASH:
        fraction = 1.0
    per_unit = price + (fraction * price * commission) / fraction
    budget = min(value, available) if kind == SIZE_CASH else available * fraction
    if budget <= 0.0:
        return 0.0
    if lot == 1.0:
        return float(budget // per_unit)
    units = math.floor(budget / per_unit / lot) * lot
    while units > 0.0 and units * per_unit > budget:
        units -= lot
    return max(units, 0.0)


@dataclass(frozen=True, slots=True)
class Sizing:
    """How large an entry order is.

    - ``all_in``: every unit the buying power pays for, commission included
      (backtesting.py's default order size); the default.
    - ``fraction``: that fraction (0 < f < 1) of the buying power.
    - ``units``: a fixed number of units.
    - ``cash``: as many units as ``value`` in cash buys (capped by buying power).
    """

    kind: str = "all_in"
    value: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in _KIND_CODES_ALL:
            raise ValueError(f"unknown sizing {self.kind!r}: use one of {sorted(_KIND_CODES_ALL)}")
        if not math.isfinite(self.value) or self.value <= 0:
            raise ValueError(f"sizing value must be a positive number, got {self.value!r}")
        if self.kind == "fraction" and not self.value < 1:
            raise ValueError(f"a fraction of equity must be in (0, 1), got {self.value}")

    @classmethod
    def all_in(cls) -> Sizing:
        """Every unit the buying power pays for."""
        return cls("all_in", 1.0)

    @classmethod
    def fraction(cls, value: float) -> Sizing:
        """A fraction (0 < f < 1) of the buying power."""
        return cls("fraction", float(value))

    @classmethod
    def units(cls, value: float) -> Sizing:
        """A fixed number of units."""
        return cls("units", float(value))

    @classmethod
    def cash(cls, value: float) -> Sizing:
        """As many units as ``value`` in cash buys."""
        return cls("cash", float(value))

    @classmethod
    def parse(cls, spec: Sizing | float | str | None) -> Sizing:
        """A ``Sizing`` from a backtesting.py-style number (``0 < x < 1`` a fraction,
        ``x >= 1`` units), from text like ``"all_in"``, ``"fraction:0.5"``,
        ``"units:10"``, ``"cash:1000"``, or None for all-in."""
        if spec is None:
            return cls.all_in()
        if isinstance(spec, Sizing):
            return spec
        if isinstance(spec, str):
            kind, _, raw = spec.partition(":")
            if kind == "all_in" and not raw:
                return cls.all_in()
            try:
                return cls(kind, float(raw))
            except ValueError:
                raise ValueError(
                    f"cannot read sizing {spec!r}: use all_in, fraction:F, units:N or cash:C"
                ) from None
        value = float(spec)
        return cls.fraction(value) if 0 < value < 1 else cls.units(value)

    @property
    def code(self) -> int:
        """The integer kind ``order_units`` takes."""
        return _KIND_CODES_ALL[self.kind]

    def units_for(self, available: float, price: float, commission: float, lot: float) -> float:
        """``order_units`` for this sizing."""
        return order_units(self.code, self.value, available, price, commission, lot)
