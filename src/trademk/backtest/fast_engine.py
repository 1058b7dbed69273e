"""The compiled fast path: signal strategies simulated bar by bar in one numba loop.

It implements exactly the execution rules of the event path (and of
backtesting.py's broker for the same settings):

- A decision taken on bar ``t`` (``decide_action`` on the signals and the
  position's sign) executes at bar ``t + 1``'s open (``fill="next_open"``) or
  at bar ``t``'s close (``fill="close"``). Decisions start at the strategy's
  first decision bar.
- An entry first closes the open position, then opens a new one sized by
  ``order_units`` from the cash left (buying power), the fill price and the
  commission; a size of 0 drops the entry.
- Fill prices move against us by ``slippage`` (a fraction): ``p * (1 + s)``
  for a buy, ``p * (1 - s)`` for a sell. Commission is ``commission * |units|
  * fill price`` on every fill, entry and exit.
- Equity at each bar is cash plus the position marked at the close. If it
  falls to 0 or below, the position is closed at that close (slippage and
  commission apply) and the run stops with equity 0 from there on.
- With ``close_at_end`` a position still open after the last bar is closed at
  the last close; otherwise it stays open (its P&L is in the equity, not in
  the trade table).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

from trademk.strategies.signals import (
    ACTION_CLOSE,
    ACTION_LONG,
    ACTION_NONE,
    ACTION_SHORT,
    Signals,
    Sizing,
    decide_action,
    order_units,
)

__all__ = ["FastRun", "FillModel", "run_fast"]

FloatArray = npt.NDArray[np.float64]

_decide = numba.njit(cache=True, nogil=True)(decide_action)
_units = numba.njit(cache=True, nogil=True)(order_units)

FILL_MODELS = ("next_open", "close")
FillModel = str


@dataclass(frozen=True, slots=True)
class FastRun:
    """Raw output of the kernel: equity per bar and the closed trades' columns."""

    equity: FloatArray
    size: FloatArray
    entry_bar: npt.NDArray[np.int64]
    exit_bar: npt.NDArray[np.int64]
    entry_price: FloatArray
    exit_price: FloatArray
    commission: FloatArray
    open_size: float
    open_entry_price: float
    open_entry_bar: int


@numba.njit(cache=True, nogil=True)
def _close_position(state, trades, ntr, price, bar, commission, slippage):  # type: ignore[no-untyped-def]
    # state: [cash, position, entry price, entry bar]
    pos = state[1]
    if pos == 0.0:
        return ntr
    exit_px = price * (1.0 - slippage) if pos > 0 else price * (1.0 + slippage)
    exit_fee = abs(pos) * exit_px * commission
    state[0] += pos * (exit_px - state[2]) - exit_fee
    entry_fee = abs(pos) * state[2] * commission
    trades[ntr, 0] = pos
    trades[ntr, 1] = state[3]
    trades[ntr, 2] = bar
    trades[ntr, 3] = state[2]
    trades[ntr, 4] = exit_px
    trades[ntr, 5] = exit_fee + entry_fee
    state[1] = 0.0
    state[2] = 0.0
    state[3] = -1.0
    return ntr + 1


@numba.njit(cache=True, nogil=True)
def _execute(state, trades, ntr, action, price, bar, commission, slippage, kind, value, lot):  # type: ignore[no-untyped-def]
    ntr = _close_position(state, trades, ntr, price, bar, commission, slippage)
    if action == ACTION_LONG or action == ACTION_SHORT:  # noqa: SIM109 (numba-compiled)
        direction = 1.0 if action == ACTION_LONG else -1.0
        fill = price * (1.0 + direction * slippage)
        units = _units(kind, value, max(0.0, state[0]), fill, commission, lot)
        if units > 0.0:
            state[1] = direction * units
            state[2] = fill
            state[3] = bar
            state[0] -= units * fill * commission
    return ntr


@numba.njit(cache=True, nogil=True)
def _simulate(  # type: ignore[no-untyped-def]
    open_, close, long_entries, long_exits, short_entries, short_exits, reenter, start,
    cash, commission, slippage, kind, value, lot, on_close, close_at_end,
):  # fmt: skip
    n = close.shape[0]
    equity = np.empty(n)
    trades = np.empty((n + 1, 6))
    state = np.array([cash, 0.0, 0.0, -1.0])
    ntr = 0
    pending = ACTION_NONE
    for i in range(n):
        if pending != ACTION_NONE:
            ntr = _execute(state, trades, ntr, pending, open_[i], i, commission, slippage,
                           kind, value, lot)  # fmt: skip
            pending = ACTION_NONE
        if i >= start:
            pos = state[1]
            sign = 1 if pos > 0 else (-1 if pos < 0 else 0)
            action = _decide(long_entries[i], short_entries[i], long_exits[i], short_exits[i],
                             sign, reenter)  # fmt: skip
            if action != ACTION_NONE:
                if on_close:
                    ntr = _execute(state, trades, ntr, action, close[i], i, commission,
                                   slippage, kind, value, lot)  # fmt: skip
                else:
                    pending = action
        if close_at_end and i == n - 1:
            ntr = _execute(state, trades, ntr, ACTION_CLOSE, close[i], i, commission,
                           slippage, kind, value, lot)  # fmt: skip
        pos = state[1]
        equity[i] = state[0] + (close[i] * pos - pos * state[2])
        if equity[i] <= 0.0:
            ntr = _close_position(state, trades, ntr, close[i], i, commission, slippage)
            equity[i:] = 0.0
            state[0] = 0.0
            break
    return equity, trades[:ntr], state


def run_fast(
    open_: FloatArray,
    close: FloatArray,
    signals: Signals,
    *,
    start: int,
    cash: float,
    commission: float = 0.0,
    slippage: float = 0.0,
    sizing: Sizing | None = None,
    lot_size: float = 1.0,
    fill: FillModel = "next_open",
    close_at_end: bool = False,
) -> FastRun:
    """Simulate ``signals`` over the prices; see the module docstring."""
    if fill not in FILL_MODELS:
        raise ValueError(f"unknown fill model {fill!r}: use one of {FILL_MODELS}")
    if not cash > 0:
        raise ValueError(f"cash must be positive, got {cash}")
    if not 0 <= commission < 0.1 or not 0 <= slippage < 0.1:
        raise ValueError("commission and slippage must be fractions in [0, 0.1)")
    if not lot_size > 0:
        raise ValueError(f"lot_size must be positive, got {lot_size}")
    spec = sizing or Sizing.all_in()
    equity, trades, state = _simulate(
        np.ascontiguousarray(open_, dtype=np.float64),
        np.ascontiguousarray(close, dtype=np.float64),
        signals.long_entries,
        signals.long_exits,
        signals.short_entries,
        signals.short_exits,
        bool(signals.reenter),
        int(start),
        float(cash),
        float(commission),
        float(slippage),
        spec.code,
        float(spec.value),
        float(lot_size),
        fill == "close",
        bool(close_at_end),
    )
    return FastRun(
        equity=equity,
        size=trades[:, 0].copy(),
        entry_bar=trades[:, 1].astype(np.int64),
        exit_bar=trades[:, 2].astype(np.int64),
        entry_price=trades[:, 3].copy(),
        exit_price=trades[:, 4].copy(),
        commission=trades[:, 5].copy(),
        open_size=float(state[1]),
        open_entry_price=float(state[2]),
        open_entry_bar=int(state[3]),
    )
