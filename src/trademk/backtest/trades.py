"""The closed-trade table both engines produce, and the FIFO ledger the event path uses.

A trade is one entry and its exit. Its columns are backtesting.py's: ``Size``
(signed units), ``EntryBar``/``ExitBar`` (bar positions), ``EntryPrice``/
``ExitPrice``, ``PnL`` (after commissions), ``Commission`` (entry plus exit),
``ReturnPct`` (a fraction: 0.01 is 1 %, after commissions), ``EntryTime``/
``ExitTime`` and ``Duration``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["TRADE_COLUMNS", "TradeLedger", "trades_frame"]

TRADE_COLUMNS = (
    "Size",
    "EntryBar",
    "ExitBar",
    "EntryPrice",
    "ExitPrice",
    "PnL",
    "Commission",
    "ReturnPct",
    "EntryTime",
    "ExitTime",
    "Duration",
)


def trades_frame(
    size: npt.ArrayLike,
    entry_bar: npt.ArrayLike,
    exit_bar: npt.ArrayLike,
    entry_price: npt.ArrayLike,
    exit_price: npt.ArrayLike,
    commission: npt.ArrayLike,
    index: pd.DatetimeIndex,
) -> pd.DataFrame:
    """The trade table from per-trade arrays; PnL and ReturnPct are derived here.

    ``PnL = size * (exit - entry) - commission`` and ``ReturnPct = sign(size) *
    (exit / entry - 1) - commission / (|size| * entry)``.
    """
    sizes = np.asarray(size, dtype=np.float64)
    entries = np.asarray(entry_bar, dtype=np.int64)
    exits = np.asarray(exit_bar, dtype=np.int64)
    entry_px = np.asarray(entry_price, dtype=np.float64)
    exit_px = np.asarray(exit_price, dtype=np.float64)
    fees = np.asarray(commission, dtype=np.float64)
    pnl = sizes * (exit_px - entry_px) - fees
    returns = np.sign(sizes) * (exit_px / entry_px - 1) - fees / (np.abs(sizes) * entry_px)
    entry_time = index[entries]
    exit_time = index[exits]
    whole = np.all(sizes == np.round(sizes))
    return pd.DataFrame(
        {
            "Size": sizes.astype(np.int64) if whole else sizes,
            "EntryBar": entries,
            "ExitBar": exits,
            "EntryPrice": entry_px,
            "ExitPrice": exit_px,
            "PnL": pnl,
            "Commission": fees,
            "ReturnPct": returns,
            "EntryTime": entry_time,
            "ExitTime": exit_time,
            "Duration": exit_time - entry_time,
        },
        columns=list(TRADE_COLUMNS),
    )


@dataclass(slots=True)
class _OpenLot:
    size: float  # signed units still open
    price: float
    bar: int
    fee_per_unit: float  # entry commission per unit


@dataclass(slots=True)
class TradeLedger:
    """Turns fills into trades, closing open lots first-in first-out.

    A fill against the open side closes lots (splitting the last one if the
    fill is smaller); whatever is left opens a new lot. Each closed part is a
    trade whose commission is its share of the entry fee plus its share of the
    exit fee.
    """

    open_lots: list[_OpenLot] = field(default_factory=list)
    size: list[float] = field(default_factory=list)
    entry_bar: list[int] = field(default_factory=list)
    exit_bar: list[int] = field(default_factory=list)
    entry_price: list[float] = field(default_factory=list)
    exit_price: list[float] = field(default_factory=list)
    commission: list[float] = field(default_factory=list)

    def apply(self, bar: int, signed_qty: float, price: float, fee: float) -> None:
        """Book a fill of ``signed_qty`` units at ``price`` paying ``fee`` on bar ``bar``."""
        if signed_qty == 0:
            return
        fee_per_unit = fee / abs(signed_qty)
        remaining = signed_qty
        while remaining and self.open_lots and (self.open_lots[0].size > 0) != (remaining > 0):
            lot = self.open_lots[0]
            closed = min(abs(remaining), abs(lot.size))
            signed_closed = closed if lot.size > 0 else -closed
            self._close(lot, signed_closed, bar, price, fee_per_unit * closed)
            lot.size -= signed_closed
            remaining += signed_closed
            if lot.size == 0:
                self.open_lots.pop(0)
        if remaining:
            self.open_lots.append(_OpenLot(remaining, price, bar, fee_per_unit))

    def _close(self, lot: _OpenLot, size: float, bar: int, price: float, exit_fee: float) -> None:
        self.size.append(size)
        self.entry_bar.append(lot.bar)
        self.exit_bar.append(bar)
        self.entry_price.append(lot.price)
        self.exit_price.append(price)
        self.commission.append(exit_fee + lot.fee_per_unit * abs(size))

    def frame(self, index: pd.DatetimeIndex) -> pd.DataFrame:
        """The closed trades so far."""
        return trades_frame(
            self.size,
            self.entry_bar,
            self.exit_bar,
            self.entry_price,
            self.exit_price,
            self.commission,
            index,
        )
