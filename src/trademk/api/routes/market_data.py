"""Market data: latest prices, ticks, bars, symbols, feed status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import select

from trademk.api.dependencies import PlatformDep
from trademk.api.errors import unprocessable
from trademk.api.schemas.market_data import (
    BarOut,
    BarsOut,
    LatestOut,
    StreamStatusOut,
    SymbolOut,
    TickOut,
    TicksOut,
)
from trademk.api.security import MarketDataDep, error_responses
from trademk.engine.clock import datetime_to_ns
from trademk.engine.market_data import UnknownSymbolError
from trademk.storage.models import Symbol

router = APIRouter(prefix="/api/v1/market-data", tags=["market data"])
_UNKNOWN_SYMBOL = error_responses({404: "Unknown symbol, or no data for it yet"})

BarInterval = Literal["1m", "5m", "15m", "1h", "1d"]
StartTime = Annotated[datetime | None, Query(description="Inclusive start (ISO 8601, UTC)")]
EndTime = Annotated[datetime | None, Query(description="Exclusive end (ISO 8601, UTC)")]


def _time_range(start: datetime | None, end: datetime | None) -> tuple[int | None, int | None]:
    start_ns = None if start is None else datetime_to_ns(start)
    end_ns = None if end is None else datetime_to_ns(end)
    if start_ns is not None and end_ns is not None and start_ns >= end_ns:
        raise unprocessable(
            (("query", "start_time"), f"start_time {start} must be before end_time {end}")
        )
    return start_ns, end_ns


def _not_found(err: UnknownSymbolError) -> HTTPException:
    return HTTPException(404, str(err))


@router.get("/stream_status", response_model=StreamStatusOut, summary="Feeds and ingestion")
async def stream_status(platform: PlatformDep, _: MarketDataDep) -> StreamStatusOut:
    market = platform.market_data
    return StreamStatusOut(
        feeds=market.stream_status(),
        ingest=platform.ingest.status() if platform.ingest else None,
        cached_symbols=len(market.prices),
    )


@router.get("/symbols", response_model=list[SymbolOut], summary="The symbol universe")
async def symbols(
    platform: PlatformDep,
    _: MarketDataDep,
    asset_type: Annotated[Literal["crypto", "stock"] | None, Query()] = None,
) -> list[SymbolOut]:
    query = select(Symbol).order_by(Symbol.asset_type, Symbol.ticker)
    if asset_type is not None:
        query = query.where(Symbol.asset_type == asset_type)
    async with platform.sessions() as session:
        rows = (await session.scalars(query)).all()
    return [
        SymbolOut(
            ticker=row.ticker,
            name=row.name,
            exchange=row.exchange,
            asset_type=row.asset_type,
            is_active=row.is_active,
            alpaca_symbol=(row.metadata_json or {}).get("alpaca_symbol"),
        )
        for row in rows
    ]


@router.get(
    "/latest/{symbol}",
    response_model=LatestOut,
    summary="Latest trade and quote",
    responses=_UNKNOWN_SYMBOL,
)
async def latest(symbol: str, platform: PlatformDep, _: MarketDataDep) -> LatestOut:
    try:
        found = await platform.market_data.latest(symbol)
    except UnknownSymbolError as err:
        raise _not_found(err) from None
    if found is None:
        raise HTTPException(404, f"no market data for {symbol.upper()} yet")
    return LatestOut.of(found)


@router.get(
    "/ticks/{symbol}",
    response_model=TicksOut,
    summary="Stored ticks, newest first",
    responses=_UNKNOWN_SYMBOL,
)
async def ticks(
    symbol: str,
    platform: PlatformDep,
    _: MarketDataDep,
    exchange: Annotated[str | None, Query(max_length=32)] = None,
    start_time: StartTime = None,
    end_time: EndTime = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> TicksOut:
    start, end = _time_range(start_time, end_time)
    try:
        found = await platform.market_data.ticks(symbol, start, end, limit, exchange)
    except UnknownSymbolError as err:
        raise _not_found(err) from None
    return TicksOut(symbol=symbol.upper(), count=len(found), ticks=[TickOut.of(t) for t in found])


@router.get(
    "/bars/{symbol}",
    response_model=BarsOut,
    summary="OHLCV bars, oldest first",
    responses=_UNKNOWN_SYMBOL,
)
async def bars(
    symbol: str,
    platform: PlatformDep,
    _: MarketDataDep,
    interval: BarInterval = "1m",
    start_time: StartTime = None,
    end_time: EndTime = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> BarsOut:
    start, end = _time_range(start_time, end_time)
    try:
        found = await platform.market_data.bars(symbol, interval, start, end, limit)
    except UnknownSymbolError as err:
        raise _not_found(err) from None
    return BarsOut(
        symbol=symbol.upper(),
        interval=interval,
        count=len(found),
        bars=[BarOut.of(b) for b in found],
    )
