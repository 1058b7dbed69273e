"""API keys: per-user, scoped, optionally expiring, revocable.

A key looks like ``tmk_<12 hex>_<43 random characters>``. The part before the
second underscore is its visible prefix (stored, shown in listings); the whole
key is shown once at creation and stored only as a SHA-256 digest. Every
request looks the key up in the app database, so a revocation is refused at
once by every process sharing that database.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from trademk.engine.clock import Clock, utc_now
from trademk.security.errors import (
    AuthenticationError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from trademk.security.principal import Principal
from trademk.security.roles import AuthMethod, Role, Scope, parse_scopes, stored_role
from trademk.storage.auth_models import ApiKeyRecord
from trademk.storage.database import transaction
from trademk.storage.models import User

KEY_MARKER = "tmk_"
_PREFIX_HEX = 12
MAX_EXPIRY_DAYS = 3650


def looks_like_api_key(value: str) -> bool:
    """Whether a bearer credential is one of our API keys (rather than a JWT)."""
    return value.startswith(KEY_MARKER)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def split_key(key: str) -> str:
    """The visible prefix of ``key``; AuthenticationError when it is not shaped like a key."""
    marker, _, rest = key.partition("_")
    prefix_id, sep, secret = rest.partition("_")
    if (
        f"{marker}_" != KEY_MARKER
        or not sep
        or len(prefix_id) != _PREFIX_HEX
        or len(secret) < 32
        or any(c not in "0123456789abcdef" for c in prefix_id)
    ):
        raise AuthenticationError("malformed API key")
    return f"{KEY_MARKER}{prefix_id}"


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key as listings show it: never the key itself."""

    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    prefix: str
    scopes: frozenset[Scope]
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, row: ApiKeyRecord) -> ApiKeyInfo:
        return cls(
            row.id,
            row.user_id,
            row.name,
            row.prefix,
            parse_scopes(row.scopes),
            row.created_at,
            row.expires_at,
            row.revoked_at,
            row.last_used_at,
        )


@dataclass(frozen=True, slots=True)
class NewApiKey:
    """A freshly created key: ``key`` is shown to the owner once and never again."""

    info: ApiKeyInfo
    key: str


class ApiKeyService:
    """Creates, lists, revokes and authenticates API keys."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        touch_interval_seconds: int = 60,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._touch_interval = timedelta(seconds=touch_interval_seconds)

    async def create(
        self,
        user_id: uuid.UUID,
        owner_role: Role,
        name: str,
        scopes: frozenset[Scope],
        expires_in_days: int | None = None,
    ) -> NewApiKey:
        """A new key for the user; its scopes may not exceed what the owner's role allows."""
        name = name.strip()
        if not name or len(name) > 100:
            raise InvalidInputError("a key needs a name of 1 to 100 characters", ("body", "name"))
        if not scopes:
            raise InvalidInputError("a key needs at least one scope", ("body", "scopes"))
        too_strong = sorted(s.value for s in scopes if not owner_role.includes(s.role))
        if too_strong:
            raise PermissionDeniedError(
                f"a {owner_role.value} cannot create a key with scope {', '.join(too_strong)}"
            )
        if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
            raise InvalidInputError(
                f"expires_in_days must be between 1 and {MAX_EXPIRY_DAYS}",
                ("body", "expires_in_days"),
            )
        now = utc_now(self._clock)
        prefix = f"{KEY_MARKER}{secrets.token_hex(_PREFIX_HEX // 2)}"
        key = f"{prefix}_{secrets.token_urlsafe(32)}"
        async with transaction(self._sessions) as session:
            row = ApiKeyRecord(
                user_id=user_id,
                name=name,
                prefix=prefix,
                key_hash=key_digest(key),
                scopes=sorted(scope.value for scope in scopes),
                expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
            )
            session.add(row)
            await session.flush()
            return NewApiKey(info=ApiKeyInfo.of(row), key=key)

    async def list_for(self, user_id: uuid.UUID) -> list[ApiKeyInfo]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(ApiKeyRecord)
                    .where(ApiKeyRecord.user_id == user_id)
                    .order_by(ApiKeyRecord.created_at, ApiKeyRecord.prefix)
                )
            ).all()
        return [ApiKeyInfo.of(row) for row in rows]

    async def get(self, key_id: uuid.UUID) -> ApiKeyInfo:
        async with self._sessions() as session:
            row = await session.get(ApiKeyRecord, key_id)
        if row is None:
            raise NotFoundError("no such API key")
        return ApiKeyInfo.of(row)

    async def revoke(self, key_id: uuid.UUID) -> ApiKeyInfo:
        """Revoke a key (idempotent: revoking twice keeps the first time)."""
        async with transaction(self._sessions) as session:
            row = await session.get(ApiKeyRecord, key_id, with_for_update=True)
            if row is None:
                raise NotFoundError("no such API key")
            if row.revoked_at is None:
                row.revoked_at = utc_now(self._clock)
                await session.flush()
                await session.refresh(row)
            return ApiKeyInfo.of(row)

    async def authenticate(self, key: str) -> Principal:
        """The principal a valid key acts as; AuthenticationError for any other key."""
        prefix = split_key(key)
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(ApiKeyRecord, User)
                    .join(User, User.id == ApiKeyRecord.user_id)
                    .where(ApiKeyRecord.prefix == prefix)
                )
            ).first()
        if found is None or not hmac.compare_digest(found[0].key_hash, key_digest(key)):
            raise AuthenticationError("unknown API key")
        row, user = found
        now = utc_now(self._clock)
        if row.revoked_at is not None:
            raise AuthenticationError("API key revoked")
        if row.expires_at is not None and row.expires_at <= now:
            raise AuthenticationError("API key expired")
        if not user.is_active:
            raise AuthenticationError("the key's owner is inactive")
        if row.last_used_at is None or now - row.last_used_at >= self._touch_interval:
            await self._touch(row.id, now)
        return Principal(
            user_id=user.id,
            email=user.email,
            role=stored_role(user.role),
            auth_method=AuthMethod.API_KEY,
            scopes=parse_scopes(row.scopes),
            key_id=row.id,
        )

    async def _touch(self, key_id: uuid.UUID, now: datetime) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(
                update(ApiKeyRecord).where(ApiKeyRecord.id == key_id).values(last_used_at=now)
            )
