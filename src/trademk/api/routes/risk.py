"""Risk limits: read and change the limits the risk engine enforces."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body

from trademk.api.dependencies import DeskDep
from trademk.api.errors import unprocessable
from trademk.api.security import AdminDep, AuditDep, ViewerDep
from trademk.domain.risk import RiskLimits, RiskLimitsError
from trademk.security.audit import AuditAction

router = APIRouter(prefix="/api/v1/risk", tags=["risk"])

LimitValue = str | int | bool | None


@router.get("/limits", response_model=dict[str, str], summary="The current risk limits")
async def get_limits(desk: DeskDep, _: ViewerDep) -> dict[str, str]:
    return (await desk.limits()).to_mapping()


@router.put(
    "/limits",
    response_model=dict[str, str],
    summary="Change some or all risk limits",
    responses={422: {"description": "Unknown limit or invalid value; nothing is changed"}},
)
async def put_limits(
    desk: DeskDep,
    _: AdminDep,
    audit: AuditDep,
    changes: Annotated[
        dict[str, LimitValue],
        Body(examples=[{"max_order_qty_stock": "50", "enforce_market_hours": True}]),
    ],
) -> dict[str, str]:
    if not changes:
        raise unprocessable((("body",), "send at least one limit to change"))
    current = await desk.limits()
    try:
        updated = RiskLimits.from_mapping(
            {k: ("" if v is None else v) for k, v in changes.items()}, base=current
        )
    except RiskLimitsError as err:
        raise unprocessable(
            *((("body", name), problem) for name, problem in err.errors.items())
        ) from None
    await desk.update_limits(updated)
    await audit.record(
        AuditAction.LIMIT_CHANGE, detail={k: updated.to_mapping()[k] for k in changes}
    )
    return updated.to_mapping()
