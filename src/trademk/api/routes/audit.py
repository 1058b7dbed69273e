"""The audit log, for admins."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import AwareDatetime, BaseModel

from trademk.api.security import AdminDep, security_services
from trademk.security.audit import MAX_QUERY_LIMIT, AuditEntry
from trademk.security.errors import InvalidInputError

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditEntryOut(BaseModel):
    id: uuid.UUID
    created_at: datetime
    action: str
    outcome: str
    actor_user_id: uuid.UUID | None
    actor_email: str | None
    auth_method: str | None
    api_key_id: uuid.UUID | None
    target: str | None
    detail: dict[str, Any]
    request_id: str | None
    ip: str | None

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls(
            id=entry.id,
            created_at=entry.created_at,
            action=entry.action,
            outcome=entry.outcome,
            actor_user_id=entry.actor_user_id,
            actor_email=entry.actor_email,
            auth_method=entry.auth_method,
            api_key_id=entry.api_key_id,
            target=entry.target,
            detail=entry.detail,
            request_id=entry.request_id,
            ip=entry.ip,
        )


@router.get(
    "",
    response_model=list[AuditEntryOut],
    summary="Who did what, newest first (admin)",
)
async def audit_log(
    principal: AdminDep,
    request: Request,
    action: Annotated[str | None, Query(max_length=32, description="Only this action")] = None,
    user_id: Annotated[uuid.UUID | None, Query(description="Only this acting user")] = None,
    since: Annotated[AwareDatetime | None, Query(description="From this time (inclusive)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Until this time (exclusive)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_QUERY_LIMIT)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[AuditEntryOut]:
    if since is not None and until is not None and since >= until:
        raise InvalidInputError("since must be before until", ("query", "since"))
    entries = await security_services(request).audit.query(
        action=action, user_id=user_id, since=since, until=until, limit=limit, offset=offset
    )
    return [AuditEntryOut.of(entry) for entry in entries]
