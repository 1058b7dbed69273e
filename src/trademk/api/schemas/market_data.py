"""API types for market data (separate from domain and storage types)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from trademk.domain.market import Bar, Tick
from trademk.engine.clock import ns_to_datetime
from trademk.engine.price_cache import PriceSnapshot


class TickOut(BaseModel):
    symbol: str
    exchange: str
    kind: str = Field(description="trade or quote")
    timestamp: datetime
    price: float = Field(description="Trade price, or the bid/ask mid for a quote")
    qty: float
    bid: float | None = None
    bid_size: float | None = None
    ask: float | None = None
    ask_size: float | None = None
    seq: int | None = Field(None, description="Venue trade id (trades) or book update id (quotes)")

    @classmethod
    def of(cls, tick: Tick) -> TickOut:
        return cls(
            symbol=tick.symbol,
            exchange=tick.exchange,
            kind=str(tick.kind),
            timestamp=ns_to_datetime(tick.ts),
            price=tick.price,
            qty=tick.qty,
            bid=tick.bid,
            bid_size=tick.bid_size,
            ask=tick.ask,
            ask_size=tick.ask_size,
            seq=tick.seq,
        )


class TicksOut(BaseModel):
    symbol: str
    count: int
    ticks: list[TickOut]


class LatestOut(BaseModel):
    symbol: str
    exchange: str
    price: float | None = Field(description="Last trade price, else the quote mid")
    last_trade_price: float | None = None
    last_trade_size: float | None = None
    last_trade_time: datetime | None = None
    bid: float | None = None
    bid_size: float | None = None
    ask: float | None = None
    ask_size: float | None = None
    quote_time: datetime | None = None
    timestamp: datetime | None = Field(None, description="Time of the newest of trade and quote")

    @classmethod
    def of(cls, latest: PriceSnapshot | Tick) -> LatestOut:
        if isinstance(latest, Tick):
            latest = _snapshot_of(latest)
        times = [t for t in (latest.last_trade_ts, latest.quote_ts) if t is not None]
        return cls(
            symbol=latest.symbol,
            exchange=latest.exchange,
            price=latest.price,
            last_trade_price=latest.last_price,
            last_trade_size=latest.last_size,
            last_trade_time=_dt(latest.last_trade_ts),
            bid=latest.bid,
            bid_size=latest.bid_size,
            ask=latest.ask,
            ask_size=latest.ask_size,
            quote_time=_dt(latest.quote_ts),
            timestamp=_dt(max(times)) if times else None,
        )


def _dt(ns: int | None) -> datetime | None:
    return None if ns is None else ns_to_datetime(ns)


def _snapshot_of(tick: Tick) -> PriceSnapshot:
    is_trade = tick.kind == "trade"
    return PriceSnapshot(
        symbol=tick.symbol,
        exchange=tick.exchange,
        last_price=tick.price if is_trade else None,
        last_size=tick.qty if is_trade else None,
        last_trade_ts=tick.ts if is_trade else None,
        bid=tick.bid,
        bid_size=tick.bid_size,
        ask=tick.ask,
        ask_size=tick.ask_size,
        quote_ts=None if is_trade else tick.ts,
    )


class BarOut(BaseModel):
    timestamp: datetime = Field(description="Bar open time (UTC)")
    open: float
    high: float
    low: float
    close: float
    volume: float
    vwap: float
    trades: int

    @classmethod
    def of(cls, bar: Bar) -> BarOut:
        return cls(
            timestamp=ns_to_datetime(bar.ts),
            open=bar.open,
            high=bar.high,
            low=bar.low,
            close=bar.close,
            volume=bar.volume,
            vwap=bar.vwap,
            trades=bar.trades,
        )


class BarsOut(BaseModel):
    symbol: str
    interval: str
    count: int
    bars: list[BarOut]


class SymbolOut(BaseModel):
    ticker: str
    name: str
    exchange: str
    asset_type: str
    is_active: bool
    alpaca_symbol: str | None = None


class StreamStatusOut(BaseModel):
    feeds: dict[str, dict[str, Any]]
    ingest: dict[str, Any] | None = None
    cached_symbols: int
