"""Trading: signals, orders, positions, portfolio, halt/resume."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from trademk.api.dependencies import DeskDep, PlatformDep
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
from trademk.domain.orders import OrderStatus
from trademk.domain.portfolio import Portfolio
from trademk.domain.position import Position
from trademk.domain.signals import OrderRequest
from trademk.engine.clock import ns_to_datetime, utc_now
from trademk.engine.market_data import UnknownSymbolError
from trademk.security.audit import AuditAction
from trademk.storage.models import OrderRecord
from trademk.wiring.trading_desk import DeskState, OrderNotOpen, TradingDesk

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


def _state_out(state: DeskState) -> TradingStateOut:
    return TradingStateOut(
        state=state.state,
        reason=state.reason,
        venue=state.venue,
        open_orders=state.open_orders,
        denials_by_rule=state.denials_by_rule,
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
    desk: DeskDep,
    _: TraderDep,
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
        desk.check(request)  # validates the terms before queuing
    except ValueError as err:
        raise unprocessable((("body",), str(err))) from None
    await desk.send(request)
    await audit.record(
        AuditAction.SIGNAL,
        target=request.client_order_id,
        detail={"symbol": symbol, "side": str(request.side), "qty": str(request.qty)},
    )
    return SignalAccepted(client_order_id=request.client_order_id, symbol=symbol)


@router.get("/orders", response_model=list[OrderOut], summary="Orders, newest first")
async def list_orders(
    platform: PlatformDep,
    desk: DeskDep,
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
    records = await desk.orders(
        limit=limit,
        status=[str(s) for s in status_] if status_ else None,
        symbol=symbol.upper() if symbol else None,
        since=since,
        strategy_id=strategy_id,
    )
    return [_order_out(record) for record in records]


async def _find_order(desk: TradingDesk, order_id: str) -> OrderRecord:
    record = await desk.order(order_id)
    if record is None:
        raise HTTPException(404, f"no order with client_order_id or venue id {order_id!r}")
    return record


@router.get("/orders/{order_id}", response_model=OrderOut, summary="One order", responses=_NO_ORDER)
async def get_order(order_id: str, desk: DeskDep, _: ViewerDep) -> OrderOut:
    return _order_out(await _find_order(desk, order_id))


@router.delete(
    "/orders/{order_id}",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=OrderOut,
    summary="Cancel an open order",
    responses=error_responses({404: "No such order", 409: "The order is no longer open"}),
)
async def cancel_order(order_id: str, desk: DeskDep, _: TraderDep, audit: AuditDep) -> OrderOut:
    record = await _find_order(desk, order_id)
    try:
        await desk.cancel(record)
    except OrderNotOpen as err:
        raise HTTPException(409, str(err)) from None
    await audit.record(AuditAction.CANCEL, target=record.client_order_id)
    return _order_out(await _find_order(desk, order_id))


@router.get("/positions", response_model=list[PositionOut], summary="Positions, marked to market")
async def positions(
    desk: DeskDep,
    _: ViewerDep,
    include_closed: Annotated[bool, Query(description="Include flat positions")] = False,
) -> list[PositionOut]:
    found = (await desk.book()).positions.values()
    return [
        _position_out(p)
        for p in sorted(found, key=lambda p: (p.symbol, p.venue))
        if include_closed or not p.is_flat
    ]


@router.get("/portfolio", response_model=PortfolioOut, summary="Cash, equity, exposure, P&L")
async def portfolio(desk: DeskDep, _: ViewerDep) -> PortfolioOut:
    book: Portfolio = await desk.book()
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
async def trading_state(desk: DeskDep, _: ViewerDep) -> TradingStateOut:
    return _state_out(await desk.state())


@router.post("/halt", response_model=HaltOut, summary="Kill switch: halt and cancel open orders")
async def halt(desk: DeskDep, _: AdminDep, audit: AuditDep, body: HaltIn | None = None) -> HaltOut:
    body = body or HaltIn()
    canceled = await desk.halt(body.reason, cancel_open_orders=body.cancel_open_orders)
    await audit.record(
        AuditAction.HALT, detail={"reason": body.reason, "canceled_orders": canceled}
    )
    return HaltOut(**_state_out(await desk.state()).model_dump(), canceled_orders=canceled)


@router.post("/resume", response_model=TradingStateOut, summary="Resume trading")
async def resume(desk: DeskDep, _: AdminDep, audit: AuditDep) -> TradingStateOut:
    await desk.resume("resumed by operator")
    await audit.record(AuditAction.RESUME)
    return _state_out(await desk.state())
