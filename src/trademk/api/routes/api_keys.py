"""API keys: create (shown once), list, revoke; admins see and revoke anyone's."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Request, status
from pydantic import BaseModel, Field

from trademk.api.security import (
    AdminDep,
    AuditDep,
    SessionDep,
    ViewerDep,
    error_responses,
    security_services,
)
from trademk.security.api_keys import MAX_EXPIRY_DAYS, ApiKeyInfo
from trademk.security.audit import AuditAction
from trademk.security.errors import NotFoundError
from trademk.security.roles import Scope

router = APIRouter(tags=["api keys"])

_NOT_FOUND = error_responses({404: "No such key (or not yours)"})


class ApiKeyCreateIn(BaseModel):
    name: str = Field(min_length=1, max_length=100, examples=["trading bot"])
    scopes: list[Scope] = Field(min_length=1, max_length=3, examples=[["read", "trade"]])
    expires_in_days: int | None = Field(default=None, ge=1, le=MAX_EXPIRY_DAYS)


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    prefix: str = Field(description="The visible start of the key, to recognise it by")
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, info: ApiKeyInfo) -> ApiKeyOut:
        return cls(
            id=info.id,
            user_id=info.user_id,
            name=info.name,
            prefix=info.prefix,
            scopes=sorted(info.scopes),
            created_at=info.created_at,
            expires_at=info.expires_at,
            revoked_at=info.revoked_at,
            last_used_at=info.last_used_at,
        )


class ApiKeyCreatedOut(ApiKeyOut):
    key: str = Field(description="The key itself: shown this once, store it now")


@router.get("/api/v1/api-keys", response_model=list[ApiKeyOut], summary="Your API keys")
async def list_own_keys(principal: ViewerDep, request: Request) -> list[ApiKeyOut]:
    keys = await security_services(request).api_keys.list_for(principal.user_id)
    return [ApiKeyOut.of(key) for key in keys]


@router.post(
    "/api/v1/api-keys",
    response_model=ApiKeyCreatedOut,
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key (needs a login session; the key is shown once)",
)
async def create_key(
    body: ApiKeyCreateIn, principal: SessionDep, request: Request, audit: AuditDep
) -> ApiKeyCreatedOut:
    created = await security_services(request).api_keys.create(
        principal.user_id,
        principal.role,
        body.name,
        frozenset(body.scopes),
        body.expires_in_days,
    )
    await audit.record(
        AuditAction.KEY_CREATE,
        target=created.info.prefix,
        detail={"name": created.info.name, "scopes": sorted(created.info.scopes)},
    )
    return ApiKeyCreatedOut(**ApiKeyOut.of(created.info).model_dump(), key=created.key)


@router.delete(
    "/api/v1/api-keys/{key_id}",
    response_model=ApiKeyOut,
    summary="Revoke an API key (yours; admins: anyone's); refused at once everywhere",
    responses=_NOT_FOUND,
)
async def revoke_key(
    key_id: uuid.UUID, principal: ViewerDep, request: Request, audit: AuditDep
) -> ApiKeyOut:
    keys = security_services(request).api_keys
    key = await keys.get(key_id)
    if key.user_id != principal.user_id and not principal.acts_as_admin():
        raise NotFoundError("no such API key")
    revoked = await keys.revoke(key_id)
    await audit.record(
        AuditAction.KEY_REVOKE, target=revoked.prefix, detail={"owner": str(revoked.user_id)}
    )
    return ApiKeyOut.of(revoked)


@router.get(
    "/api/v1/users/{user_id}/api-keys",
    response_model=list[ApiKeyOut],
    summary="A user's API keys (admin)",
    responses=error_responses({404: "No such user"}),
)
async def list_user_keys(
    user_id: uuid.UUID, principal: AdminDep, request: Request
) -> list[ApiKeyOut]:
    services = security_services(request)
    await services.users.get(user_id)
    return [ApiKeyOut.of(key) for key in await services.api_keys.list_for(user_id)]
