"""``Bars``: the OHLCV history of one symbol as numpy arrays, oldest first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trademk.domain.market import Bar

__all__ = ["Bars"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_FIELDS = ("open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True, eq=False)
class Bars:
    """Bar open times (``ts``, UTC ns) and float64 OHLCV columns of equal length.

    ``symbol`` and ``interval`` label the series (the interval is informative:
    backtests also run on irregular daily data).
    """

    ts: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    symbol: str = "ASSET"
    interval: str = ""

    def __post_init__(self) -> None:
        n = len(self.ts)
        for name in _FIELDS:
            column = getattr(self, name)
            if column.ndim != 1 or len(column) != n:
                raise ValueError(
                    f"bar column {name!r} has shape {column.shape}, expected ({n},) like ts"
                )

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def from_arrays(
        cls,
        ts: npt.ArrayLike,
        open: npt.ArrayLike,
        high: npt.ArrayLike,
        low: npt.ArrayLike,
        close: npt.ArrayLike,
        volume: npt.ArrayLike | None = None,
        *,
        symbol: str = "ASSET",
        interval: str = "",
    ) -> Bars:
        """Bars from array-likes, copied to contiguous int64/float64 arrays."""
        close_array = np.ascontiguousarray(close, dtype=np.float64)
        volume_array = (
            np.zeros_like(close_array)
            if volume is None
            else np.ascontiguousarray(volume, dtype=np.float64)
        )
        return cls(
            ts=np.ascontiguousarray(ts, dtype=np.int64),
            open=np.ascontiguousarray(open, dtype=np.float64),
            high=np.ascontiguousarray(high, dtype=np.float64),
            low=np.ascontiguousarray(low, dtype=np.float64),
            close=close_array,
            volume=volume_array,
            symbol=symbol,
            interval=interval,
        )

    @classmethod
    def from_bar_list(cls, bars: list[Bar]) -> Bars:
        """Bars from domain ``Bar`` objects (all of one symbol, oldest first)."""
        if not bars:
            raise ValueError("no bars given")
        return cls.from_arrays(
            [b.ts for b in bars],
            [b.open for b in bars],
            [b.high for b in bars],
            [b.low for b in bars],
            [b.close for b in bars],
            [b.volume for b in bars],
            symbol=bars[0].symbol,
            interval=bars[0].interval,
        )

    def upto(self, end: int) -> Bars:
        """The first ``end`` bars (views, no copy): what was known once bar ``end - 1`` closed."""
        return Bars(
            ts=self.ts[:end],
            open=self.open[:end],
            high=self.high[:end],
            low=self.low[:end],
            close=self.close[:end],
            volume=self.volume[:end],
            symbol=self.symbol,
            interval=self.interval,
        )

    def bar(self, index: int, exchange: str = "backtest") -> Bar:
        """Bar ``index`` as a domain ``Bar`` (vwap is the typical price (h + l + c) / 3)."""
        high, low, close = float(self.high[index]), float(self.low[index]), float(self.close[index])
        return Bar(
            symbol=self.symbol,
            exchange=exchange,
            interval=self.interval,
            ts=int(self.ts[index]),
            open=float(self.open[index]),
            high=high,
            low=low,
            close=close,
            volume=float(self.volume[index]),
            vwap=(high + low + close) / 3.0,
        )
