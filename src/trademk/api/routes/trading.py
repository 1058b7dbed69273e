"""Trading: signals, orders, positions, portfolio, halt/resume."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from trademk.api.dependencies import PlatformDep, TradingDep
from trademk.api.errors import unprocessable
from trademk.api.schemas.trading import (
    HaltIn,
    HaltOut,
    OrderOut,
    PortfolioOut,
    PositionOut,
    SignalAccepted,
    SignalIn,
    TradingStateOut,
)
from trademk.api.security import AdminDep, AuditDep, TraderDep, ViewerDep, error_responses
from trademk.domain.errors import RejectedError
from trademk.domain.orders import OrderStatus
from trademk.domain.position import Position
from trademk.domain.signals import OrderRequest
from trademk.engine.clock import ns_to_datetime, utc_now
from trademk.engine.market_data import UnknownSymbolError
from trademk.engine.trading import TradingCore
from trademk.security.audit import AuditAction
from trademk.storage.models import OrderRecord

router = APIRouter(
    prefix="/api/v1/trading",
    tags=["trading"],
    responses=error_responses({503: "Trading is not running (the app database is unreachable)"}),
)
_NO_ORDER = error_responses({404: "No such order"})


def _order_out(record: OrderRecord) -> OrderOut:
    return OrderOut(
        id=str(record.id),
        client_order_id=record.client_order_id,
        venue=record.venue,
        venue_order_id=record.venue_order_id,
        symbol=record.symbol,
        side=record.side,
        type=record.type,
        time_in_force=record.time_in_force,
        qty=record.qty,
        price=record.price,
        stop_price=record.stop_price,
        filled_qty=record.filled_qty,
        filled_avg_price=record.filled_avg_price,
        status=record.status,
        strategy_id=record.strategy_id,
        reason=record.reason,
        error_message=record.error_message,
        created_at=record.created_at,
        updated_at=record.updated_at,
        submitted_at=record.submitted_at,
        filled_at=record.filled_at,
        cancelled_at=record.cancelled_at,
    )


def _position_out(position: Position) -> PositionOut:
    side = "flat" if position.is_flat else ("long" if position.is_long else "short")
    return PositionOut(
        symbol=position.symbol,
        venue=position.venue,
        qty=position.qty,
        side=side,
        avg_price=position.avg_price,
        last_price=position.last_price,
        market_value=position.market_value,
        cost_basis=position.cost_basis,
        unrealized_pnl=position.unrealized_pnl,
        realized_pnl=position.realized_pnl,
        fees=position.fees_paid,
        last_price_updated=None
        if position.updated_ns is None
        else ns_to_datetime(position.updated_ns),
    )


def _state_out(trading: TradingCore) -> TradingStateOut:
    risk = trading.risk
    return TradingStateOut(
        state=str(risk.state),
        reason=risk.state_reason,
        venue=trading.oms.venue.name,
        open_orders=len(trading.oms.open_orders()),
        denials_by_rule={k: v for k, v in risk.denials_by_rule.items() if v},
    )


@router.post(
    "/signal",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SignalAccepted,
    summary="Send a trade signal: risk-checked, then executed",
    responses=error_responses({404: "Unknown symbol"}),
)
async def post_signal(
    signal: SignalIn,
    platform: PlatformDep,
    trading: TradingDep,
    principal: TraderDep,
    audit: AuditDep,
) -> SignalAccepted:
    try:
        symbol = platform.market_data.known(signal.symbol)
    except UnknownSymbolError as err:
        raise HTTPException(404, str(err)) from None
    request = OrderRequest(
        client_order_id=signal.client_order_id or f"tm-{uuid.uuid4().hex}",
        symbol=symbol,
        side=signal.side,
        qty=signal.qty,
        type=signal.type,
        limit_price=signal.limit_price,
        stop_price=signal.stop_price,
        time_in_force=signal.time_in_force,
        reason=signal.reason,
    )
    try:
        trading.oms.build_order(request)  # validates the terms before queuing
    except ValueError as err:
        raise unprocessable((("body",), str(err))) from None
    await trading.signals.put(request)
    await audit.record(
        AuditAction.SIGNAL,
        target=request.client_order_id,
        detail={"symbol": symbol, "side": str(request.side), "qty": str(request.qty)},
    )
    return SignalAccepted(client_order_id=request.client_order_id, symbol=symbol)


@router.get("/orders", response_model=list[OrderOut], summary="Orders, newest first")
async def list_orders(
    platform: PlatformDep,
    trading: TradingDep,
    _: ViewerDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    status_: Annotated[
        list[OrderStatus] | None, Query(alias="status", description="Repeat to allow several")
    ] = None,
    symbol: Annotated[str | None, Query(max_length=32)] = None,
    days: Annotated[int | None, Query(ge=1, le=3650, description="Only the last N days")] = None,
    strategy_id: Annotated[str | None, Query(max_length=64)] = None,
) -> list[OrderOut]:
    since = utc_now(platform.clock) - timedelta(days=days) if days else None
    records = await trading.repository.order_records(
        limit=limit,
        status=[str(s) for s in status_] if status_ else None,
        symbol=symbol.upper() if symbol else None,
        since=since,
        strategy_id=strategy_id,
    )
    return [_order_out(record) for record in records]


async def _find_order(trading: TradingCore, order_id: str) -> OrderRecord:
    await trading.journal.flush()
    record: OrderRecord | None = await trading.repository.order_record(order_id)
    if record is None:
        raise HTTPException(404, f"no order with client_order_id or venue id {order_id!r}")
    return record


@router.get("/orders/{order_id}", response_model=OrderOut, summary="One order", responses=_NO_ORDER)
async def get_order(order_id: str, trading: TradingDep, _: ViewerDep) -> OrderOut:
    return _order_out(await _find_order(trading, order_id))


@router.delete(
    "/orders/{order_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OrderOut,
    summary="Cancel an open order",
    responses=error_responses({404: "No such order", 409: "The order is no longer open"}),
)
async def cancel_order(
    order_id: str, trading: TradingDep, _: TraderDep, audit: AuditDep
) -> OrderOut:
    record = await _find_order(trading, order_id)
    try:
        await trading.oms.cancel(record.client_order_id)
    except KeyError:
        raise HTTPException(409, f"order {order_id} is not open") from None
    except RejectedError as err:
        raise HTTPException(409, str(err)) from None
    await audit.record(AuditAction.CANCEL, target=record.client_order_id)
    return _order_out(await _find_order(trading, order_id))


@router.get("/positions", response_model=list[PositionOut], summary="Positions, marked to market")
async def positions(
    trading: TradingDep,
    _: ViewerDep,
    include_closed: Annotated[bool, Query(description="Include flat positions")] = False,
) -> list[PositionOut]:
    trading.mark_to_market()
    found = trading.portfolio.positions.values()
    return [
        _position_out(p)
        for p in sorted(found, key=lambda p: (p.symbol, p.venue))
        if include_closed or not p.is_flat
    ]


@router.get("/portfolio", response_model=PortfolioOut, summary="Cash, equity, exposure, P&L")
async def portfolio(trading: TradingDep, _: ViewerDep) -> PortfolioOut:
    trading.mark_to_market()
    book = trading.portfolio
    open_positions = sorted(book.open_positions(), key=lambda p: (p.symbol, p.venue))
    return PortfolioOut(
        currency=book.base_currency,
        starting_cash=book.starting_cash,
        cash=book.cash,
        equity=book.equity,
        market_value=sum((p.market_value for p in open_positions), Decimal(0)),
        gross_exposure=book.gross_exposure,
        net_exposure=book.net_exposure,
        realized_pnl=book.realized_pnl,
        unrealized_pnl=book.unrealized_pnl,
        fees=book.fees,
        total_pnl=book.total_pnl,
        open_positions=len(open_positions),
        exposure_by_symbol=book.exposures(),
        positions=[_position_out(p) for p in open_positions],
    )


@router.get("/state", response_model=TradingStateOut, summary="Trading state and risk denials")
async def trading_state(trading: TradingDep, _: ViewerDep) -> TradingStateOut:
    return _state_out(trading)


@router.post("/halt", response_model=HaltOut, summary="Kill switch: halt and cancel open orders")
async def halt(
    trading: TradingDep, _: AdminDep, audit: AuditDep, body: HaltIn | None = None
) -> HaltOut:
    body = body or HaltIn()
    canceled = await trading.halt(body.reason, cancel_open_orders=body.cancel_open_orders)
    await audit.record(
        AuditAction.HALT, detail={"reason": body.reason, "canceled_orders": canceled}
    )
    return HaltOut(**_state_out(trading).model_dump(), canceled_orders=canceled)


@router.post("/resume", response_model=TradingStateOut, summary="Resume trading")
async def resume(trading: TradingDep, _: AdminDep, audit: AuditDep) -> TradingStateOut:
    trading.risk.resume("resumed by operator")
    await audit.record(AuditAction.RESUME)
    return _state_out(trading)
