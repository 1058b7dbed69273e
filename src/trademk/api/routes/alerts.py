"""Price alerts: create, list, change, delete, and their history of firings.

Viewers read; traders write. Every change is applied to the running alert
engine at once, so the next tick is evaluated against it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from trademk.api.dependencies import PlatformDep
from trademk.api.schemas.alerts import AlertEventOut, AlertIn, AlertOut
from trademk.api.security import AuditDep, TraderDep, ViewerDep, error_responses
from trademk.engine.market_data import UnknownSymbolError
from trademk.runtime import Platform
from trademk.storage.alert_models import AlertRecord
from trademk.storage.alert_repository import MAX_HISTORY_LIMIT, AlertValues

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

HistoryLimit = Annotated[int, Query(ge=1, le=MAX_HISTORY_LIMIT)]
Before = Annotated[
    datetime | None, Query(description="Only firings before this time (ISO 8601, UTC)")
]
_NOT_FOUND = error_responses({404: "No such alert"})
_UNKNOWN_SYMBOL = error_responses({404: "Unknown symbol"})


def _utc(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _out(record: AlertRecord) -> AlertOut:
    return AlertOut.model_validate(record, from_attributes=True)


def _values(platform: Platform, body: AlertIn) -> AlertValues:
    try:
        symbol = platform.market_data.known(body.symbol)
    except UnknownSymbolError as err:
        raise HTTPException(404, str(err)) from None
    return AlertValues(
        rule=body.rule(symbol),
        name=body.name,
        webhook_url=None if body.webhook_url is None else str(body.webhook_url),
        active=body.active,
    )


def _sync_engine(platform: Platform, record: AlertRecord) -> None:
    platform.live.alert_changed(record, str(record.id))


async def _existing(platform: Platform, alert_id: uuid.UUID) -> AlertRecord:
    record = await platform.live.alert_repository.get(alert_id)
    if record is None:
        raise HTTPException(404, f"no alert with id {alert_id}")
    return record


@router.get("", response_model=list[AlertOut], summary="Alerts, newest first")
async def list_alerts(
    principal: ViewerDep,
    platform: PlatformDep,
    symbol: Annotated[str | None, Query(max_length=32)] = None,
    active: Annotated[bool | None, Query(description="Only active (or inactive) alerts")] = None,
) -> list[AlertOut]:
    records = await platform.live.alert_repository.find(
        symbol=symbol.upper() if symbol else None, active=active
    )
    return [_out(record) for record in records]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AlertOut,
    summary="Create an alert",
    responses=_UNKNOWN_SYMBOL,
)
async def create_alert(
    body: AlertIn, principal: TraderDep, platform: PlatformDep, audit: AuditDep
) -> AlertOut:
    values = _values(platform, body)
    record = await platform.live.alert_repository.create(values, principal.user_id)
    _sync_engine(platform, record)
    await audit.record("alert_create", target=str(record.id), detail={"symbol": record.symbol})
    return _out(record)


@router.get(
    "/history", response_model=list[AlertEventOut], summary="Firings of every alert, newest first"
)
async def all_history(
    principal: ViewerDep,
    platform: PlatformDep,
    limit: HistoryLimit = 100,
    before: Before = None,
    symbol: Annotated[str | None, Query(max_length=32)] = None,
) -> list[AlertEventOut]:
    records = await platform.live.alert_repository.history(
        None, limit=limit, before=_utc(before), symbol=symbol.upper() if symbol else None
    )
    return [AlertEventOut.model_validate(r, from_attributes=True) for r in records]


@router.get("/{alert_id}", response_model=AlertOut, summary="One alert", responses=_NOT_FOUND)
async def get_alert(alert_id: uuid.UUID, principal: ViewerDep, platform: PlatformDep) -> AlertOut:
    return _out(await _existing(platform, alert_id))


@router.put(
    "/{alert_id}",
    response_model=AlertOut,
    summary="Replace an alert (its evaluation starts afresh when the rule changes)",
    responses=error_responses({404: "No such alert, or unknown symbol"}),
)
async def replace_alert(
    alert_id: uuid.UUID,
    body: AlertIn,
    principal: TraderDep,
    platform: PlatformDep,
    audit: AuditDep,
) -> AlertOut:
    await _existing(platform, alert_id)
    values = _values(platform, body)
    record = await platform.live.alert_repository.replace(alert_id, values)
    if record is None:
        raise HTTPException(404, f"no alert with id {alert_id}")
    _sync_engine(platform, record)
    await audit.record("alert_update", target=str(alert_id), detail={"symbol": record.symbol})
    return _out(record)


@router.delete(
    "/{alert_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Delete an alert (its history is kept)",
    responses=_NOT_FOUND,
)
async def delete_alert(
    alert_id: uuid.UUID, principal: TraderDep, platform: PlatformDep, audit: AuditDep
) -> Response:
    if not await platform.live.alert_repository.delete(alert_id):
        raise HTTPException(404, f"no alert with id {alert_id}")
    platform.live.alert_changed(None, str(alert_id))
    await audit.record("alert_delete", target=str(alert_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{alert_id}/history",
    response_model=list[AlertEventOut],
    summary="Firings of one alert, newest first (kept after the alert is deleted)",
    responses=_NOT_FOUND,
)
async def alert_history(
    alert_id: uuid.UUID,
    principal: ViewerDep,
    platform: PlatformDep,
    limit: HistoryLimit = 100,
    before: Before = None,
) -> list[AlertEventOut]:
    repository = platform.live.alert_repository
    records = await repository.history(alert_id, limit=limit, before=_utc(before))
    if not records and await repository.get(alert_id) is None:
        raise HTTPException(404, f"no alert with id {alert_id}")
    return [AlertEventOut.model_validate(r, from_attributes=True) for r in records]
