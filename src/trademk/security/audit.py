"""The audit log: who did what, when, how authenticated, in which request.

Routes record through :class:`AuditLog` (in the API, through the ``AuditDep``
dependency, which fills in the caller and request id). Details never hold
secrets: values under keys that name one are dropped before writing.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trademk.engine.clock import Clock, utc_now
from trademk.security.errors import InvalidInputError
from trademk.security.principal import Principal
from trademk.storage.auth_models import AuditRecord
from trademk.storage.database import transaction

_SENSITIVE_KEY = re.compile(
    r"(password|secret|token|api_key|apikey|authorization|credential)", re.I
)
REDACTED = "***"
MAX_QUERY_LIMIT = 500


class AuditAction(StrEnum):
    """The actions the platform records."""

    LOGIN = "login"
    LOGOUT = "logout"
    SIGNAL = "signal"
    CANCEL = "cancel"
    HALT = "halt"
    RESUME = "resume"
    LIMIT_CHANGE = "limit_change"
    STRATEGY_START = "strategy_start"
    STRATEGY_STOP = "strategy_stop"
    KEY_CREATE = "key_create"
    KEY_REVOKE = "key_revoke"
    USER_CREATE = "user_create"
    USER_UPDATE = "user_update"
    USER_DELETE = "user_delete"


class AuditOutcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: a user (by session or key), or the command line."""

    user_id: uuid.UUID | None
    email: str | None
    auth_method: str | None
    api_key_id: uuid.UUID | None = None

    @classmethod
    def of(cls, principal: Principal) -> Actor:
        return cls(
            principal.user_id, principal.email, principal.auth_method.value, principal.key_id
        )

    @classmethod
    def cli(cls) -> Actor:
        return cls(None, None, "cli")

    @classmethod
    def anonymous(cls, email: str | None = None) -> Actor:
        return cls(None, email, None)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded action, as the audit API returns it."""

    id: uuid.UUID
    created_at: datetime
    action: str
    outcome: str
    actor_user_id: uuid.UUID | None
    actor_email: str | None
    auth_method: str | None
    api_key_id: uuid.UUID | None
    target: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    request_id: str | None = None
    ip: str | None = None

    @classmethod
    def of(cls, row: AuditRecord) -> AuditEntry:
        return cls(
            id=row.id,
            created_at=row.created_at,
            action=row.action,
            outcome=row.outcome,
            actor_user_id=row.actor_user_id,
            actor_email=row.actor_email,
            auth_method=row.auth_method,
            api_key_id=row.api_key_id,
            target=row.target,
            detail=dict(row.detail or {}),
            request_id=row.request_id,
            ip=row.ip,
        )


def scrub(detail: Any, key: str = "") -> Any:
    """``detail`` with the values of secret-named keys replaced."""
    if key and _SENSITIVE_KEY.search(key):
        return REDACTED
    if isinstance(detail, dict):
        return {str(k): scrub(v, str(k)) for k, v in detail.items()}
    if isinstance(detail, list | tuple):
        return [scrub(v) for v in detail]
    if detail is None or isinstance(detail, bool | int | float | str):
        return detail
    return str(detail)


class AuditLog:
    """Writes and queries audit entries."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def record(
        self,
        action: AuditAction | str,
        *,
        actor: Actor,
        outcome: AuditOutcome = AuditOutcome.SUCCESS,
        target: str | None = None,
        detail: dict[str, Any] | None = None,
        request_id: str | None = None,
        ip: str | None = None,
    ) -> None:
        """Write one entry in its own transaction (it stays even if the caller fails later)."""
        name = str(action)
        if not name or len(name) > 32:
            raise InvalidInputError("an audit action is 1 to 32 characters", ("action",))
        async with transaction(self._sessions) as session:
            session.add(
                AuditRecord(
                    created_at=utc_now(self._clock),
                    actor_user_id=actor.user_id,
                    actor_email=actor.email[:320] if actor.email else None,
                    auth_method=actor.auth_method,
                    api_key_id=actor.api_key_id,
                    action=name,
                    outcome=str(outcome),
                    target=target[:200] if target else None,
                    detail=scrub(detail or {}),
                    request_id=request_id,
                    ip=ip[:64] if ip else None,
                )
            )

    async def query(
        self,
        *,
        action: str | None = None,
        user_id: uuid.UUID | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[AuditEntry]:
        """Newest first, filtered by action, acting user and time range [since, until)."""
        if not 1 <= limit <= MAX_QUERY_LIMIT:
            raise InvalidInputError(
                f"limit must be between 1 and {MAX_QUERY_LIMIT}", ("query", "limit")
            )
        query = select(AuditRecord)
        if action is not None:
            query = query.where(AuditRecord.action == action)
        if user_id is not None:
            query = query.where(AuditRecord.actor_user_id == user_id)
        if since is not None:
            query = query.where(AuditRecord.created_at >= since)
        if until is not None:
            query = query.where(AuditRecord.created_at < until)
        query = query.order_by(AuditRecord.created_at.desc(), AuditRecord.id).limit(limit)
        async with self._sessions() as session:
            rows = (await session.scalars(query.offset(offset))).all()
        return [AuditEntry.of(row) for row in rows]
