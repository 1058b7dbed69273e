"""Strategies: the instances that trade on their own, their classes, results and exposure.

Viewers read; traders create, change, delete, start and stop. Starting and
stopping is audited. Definitions are validated before anything is stored: an
unknown strategy class, a parameter that is unknown or out of its range, a
symbol outside the universe, or an unsupported interval or sizing is a 422 that
names the field and says what is wrong.

In a split deployment the strategies run in the strategies worker: definitions
are stored whether or not it is up, but an explicit start or stop with no
worker answering is a 503 that says to run ``trademk worker --role
strategies``; a worker that failed on the command is a 502.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, HTTPException, Response, status

from trademk.api.dependencies import PlatformDep
from trademk.api.errors import unprocessable
from trademk.api.schemas.strategies import (
    ParamOut,
    PerformanceOut,
    StrategyClassOut,
    StrategyHoldingOut,
    StrategyIn,
    StrategyOut,
    StrategyPositionOut,
    SymbolExposureOut,
)
from trademk.api.security import AuditDep, TraderDep, ViewerDep, error_responses
from trademk.engine.control import NoWorkerAnswered
from trademk.engine.strategy_spec import StrategyConfigError
from trademk.security.audit import AuditAction
from trademk.storage.strategy_models import StrategyRecord
from trademk.storage.strategy_repository import StrategyNameTaken
from trademk.strategies.registry import describe_strategies
from trademk.wiring.strategies import StrategyService
from trademk.wiring.strategy_hosts import StrategyConflict, StrategyWorkerFailed

router = APIRouter(
    prefix="/api/v1/strategies",
    tags=["strategies"],
    responses=error_responses(
        {
            502: "The strategies worker failed on the request",
            503: "The strategy runtime is not running (the app database is unreachable, "
            "or no strategies worker answered)",
        }
    ),
)
_NOT_FOUND = error_responses({404: "No such strategy"})
_CONFLICT = error_responses(
    {
        404: "No such strategy",
        409: "The name is taken, or the strategy's mode does not fit the broker",
    }
)


def get_strategies(platform: PlatformDep) -> StrategyService:
    """The strategy service, or 503 while trading cannot run."""
    if platform.strategies is None:
        raise HTTPException(
            503, "strategies are not running yet: the app database is unreachable or starting"
        )
    return platform.strategies


StrategiesDep = Annotated[StrategyService, Depends(get_strategies)]


def _out(record: StrategyRecord) -> StrategyOut:
    return StrategyOut.model_validate(record, from_attributes=True)


def _invalid(err: StrategyConfigError) -> HTTPException:
    return unprocessable((("body", err.field), str(err)))


@contextmanager
def _worker_errors() -> Iterator[None]:
    """The strategies worker did not answer (503) or failed (502): say so, with its words."""
    try:
        yield
    except NoWorkerAnswered as err:
        raise HTTPException(503, str(err)) from None
    except StrategyWorkerFailed as err:
        raise HTTPException(502, str(err)) from None


async def _existing(service: StrategyService, strategy_id: uuid.UUID) -> StrategyRecord:
    record = await service.repository.get(strategy_id)
    if record is None:
        raise HTTPException(404, f"no strategy with id {strategy_id}")
    return record


@router.get("", response_model=list[StrategyOut], summary="Strategy instances, oldest first")
async def list_strategies(_: ViewerDep, service: StrategiesDep) -> list[StrategyOut]:
    return [_out(record) for record in await service.repository.find()]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=StrategyOut,
    summary="Create a strategy instance (an enabled paper strategy starts at once)",
    responses=error_responses({409: "The name is taken, or the mode does not fit the broker"}),
)
async def create_strategy(
    body: StrategyIn, principal: TraderDep, service: StrategiesDep, audit: AuditDep
) -> StrategyOut:
    try:
        with _worker_errors():
            record = await service.create(body.values())
    except StrategyConfigError as err:
        raise _invalid(err) from None
    except (StrategyNameTaken, StrategyConflict) as err:
        raise HTTPException(409, str(err)) from None
    await audit.record(
        "strategy_create",
        target=str(record.id),
        detail={"name": record.name, "strategy_class": record.strategy_class},
    )
    if record.enabled:
        await audit.record(AuditAction.STRATEGY_START, target=str(record.id))
    return _out(record)


@router.get(
    "/classes",
    response_model=list[StrategyClassOut],
    summary="Strategy classes that can run, with their parameters (defaults, ranges, docs)",
)
async def strategy_classes(_: ViewerDep) -> list[StrategyClassOut]:
    return [
        StrategyClassOut(
            name=str(entry["name"]),
            description=str(entry["description"]),
            signals=bool(entry["signals"]),
            params=[
                ParamOut.model_validate(p) for p in cast(list[dict[str, Any]], entry["params"])
            ],
        )
        for entry in describe_strategies()
    ]


@router.get(
    "/exposure",
    response_model=list[SymbolExposureOut],
    summary="Net position and exposure per symbol across the strategies",
)
async def exposure(_: ViewerDep, service: StrategiesDep) -> list[SymbolExposureOut]:
    return [
        SymbolExposureOut(
            symbol=item.symbol,
            net_qty=item.net_qty,
            last_price=item.last_price,
            net_exposure=item.net_exposure,
            account_qty=item.account_qty,
            strategies=[StrategyHoldingOut.model_validate(h, from_attributes=True)
                        for h in item.strategies],
        )
        for item in await service.exposure()
    ]  # fmt: skip


@router.get(
    "/{strategy_id}", response_model=StrategyOut, summary="One strategy", responses=_NOT_FOUND
)
async def get_strategy(strategy_id: uuid.UUID, _: ViewerDep, service: StrategiesDep) -> StrategyOut:
    return _out(await _existing(service, strategy_id))


@router.put(
    "/{strategy_id}",
    response_model=StrategyOut,
    summary="Replace a strategy's definition (a running one restarts with it)",
    responses=_CONFLICT,
)
async def replace_strategy(
    strategy_id: uuid.UUID,
    body: StrategyIn,
    principal: TraderDep,
    service: StrategiesDep,
    audit: AuditDep,
) -> StrategyOut:
    try:
        with _worker_errors():
            record = await service.replace(strategy_id, body.values())
    except StrategyConfigError as err:
        raise _invalid(err) from None
    except (StrategyNameTaken, StrategyConflict) as err:
        raise HTTPException(409, str(err)) from None
    if record is None:
        raise HTTPException(404, f"no strategy with id {strategy_id}")
    await audit.record("strategy_update", target=str(strategy_id), detail={"name": record.name})
    return _out(record)


@router.delete(
    "/{strategy_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Stop and delete a strategy (its orders and fills are kept)",
    responses=_NOT_FOUND,
)
async def delete_strategy(
    strategy_id: uuid.UUID, principal: TraderDep, service: StrategiesDep, audit: AuditDep
) -> Response:
    with _worker_errors():
        deleted = await service.delete(strategy_id)
    if not deleted:
        raise HTTPException(404, f"no strategy with id {strategy_id}")
    await audit.record("strategy_delete", target=str(strategy_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{strategy_id}/start",
    response_model=StrategyOut,
    summary="Start a strategy (the only way a live strategy ever starts)",
    responses=_CONFLICT,
)
async def start_strategy(
    strategy_id: uuid.UUID, principal: TraderDep, service: StrategiesDep, audit: AuditDep
) -> StrategyOut:
    record = await _existing(service, strategy_id)
    try:
        with _worker_errors():
            started = await service.start_strategy(record)
    except StrategyConflict as err:
        raise HTTPException(409, str(err)) from None
    await audit.record(
        AuditAction.STRATEGY_START,
        target=str(strategy_id),
        detail={"name": record.name, "mode": record.mode},
    )
    return _out(started)


@router.post(
    "/{strategy_id}/stop",
    response_model=StrategyOut,
    summary="Stop a strategy; it stays stopped after a restart",
    responses=_NOT_FOUND,
)
async def stop_strategy(
    strategy_id: uuid.UUID, principal: TraderDep, service: StrategiesDep, audit: AuditDep
) -> StrategyOut:
    record = await _existing(service, strategy_id)
    with _worker_errors():
        stopped = await service.stop_strategy(record)
    await audit.record(
        AuditAction.STRATEGY_STOP, target=str(strategy_id), detail={"name": record.name}
    )
    return _out(stopped)


@router.get(
    "/{strategy_id}/performance",
    response_model=PerformanceOut,
    summary="P&L, trades, win rate and drawdown of a strategy",
    responses=_NOT_FOUND,
)
async def performance(
    strategy_id: uuid.UUID, _: ViewerDep, service: StrategiesDep
) -> PerformanceOut:
    record = await _existing(service, strategy_id)
    report = await service.performance(record)
    result = report.performance
    return PerformanceOut(
        strategy_id=record.id,
        name=record.name,
        state=record.state,
        capital_allocation=result.capital,
        cash=result.cash,
        equity=result.equity,
        realized_pnl=result.realized_pnl,
        unrealized_pnl=result.unrealized_pnl,
        fees=result.fees,
        total_pnl=result.total_pnl,
        return_pct=result.return_pct,
        trades=result.trades,
        winning_trades=result.winning_trades,
        losing_trades=result.losing_trades,
        win_rate=result.win_rate,
        max_drawdown=result.max_drawdown,
        max_drawdown_amount=result.max_drawdown_amount,
        fills=result.fills,
        orders=sum(report.orders.values()),
        orders_by_status=report.orders,
        positions=[
            StrategyPositionOut.model_validate(p, from_attributes=True) for p in report.positions
        ],
    )
